import { z } from 'zod';
import type { EndpointFlag } from '../shadow-api/flags.js';

/**
 * The rollout of one domain (or one endpoint whose domain's endpoints diverge) as a state
 * machine. Pure: the state is data and every transition is a function of (state, plan), so the
 * CLI, the admin API and the automatic controller cannot disagree about what "advance" means.
 *
 *   capture → shadow → canary(p1) → … → canary(pn) → new → retired
 *
 * capture: the pipeline builds read models, reads are served and never compared (flag legacy).
 * shadow:  legacy serves, every read is compared. canary: a sticky p% slice is served by the
 * read model, all compared. new: the read model serves. retired: the legacy query is no longer
 * consulted at all (reverse comparisons stop).
 */
export const STAGES = ['capture', 'shadow', 'canary', 'new', 'retired'] as const;
export const stageSchema = z.enum(STAGES);
export type Stage = z.infer<typeof stageSchema>;

export const rolloutStateSchema = z
  .strictObject({
    stage: stageSchema,
    /** Share of subjects served by the read model; only in canary. */
    percent: z.number().gt(0).lt(100).optional(),
    /** Held: the automatic schedule does not advance it (rollbacks still happen). */
    held: z.boolean().default(false),
    /** ISO time the current stage (or canary step) began: gates look no further back for breaks. */
    since: z.iso.datetime(),
  })
  .superRefine((s, ctx) => {
    if ((s.stage === 'canary') !== (s.percent !== undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['percent'],
        message: 'a percent is given exactly when the stage is "canary"',
      });
    }
  });
export type RolloutState = z.infer<typeof rolloutStateSchema>;

export const rolloutPlanSchema = z.strictObject({
  /** Canary shares in increasing order; advance walks them before "new". */
  canarySteps: z
    .array(z.number().gt(0).lt(100))
    .min(1)
    .default([10, 50])
    .refine((steps) => steps.every((p, i) => i === 0 || p > (steps[i - 1] as number)), {
      message: 'canary steps must increase, e.g. [10, 50]',
    }),
  /** Where a rollback (manual or a broken gate) goes: shadow keeps comparing, capture stops it. */
  rollbackTo: z.enum(['shadow', 'capture']).default('shadow'),
  /** Share of `new` requests still compared with legacy, so drift after cutover breaks a gate. */
  newCompareSample: z.number().min(0).max(1).default(0.01),
});
export type RolloutPlan = z.infer<typeof rolloutPlanSchema>;

/** Where the rollout stands after a step: the stage and, in canary, its share. */
export interface StageStep {
  stage: Stage;
  percent?: number;
}

export function initialState(now: Date): RolloutState {
  return { stage: 'capture', held: false, since: now.toISOString() };
}

/** The step `advance` takes from `state`, or null at the end (retired). */
export function nextStep(state: RolloutState, plan: RolloutPlan): StageStep | null {
  switch (state.stage) {
    case 'capture':
      return { stage: 'shadow' };
    case 'shadow':
      return { stage: 'canary', percent: plan.canarySteps[0] as number };
    case 'canary': {
      const current = state.percent ?? 0;
      const higher = plan.canarySteps.find((p) => p > current);
      return higher === undefined ? { stage: 'new' } : { stage: 'canary', percent: higher };
    }
    case 'new':
      return { stage: 'retired' };
    case 'retired':
      return null;
  }
}

/**
 * Whether reads are served (partly or wholly) by the read model in this state: the states a
 * broken gate must roll back.
 */
export function servesReadModel(state: RolloutState): boolean {
  return state.stage === 'canary' || state.stage === 'new';
}

/** Whether the comparisons recorded in this state say anything about the read model. */
export function compares(state: RolloutState): boolean {
  return state.stage === 'shadow' || state.stage === 'canary' || state.stage === 'new';
}

/** The target of a rollback from `state`, or null when nothing is served by the read model yet. */
export function rollbackStep(state: RolloutState, plan: RolloutPlan): StageStep | null {
  if (state.stage === 'capture' || state.stage === 'shadow') return null;
  return { stage: plan.rollbackTo };
}

export function enter(step: StageStep, now: Date, held: boolean): RolloutState {
  return step.percent === undefined
    ? { stage: step.stage, held, since: now.toISOString() }
    : { stage: step.stage, percent: step.percent, held, since: now.toISOString() };
}

/**
 * The shadow API flag that realises a step. `new` and `retired` both serve the read model;
 * `new` still compares a sample in reverse, so drift after cutover can break a gate.
 */
export function flagFor(step: StageStep, plan: RolloutPlan): EndpointFlag {
  switch (step.stage) {
    case 'capture':
      return { mode: 'legacy' };
    case 'shadow':
      return { mode: 'shadow' };
    case 'canary':
      return { mode: 'canary', percent: step.percent ?? 0 };
    case 'new':
      return { mode: 'new', compareSample: plan.newCompareSample };
    case 'retired':
      return { mode: 'new', compareSample: 0 };
  }
}

export function describeStep(step: StageStep): string {
  return step.percent === undefined ? step.stage : `${step.stage} ${step.percent}%`;
}
