import Big from 'big.js';

/**
 * An endpoint's comparison rules: answer paths whose differences are expected (a timestamp the
 * read model stamps itself) and numeric fields that may differ by a rounding step. Differences
 * they cover do not make a comparison a mismatch, and they are counted apart in the report, so
 * a rule that hides more than meant shows up there instead of vanishing.
 *
 * Patterns name answer paths with "." between keys; "*" stands for any one key or array
 * index: 'items.*.updatedAt' (also written 'items[*].updatedAt') covers 'items[3].updatedAt'.
 */
export interface CompareRulesSpec {
  /** Differences at or below these paths are ignored. */
  ignore?: readonly string[];
  /** Absolute tolerance by path: numbers (or decimal texts) this close are equal, e.g. { 'balance.available': 0.005 }. */
  tolerance?: Readonly<Record<string, number>>;
}

export interface CompareRules {
  readonly ignore: readonly (readonly string[])[];
  readonly tolerance: readonly { pattern: readonly string[]; within: Big }[];
}

/** A difference as compare/diff.ts reports it (a path the differ wrote, e.g. 'items[3].amount'). */
export interface PathDifference {
  path: string;
  kind: string;
  legacy?: unknown;
  readModel?: unknown;
}

/** What the rules did to one comparison's differences. */
export interface RuledDifferences<D extends PathDifference> {
  /** The differences that still count. */
  differences: D[];
  ignored: number;
  tolerated: number;
}

const DECIMAL = /^-?(0|[1-9]\d*)(\.\d+)?$/;

/**
 * A path as segments: 'items[3]["odd key"].at' → ['items', '3', 'odd key', 'at'] (patterns
 * alike, with '*' or '[*]'); '$' (the whole answer) → []. Null when it does not parse.
 */
function segmentsOf(path: string): string[] | null {
  if (path === '$') return [];
  const part = /([^.[\]"]+)|\[(\d+|\*)\]|\[("(?:[^"\\]|\\.)*")\]/y;
  const segments: string[] = [];
  let at = 0;
  while (at < path.length) {
    // A dot separates segments; brackets follow without one.
    if (segments.length > 0 && path[at] === '.') at++;
    part.lastIndex = at;
    const m = part.exec(path);
    if (m === null) return null;
    segments.push(m[1] ?? m[2] ?? (JSON.parse(m[3] as string) as string));
    at = part.lastIndex;
  }
  return segments;
}

function patternSegments(pattern: string): string[] {
  const segments = segmentsOf(pattern);
  if (segments === null || segments.length === 0)
    throw new Error(`"${pattern}" is not a path pattern (e.g. items.*.updatedAt)`);
  return segments;
}

function matchesPrefix(pattern: readonly string[], segments: readonly string[]): boolean {
  return pattern.length <= segments.length && pattern.every((p, i) => p === '*' || p === segments[i]);
}

function numeric(value: unknown): Big | null {
  if (typeof value === 'number' && Number.isFinite(value)) return new Big(value);
  if (typeof value === 'string' && DECIMAL.test(value)) return new Big(value);
  return null;
}

/** Checks and compiles a definition's rules; throws an Error naming the bad pattern or tolerance. */
export function compileCompareRules(spec: CompareRulesSpec): CompareRules {
  const tolerance = Object.entries(spec.tolerance ?? {}).map(([pattern, within]) => {
    if (typeof within !== 'number' || !Number.isFinite(within) || within < 0)
      throw new Error(`tolerance of "${pattern}" must be a number ≥ 0`);
    return { pattern: patternSegments(pattern), within: new Big(within) };
  });
  return { ignore: (spec.ignore ?? []).map(patternSegments), tolerance };
}

/**
 * Sorts differences into those that count, those at an ignored path, and changed numbers at a
 * tolerated path within its tolerance (compared as exact decimals, so "10.005" is within
 * 0.005 of "10.000").
 */
export function applyCompareRules<D extends PathDifference>(
  differences: readonly D[],
  rules: CompareRules,
): RuledDifferences<D> {
  const out: RuledDifferences<D> = { differences: [], ignored: 0, tolerated: 0 };
  for (const d of differences) {
    // A path the differ wrote always parses; one that did not would be a single opaque segment.
    const segments = segmentsOf(d.path) ?? [d.path];
    if (rules.ignore.some((p) => matchesPrefix(p, segments))) {
      out.ignored++;
      continue;
    }
    if (d.kind === 'changed' && withinTolerance(d, segments, rules)) {
      out.tolerated++;
      continue;
    }
    out.differences.push(d);
  }
  return out;
}

function withinTolerance(d: PathDifference, segments: readonly string[], rules: CompareRules): boolean {
  const rule = rules.tolerance.find(
    (t) => t.pattern.length === segments.length && matchesPrefix(t.pattern, segments),
  );
  if (rule === undefined) return false;
  const a = numeric(d.legacy);
  const b = numeric(d.readModel);
  return a !== null && b !== null && a.minus(b).abs().lte(rule.within);
}
