import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';
import type { Outcome } from '../compare/classify.js';
import { type ScheduledJob, scheduleJob } from '../compare/reconcile-schedule.js';
import type { Migration } from '../definition/migration.js';
import { AdapterError } from '../lib/errors.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import { SerialTasks } from '../lib/serial-tasks.js';
import { settledWithin } from '../lib/settled-within.js';
import { skippingInterval } from '../lib/skipping-interval.js';
import { type AuditLog, auditedChange } from '../shadow-api/audit-log.js';
import type { FlagStore } from '../shadow-api/flag-store.js';
import { type EndpointFlag, type FlagDocument, resolveFlag } from '../shadow-api/flags.js';
import { advanceGates, type GateConfig, type GateEvidence, type GateVerdict } from './gates.js';
import { LagWindow } from './lag-window.js';
import { automaticStep } from './policy.js';
import type { TargetMeta } from './rollout-file.js';
import { FileRolloutState, type RolloutStateStore } from './rollout-state.js';
import {
  describeStep,
  flagFor,
  nextStep,
  type RolloutPlan,
  type RolloutState,
  rollbackStep,
  STAGES,
  type Stage,
  type StageStep,
} from './stages.js';

/** A rollout request that cannot be carried out; `statusCode` is the admin API's answer. */
export class RolloutError extends AdapterError {
  constructor(
    code: string,
    message: string,
    readonly statusCode: 400 | 404 | 409,
    readonly verdict: GateVerdict | null = null,
    hint?: string,
  ) {
    super(code, message, hint === undefined ? {} : { hint });
  }
}

/** Where the comparisons are counted: compare/recorder.ts. */
export interface ComparisonEvidence {
  outcomeCounts(endpoints: readonly string[], since: Date): Record<Outcome, number>;
  lastMismatchAt(endpoints: readonly string[]): Date | null;
}

export interface RolloutControllerOptions {
  migration: Migration;
  flags: FlagStore;
  audit: AuditLog;
  comparisons: ComparisonEvidence;
  /** The read model's current lag (HealthPort.lagSeconds); null while unknown. */
  lagSeconds: () => number | null;
  plan: RolloutPlan;
  gates: GateConfig;
  /** Held/retired and step clocks (rollout.json, or Redis shared by replicas); in memory when absent (tests). */
  state?: RolloutStateStore;
  /** node-cron expression on which canary steps advance while the gates hold; '' = off. */
  schedule: string;
  /** How often the kill switch looks at the evidence. */
  checkIntervalMs: number;
  logger?: Logger;
  registry?: Registry;
  now?: () => Date;
}

export interface TargetStatus {
  target: string;
  state: RolloutState;
  /** Endpoints whose routing this target's flag governs. */
  endpoints: string[];
  next: StageStep | null;
  /** The gates the next step would be judged by now; null at the end. */
  verdict: GateVerdict | null;
  window: GateEvidence;
}

export interface StepResult {
  target: string;
  from: string;
  to: string;
  verdict: GateVerdict | null;
  forced: boolean;
  flags: FlagDocument;
}

export interface Actor {
  actor: string;
  reason: string | null;
}

/** How long `stop` waits for a step still running (a flag store that does not answer). */
const STOP_WAIT_MS = 10_000;

const STAGE_OF_MODE: Record<EndpointFlag['mode'], Stage> = {
  legacy: 'capture',
  shadow: 'shadow',
  canary: 'canary',
  new: 'new',
};

/**
 * Per-domain (and per-endpoint, where an endpoint has its own flag) rollout on top of the
 * shadow API's flags. The flags stay the one truth about routing, so a PATCH of a flag is a
 * rollout step too; what the flags cannot say (held, retired, since when a step runs) is kept
 * in a RolloutStateStore (rollout.json, or Redis shared by every replica). Every step, manual or automatic, goes through the gates and the audit log.
 */
