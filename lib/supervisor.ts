import { ExponentialBackoff, handleWhen, retry } from 'cockatiel';
import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';
import { AdapterError, errorMessage } from './errors.js';
import { type Logger, silentLogger } from './logger.js';

/**
 * Keeps the components of a pipeline running: a component that reports a failure is restarted
 * (its owner's `restart` builds a new one from the stored offset or checkpoint) with exponential
 * backoff and jitter, until it runs again or its outage outlasts the failure budget. Errors that
 * a restart cannot fix (a purged position, a replica-id conflict, a bad configuration) are not
 * retried. Whoever owns the process decides what giving up means (`onGiveUp`: `run` exits).
 */

export type ComponentState = 'starting' | 'up' | 'restarting' | 'down';

export interface ComponentStatus {
  name: string;
  state: ComponentState;
  /** When the component entered its state, epoch ms. */
  since: number;
  /** The last failure while not up; null when up. */
  reason: string | null;
  restarts: number;
}

export interface SupervisionPolicy {
  /** How long an outage may last (restarts included) before the supervisor gives up. */
  failureBudgetMs: number;
  /** Give up (onGiveUp) past the budget or on a non-retriable error; false: stay down, keep trying. */
  exitOnFailure: boolean;
  /** First backoff delay; later delays grow exponentially, with jitter, up to maxDelayMs. */
  initialDelayMs: number;
  maxDelayMs: number;
  /**
   * How long a restarted component must stay up for its next failure to start a new outage.
   * A component that fails again sooner is flapping: its outage (and budget) goes on.
   */
  stableMs: number;
}

/** Codes of failures that a restart repeats: retrying them only delays the report. */
const PERMANENT_CODES = new Set([
  'BINLOG_PURGED',
  'BINLOG_OFF',
  'BINLOG_FORMAT',
  'BINLOG_ROW_IMAGE',
  'CONFIG_INVALID',
  'DATABASE_MISSING',
  'DEFINITION_INVALID',
  'MISSING_PRIVILEGES',
  'NO_TABLES',
  'OFFSET_INVALID',
  'REPLICA_IDENTITY',
  'SERVER_ID_IN_USE',
  'SLOT_MISMATCH',
  'SLOT_MISSING',
  'SOURCE_ACCESS_DENIED',
  // A read model's select/evolve and its schema disagree: the same events compose the same document.
  'STORE_DOCUMENT_INVALID',
  'WAL_LEVEL',
]);

/**
 * Server errors of the binlog connection that a reconnect repeats: 1236, the server cannot send
 * the binlog from our position (purged; MySQL also ends an older replica with our id this way);
 * 4052, MariaDB ended us because another replica registered our id (reconnecting would end it
 * in turn, and the two would take turns forever).
 */
const PERMANENT_ERRNOS = new Set([1236, 4052]);

/** SQLite errors that go away when the other writer lets go. */
const SQLITE_TRANSIENT = /^SQLITE_(BUSY|LOCKED)/;

function chainOf(err: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = err; e !== undefined && e !== null && chain.length < 10; ) {
    chain.push(e);
    e = (e as { cause?: unknown }).cause;
  }
  return chain;
}

/**
 * Whether restarting the component may cure `err`. An error saying so (`retriable`) decides;
 * otherwise its code or any code in its cause chain: the binlog errors above, the permanent codes, a
 * projection that throws on an event (it would throw again) unless SQLite was only busy.
 * Anything else (connection lost, server restarting, lock busy) is transient.
 */
export function isRetriable(err: unknown): boolean {
  const chain = chainOf(err);
  for (const e of chain) {
    const stated = (e as { retriable?: unknown }).retriable;
    if (typeof stated === 'boolean') return stated;
  }
  const codes = chain.map((e) => (e as { code?: unknown }).code).filter((c) => typeof c === 'string');
  if (codes.some((c) => SQLITE_TRANSIENT.test(c))) return true;
  if (chain.some((e) => PERMANENT_ERRNOS.has((e as { errno?: unknown }).errno as number))) return false;
  if (codes.some((c) => PERMANENT_CODES.has(c))) return false;
  if (codes[0] === 'PROJECTION_FAILED') return false;
  return true;
}

