import { describe, expect, it } from 'vitest';
import { geometryFromWkb } from '../../connectors/debezium/wkb.js';

/** Little-endian WKB of one geometry, built by hand. */
function wkb(type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(1, 0);
  head.writeUInt32LE(type, 1);
  return Buffer.concat([head, body]);
}
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const xy = (x: number, y: number) => {
  const b = Buffer.alloc(16);
  b.writeDoubleLE(x, 0);
  b.writeDoubleLE(y, 8);
  return b;
};

describe('geometryFromWkb: the shapes mysql2 gives spatial columns', () => {
  it('reads points, line strings, polygons and collections', () => {
    expect(geometryFromWkb(wkb(1, xy(1, 2)).toString('base64'))).toEqual({ x: 1, y: 2 });
    const line = wkb(2, Buffer.concat([u32(2), xy(0, 0), xy(1, 1.5)]));
    expect(geometryFromWkb(line.toString('base64'))).toEqual([
      { x: 0, y: 0 },
      { x: 1, y: 1.5 },
    ]);
    const polygon = wkb(3, Buffer.concat([u32(1), u32(3), xy(0, 0), xy(4, 0), xy(0, 0)]));
    expect(geometryFromWkb(polygon.toString('base64'))).toEqual([
      [
        { x: 0, y: 0 },
        { x: 4, y: 0 },
        { x: 0, y: 0 },
      ],
    ]);
    const collection = wkb(7, Buffer.concat([u32(2), wkb(1, xy(1, 2)), line]));
    expect(geometryFromWkb(collection.toString('base64'))).toEqual([
      { x: 1, y: 2 },
      [
        { x: 0, y: 0 },
        { x: 1, y: 1.5 },
      ],
    ]);
  });

  it('reads big-endian WKB, and refuses truncated or trailing bytes and unknown types', () => {
    const big = Buffer.alloc(21);
    big.writeUInt8(0, 0);
    big.writeUInt32BE(1, 1);
    big.writeDoubleBE(-3.5, 5);
    big.writeDoubleBE(7, 13);
    expect(geometryFromWkb(big.toString('base64'))).toEqual({ x: -3.5, y: 7 });
    const point = wkb(1, xy(1, 2));
    expect(geometryFromWkb(point.subarray(0, 15).toString('base64'))).toBeUndefined();
    expect(geometryFromWkb(Buffer.concat([point, Buffer.from([0])]).toString('base64'))).toBeUndefined();
    expect(geometryFromWkb(wkb(99, xy(1, 2)).toString('base64'))).toBeUndefined();
  });
});
