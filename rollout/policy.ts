import { advanceGates, breakGates, type GateConfig, type GateEvidence, type GateVerdict } from './gates.js';
import {
  nextStep,
  type RolloutPlan,
  type RolloutState,
  rollbackStep,
  type StageStep,
  servesReadModel,
} from './stages.js';

/** What the automatic controller does with one rollout target at one tick. */
export type AutomaticAction =
  | { action: 'rollback'; to: StageStep; verdict: GateVerdict }
  | { action: 'advance'; to: StageStep; verdict: GateVerdict }
  | { action: 'none'; reason: string; verdict: GateVerdict | null };

export interface TickInput {
  state: RolloutState;
  plan: RolloutPlan;
  gates: GateConfig;
  /** Evidence over the gates' window: what advancing is judged on. */
  window: GateEvidence;
  /** Evidence recorded since the state began: what a break is judged on. */
  sinceStage: GateEvidence;
  now: Date;
  /** The schedule fired: advance canary steps while the gates hold. */
  scheduleDue: boolean;
}

/**
 * One tick of the kill switch and the canary schedule. A break wins over everything, held or
 * not: serving wrong answers is never the safer choice. The schedule only walks canary steps
 * (into canary from shadow, up the steps, never into new or retired: those stay an operator's
 * decision), and never a held target.
 */
export function automaticStep(input: TickInput): AutomaticAction {
  const { state, plan } = input;
  if (servesReadModel(state)) {
    const broken = breakGates(input.gates, input.sinceStage);
    const to = rollbackStep(state, plan);
    if (!broken.pass && to !== null) return { action: 'rollback', to, verdict: broken };
  }
  if (!input.scheduleDue) return { action: 'none', reason: 'no schedule tick', verdict: null };
  if (state.held) return { action: 'none', reason: 'held', verdict: null };
  const to = nextStep(state, plan);
  if (to === null || to.stage !== 'canary')
    return { action: 'none', reason: 'the schedule only advances canary steps', verdict: null };
  const verdict = advanceGates(input.gates, state, to, input.window, input.now);
  return verdict.pass
    ? { action: 'advance', to, verdict }
    : { action: 'none', reason: 'gates do not hold', verdict };
}
