import { z } from 'zod';
import type { RowValue } from '../change-event.js';
import { DebeziumRecordError } from './errors.js';
import { pgArrayText } from './pg-array.js';
import { pgFloatsIn, pgFloatText } from './pg-float.js';
import {
  EPOCH_TIMESTAMPS,
  formatEpochDateTime,
  formatEpochDay,
  formatTimeOfDay,
  formatZonedTimestamp,
  TIMES_OF_DAY,
} from './temporal.js';
import { geometryFromWkb } from './wkb.js';

/**
 * One column's value in a Debezium record → the ChangeEvent value the embedded binlog reader
 * yields for the same column (connectors/change-event.ts, lib/mysql-types.ts). The column's
 * Connect schema says how Debezium encoded it; the `__debezium.source.column.*` parameters
 * (column.propagate.source.type) give the source column's declared type, length and scale.
 */

/** The Connect JSON converter's description of one struct field (JsonConverter.asJsonSchema). */
export const columnSchema = z
  .object({
    type: z.string(),
    field: z.string(),
    optional: z.boolean().optional(),
    name: z.string().optional(),
    parameters: z.record(z.string(), z.string()).optional(),
  })
  .loose();
export type ColumnSchema = z.infer<typeof columnSchema>;

export type SourceFlavour = 'binlog' | 'postgresql';

const SOURCE_TYPE = '__debezium.source.column.type';
const SOURCE_LENGTH = '__debezium.source.column.length';
const SOURCE_SCALE = '__debezium.source.column.scale';

const TWO_POW_64 = 1n << 64n;

function fail(column: ColumnSchema, detail: string): never {
  throw new DebeziumRecordError(`column ${column.field} (${column.name ?? column.type}): ${detail}`);
}

function param(column: ColumnSchema, key: string): string | undefined {
  return column.parameters?.[key];
}

function intParam(column: ColumnSchema, key: string): number | undefined {
  const raw = param(column, key);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  return Number.isInteger(n) ? n : undefined;
}

/**
 * Fractional-second digits of a temporal column. MySQL/MariaDB: Debezium's DDL parser
 * stores DATETIME(6)'s 6 as the column *length* (JdbcValueConverters.getTimePrecision) and
 * sets no length for a plain DATETIME/TIME/TIMESTAMP, i.e. 0 digits; PostgreSQL reads the
 * precision from JDBC metadata as the *scale* (PostgresValueConverter). Without propagated
 * metadata (column.propagate.source.type off) the caller falls back to the encoding's resolution.
 */
function declaredFractionalDigits(column: ColumnSchema, flavour: SourceFlavour): number | undefined {
  const declared =
    flavour === 'postgresql' ? intParam(column, SOURCE_SCALE) : intParam(column, SOURCE_LENGTH);
  if (declared !== undefined && declared >= 0 && declared <= 9) return declared;
  if (flavour === 'binlog' && param(column, SOURCE_TYPE) !== undefined) return 0;
  return undefined;
}

/** Integer from a JSON number, or from the digit string json-text.ts makes of a big one. */
function toBigInt(column: ColumnSchema, value: unknown): bigint {
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value);
  return fail(column, `expected an integer, got ${JSON.stringify(value)}`);
}

function integerValue(n: bigint): number | string {
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(n)
    : n.toString();
}

/** PostgreSQL's geometric types other than point (which Debezium knows). */
const GEOMETRIC = 'box|polygon|circle|line|lseg|path';
const GEOMETRIC_TYPES = new RegExp(`^(${GEOMETRIC})$`, 'i');

/**
 * Built-in PostgreSQL types Debezium's connector does not know, which it sends as the bytes of
 * their text with include.unknown.datatypes (without it, it left the column out of the record).
 * A user-defined type it does not know comes the same way but cannot be told from text here.
 */
const UNKNOWN_TO_DEBEZIUM = new RegExp(
  `^(tsvector|tsquery|${GEOMETRIC}|pg_lsn|xid|xid8|txid_snapshot|pg_snapshot|\\w*multirange)$`,
  'i',
);

/** Debezium's money.fraction.digits default, and the digits lc_monetary=C prints. */
const MONEY_DIGITS = 2;

function isDecimalSourceType(typeName: string | undefined): boolean {
  return typeName !== undefined && /^(DECIMAL|NUMERIC|DEC|FIXED)\b/i.test(typeName);
}

