/**
 * Structural diff of two JSON answers (legacy vs read model). Objects are compared by key,
 * arrays by index, leaves by strict equality: money and times are strings in the contract
 * and must match character for character ("12.3400" ≠ "12.34"), so there is no tolerance here;
 * an endpoint that expects some says so in its compare rules (lib/compare-rules.ts).
 */
export type DifferenceKind = 'changed' | 'missing' | 'extra' | 'type';

export interface Difference {
  /** e.g. "recentTransactions[3].amount"; "$" is the whole value. */
  path: string;
  /** missing: only legacy has it; extra: only the read model has it; type: JSON types differ. */
  kind: DifferenceKind;
  legacy?: unknown;
  readModel?: unknown;
}

export const ROOT_PATH = '$';

type JsonKind =
  | 'null'
  | 'array'
  | 'object'
  | 'string'
  | 'number'
  | 'boolean'
  | 'date'
  | 'undefined'
  | 'other';

function kindOf(value: unknown): JsonKind {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (value instanceof Date) return 'date';
  switch (typeof value) {
    case 'object':
      return 'object';
    case 'string':
      return 'string';
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'undefined':
      return 'undefined';
    default:
      return 'other';
  }
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function childPath(parent: string, key: string): string {
  const prefix = parent === ROOT_PATH ? '' : parent;
  if (IDENTIFIER.test(key)) return prefix === '' ? key : `${prefix}.${key}`;
  return `${prefix}[${JSON.stringify(key)}]`;
}

function indexPath(parent: string, index: number): string {
  return `${parent === ROOT_PATH ? '' : parent}[${index}]`;
}

export function diffJson(legacy: unknown, readModel: unknown): Difference[] {
  const out: Difference[] = [];
  walk(legacy, readModel, ROOT_PATH, out);
  return out;
}

function walk(a: unknown, b: unknown, path: string, out: Difference[]): void {
  const ka = kindOf(a);
  const kb = kindOf(b);
  if (ka !== kb) {
    out.push({ path, kind: 'type', legacy: a, readModel: b });
    return;
  }
  if (ka === 'array') {
    const xs = a as unknown[];
    const ys = b as unknown[];
    const common = Math.min(xs.length, ys.length);
    for (let i = 0; i < common; i++) walk(xs[i], ys[i], indexPath(path, i), out);
    for (let i = common; i < xs.length; i++)
      out.push({ path: indexPath(path, i), kind: 'missing', legacy: xs[i] });
    for (let i = common; i < ys.length; i++)
      out.push({ path: indexPath(path, i), kind: 'extra', readModel: ys[i] });
    return;
  }
  if (ka === 'object') {
    const xa = a as Record<string, unknown>;
    const xb = b as Record<string, unknown>;
    // A key holding undefined is absent once serialized, so it is treated as absent here.
    for (const key of Object.keys(xa)) {
      const va = own(xa, key);
      if (va === undefined) continue;
      const vb = own(xb, key);
      const p = childPath(path, key);
      if (vb === undefined) out.push({ path: p, kind: 'missing', legacy: va });
      else walk(va, vb, p, out);
    }
    for (const key of Object.keys(xb)) {
      const vb = own(xb, key);
      if (vb !== undefined && own(xa, key) === undefined) {
        out.push({ path: childPath(path, key), kind: 'extra', readModel: vb });
      }
    }
    return;
  }
  const equal = ka === 'date' ? (a as Date).getTime() === (b as Date).getTime() : a === b;
  if (!equal) out.push({ path, kind: 'changed', legacy: a, readModel: b });
}

/** Own properties only: "constructor" or "toString" in one answer must not match the prototype's. */
function own(record: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** The path with array indices generalised, so differences can be counted per field: "items[*].amount". */
export function pathPattern(path: string): string {
  return path.replace(/\[\d+\]/g, '[*]');
}