export class RolloutController {
  private readonly logger: Logger;
  private readonly now: () => Date;
  private readonly state: RolloutStateStore;
  private readonly lag: LagWindow;
  private timer: NodeJS.Timeout | null = null;
  private job: ScheduledJob | null = null;
  /**
   * Steps (manual, scheduled, the kill switch's) one after the other: each decides on the flags
   * the one before it left. Interleaved at the flag store's await, two advances both stepped
   * from the same state, and a manual step could land on top of the kill switch's rollback.
   */
  private readonly serial = new SerialTasks();
  private stopping = false;
  private readonly metrics: { stage: Gauge; rollbacks: Counter } | null;

  constructor(private readonly options: RolloutControllerOptions) {
    this.logger = (options.logger ?? silentLogger).child({ component: 'rollout' });
    this.now = options.now ?? (() => new Date());
    this.state = options.state ?? new FileRolloutState();
    this.lag = new LagWindow(options.gates.windowSeconds * 1000);
    this.metrics = options.registry
      ? {
          stage: new Gauge({
            name: 'cqrs_rollout_stage',
            help: 'Rollout stage per target: 0 capture, 1 shadow, 2 canary, 3 new, 4 retired',
            labelNames: ['target'],
            registers: [options.registry],
          }),
          rollbacks: new Counter({
            name: 'cqrs_rollout_automatic_rollbacks_total',
            help: 'Rollbacks made by the kill switch because a gate broke',
            labelNames: ['target'],
            registers: [options.registry],
          }),
        }
      : null;
    // A flag changed by hand (PATCH /admin/flags) starts a new step: its evidence starts there.
    options.flags.on('change', () => this.syncMeta());
    this.syncMeta();
  }

  /** Domains, plus every endpoint that has a flag entry of its own. */
  targets(): string[] {
    const own = Object.keys(this.options.flags.get().endpoints).filter((k) =>
      this.options.migration.endpoints.some((e) => e.key === k),
    );
    return [...this.options.migration.domains, ...own];
  }

  status(): TargetStatus[] {
    this.sample();
    return this.targets().map((target) => this.statusOf(target));
  }

  statusOf(target: string): TargetStatus {
    this.requireTarget(target);
    const state = this.stateOf(target);
    const next = nextStep(state, this.options.plan);
    const window = this.windowEvidence(target);
    return {
      target,
      state,
      endpoints: this.endpointsOf(target),
      next,
      verdict: next === null ? null : advanceGates(this.options.gates, state, next, window, this.now()),
      window,
    };
  }

  advance(target: string, by: Actor, force = false): Promise<StepResult> {
    return this.exclusive(() => this.advanceNow(target, by, force));
  }

  private async advanceNow(target: string, by: Actor, force: boolean): Promise<StepResult> {
    this.sample();
    const status = this.statusOf(target);
    if (status.next === null || status.verdict === null)
      throw new RolloutError('ROLLOUT_AT_END', `${target} is retired: there is no further step`, 409);
    if (!status.verdict.pass && !force) {
      throw new RolloutError(
        'ROLLOUT_GATES_FAILED',
        `${target} cannot go to ${describeStep(status.next)}: ${status.verdict.results
          .filter((r) => !r.pass)
          .map((r) => r.detail)
          .join('; ')}`,
        409,
        status.verdict,
        'wait for more evidence, fix the read model, or pass force (recorded in the audit log)',
      );
    }
    return this.apply(target, status.state, status.next, 'rollout.advance', by, status.verdict, force);
  }

  rollback(target: string, by: Actor, to?: 'shadow' | 'capture'): Promise<StepResult> {
    return this.exclusive(() => this.rollbackNow(target, by, to));
  }

  private async rollbackNow(target: string, by: Actor, to?: 'shadow' | 'capture'): Promise<StepResult> {
    const state = this.stateOf(this.requireTarget(target));
    const plan = to === undefined ? this.options.plan : { ...this.options.plan, rollbackTo: to };
    const step = rollbackStep(state, plan);
    if (step === null)
      throw new RolloutError(
        'ROLLOUT_NOTHING_TO_ROLL_BACK',
        `${target} is in ${state.stage}: the read model serves nothing to roll back`,
        409,
      );
    const result = await this.apply(target, state, step, 'rollout.rollback', by, null, false);
    // A rolled-back target waits for an operator before the schedule moves it again.
    this.setMeta(target, { held: true });
    return result;
  }

