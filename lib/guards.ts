/** A JSON object (not null, not an array): what a parsed record, row or config section must be. */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A non-empty string. */
export const isName = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
