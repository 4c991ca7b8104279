import { z } from 'zod';
import { pgFloatText } from './pg-float.js';
import {
  EPOCH_TIMESTAMPS,
  formatEpochDateTime,
  formatEpochDay,
  formatTimeOfDay,
  formatZonedTimestamp,
  TIMES_OF_DAY,
} from './temporal.js';

/**
 * A PostgreSQL array column as Debezium sends it (a JSON array of Connect values) → the text
 * the server prints for it, which is what the embedded pgoutput reader and the legacy read
 * path hold (connectors/pgoutput/values.ts keeps arrays as printed): both CDC paths then carry
 * the same value, and an endpoint's legacy answer equals the read model's. One dimension only:
 * Debezium sends a multi-dimensional array as nulls, which no text can recover.
 */

/** The Connect schema of the array's elements (`items` of the JsonConverter's array schema). */
const itemSchema = z.object({ type: z.string(), name: z.string().optional() }).loose();

/** The server prints fractions of a second without trailing zeros ("09:00:00.5", "09:00:00"). */
const trimFraction = (text: string) =>
  text.replace(/\.(\d*?)0+(?=$|[+-])/, (_, kept: string) => (kept === '' ? '' : `.${kept}`));

/** array_out's quoting: empty, NULL, or with a brace, comma, quote, backslash or white space. */
function quoted(text: string): string {
  if (text !== '' && text.toUpperCase() !== 'NULL' && !/[{},"\\\s]/.test(text)) return text;
  return `"${text.replace(/["\\]/g, '\\$&')}"`;
}

/** Element schemas whose value is the element's text (or a number or boolean). */
const TEXT_ELEMENTS = new Set([
  '',
  'io.debezium.data.Uuid',
  'io.debezium.data.Json',
  'io.debezium.data.Xml',
  'io.debezium.data.Enum',
]);

/** One element as the server prints it inside an array; undefined when it cannot tell. */
function elementText(item: z.infer<typeof itemSchema>, value: unknown, bytea: boolean): string | undefined {
  const name = item.name ?? '';
  const epoch = EPOCH_TIMESTAMPS[name];
  if (epoch !== undefined && (typeof value === 'number' || typeof value === 'string'))
    return trimFraction(formatEpochDateTime(BigInt(value), epoch.unit, 9));
  const time = TIMES_OF_DAY[name];
  if (time !== undefined && (typeof value === 'number' || typeof value === 'string'))
    return trimFraction(formatTimeOfDay(BigInt(value), time.unit, 9));
  if (
    (name === 'io.debezium.time.Date' || name === 'org.apache.kafka.connect.data.Date') &&
    typeof value === 'number'
  )
    return formatEpochDay(value);
  if (name === 'io.debezium.time.ZonedTimestamp' && typeof value === 'string') {
    // Sessions print timestamptz in UTC as "2024-01-01 07:00:00+00".
    const utc = formatZonedTimestamp(value, 9);
    return utc === undefined ? undefined : `${trimFraction(utc)}+00`;
  }
  if (!TEXT_ELEMENTS.has(name)) return undefined;
  switch (typeof value) {
    case 'boolean':
      return value ? 't' : 'f';
    case 'number':
      return item.type.startsWith('float') || item.type === 'double' ? pgFloatText(value) : String(value);
    case 'string':
      // binary.handling.mode=base64, in a string element schema that only the column's source
      // type tells from text; the server prints bytea in hex.
      return bytea ? `\\x${Buffer.from(value, 'base64').toString('hex')}` : value;
    default:
      return undefined;
  }
}

/**
 * The array's text, or undefined when an element's type has no known text (the caller keeps
 * JSON). `sourceType` is the column's propagated type name ("_bytea" for bytea[]).
 */
export function pgArrayText(
  items: unknown,
  values: readonly unknown[],
  sourceType?: string,
): string | undefined {
  const bytea = sourceType?.toLowerCase() === '_bytea';
  const item = itemSchema.safeParse(items);
  if (!item.success) return undefined;
  const parts: string[] = [];
  for (const value of values) {
    if (value === null) {
      parts.push('NULL');
      continue;
    }
    const text = elementText(item.data, value, bytea);
    if (text === undefined) return undefined;
    parts.push(quoted(text));
  }
  return `{${parts.join(',')}}`;
}