  hold(target: string, by: Actor, held: boolean): TargetStatus {
    const before = this.stateOf(this.requireTarget(target));
    this.setMeta(target, { held });
    const flags = this.options.flags.get();
    this.options.audit.append({
      actor: by.actor,
      action: held ? 'rollout.hold' : 'rollout.resume',
      target,
      before: flags,
      after: flags,
      reason: by.reason,
      details: { summary: `${held ? 'held' : 'resumed'} at ${describe(before)}` },
    });
    return this.statusOf(target);
  }

  /** One look at every target: the kill switch always, the canary schedule when it fired. */
  tick(scheduleDue: boolean): Promise<StepResult[]> {
    if (this.stopping) return Promise.resolve([]);
    return this.exclusive(() => this.tickNow(scheduleDue));
  }

  private async tickNow(scheduleDue: boolean): Promise<StepResult[]> {
    // A tick queued behind the step running at stop: the caller closes the stores next.
    if (this.stopping) return [];
    this.sample();
    const done: StepResult[] = [];
    for (const target of this.targets()) {
      const state = this.stateOf(target);
      const action = automaticStep({
        state,
        plan: this.options.plan,
        gates: this.options.gates,
        window: this.windowEvidence(target),
        sinceStage: this.evidence(target, new Date(state.since)),
        now: this.now(),
        scheduleDue,
      });
      if (action.action === 'none') continue;
      const by = { actor: 'rollout-controller', reason: null };
      if (action.action === 'rollback') {
        const result = await this.apply(
          target,
          state,
          action.to,
          'rollout.auto-rollback',
          by,
          action.verdict,
          false,
        );
        this.setMeta(target, { held: true });
        this.metrics?.rollbacks.inc({ target });
        this.logger.error(
          { target, from: result.from, to: result.to, gates: action.verdict.results.filter((r) => !r.pass) },
          'gate broke: rolled back to legacy answers',
        );
        done.push(result);
      } else {
        done.push(
          await this.apply(target, state, action.to, 'rollout.auto-advance', by, action.verdict, false),
        );
      }
    }
    return done;
  }