/** "12.34" at scale 4 → "12.3400": Debezium's toPlainString keeps the value's own scale. */
export function padToScale(decimal: string, scale: number | undefined): string {
  const m = /^(-?\d+)(?:\.(\d*))?$/.exec(decimal);
  if (m === null || scale === undefined || scale <= 0) return decimal;
  const frac = m[2] ?? '';
  return frac.length >= scale ? decimal : `${m[1]}.${frac.padEnd(scale, '0')}`;
}

/** Big-endian two's-complement bytes (Connect's Decimal encoding) → exact decimal string. */
export function decodeDecimalBytes(base64: string, scale: number): string {
  const bytes = Buffer.from(base64, 'base64');
  if (bytes.length === 0) return '0';
  let unscaled = BigInt(`0x${bytes.toString('hex')}`);
  if ((bytes[0] ?? 0) & 0x80) unscaled -= 1n << BigInt(bytes.length * 8);
  const negative = unscaled < 0n;
  const digits = (negative ? -unscaled : unscaled).toString();
  if (scale <= 0) return `${negative ? '-' : ''}${digits}${'0'.repeat(-scale)}`;
  const padded = digits.padStart(scale + 1, '0');
  return `${negative ? '-' : ''}${padded.slice(0, -scale)}.${padded.slice(-scale)}`;
}

function decimalValue(column: ColumnSchema, value: unknown): string {
  const columnScale = intParam(column, SOURCE_SCALE);
  if (column.name === 'org.apache.kafka.connect.data.Decimal') {
    if (typeof value !== 'string') return fail(column, 'expected base64 Decimal bytes');
    const scale = Number(param(column, 'scale') ?? '0');
    return padToScale(decodeDecimalBytes(value, scale), columnScale);
  }
  // io.debezium.data.VariableScaleDecimal: {scale, value} (PostgreSQL NUMERIC without scale)
  const parsed = z.object({ scale: z.number().int(), value: z.string() }).safeParse(value);
  if (!parsed.success) return fail(column, 'expected a VariableScaleDecimal {scale, value}');
  return padToScale(decodeDecimalBytes(parsed.data.value, parsed.data.scale), columnScale);
}

/** A field of a Connect struct value (a JSON object); undefined for anything else. */
const structField = (value: unknown, key: string): unknown =>
  typeof value === 'object' && value !== null ? Reflect.get(value, key) : undefined;

function semanticValue(column: ColumnSchema, value: unknown, flavour: SourceFlavour): RowValue | undefined {
  const name = column.name;
  if (name === undefined) return undefined;
  if (name === 'io.debezium.time.Date' || name === 'org.apache.kafka.connect.data.Date') {
    return formatEpochDay(toBigInt(column, value));
  }
  const ts = EPOCH_TIMESTAMPS[name];
  if (ts !== undefined) {
    const epoch = toBigInt(column, value);
    // Unannotated millisecond timestamps: whole seconds, unless the value says otherwise.
    const fallback = ts.unit === 'ms' && ts.digits === 0 && epoch % 1000n !== 0n ? 3 : ts.digits;
    return formatEpochDateTime(epoch, ts.unit, declaredFractionalDigits(column, flavour) ?? fallback);
  }
  const tod = TIMES_OF_DAY[name];
  if (tod !== undefined) {
    return formatTimeOfDay(
      toBigInt(column, value),
      tod.unit,
      declaredFractionalDigits(column, flavour) ?? tod.digits,
    );
  }
  if (name === 'io.debezium.time.ZonedTimestamp') {
    if (typeof value !== 'string') return fail(column, 'expected an ISO-8601 string');
    return (
      formatZonedTimestamp(value, declaredFractionalDigits(column, flavour)) ??
      fail(column, `not an ISO-8601 offset date-time: ${value}`)
    );
  }
  if (name === 'org.apache.kafka.connect.data.Decimal' || name === 'io.debezium.data.VariableScaleDecimal') {
    return decimalValue(column, value);
  }
  if (name === 'io.debezium.data.geometry.Point' && flavour === 'postgresql') {
    // A PostgreSQL point, as the server prints it.
    const x = structField(value, 'x');
    const y = structField(value, 'y');
    if (typeof x !== 'number' || typeof y !== 'number') return fail(column, 'expected a point {x, y}');
    return `(${pgFloatText(x)},${pgFloatText(y)})`;
  }
  if (name.startsWith('io.debezium.data.geometry.') && flavour === 'binlog') {
    // MariaDB/MySQL spatial columns: as mysql2 and the embedded reader give them, from the WKB.
    const wkb = structField(value, 'wkb');
    const shape = typeof wkb === 'string' ? geometryFromWkb(wkb) : undefined;
    return shape === undefined
      ? fail(column, 'expected a geometry struct with its WKB')
      : JSON.stringify(shape);
  }
  return undefined;
}

