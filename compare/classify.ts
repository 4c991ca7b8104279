import { type Difference, diffJson, ROOT_PATH } from './diff.js';

/**
 * Lag-aware classification of a shadow comparison. The read model is eventually consistent,
 * so a difference only counts as a mismatch when the read model had caught up with the
 * legacy database; otherwise it is lag, and the comparison is re-checked before it is final.
 * Lag means "on its way": a read model that is behind but stalled (its pipeline down or
 * wedged) will not converge by itself, so its differences are mismatches. A caught-up read
 * model's difference is lag too when the subject was written during the attempt.
 */
export type Outcome = 'match' | 'mismatch' | 'lag' | 'error' | 'missing';
export const OUTCOMES: readonly Outcome[] = ['match', 'mismatch', 'lag', 'missing', 'error'];

/** A count per outcome, all zero. */
export function zeroOutcomeCounts(): Record<Outcome, number> {
  return Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
}

/** One side's answer; `value: null` means "no such thing" (summary of an unknown account). */
export type SideResult<T = unknown> =
  | { ok: true; value: T; latencyMs: number }
  | { ok: false; error: string; cause?: unknown; latencyMs: number };

/**
 * What was known of the read model's position when it answered: either the answer of the
 * freshness port, or the two positions it would compare.
 */
export type FreshnessFacts = (
  | { readModelCaughtUp: boolean }
  | { sourcePosition: number; readModelPosition: number }
) & {
  /** Behind and not moving toward the legacy position (FreshnessPort.isStalled). */
  stalled?: boolean;
  /**
   * The legacy answer changed between a read before the read model's and one after it: the
   * subject was written meanwhile, so a caught-up read model may have answered from a newer
   * state than the legacy answer it is compared with.
   */
  legacyChanged?: boolean;
};

export interface AttemptInput {
  legacy: SideResult;
  readModel: SideResult;
  /** Absent or null when nobody can tell whether the read model is behind. */
  freshness?: FreshnessFacts | null;
  /** The two present answers' differences, when diffed already (off the serving thread). */
  differences?: Difference[];
}

export interface Classification {
  outcome: Outcome;
  differences: Difference[];
  /** Messages of the side(s) that threw, prefixed with the side. */
  error: string | null;
  /**
   * Whether the read model had caught up with the legacy database (FreshnessFacts); null:
   * unknown. In a fresh attempt this was established before the read model's read.
   */
  readModelCaughtUp: boolean | null;
  /** Differences the endpoint's compare rules accepted (not in `differences`). */
  ignored?: number;
  tolerated?: number;
}

export function caughtUpFrom(facts: FreshnessFacts | null | undefined): boolean | null {
  if (facts === null || facts === undefined) return null;
  if ('readModelCaughtUp' in facts) return facts.readModelCaughtUp;
  return facts.readModelPosition >= facts.sourcePosition;
}

/**
 * A difference may be lag: the read model was behind and advancing toward the legacy
 * position, or it was caught up while the subject was being written (either answer may be
 * the older one). Stalled only qualifies "behind": a caught-up read model is not stalled.
 */
export function lagging(facts: FreshnessFacts | null | undefined): boolean {
  const caughtUp = caughtUpFrom(facts);
  if (caughtUp === false) return facts?.stalled !== true;
  return caughtUp === true && facts?.legacyChanged === true;
}

export function classifyAttempt(input: AttemptInput): Classification {
  const readModelCaughtUp = caughtUpFrom(input.freshness);
  const lag = lagging(input.freshness);
  const { legacy, readModel } = input;
  if (!legacy.ok || !readModel.ok) {
    const errors = [
      legacy.ok ? null : `legacy: ${legacy.error}`,
      readModel.ok ? null : `read model: ${readModel.error}`,
    ].filter((e): e is string => e !== null);
    return { outcome: 'error', differences: [], error: errors.join('; '), readModelCaughtUp };
  }
  const legacyAbsent = legacy.value === null || legacy.value === undefined;
  const readModelAbsent = readModel.value === null || readModel.value === undefined;
  if (legacyAbsent !== readModelAbsent) {
    const differences: Difference[] = [
      legacyAbsent
        ? { path: ROOT_PATH, kind: 'extra', legacy: null, readModel: readModel.value }
        : { path: ROOT_PATH, kind: 'missing', legacy: legacy.value, readModel: null },
    ];
    // A read model on its way has simply not seen the account yet (or its removal).
    return {
      outcome: lag ? 'lag' : 'missing',
      differences,
      error: null,
      readModelCaughtUp,
    };
  }
  const differences = legacyAbsent ? [] : (input.differences ?? diffJson(legacy.value, readModel.value));
  if (differences.length === 0) return { outcome: 'match', differences, error: null, readModelCaughtUp };
  return {
    outcome: lag ? 'lag' : 'mismatch',
    differences,
    error: null,
    readModelCaughtUp,
  };
}

/**
 * Whether a differing attempt deserves another look. Lag always does. A mismatch does when
 * freshness is unknown (lag cannot be ruled out), or when one answer was the one served to
 * the client earlier: a write may have landed between that answer and the shadow read.
 */
export function needsRecheck(attempt: Classification, options: { bothSidesFresh: boolean }): boolean {
  switch (attempt.outcome) {
    case 'match':
    case 'error':
      return false;
    case 'lag':
      return true;
    case 'mismatch':
    case 'missing':
      return attempt.readModelCaughtUp === null || !options.bothSidesFresh;
  }
}

/**
 * The final classification of a comparison from its attempts, in order. A difference that
 * went away on a re-check is lag (the read model converged); the differences kept are those
 * of the first attempt, which show what the client could have seen. Otherwise the last
 * attempt decides.
 */
export function settle(attempts: readonly Classification[]): Classification {
  const first = attempts[0];
  const last = attempts[attempts.length - 1];
  if (first === undefined || last === undefined) throw new RangeError('settle needs at least one attempt');
  if (last.outcome === 'match' && first.outcome !== 'match') {
    const firstDiffering = attempts.find((a) => a.outcome !== 'match') ?? first;
    return {
      ...last,
      outcome: 'lag',
      differences: firstDiffering.differences,
      ignored: firstDiffering.ignored ?? 0,
      tolerated: firstDiffering.tolerated ?? 0,
    };
  }
  return last;
}
