import type { SideResult } from '../compare/classify.js';
import type { ComparisonJob, ShadowComparator } from '../compare/shadow-compare.js';
import type { ShadowQueue } from '../compare/shadow-queue.js';
import { JsonText } from '../definition/json-text.js';
import type { CompareRules } from '../lib/compare-rules.js';
import { AdapterError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { FlagStore } from './flag-store.js';
import {
  type Decision,
  decide,
  decideFlag,
  type FlagMode,
  type ForcedMode,
  type ServeSide,
} from './flags.js';
import { type EndpointMetrics, endpointMetrics, type ShadowMetrics } from './metrics.js';

/** The legacy side failed: there is nothing to fall back to. */
export class LegacyUnavailableError extends AdapterError {
  constructor(endpoint: string, cause: unknown) {
    super('LEGACY_QUERY_FAILED', `legacy query of ${endpoint} failed: ${errorMessage(cause)}`, { cause });
  }
}

export interface ReadRequest<T> {
  /** Flag key, e.g. "accounts.summary". */
  endpoint: string;
  /** The canary key: what the request is about (an account id, an order id…). */
  subject: string;
  /** Read only for compared or failed requests: a getter computes it only then. */
  requestKey: string;
  /** The answer of one side. */
  query(side: ServeSide): Promise<T>;
  normalize?: (answer: unknown) => unknown;
  /** The endpoint's compare rules, handed to the comparison. */
  compareRules?: CompareRules;
  /** A mode forced for this request (an admin's x-cqrs-mode header) instead of the flags'. */
  forcedMode?: ForcedMode;
}

export interface Served<T> {
  /** The answer; JSON text when it was serialised already (a stored document, or a compared answer). */
  value: T | JsonText;
  servedBy: ServeSide;
  mode: FlagMode;
  /** The read model threw and legacy answered instead. */
  fellBack: boolean;
}

export interface ReadPathDeps {
  flags: FlagStore;
  queue: ShadowQueue;
  comparator: ShadowComparator;
  metrics: ShadowMetrics;
  logger: Logger;
  /**
   * A read-model answer not in after this long is treated as a read-model error: legacy
   * answers instead. A stalled store must not hang requests it cannot serve.
   */
  readModelTimeoutMs?: number;
}

/** The read model did not answer within `api.readModelTimeoutMs`. */
export class ReadModelTimeoutError extends AdapterError {
  constructor(endpoint: string, ms: number) {
    super('READ_MODEL_TIMEOUT', `read model of ${endpoint} did not answer within ${ms} ms`);
  }
}

/**
 * Serves one read as the flags say and hands the comparison to the shadow queue. Availability
 * comes first during a migration: when the read model throws or does not answer in time,
 * legacy answers and the failure is recorded as an `error` comparison; when legacy throws,
 * the request fails.
 */
export class ReadPath {
  private readonly endpoints = new Map<string, EndpointMetrics>();
  private readonly deadlines: Deadlines | undefined;

  constructor(private readonly deps: ReadPathDeps) {
    this.deadlines =
      deps.readModelTimeoutMs === undefined ? undefined : new Deadlines(deps.readModelTimeoutMs);
  }

  private metricsOf(endpoint: string): EndpointMetrics {
    let metrics = this.endpoints.get(endpoint);
    if (metrics === undefined) {
      metrics = endpointMetrics(this.deps.metrics, endpoint);
      this.endpoints.set(endpoint, metrics);
    }
    return metrics;
  }

  /**
   * `then` of one side's answer (its serve latency observed); the read model's within the
   * deadline. One `then` chain, not an async function, with the deadline's race and the
   * caller's continuation folded in: each promise hop showed in the request profile.
   */
  private answer<T, R>(
    request: ReadRequest<T>,
    side: ServeSide,
    then: (result: SideResult<T>) => R | PromiseLike<R>,
  ): Promise<R> {
    const started = performance.now();
    let pending: Promise<T>;
    try {
      pending = side === 'readModel' ? request.query(side) : Promise.resolve(request.query(side));
    } catch (err) {
      // A query that throws before returning its promise is a failed answer like a rejection.
      pending = Promise.reject(err);
    }
    // Inline callbacks, not named consts: tsx (esbuild keepNames) gives a named closure its
    // name with defineProperty, which showed in the request profile.
    if (side === 'readModel' && this.deadlines !== undefined)
      return this.deadlines.race(pending, request.endpoint, (ok, outcome) =>
        then(this.sideResult<T>(request, side, started, ok, outcome)),
      );
    return pending.then(
      (value) => then(this.sideResult<T>(request, side, started, true, value)),
      (err: unknown) => then(this.sideResult<T>(request, side, started, false, err)),
    );
  }

  /** An answer (ok: the value; else the error), with its serve latency observed. */
  private sideResult<T>(
    request: ReadRequest<T>,
    side: ServeSide,
    started: number,
    ok: boolean,
    outcome: unknown,
  ): SideResult<T> {
    const latencyMs = this.observed(request, side, started);
    return ok
      ? { ok: true, value: outcome as T, latencyMs }
      : { ok: false, error: errorMessage(outcome), cause: outcome, latencyMs };
  }

  /** The serve latency of an answer begun at `started`, observed in the endpoint's histogram. */
  private observed(request: ReadRequest<unknown>, side: ServeSide, started: number): number {
    const latencyMs = performance.now() - started;
    this.metricsOf(request.endpoint)
      .serveDuration(side)
      .observe(latencyMs / 1000);
    return latencyMs;
  }

  serve<T>(request: ReadRequest<T>): Promise<Served<T>> {
    let decision: Decision;
    try {
      decision =
        request.forcedMode === undefined
          ? decide(this.deps.flags.get(), request.endpoint, request.subject)
          : decideFlag({ mode: request.forcedMode }, request.subject);
    } catch (err) {
      return Promise.reject(err);
    }
    // A continuation rather than awaited: an async serve added promise hops to every read.
    return this.answer(request, decision.serveFrom, (answer) => {
      if (answer.ok || decision.serveFrom === 'legacy')
        return this.served(request, decision, answer, decision.serveFrom, false);
      this.recordFallback(request, decision.mode, answer.error, answer.latencyMs);
      return this.answer(request, 'legacy', (legacy) =>
        this.served(request, decision, legacy, 'legacy', true),
      );
    });
  }

  /** The served answer counted, and handed to the comparison when the decision compares. */
  private served<T>(
    request: ReadRequest<T>,
    decision: Decision,
    answer: SideResult<T>,
    servedBy: ServeSide,
    fellBack: boolean,
  ): Served<T> {
    if (!answer.ok) throw new LegacyUnavailableError(request.endpoint, answer.cause ?? answer.error);
    this.metricsOf(request.endpoint).request(decision.mode, servedBy).inc();
    if (!decision.compare || fellBack)
      return { value: answer.value, servedBy, mode: decision.mode, fellBack };
    // Serialised once: the client gets this text and the comparison parses it off this thread.
    const served: SideResult<T | JsonText> = { ...answer, value: serialised(answer.value) };
    const job: ComparisonJob = {
      endpoint: request.endpoint,
      requestKey: request.requestKey,
      subject: request.subject,
      mode: decision.mode,
      servedBy,
      served,
      run: (side) => request.query(side),
      ...(request.normalize ? { normalize: request.normalize } : {}),
      ...(request.compareRules ? { rules: request.compareRules } : {}),
    };
    this.deps.queue.enqueue(() => this.deps.comparator.compare(job).then(() => undefined));
    return { value: served.value, servedBy, mode: decision.mode, fellBack };
  }

  private recordFallback(
    request: ReadRequest<unknown>,
    mode: FlagMode,
    error: string,
    latencyMs: number,
  ): void {
    this.deps.metrics.fallbacks.inc({ endpoint: request.endpoint });
    this.deps.logger.warn(
      { endpoint: request.endpoint, requestKey: request.requestKey, error },
      'read model failed; serving legacy',
    );
    this.deps.comparator.record({
      recordedAt: new Date(),
      endpoint: request.endpoint,
      requestKey: request.requestKey,
      subject: request.subject,
      mode,
      servedBy: 'legacy',
      outcome: 'error',
      differences: [],
      error: `read model: ${error}`,
      attempts: 1,
      legacyMs: null,
      readModelMs: latencyMs,
    });
  }
}

interface Deadline {
  /** performance.now() after which the answer is too late. */
  at: number;
  endpoint: string;
  settled: boolean;
  /** The race's promise functions and what it settles with (no closure per deadline: see answer). */
  resolve(result: unknown): void;
  reject(err: unknown): void;
  outcome(ok: boolean, outcome: unknown): unknown;
}

/**
 * The read-model deadlines of one ReadPath. Every deadline is `ms` long, so they fall due in the
 * order they were set: one timer, armed for the oldest unsettled one, serves them all. While
 * none is pending the timer is unref'd, so it holds the process no longer than a per-request
 * timer would have.
 */
class Deadlines {
  /** Deadlines in the order set; settled ones leave from the front. */
  private readonly pending: (Deadline | undefined)[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly expire = () => this.expireDue();

  constructor(private readonly ms: number) {}

  /**
   * `settled(true, value)` of the answer, `settled(false, error)` of its failure, or of a
   * ReadModelTimeoutError when it is not in within `ms`; rejected when `settled` throws.
   */
  race<T, R>(
    answer: Promise<T>,
    endpoint: string,
    settled: (ok: boolean, outcome: unknown) => R | PromiseLike<R>,
  ): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const deadline: Deadline = {
        at: performance.now() + this.ms,
        endpoint,
        settled: false,
        resolve: resolve as (result: unknown) => void,
        reject,
        outcome: settled,
      };
      this.add(deadline);
      answer.then(
        (value) => {
          if (this.settle(deadline)) finish(deadline, true, value);
        },
        (err: unknown) => {
          if (this.settle(deadline)) finish(deadline, false, err);
        },
      );
    });
  }

  private add(deadline: Deadline): void {
    if (this.timer === undefined) this.timer = setTimeout(this.expire, this.ms);
    else if (this.head === this.pending.length) this.timer.ref();
    this.pending.push(deadline);
  }

  /** False when the deadline passed first (its answer is the timeout already). */
  private settle(deadline: Deadline): boolean {
    if (deadline.settled) return false;
    deadline.settled = true;
    this.trim();
    return true;
  }

  /** Drops settled deadlines from the front; with none left the timer stops holding the process. */
  private trim(): void {
    const { pending } = this;
    while (this.head < pending.length && (pending[this.head] as Deadline).settled)
      pending[this.head++] = undefined;
    if (this.head === pending.length) {
      pending.length = 0;
      this.head = 0;
      this.timer?.unref();
    } else if (this.head > 1024 && this.head * 2 > pending.length) {
      pending.splice(0, this.head);
      this.head = 0;
    }
  }

  private expireDue(): void {
    const now = performance.now();
    const { pending } = this;
    while (this.head < pending.length) {
      const deadline = pending[this.head] as Deadline;
      if (!deadline.settled) {
        if (deadline.at > now) break;
        deadline.settled = true;
        finish(deadline, false, new ReadModelTimeoutError(deadline.endpoint, this.ms));
      }
      pending[this.head++] = undefined;
    }
    const next = pending[this.head];
    this.trim();
    // Timers may fire a little before performance.now() reaches the deadline: wait out the rest.
    this.timer =
      next === undefined ? undefined : setTimeout(this.expire, Math.max(1, Math.ceil(next.at - now)));
  }
}

/** Settles a race: a continuation that throws rejects it rather than escaping into a then or the timer. */
function finish(deadline: Deadline, ok: boolean, outcome: unknown): void {
  try {
    deadline.resolve(deadline.outcome(ok, outcome));
  } catch (err) {
    deadline.reject(err);
  }
}

/** An answer as the JSON text the client gets; absent answers (a 404) and text stay as they are. */
function serialised<T>(value: T): T | JsonText {
  if (value === null || value === undefined || value instanceof JsonText) return value;
  try {
    const json = JSON.stringify(value);
    return json === undefined ? value : new JsonText(json);
  } catch {
    // Not serialisable: sending it fails the same way; the comparison sees the value.
    return value;
  }
}
