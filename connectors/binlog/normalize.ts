import type { Row, RowValue } from '../change-event.js';

/**
 * Pure value normalisation shared by the snapshot reader (mysql2 text protocol) and the binlog
 * reader (zongji): both hand over what mysql2's type options produce, which differs in small
 * ways (fraction padding, FLOAT width), and this module turns either into the one form the
 * change-event contract promises (connectors/change-event.ts).
 */

/** What normalisation needs to know of a column. */
export interface ColumnInfo {
  name: string;
  /** Lower-case base type: "decimal", "datetime", "bigint", "varchar", ... */
  dataType: string;
  /** Fractional-second digits of DATETIME/TIMESTAMP/TIME. */
  datetimePrecision: number | null;
  /** Scale of DECIMAL. */
  numericScale: number | null;
  /** Width of BIT(n); absent for other types. */
  bits?: number;
}

const COLUMN_TYPE = /^\s*([a-z]+)(?:\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?/i;
const TEMPORAL_TYPES = new Set(['datetime', 'timestamp', 'time']);

/**
 * Reads a column definition as information_schema.COLUMNS.COLUMN_TYPE and zongji's table map
 * both spell it ("decimal(19,4)", "datetime(6)", "bigint(20) unsigned", "enum('a','b')"), so
 * the snapshot and the binlog path derive precision and scale the same way.
 */
export function columnFromType(name: string, columnType: string): ColumnInfo {
  const m = COLUMN_TYPE.exec(columnType);
  const dataType = (m?.[1] ?? columnType).toLowerCase();
  const first = m?.[2] === undefined ? null : Number(m[2]);
  const second = m?.[3] === undefined ? null : Number(m[3]);
  const info: ColumnInfo = {
    name,
    dataType,
    datetimePrecision: TEMPORAL_TYPES.has(dataType) ? (first ?? 0) : null,
    numericScale: dataType === 'decimal' || dataType === 'numeric' ? (second ?? 0) : null,
  };
  if (dataType === 'bit') info.bits = first ?? 1;
  return info;
}

/**
 * BIT(n) as Debezium yields it: BIT(1) a boolean, a wider one its bytes least significant first
 * (io.debezium.data.Bits), where the server (snapshot, legacy reads) and the binlog hand over
 * the ceil(n/8) bytes most significant first.
 */
function bitValue(bytes: Uint8Array, width: number): RowValue {
  if (width === 1) return bytes.some((b) => b !== 0);
  return Buffer.from(bytes).reverse().toString('base64');
}

const TEMPORAL = /^(\d{4}-\d{2}-\d{2} )?(-?\d{1,3}:\d{2}:\d{2})(?:\.(\d*))?$/;

/**
 * Gives a time value exactly `digits` fractional digits: mysql2 pads to the column's
 * precision, the binary protocol and zongji drop zero fractions or trailing zeros.
 */
export function fixFraction(text: string, digits: number): string {
  const m = TEMPORAL.exec(text);
  if (!m) return text;
  const base = `${m[1] ?? ''}${m[2]}`;
  if (digits === 0) return base;
  return `${base}.${(m[3] ?? '').padEnd(digits, '0').slice(0, digits)}`;
}

/** Pads an exact decimal string to its column scale, as "12.3400"; never parses it as a float. */
export function fixScale(text: string, scale: number): string {
  if (scale === 0 || !/^-?\d+(\.\d*)?$/.test(text)) return text;
  const [whole, frac = ''] = text.split('.');
  return `${whole}.${frac.padEnd(scale, '0')}`;
}

/**
 * The shortest decimal that reads back as the same single-precision value. The binlog carries
 * a FLOAT's exact float32 (1.100000023841858 once widened to a JS number); the snapshot reads
 * it widened to DOUBLE for the same reason. Both become 1.1, as Java's Float.toString (and so
 * Debezium) would print it.
 */
export function float32Value(value: number): number {
  if (!Number.isFinite(value)) return value;
  const target = Math.fround(value);
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(target.toPrecision(digits));
    if (Math.fround(candidate) === target) return candidate;
  }
  return target;
}

function integerValue(value: unknown): RowValue {
  const text = typeof value === 'bigint' ? value.toString() : String(value);
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : text;
}

/** One representation of a column value whichever path read it; see connectors/change-event.ts. */
export function normalizeValue(value: unknown, column: ColumnInfo): RowValue {
  if (value === null || value === undefined) return null;
  if (column.bits !== undefined && value instanceof Uint8Array) return bitValue(value, column.bits);
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  switch (column.dataType) {
    case 'datetime':
    case 'timestamp':
    case 'time':
      return fixFraction(String(value), column.datetimePrecision ?? 0);
    case 'date':
      return String(value);
    case 'decimal':
    case 'numeric':
      return fixScale(String(value), column.numericScale ?? 0);
    case 'tinyint':
    case 'smallint':
    case 'mediumint':
    case 'int':
    case 'integer':
    case 'bigint':
    case 'year':
      return integerValue(value);
    case 'float':
      return float32Value(Number(value));
    case 'double':
    case 'real':
      return Number(value);
    default:
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
      if (typeof value === 'bigint') return integerValue(value);
      // JSON parsed by a connection without jsonStrings, geometry objects: keep them as text.
      return typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
}

export function normalizeRow(raw: Record<string, unknown>, columns: readonly ColumnInfo[]): Row {
  const row: Row = {};
  for (const column of columns) row[column.name] = normalizeValue(raw[column.name], column);
  return row;
}
