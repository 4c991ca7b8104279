import { z } from 'zod';
import type { Outcome } from '../compare/classify.js';
import type { RolloutState, StageStep } from './stages.js';

/**
 * Gates: what the recorded comparisons must show before a rollout step, and what makes a
 * domain that already serves from the read model roll back. Pure: the evidence is counted by
 * the caller (compare/recorder.ts over a window), so the same figures give the same verdict in
 * the CLI, the admin API and the automatic controller, and the verdict can be shown with them.
 *
 * Match rate counts only decided comparisons (match, mismatch, missing): `lag` says the read
 * model was on its way, which is evidence of nothing yet; errors have their own rate.
 */
export const gateConfigSchema = z.strictObject({
  /** Decided comparisons the window must hold before any step out of shadow or canary. */
  minComparisons: z.number().int().min(0).default(500),
  /** How far back the evidence reaches, seconds. */
  windowSeconds: z.number().int().positive().default(3600),
  /** Share of decided comparisons that matched, 0–1. */
  minMatchRate: z.number().min(0).max(1).default(0.999),
  /** No mismatch or missing answer for at least this long before advancing, seconds. */
  mismatchFreeSeconds: z.number().int().min(0).default(3600),
  /** p99 of the read-model lag over the window, seconds. */
  maxLagP99Seconds: z.number().positive().default(5),
  /** Share of comparisons where a side failed, 0–1. */
  maxErrorRate: z.number().min(0).max(1).default(0.001),
  /** Decided comparisons since the stage began before a low match rate counts as a break. */
  breakMinComparisons: z.number().int().min(1).default(20),
});
export type GateConfig = z.infer<typeof gateConfigSchema>;

export interface GateEvidence {
  /** Comparisons recorded in the window (or since the stage began, for breaks), by outcome. */
  counts: Record<Outcome, number>;
  /** Newest mismatch or missing answer ever recorded for the target, or null. */
  lastMismatchAt: Date | null;
  /** p99 of read-model lag samples in the window; null when none were taken. */
  lagP99Seconds: number | null;
}

export type GateName = 'comparisons' | 'match-rate' | 'mismatch-free' | 'lag-p99' | 'error-rate';

export interface GateResult {
  gate: GateName;
  pass: boolean;
  /** The measured figure; null when there was nothing to measure. */
  actual: number | null;
  required: number;
  /** One line an operator reads: the figure against the threshold. */
  detail: string;
}

export interface GateVerdict {
  pass: boolean;
  results: GateResult[];
}

export function decided(counts: Record<Outcome, number>): number {
  return counts.match + counts.mismatch + counts.missing;
}

function total(counts: Record<Outcome, number>): number {
  return decided(counts) + counts.lag + counts.error;
}

/** Matched share of the decided comparisons; null when none were decided. */
export function matchRate(counts: Record<Outcome, number>): number | null {
  const n = decided(counts);
  return n === 0 ? null : counts.match / n;
}

export function errorRate(counts: Record<Outcome, number>): number | null {
  const n = total(counts);
  return n === 0 ? null : counts.error / n;
}

const pct = (x: number) => `${(x * 100).toFixed(2).replace(/\.?0+$/, '')}%`;

function comparisonsGate(config: GateConfig, e: GateEvidence): GateResult {
  const n = decided(e.counts);
  return {
    gate: 'comparisons',
    pass: n >= config.minComparisons,
    actual: n,
    required: config.minComparisons,
    detail: `${n} decided comparisons in the window, at least ${config.minComparisons} needed`,
  };
}

function matchRateGate(config: GateConfig, e: GateEvidence): GateResult {
  const rate = matchRate(e.counts);
  return {
    gate: 'match-rate',
    pass: rate !== null && rate >= config.minMatchRate,
    actual: rate,
    required: config.minMatchRate,
    detail:
      rate === null
        ? 'no decided comparison in the window'
        : `match rate ${pct(rate)} (${e.counts.match} of ${decided(e.counts)}), at least ${pct(config.minMatchRate)} needed`,
  };
}

function mismatchFreeGate(config: GateConfig, e: GateEvidence, now: Date): GateResult {
  const free = e.lastMismatchAt === null ? null : (now.getTime() - e.lastMismatchAt.getTime()) / 1000;
  return {
    gate: 'mismatch-free',
    pass: free === null || free >= config.mismatchFreeSeconds,
    actual: free,
    required: config.mismatchFreeSeconds,
    detail:
      free === null
        ? 'no mismatch recorded'
        : `last mismatch ${Math.round(free)} s ago, at least ${config.mismatchFreeSeconds} s needed`,
  };
}

function lagGate(config: GateConfig, e: GateEvidence): GateResult {
  const lag = e.lagP99Seconds;
  return {
    gate: 'lag-p99',
    pass: lag !== null && lag <= config.maxLagP99Seconds,
    actual: lag,
    required: config.maxLagP99Seconds,
    detail:
      lag === null
        ? 'no lag measured in the window'
        : `lag p99 ${lag.toFixed(2)} s, at most ${config.maxLagP99Seconds} s allowed`,
  };
}

function errorRateGate(config: GateConfig, e: GateEvidence): GateResult {
  const rate = errorRate(e.counts);
  return {
    gate: 'error-rate',
    pass: rate === null || rate <= config.maxErrorRate,
    actual: rate,
    required: config.maxErrorRate,
    detail:
      rate === null
        ? 'no comparison in the window'
        : `error rate ${pct(rate)} (${e.counts.error} of ${total(e.counts)}), at most ${pct(config.maxErrorRate)} allowed`,
  };
}

function verdict(results: GateResult[]): GateVerdict {
  return { pass: results.every((r) => r.pass), results };
}

/**
 * The gates a step from `state` to `to` must pass. Into shadow only the read model's freshness
 * counts (nothing was compared while capturing); every later step needs the full evidence.
 * Rolling back needs none.
 */
export function advanceGates(
  config: GateConfig,
  state: RolloutState,
  to: StageStep,
  evidence: GateEvidence,
  now: Date,
): GateVerdict {
  if (state.stage === 'capture' && to.stage === 'shadow') return verdict([lagGate(config, evidence)]);
  return verdict([
    comparisonsGate(config, evidence),
    matchRateGate(config, evidence),
    mismatchFreeGate(config, evidence, now),
    lagGate(config, evidence),
    errorRateGate(config, evidence),
  ]);
}

/**
 * Whether a state serving from the read model must roll back, on the evidence recorded since
 * it began: the match rate fell below the gate once enough comparisons were decided, or sides
 * fail too often. Lag alone never rolls back (a big legacy batch makes it spike, and the
 * comparisons it delays are re-checked); it holds advancing instead.
 */
export function breakGates(config: GateConfig, evidence: GateEvidence): GateVerdict {
  const n = decided(evidence.counts);
  const rate = matchRateGate(config, evidence);
  const enough = n >= config.breakMinComparisons;
  const errors = errorRateGate(config, evidence);
  const errorsEnough = total(evidence.counts) >= config.breakMinComparisons;
  return verdict([
    enough ? rate : { ...rate, pass: true, detail: `${rate.detail} (only ${n} decided: not judged yet)` },
    errorsEnough ? errors : { ...errors, pass: true },
  ]);
}

export function renderVerdict(v: GateVerdict): string {
  return renderGateResults(v.results);
}

/** One line per gate, `indent` before each: the CLI prints them under a target's line. */
export function renderGateResults(results: readonly GateResult[], indent = ''): string {
  return results
    .map((r) => `${indent}${r.pass ? 'pass' : 'FAIL'}  ${r.gate.padEnd(13)} ${r.detail}`)
    .join('\n');
}