/** A PostgreSQL string value whose source type Debezium encodes its own way. */
function postgresText(value: string, sourceType: string): string {
  if (UNKNOWN_TO_DEBEZIUM.test(sourceType)) {
    // include.unknown.datatypes: the bytes of the type's text as the JDBC driver gives it
    // (base64, binary.handling.mode), whose geometric types print doubles the Java way.
    const text = Buffer.from(value, 'base64').toString('utf8');
    return GEOMETRIC_TYPES.test(sourceType) ? pgFloatsIn(text) : text;
  }
  // MONEY: the snapshot's value has its own scale ("-1234.5", "0.0"), a streamed one
  // money.fraction.digits (2), as the server prints it.
  return /^money$/i.test(sourceType) ? padToScale(value, MONEY_DIGITS) : value;
}

function primitiveValue(column: ColumnSchema, value: unknown, flavour: SourceFlavour): RowValue {
  switch (column.type) {
    case 'int8':
    case 'int16':
    case 'int32':
    case 'int64': {
      let n = toBigInt(column, value);
      // bigint.unsigned.handling.mode=long hands over BIGINT UNSIGNED values above 2^63-1 as
      // the negative long with the same bits; mysql2 gives the true value (as a string).
      if (n < 0n && /\bBIGINT UNSIGNED\b/i.test(param(column, SOURCE_TYPE) ?? '')) n += TWO_POW_64;
      return integerValue(n);
    }
    // The JSON converter names Connect's FLOAT32/FLOAT64 "float"/"double" in its schemas.
    case 'float':
    case 'double':
    case 'float32':
    case 'float64':
      // 1e400 parses to Infinity, which no column holds (and JSON cannot carry on).
      if (typeof value === 'number' && Number.isFinite(value)) return value;
      return fail(column, `expected a finite number, got ${JSON.stringify(value)}`);
    case 'boolean':
      if (typeof value === 'boolean') return value;
      return fail(column, `expected a boolean, got ${JSON.stringify(value)}`);
    case 'string': {
      if (typeof value !== 'string') return fail(column, `expected a string, got ${JSON.stringify(value)}`);
      const sourceType = param(column, SOURCE_TYPE);
      // decimal.handling.mode=string: only the propagated source type marks it as a DECIMAL.
      if (isDecimalSourceType(sourceType)) return padToScale(value, intParam(column, SOURCE_SCALE));
      return flavour === 'postgresql' && sourceType !== undefined ? postgresText(value, sourceType) : value;
    }
    case 'bytes':
      // The JSON converter writes bytes as base64 already, which is our representation.
      if (typeof value === 'string') return value;
      return fail(column, 'expected base64 bytes');
    case 'array': {
      // PostgreSQL arrays: the text the server prints, as the embedded reader holds them.
      const text =
        flavour === 'postgresql' && Array.isArray(value)
          ? pgArrayText(column.items, value, param(column, SOURCE_TYPE))
          : undefined;
      return text ?? JSON.stringify(value);
    }
    default:
      // struct/map (spatial types): no scalar form; keep their JSON text.
      return JSON.stringify(value);
  }
}

export function normaliseColumnValue(column: ColumnSchema, value: unknown, flavour: SourceFlavour): RowValue {
  if (value === null || value === undefined) return null;
  return semanticValue(column, value, flavour) ?? primitiveValue(column, value, flavour);
}

/** Schemaless records carry no types: scalars pass through, big integers stay digit strings. */
export function untypedValue(value: unknown): RowValue {
  if (value === null || value === undefined) return null;
  // A big integer arrives as its digit string (json-text.ts), which is already our form.
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (Number.isFinite(value)) return value;
    throw new DebeziumRecordError(`value ${value} is not a finite number`);
  }
  return JSON.stringify(value);
}
