import { describe, expect, it } from 'vitest';
import type { Outcome } from '../../compare/classify.js';
import {
  advanceGates,
  breakGates,
  type GateConfig,
  type GateEvidence,
  gateConfigSchema,
  matchRate,
  renderVerdict,
} from '../../rollout/gates.js';
import { automaticStep, type TickInput } from '../../rollout/policy.js';
import {
  enter,
  flagFor,
  initialState,
  nextStep,
  type RolloutPlan,
  type RolloutState,
  rollbackStep,
  rolloutPlanSchema,
  rolloutStateSchema,
} from '../../rollout/stages.js';

const NOW = new Date('2026-12-02T12:00:00Z');
const plan: RolloutPlan = rolloutPlanSchema.parse({});
const gates: GateConfig = gateConfigSchema.parse({});

function counts(partial: Partial<Record<Outcome, number>>): Record<Outcome, number> {
  return { match: 0, mismatch: 0, lag: 0, missing: 0, error: 0, ...partial };
}

function evidence(partial: Partial<GateEvidence> & { counts?: Record<Outcome, number> } = {}): GateEvidence {
  return { counts: counts({}), lastMismatchAt: null, lagP99Seconds: 0.2, ...partial };
}

const healthy = evidence({ counts: counts({ match: 5000, lag: 40 }) });

function state(stage: RolloutState['stage'], percent?: number, held = false): RolloutState {
  return rolloutStateSchema.parse({ stage, percent, held, since: '2026-12-02T10:00:00Z' });
}

describe('rollout stages', () => {
  it('walks capture → shadow → each canary step → new → retired, then stops', () => {
    const walked: string[] = [];
    let s: RolloutState | null = initialState(NOW);
    while (s !== null) {
      walked.push(s.stage === 'canary' ? `canary ${s.percent}` : s.stage);
      const step = nextStep(s, plan);
      s = step === null ? null : enter(step, NOW, false);
    }
    expect(walked).toEqual(['capture', 'shadow', 'canary 10', 'canary 50', 'new', 'retired']);
  });

  it('resumes the canary walk from a share set by hand between the steps', () => {
    expect(nextStep(state('canary', 25), plan)).toEqual({ stage: 'canary', percent: 50 });
    expect(nextStep(state('canary', 75), plan)).toEqual({ stage: 'new' });
  });

  it('maps every state to the flag that realises it', () => {
    expect(flagFor(state('capture'), plan)).toEqual({ mode: 'legacy' });
    expect(flagFor(state('shadow'), plan)).toEqual({ mode: 'shadow' });
    expect(flagFor(state('canary', 10), plan)).toEqual({ mode: 'canary', percent: 10 });
    // new keeps comparing a sample in reverse; retired stops consulting legacy at all.
    expect(flagFor(state('new'), plan)).toEqual({ mode: 'new', compareSample: 0.01 });
    expect(flagFor(state('retired'), plan)).toEqual({ mode: 'new', compareSample: 0 });
  });

  it('rolls back only what serves from the read model, to the plan target', () => {
    expect(rollbackStep(state('shadow'), plan)).toBeNull();
    expect(rollbackStep(state('canary', 10), plan)).toEqual({ stage: 'shadow' });
    expect(rollbackStep(state('new'), { ...plan, rollbackTo: 'capture' })).toEqual({ stage: 'capture' });
  });

  it('refuses states and plans that cannot be meant', () => {
    expect(() => rolloutStateSchema.parse({ stage: 'canary', since: NOW.toISOString() })).toThrow(/percent/);
    expect(() => rolloutStateSchema.parse({ stage: 'new', percent: 5, since: NOW.toISOString() })).toThrow(
      /percent/,
    );
    expect(() => rolloutPlanSchema.parse({ canarySteps: [50, 10] })).toThrow(/increase/);
    expect(() => rolloutPlanSchema.parse({ canarySteps: [100] })).toThrow();
    expect(() => gateConfigSchema.parse({ minMatchRate: 1.5 })).toThrow();
    expect(() => gateConfigSchema.parse({ minComparisonz: 5 })).toThrow();
  });
});

