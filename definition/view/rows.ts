import Big from 'big.js';
import type { DomainState, OrderBy, Scalar, Where } from '../read-models.js';
import type { AggregateFn } from './reads.js';

/**
 * Row semantics every store must share, so the in-memory reader, SQLite, MongoDB and
 * OpenSearch give the engine the same answers: equality as SQL `=` has it on normalised CDC
 * values (no coercion between numbers and strings), order as a binary collation, and exact
 * decimal sums. A store that pushes a read down to its engine must match these functions.
 */

/** A field's value; a dotted path reaches into nested objects (a literal dotted key wins). */
export function fieldValue(row: DomainState, path: string): unknown {
  if (Object.hasOwn(row, path)) return row[path];
  let value: unknown = row;
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

export function isScalar(value: unknown): value is Scalar {
  return value === null || ['string', 'number', 'boolean'].includes(typeof value);
}

/** A row's value where a Where or a key needs a Scalar; a missing field counts as null. */
export function toScalar(value: unknown, what: string): Scalar {
  if (value === undefined) return null;
  if (isScalar(value)) return value;
  throw new Error(
    `${what} holds ${typeof value === 'object' ? 'an object' : `a ${typeof value}`}, not a scalar`,
  );
}

const isList = (value: Scalar | readonly Scalar[]): value is readonly Scalar[] => Array.isArray(value);

/**
 * True when every field of `where` equals its value (or one of its values, for a list).
 * Strict: 5 and '5' differ. A missing field is null, and null in `where` matches null (as
 * `IS NULL`), so `{ closedAt: null }` selects open rows. An empty list matches nothing.
 */
export function matchesWhere(row: DomainState, where: Where): boolean {
  for (const [field, expected] of Object.entries(where)) {
    const value = fieldValue(row, field) ?? null;
    if (isList(expected) ? !expected.includes(value as Scalar) : value !== expected) return false;
  }
  return true;
}

/** Kinds order apart so mixed columns still sort totally: null, booleans, numbers, strings, the rest. */
function rank(value: unknown): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'boolean') return 1;
  if (typeof value === 'number') return 2;
  if (typeof value === 'string') return 3;
  return 4;
}

/** Numbers numerically, strings by UTF-16 code unit (a binary collation), null lowest. */
export function compareValues(a: unknown, b: unknown): number {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  if (ra === 0 || ra === 4) return 0;
  const x = a as string | number | boolean;
  const y = b as string | number | boolean;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Comparator for `orderBy`: null first in 'asc', last in 'desc' (MySQL's order). */
export function compareRows(orderBy: readonly OrderBy[]): (a: DomainState, b: DomainState) => number {
  return (a, b) => {
    for (const { field, direction } of orderBy) {
      const c = compareValues(fieldValue(a, field), fieldValue(b, field));
      if (c !== 0) return direction === 'desc' ? -c : c;
    }
    return 0;
  };
}

function sumExact(values: readonly unknown[], field: string, scale: number): string {
  let total = new Big(0);
  for (const value of values) {
    if (typeof value !== 'string' && typeof value !== 'number') {
      throw new Error(`sum of ${field}: ${JSON.stringify(value)} is not a decimal`);
    }
    try {
      total = total.plus(value);
    } catch {
      throw new Error(`sum of ${field}: ${JSON.stringify(value)} is not a decimal`);
    }
  }
  // As CAST(SUM(x) AS DECIMAL(p, scale)) rounds: half away from zero.
  return total.toFixed(scale, Big.roundHalfUp);
}

function sumNumbers(values: readonly unknown[], field: string): number {
  let total = 0;
  for (const value of values) {
    const n = typeof value === 'string' ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isFinite(n) || (typeof value === 'string' && value.trim() === '')) {
      throw new Error(
        `sum of ${field}: ${JSON.stringify(value)} is not a number; give the aggregate a scale`,
      );
    }
    total += n;
  }
  return total;
}

/**
 * count/sum/min/max over `rows`, ignoring null values (as SQL does). count of none is 0; sum
 * of none is 0, or '0.00…' with a scale; min/max of none is null. With `scale`, sum adds
 * DECIMAL strings exactly and formats `scale` fraction digits; without, it adds numbers.
 * min/max compare as compareValues does (DECIMAL text compares as text, not numerically).
 */
export function aggregateRows(
  rows: readonly DomainState[],
  fn: AggregateFn,
  field?: string,
  scale?: number,
): Scalar {
  if (fn === 'count') return rows.length;
  if (field === undefined) throw new Error(`${fn} needs a field`);
  const values = rows.map((row) => fieldValue(row, field)).filter((v) => v !== null && v !== undefined);
  if (fn === 'sum') return scale === undefined ? sumNumbers(values, field) : sumExact(values, field, scale);
  let best: unknown = null;
  for (const value of values) {
    const c = compareValues(value, best);
    if (best === null || (fn === 'min' ? c < 0 : c > 0)) best = value;
  }
  return toScalar(best, `${fn} of ${field}`);
}
