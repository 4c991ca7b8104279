import { createHash } from 'node:crypto';
import { z } from 'zod';

/**
 * Masking of personal data in what the adapter keeps or shows (comparison samples, reports,
 * dead-letter row images, logs). A masked value keeps a short hash, `***1a2b3c`, so two equal
 * values still look equal and an operator can tell "both sides differ in the e-mail" from
 * "the e-mail is empty on one side" without seeing it. Comparisons use the real values;
 * only what is stored or shown is masked.
 */

/** A field of a JSON answer: `owner.email`, `items[*].description` (`[*]`: every array item). */
export const sensitivePathSchema = z
  .string()
  .regex(
    /^(\[\*\]|[A-Za-z_$][\w$]*)(\[\*\]|\.[A-Za-z_$][\w$]*)*$/,
    'expected a JSON path like "owner.email" or "items[*].description"',
  );

export const MASK_PREFIX = '***';

/** `***` and 6 hex digits of the value's SHA-256; null stays null (absence reveals nothing). */
export function maskValue(value: unknown): unknown {
  if (value === null || value === undefined) return value;
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return `${MASK_PREFIX}${createHash('sha256').update(text).digest('hex').slice(0, 6)}`;
}

/** Whether a stored value is maskValue's output rather than data. */
export function isMaskedValue(value: string): boolean {
  return (
    value.length === MASK_PREFIX.length + 6 &&
    value.startsWith(MASK_PREFIX) &&
    /^[0-9a-f]{6}$/.test(value.slice(-6))
  );
}

type Segment = { key: string } | { index: number | '*' };

const SEGMENT = /\.?([A-Za-z_$][\w$]*)|\[(\d+|\*)\]|\[("(?:[^"\\]|\\.)*")\]/y;

/**
 * Segments of a path as compare/diff.ts writes it ("$", "a.b", "items[3].x", `a["odd key"]`)
 * or as a sensitive pattern is written; null when it is neither.
 */
export function pathSegments(path: string): Segment[] | null {
  if (path === '$') return [];
  const segments: Segment[] = [];
  SEGMENT.lastIndex = 0;
  while (SEGMENT.lastIndex < path.length) {
    const at = SEGMENT.lastIndex;
    const match = SEGMENT.exec(path);
    if (match === null || match.index !== at) return null;
    if (match[1] !== undefined) segments.push({ key: match[1] });
    else if (match[2] !== undefined) segments.push({ index: match[2] === '*' ? '*' : Number(match[2]) });
    else segments.push({ key: JSON.parse(match[3] as string) as string });
  }
  return segments;
}

function segmentMatches(pattern: Segment, actual: Segment): boolean {
  if ('key' in pattern) return 'key' in actual && actual.key === pattern.key;
  return 'index' in actual && (pattern.index === '*' || pattern.index === actual.index);
}

function maskWithin(value: unknown, rest: readonly Segment[]): unknown {
  const [head, ...tail] = rest;
  if (head === undefined) return maskValue(value);
  if ('index' in head) {
    if (!Array.isArray(value)) return value;
    return value.map((item, i) => (head.index === '*' || head.index === i ? maskWithin(item, tail) : item));
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, head.key))
    return value;
  const record = value as Record<string, unknown>;
  return { ...record, [head.key]: maskWithin(record[head.key], tail) };
}

/** The sensitive fields of one kind of answer, applied to values found at any path of it. */
export class SensitiveFields {
  private readonly patterns: Segment[][];

  constructor(patterns: readonly string[]) {
    this.patterns = patterns.map((p) => {
      const segments = sensitivePathSchema.safeParse(p).success ? pathSegments(p) : null;
      if (segments === null) throw new TypeError(`not a sensitive-field path: ${JSON.stringify(p)}`);
      return segments;
    });
  }

  get empty(): boolean {
    return this.patterns.length === 0;
  }

  /**
   * `value` as found at `path` of an answer, with every sensitive field in it masked: all of
   * it when the path is at or below a sensitive field, the fields inside it when above one.
   * A path that cannot be read is masked whole: better hidden than leaked.
   */
  mask(path: string, value: unknown): unknown {
    if (this.empty) return value;
    const at = pathSegments(path);
    if (at === null) return maskValue(value);
    let out = value;
    for (const pattern of this.patterns) {
      const common = Math.min(pattern.length, at.length);
      let matches = true;
      for (let i = 0; i < common && matches; i++)
        matches = segmentMatches(pattern[i] as Segment, at[i] as Segment);
      if (!matches) continue;
      if (pattern.length <= at.length) return maskValue(value);
      out = maskWithin(out, pattern.slice(at.length));
    }
    return out;
  }

  /** A whole answer (the value at "$"). */
  maskAnswer(answer: unknown): unknown {
    return this.mask('$', answer);
  }
}

/** Row columns named sensitive, masked in a row image (e.g. a dead letter's before/after). */
export function maskColumns<R extends Record<string, unknown> | null>(row: R, columns: readonly string[]): R {
  if (row === null || columns.length === 0) return row;
  const out: Record<string, unknown> = { ...row };
  for (const column of columns) if (Object.hasOwn(out, column)) out[column] = maskValue(out[column]);
  return out as R;
}