  start(): void {
    // A check that waits behind a step is not joined by more.
    this.timer = skippingInterval(() => this.safeTick(false), this.options.checkIntervalMs);
    this.timer.unref();
    if (this.options.schedule !== '') {
      this.job = scheduleJob('rollout', this.options.schedule, async () => this.safeTick(true), this.logger);
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    // The schedule's stop waits for its tick, which may wait behind a step: one deadline for both.
    const job = this.job?.stop() ?? Promise.resolve();
    this.job = null;
    // A step still running writes the flags and the audit log, which the caller closes next.
    if (!(await settledWithin(Promise.all([job, this.serial.idle()]), STOP_WAIT_MS)))
      this.logger.warn({ waitedMs: STOP_WAIT_MS }, 'a rollout step was still running at stop');
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    if (this.stopping)
      return Promise.reject(
        new RolloutError('ROLLOUT_STOPPING', 'the rollout controller is stopping: no step was made', 409),
      );
    return this.serial.run(work);
  }

  private async safeTick(scheduleDue: boolean): Promise<void> {
    try {
      await this.tick(scheduleDue);
    } catch (err) {
      this.logger.error({ err }, 'rollout check failed');
    }
  }

  private async apply(
    target: string,
    from: RolloutState,
    to: StageStep,
    action: string,
    by: Actor,
    verdict: GateVerdict | null,
    forced: boolean,
  ): Promise<StepResult> {
    const before = this.options.flags.get();
    const retired = to.stage === 'retired';
    const flag = flagFor(to, this.options.plan);
    const summary = `${describe(from)} → ${describeStep(to)}`;
    const flags = await auditedChange(
      this.options.audit,
      {
        actor: by.actor,
        action,
        target,
        before,
        reason: by.reason,
        details: {
          summary,
          from: describe(from),
          to: describeStep(to),
          forced,
          gates: verdict?.results ?? null,
        },
      },
      // On the newest stored flags: another replica's change to another key stays.
      () =>
        this.options.flags.update((stored) => ({
          ...stored,
          endpoints: { ...stored.endpoints, [target]: flag },
        })),
      (previous) => this.options.flags.set(previous),
    );
    this.setMeta(target, { retired, since: this.now().toISOString(), step: describeStep(to) });
    this.logger.info({ target, step: summary, actor: by.actor, forced }, 'rollout step');
    return { target, from: describe(from), to: describeStep(to), verdict, forced, flags };
  }

  private stateOf(target: string): RolloutState {
    const flag = resolveFlag(this.options.flags.get(), target);
    const meta = this.state.targets()[target];
    let stage = STAGE_OF_MODE[flag.mode];
    let percent: number | undefined;
    if (stage === 'canary') {
      percent = flag.percent ?? 0;
      // The edges of a canary are the neighbouring stages as far as the read model is concerned.
      if (percent <= 0) stage = 'shadow';
      else if (percent >= 100) stage = 'new';
    }
    if (stage === 'new' && meta?.retired) stage = 'retired';
    return {
      stage,
      ...(stage === 'canary' ? { percent } : {}),
      held: meta?.held ?? false,
      since: meta?.since ?? this.now().toISOString(),
    };
  }

  /** Starts the step clock of every target whose step changed outside the controller. */
  private syncMeta(): void {
    for (const target of this.targets()) {
      const meta = this.state.targets()[target];
      const state = this.stateOf(target);
      const step = describe(state);
      if (meta?.step === step) continue;
      this.setMeta(target, {
        since: this.now().toISOString(),
        step,
        retired: state.stage === 'retired',
      });
    }
  }

  private setMeta(target: string, patch: Partial<TargetMeta>): void {
    const current = this.state.targets()[target];
    const state = current ?? {
      held: false,
      retired: false,
      since: this.now().toISOString(),
      step: describe(this.stateOf(target)),
    };
    this.state.put(target, { ...state, ...patch });
    this.metrics?.stage.set({ target }, stageIndex(this.stateOf(target).stage));
  }

  private requireTarget(target: string): string {
    if (!this.targets().includes(target) && !this.options.migration.endpoints.some((e) => e.key === target)) {
      throw new RolloutError(
        'ROLLOUT_UNKNOWN_TARGET',
        `no domain or endpoint "${target}" in the definition (domains: ${this.options.migration.domains.join(', ')})`,
        404,
      );
    }
    return target;
  }

  /** The endpoints a target's flag entry governs: an endpoint with its own entry is its own target. */
  private endpointsOf(target: string): string[] {
    if (this.options.migration.endpoints.some((e) => e.key === target)) return [target];
    const own = this.options.flags.get().endpoints;
    return this.options.migration.endpoints
      .filter((e) => e.domain === target && !Object.hasOwn(own, e.key))
      .map((e) => e.key);
  }

  private windowEvidence(target: string): GateEvidence {
    return this.evidence(target, new Date(this.now().getTime() - this.options.gates.windowSeconds * 1000));
  }

  private evidence(target: string, since: Date): GateEvidence {
    const endpoints = this.endpointsOf(target);
    return {
      counts: this.options.comparisons.outcomeCounts(endpoints, since),
      lastMismatchAt: this.options.comparisons.lastMismatchAt(endpoints),
      lagP99Seconds: this.lag.p99(since.getTime()),
    };
  }

  private sample(): void {
    const lag = this.options.lagSeconds();
    if (lag !== null) this.lag.add(this.now().getTime(), lag);
  }
}

function describe(state: RolloutState): string {
  return describeStep(
    state.percent === undefined ? { stage: state.stage } : { stage: state.stage, percent: state.percent },
  );
}

function stageIndex(stage: Stage): number {
  return STAGES.indexOf(stage);
}