describe('gates', () => {
  it('lets healthy evidence through every gate of a canary step', () => {
    const v = advanceGates(gates, state('shadow'), { stage: 'canary', percent: 10 }, healthy, NOW);
    expect(v.pass).toBe(true);
    expect(v.results.map((r) => r.gate)).toEqual([
      'comparisons',
      'match-rate',
      'mismatch-free',
      'lag-p99',
      'error-rate',
    ]);
  });

  it('judges shadow entry on freshness alone: nothing was compared while capturing', () => {
    const to = { stage: 'shadow' as const };
    expect(advanceGates(gates, state('capture'), to, evidence(), NOW).pass).toBe(true);
    const behind = advanceGates(gates, state('capture'), to, evidence({ lagP99Seconds: 30 }), NOW);
    expect(behind.pass).toBe(false);
    expect(renderVerdict(behind)).toContain('FAIL  lag-p99');
    expect(advanceGates(gates, state('capture'), to, evidence({ lagP99Seconds: null }), NOW).pass).toBe(
      false,
    );
  });

  it('holds each gate at its threshold and names the failing figure', () => {
    const to = { stage: 'new' as const };
    const from = state('canary', 50);
    const failing = (e: GateEvidence) =>
      advanceGates(gates, from, to, e, NOW)
        .results.filter((r) => !r.pass)
        .map((r) => r.gate);
    expect(failing(evidence({ counts: counts({ match: 499 }) }))).toEqual(['comparisons']);
    // 0.999 exactly passes; one more mismatch fails.
    expect(failing(evidence({ counts: counts({ match: 999, mismatch: 1 }) }))).toEqual([]);
    expect(failing(evidence({ counts: counts({ match: 998, mismatch: 2 }) }))).toEqual(['match-rate']);
    expect(failing(evidence({ counts: counts({ match: 998, missing: 2 }) }))).toEqual(['match-rate']);
    const recent = new Date(NOW.getTime() - 600_000);
    expect(failing({ ...healthy, lastMismatchAt: recent })).toEqual(['mismatch-free']);
    expect(failing({ ...healthy, lastMismatchAt: new Date(NOW.getTime() - 3_600_000) })).toEqual([]);
    expect(failing({ ...healthy, lagP99Seconds: 5.01 })).toEqual(['lag-p99']);
    expect(failing(evidence({ counts: counts({ match: 5000, error: 6 }) }))).toEqual(['error-rate']);
    const v = advanceGates(gates, from, to, evidence({ counts: counts({ match: 998, mismatch: 2 }) }), NOW);
    expect(renderVerdict(v)).toContain('match rate 99.8% (998 of 1000), at least 99.9% needed');
  });

  it('does not count lag as a verdict on the read model', () => {
    expect(matchRate(counts({ match: 10, lag: 1000 }))).toBe(1);
    expect(matchRate(counts({ lag: 5 }))).toBeNull();
  });

  it('breaks on a low match rate only once enough comparisons were decided', () => {
    expect(breakGates(gates, evidence({ counts: counts({ match: 10, mismatch: 5 }) })).pass).toBe(true);
    const broken = breakGates(gates, evidence({ counts: counts({ match: 15, mismatch: 5 }) }));
    expect(broken.pass).toBe(false);
    expect(broken.results.find((r) => !r.pass)?.gate).toBe('match-rate');
    expect(breakGates(gates, evidence({ counts: counts({ match: 19, error: 1 }) })).pass).toBe(false);
    expect(breakGates(gates, evidence({ counts: counts({ match: 20 }), lagP99Seconds: 600 })).pass).toBe(
      true,
    );
  });
});

describe('automatic step', () => {
  const tick = (over: Partial<TickInput>): ReturnType<typeof automaticStep> =>
    automaticStep({
      state: state('canary', 10),
      plan,
      gates,
      window: healthy,
      sinceStage: evidence({ counts: counts({ match: 100 }) }),
      now: NOW,
      scheduleDue: true,
      ...over,
    });
  const drift = evidence({ counts: counts({ match: 30, mismatch: 10 }) });

  it('rolls back a broken canary or new state, held or not, schedule or not', () => {
    for (const s of [state('canary', 10), state('new'), state('canary', 50, true)]) {
      const out = tick({ state: s, sinceStage: drift, scheduleDue: false });
      expect(out.action).toBe('rollback');
      if (out.action === 'rollback') expect(out.to).toEqual({ stage: 'shadow' });
    }
  });

  it('never rolls back shadow or capture: they serve nothing from the read model', () => {
    expect(tick({ state: state('shadow'), sinceStage: drift, scheduleDue: false }).action).toBe('none');
  });

  it('walks canary steps on schedule while the gates hold, and stops short of new', () => {
    expect(tick({ state: state('shadow') })).toMatchObject({
      action: 'advance',
      to: { stage: 'canary', percent: 10 },
    });
    expect(tick({})).toMatchObject({ action: 'advance', to: { stage: 'canary', percent: 50 } });
    expect(tick({ state: state('canary', 50) })).toMatchObject({ action: 'none' });
    expect(tick({ state: state('canary', 10, true) })).toMatchObject({ action: 'none', reason: 'held' });
    expect(tick({ scheduleDue: false })).toMatchObject({ action: 'none' });
    const thin = tick({ window: evidence({ counts: counts({ match: 12 }) }) });
    expect(thin).toMatchObject({ action: 'none', reason: 'gates do not hold' });
  });
});