const seconds = (ms: number) => (ms / 1000).toFixed(ms < 10_000 ? 1 : 0);

/** A component that stayed down past its budget, or failed in a way a restart cannot fix. */
export class ComponentDownError extends AdapterError {
  constructor(
    readonly component: string,
    message: string,
    cause: unknown,
  ) {
    const code = (cause as { code?: unknown }).code;
    const hint = (cause as { hint?: unknown }).hint;
    super(typeof code === 'string' ? code : 'COMPONENT_DOWN', message, {
      cause,
      ...(typeof hint === 'string' ? { hint } : {}),
    });
  }
}

export interface SupervisorOptions {
  policy: SupervisionPolicy;
  logger?: Logger;
  registry?: Registry;
  /** Called once per component that the supervisor gives up on (only when exitOnFailure). */
  onGiveUp: (err: ComponentDownError) => void;
  /** The clock; tests pass their own. */
  now?: () => number;
}

/** What the owner of a component gives the supervisor: how to bring it back. */
export interface ComponentSpec {
  name: string;
  /**
   * Replaces the failed component with a running one; rejects when it could not start. Called
   * again after a backoff while it rejects with a retriable error. `signal` aborts when the
   * supervisor stops or gives up: a component started after that must be stopped again.
   */
  restart: (signal: AbortSignal) => Promise<void>;
}

export interface SupervisedComponent {
  /** The component runs (after its first start). */
  up(): void;
  /** The component stopped on `err`; the supervisor restarts it. */
  failed(err: unknown): void;
  status(): ComponentStatus;
}

