import { parseJsonKeepingBigInts } from './json-text.js';

/**
 * The JSON converter with schemas writes every record as `{"schema":S,"payload":P}`, and S (the
 * table's whole envelope schema, most of the bytes) is the same for every record of a table
 * until its DDL changes. Recognising S by comparing bytes, and decoding and parsing only P per
 * record, gives what parsing the whole text gives: when S and P each parse on their own, the
 * text is exactly the object with those two members, whatever else they contain. The slices
 * are cut at ASCII characters, which never occur inside a multi-byte UTF-8 sequence, so
 * decoding them apart yields the same characters. Anything else is left to the whole-text parse.
 */

const HEAD = Buffer.from('{"schema":');
const PAYLOAD_KEY = Buffer.from(',"payload":');
const CLOSE = '}'.charCodeAt(0);
/** Schemas kept: more than the tables a connector usually streams at once. */
const MAX_SCHEMAS = 32;

interface KnownSchema {
  /** The bytes `{"schema":S,"payload":` of the records with this schema. */
  prefix: Buffer;
  schema: unknown;
}

/** Most recently seen first. */
const known: KnownSchema[] = [];

/**
 * A record value's `{schema, payload}` (big integers kept exact, json-text.ts), or null when
 * its bytes are not of that shape or do not split into two JSON values: then parse the whole
 * text, which yields the same value or the error.
 */
export function parseEnvelope(bytes: Buffer): { schema: unknown; payload: unknown } | null {
  if (bytes.length < HEAD.length || HEAD.compare(bytes, 0, HEAD.length) !== 0) return null;
  if (bytes[bytes.length - 1] !== CLOSE) return null;
  const entry = knownSchemaOf(bytes);
  if (entry === null) return null;
  try {
    const payload = parseJsonKeepingBigInts(bytes.toString('utf8', entry.prefix.length, bytes.length - 1));
    return { schema: entry.schema, payload };
  } catch {
    return null;
  }
}

function knownSchemaOf(bytes: Buffer): KnownSchema | null {
  const hit = known.findIndex(
    ({ prefix }) => prefix.length < bytes.length && prefix.compare(bytes, 0, prefix.length) === 0,
  );
  if (hit >= 0) {
    const entry = known[hit] as KnownSchema;
    if (hit > 0) known.unshift(...known.splice(hit, 1));
    return entry;
  }
  const at = bytes.indexOf(PAYLOAD_KEY, HEAD.length);
  if (at < 0) return null;
  let schema: unknown;
  try {
    schema = deepFreeze(parseJsonKeepingBigInts(bytes.toString('utf8', HEAD.length, at)));
  } catch {
    return null;
  }
  // A copy: the record's buffer belongs to kafkajs' fetch response.
  const entry = { prefix: Buffer.from(bytes.subarray(0, at + PAYLOAD_KEY.length)), schema };
  known.unshift(entry);
  if (known.length > MAX_SCHEMAS) known.pop();
  return entry;
}

/** One parsed schema serves every record of its table: nobody may change it for the others. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
