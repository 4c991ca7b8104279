/**
 * A geometry Debezium sends as WKB (io.debezium.data.geometry.*: `{ wkb, srid }`) → the value
 * mysql2 and the embedded binlog reader give the same column: a point `{ x, y }`, a line
 * string its points, a polygon its rings, a multi-geometry or collection the list of its
 * members. The SRID is left out on every path. Undefined for bytes that are not well-formed WKB.
 */

type Point = { x: number; y: number };
export type GeometryValue = Point | GeometryValue[];

class Reader {
  private offset = 0;
  private little = true;

  constructor(private readonly bytes: Buffer) {}

  byteOrder(): void {
    this.little = this.bytes.readUInt8(this.offset++) === 1;
  }

  uint32(): number {
    const n = this.little ? this.bytes.readUInt32LE(this.offset) : this.bytes.readUInt32BE(this.offset);
    this.offset += 4;
    return n;
  }

  double(): number {
    const n = this.little ? this.bytes.readDoubleLE(this.offset) : this.bytes.readDoubleBE(this.offset);
    this.offset += 8;
    return n;
  }

  get done(): boolean {
    return this.offset === this.bytes.length;
  }
}

const point = (r: Reader): Point => ({ x: r.double(), y: r.double() });
const points = (r: Reader): Point[] => Array.from({ length: r.uint32() }, () => point(r));

function geometry(r: Reader): GeometryValue {
  r.byteOrder();
  const type = r.uint32() % 1000;
  switch (type) {
    case 1:
      return point(r);
    case 2:
      return points(r);
    case 3:
      return Array.from({ length: r.uint32() }, () => points(r));
    case 4:
    case 5:
    case 6:
    case 7:
      return Array.from({ length: r.uint32() }, () => geometry(r));
    default:
      throw new RangeError(`WKB geometry type ${type}`);
  }
}

export function geometryFromWkb(base64: string): GeometryValue | undefined {
  try {
    const reader = new Reader(Buffer.from(base64, 'base64'));
    const value = geometry(reader);
    return reader.done ? value : undefined;
  } catch {
    return undefined;
  }
}