class Component implements SupervisedComponent {
  private state: ComponentState = 'starting';
  private since: number;
  private reason: string | null = null;
  private restarts = 0;
  private outageStart: number | null = null;
  private upSince: number | null = null;
  private controller: AbortController | null = null;
  private attempt: Promise<void> = Promise.resolve();
  private budgetTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly spec: ComponentSpec,
    private readonly owner: Supervisor,
  ) {
    this.since = owner.now();
  }

  up(): void {
    this.enter('up', null);
    this.upSince = this.owner.now();
  }

  status(): ComponentStatus {
    return {
      name: this.spec.name,
      state: this.state,
      since: this.since,
      reason: this.reason,
      restarts: this.restarts,
    };
  }

  failed(err: unknown): void {
    if (this.stopped || this.state === 'restarting' || this.state === 'down') return;
    const now = this.owner.now();
    const policy = this.owner.policy;
    const flapping = this.upSince !== null && now - this.upSince < policy.stableMs;
    if (!flapping || this.outageStart === null) this.outageStart = now;
    this.owner.logger.warn({ err, component: this.spec.name }, 'component failed');
    if (!isRetriable(err)) {
      this.giveUp(`${this.spec.name} failed and a restart cannot fix it: ${errorMessage(err)}`, err);
      return;
    }
    const remaining = policy.failureBudgetMs - (now - this.outageStart);
    if (remaining <= 0) {
      this.giveUpOnBudget(err);
      return;
    }
    this.enter('restarting', errorMessage(err));
    this.restartWithin(remaining, err);
  }

  private restartWithin(remainingMs: number, first: unknown): void {
    const controller = new AbortController();
    this.controller = controller;
    let last: unknown = first;
    this.budgetTimer = setTimeout(() => {
      this.budgetTimer = null;
      this.giveUpOnBudget(last);
    }, remainingMs);
    this.budgetTimer.unref();
    const policy = retry(handleWhen(isRetriable), {
      backoff: new ExponentialBackoff({
        initialDelay: this.owner.policy.initialDelayMs,
        maxDelay: this.owner.policy.maxDelayMs,
      }),
    });
    policy.onRetry((reason) => {
      if ('error' in reason) {
        last = reason.error;
        if (this.state === 'restarting') this.reason = errorMessage(reason.error);
        this.owner.logger.warn(
          { err: reason.error, component: this.spec.name, delayMs: Math.round(reason.delay) },
          'restart failed; retrying',
        );
      }
    });
    const execution = policy.execute(async ({ signal }) => {
      if (signal.aborted) throw new AdapterError('SUPERVISION_STOPPED', 'supervision stopped');
      this.restarts++;
      this.owner.metrics?.restarts.inc({ component: this.spec.name });
      const run = this.spec.restart(signal);
      this.attempt = run.then(
        () => undefined,
        () => undefined,
      );
      await run;
    }, controller.signal);
    execution.then(
      () => {
        if (controller.signal.aborted) return;
        this.clearBudget();
        this.owner.logger.info({ component: this.spec.name, restarts: this.restarts }, 'component restarted');
        this.up();
      },
      (err: unknown) => {
        if (controller.signal.aborted) return;
        this.clearBudget();
        this.giveUp(`${this.spec.name} failed and a restart cannot fix it: ${errorMessage(err)}`, err);
      },
    );
  }

  private giveUpOnBudget(last: unknown): void {
    const failing = seconds(this.owner.now() - (this.outageStart ?? this.owner.now()));
    const budget = seconds(this.owner.policy.failureBudgetMs);
    this.giveUp(
      `${this.spec.name} has been failing for ${failing} s (budget ${budget} s): ${errorMessage(last)}`,
      last,
    );
  }

  private giveUp(message: string, cause: unknown): void {
    if (this.stopped) return;
    if (!this.owner.policy.exitOnFailure && isRetriable(cause)) {
      // Stay down but keep trying: readiness reports it, nothing exits.
      this.enter('down', message);
      if (this.controller === null || this.controller.signal.aborted) this.restartWithin(2 ** 31 - 1, cause);
      return;
    }
    this.controller?.abort();
    this.clearBudget();
    this.enter('down', message);
    this.owner.logger.error({ err: cause, component: this.spec.name }, 'giving up on component');
    if (this.owner.policy.exitOnFailure)
      this.owner.onGiveUp(new ComponentDownError(this.spec.name, message, cause));
  }

  private enter(state: ComponentState, reason: string | null): void {
    if (state !== this.state) this.since = this.owner.now();
    this.state = state;
    this.reason = reason;
    this.owner.metrics?.up.set({ component: this.spec.name }, state === 'up' ? 1 : 0);
  }

  private clearBudget(): void {
    if (this.budgetTimer !== null) clearTimeout(this.budgetTimer);
    this.budgetTimer = null;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.controller?.abort();
    this.clearBudget();
    await this.attempt;
  }
}

function supervisorMetrics(registry: Registry) {
  return {
    up: new Gauge({
      name: 'cqrs_component_up',
      help: 'Pipeline component running (1) or failed/restarting (0)',
      labelNames: ['component'],
      registers: [registry],
    }),
    restarts: new Counter({
      name: 'cqrs_component_restarts_total',
      help: 'Restart attempts of a pipeline component after a failure',
      labelNames: ['component'],
      registers: [registry],
    }),
  };
}

export class Supervisor {
  readonly policy: SupervisionPolicy;
  readonly logger: Logger;
  readonly metrics: ReturnType<typeof supervisorMetrics> | null;
  readonly onGiveUp: (err: ComponentDownError) => void;
  readonly now: () => number;
  private readonly components: Component[] = [];

  constructor(options: SupervisorOptions) {
    this.policy = options.policy;
    this.logger = (options.logger ?? silentLogger).child({ component: 'supervisor' });
    this.metrics = options.registry ? supervisorMetrics(options.registry) : null;
    this.onGiveUp = options.onGiveUp;
    this.now = options.now ?? Date.now;
  }

  add(spec: ComponentSpec): SupervisedComponent {
    const component = new Component(spec, this);
    this.components.push(component);
    this.metrics?.up.set({ component: spec.name }, 0);
    return component;
  }

  status(): ComponentStatus[] {
    return this.components.map((c) => c.status());
  }

  /** Stops restarting; resolves once no restart is running. */
  async stop(): Promise<void> {
    await Promise.all(this.components.map((c) => c.stop()));
  }
}
