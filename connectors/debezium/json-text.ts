/**
 * JSON.parse loses integers beyond 2^53, and Debezium writes BIGINT columns, µs/ns
 * timestamps and LSNs as JSON integers. Node 20's JSON.parse gives revivers no access to the
 * source text, so integer literals outside the safe range are quoted before parsing: they
 * arrive as their exact digit strings, and the schema-driven converter knows an int64 field
 * holding a string came from here.
 */

// A JSON string literal (skipped whole, so digits inside strings are left alone) or a number.
const TOKEN = /"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;
const INTEGER = /^-?\d+$/;
// A literal shorter than 16 digits is always a safe integer: skip the rewrite pass entirely.
const MAY_HOLD_BIG_INTEGER = /\d{16}/;
/**
 * A long integer where a JSON value stands: after ':', '[' or ',' and before ',', ']' or '}'.
 * The same characters inside a string also match, but quoting digits there always makes the
 * text invalid (a closed string followed by a digit), so such a text is parsed the slow way.
 */
const LONG_INTEGER_VALUE = /([:[,]\s*)(-?\d{16,})(?=\s*[,\]}])/g;

/**
 * Every Debezium record holds one (ts_ns), so the common case quotes just those few numbers
 * with one native pass instead of visiting every string literal of the record's schema.
 */
export function parseJsonKeepingBigInts(text: string): unknown {
  if (!MAY_HOLD_BIG_INTEGER.test(text)) return JSON.parse(text);
  const fast = text.replace(LONG_INTEGER_VALUE, (all, before: string, digits: string) =>
    Number.isSafeInteger(Number(digits)) ? all : `${before}"${digits}"`,
  );
  try {
    return JSON.parse(fast);
  } catch {
    // A long number inside a string was quoted: the exact pass below tells strings apart.
  }
  const quoted = text.replace(TOKEN, (token) => {
    if (token.startsWith('"') || !INTEGER.test(token)) return token;
    return Number.isSafeInteger(Number(token)) ? token : `"${token}"`;
  });
  return JSON.parse(quoted);
}
