import type { SideResult } from '../compare/classify.js';
import type { ComparisonJob, ShadowComparator } from '../compare/shadow-compare.js';
import type { ShadowQueue } from '../compare/shadow-queue.js';
import { JsonText } from '../definition/json-text.js';
import type { CompareRules } from '../lib/compare-rules.js';
import { AdapterError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { FlagStore } from './flag-store.js';
import { decide, decideFlag, type FlagMode, type ForcedMode, type ServeSide } from './flags.js';
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

  constructor(private readonly deps: ReadPathDeps) {}

  private metricsOf(endpoint: string): EndpointMetrics {
    let metrics = this.endpoints.get(endpoint);
    if (metrics === undefined) {
      metrics = endpointMetrics(this.deps.metrics, endpoint);
      this.endpoints.set(endpoint, metrics);
    }
    return metrics;
  }

  /**
   * The read model's answer within the deadline. One timer per request: a timeout policy
   * object (abort controller, listeners) per request showed in the request path's profile.
   */
  private readModelQuery<T>(request: ReadRequest<T>): Promise<T> {
    const ms = this.deps.readModelTimeoutMs;
    const answer = request.query('readModel');
    if (ms === undefined) return answer;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new ReadModelTimeoutError(request.endpoint, ms)), ms);
      answer.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  /**
   * One side's answer with its serve latency observed. Chained with `then` rather than an async
   * function: the read path's promise hops showed in the request profile.
   */
  private answer<T>(request: ReadRequest<T>, side: ServeSide): Promise<SideResult<T>> {
    const started = performance.now();
    let pending: Promise<T>;
    try {
      pending = side === 'readModel' ? this.readModelQuery(request) : Promise.resolve(request.query(side));
    } catch (err) {
      // A query that throws before returning its promise is a failed answer like a rejection.
      pending = Promise.reject(err);
    }
    const observed = () => {
      const latencyMs = performance.now() - started;
      this.metricsOf(request.endpoint)
        .serveDuration(side)
        .observe(latencyMs / 1000);
      return latencyMs;
    };
    return pending.then(
      (value): SideResult<T> => ({ ok: true, value, latencyMs: observed() }),
      (err: unknown): SideResult<T> => {
        const latencyMs = observed();
        return { ok: false, error: errorMessage(err), cause: err, latencyMs };
      },
    );
  }

  async serve<T>(request: ReadRequest<T>): Promise<Served<T>> {
    const decision =
      request.forcedMode === undefined
        ? decide(this.deps.flags.get(), request.endpoint, request.subject)
        : decideFlag({ mode: request.forcedMode }, request.subject);
    let servedBy = decision.serveFrom;
    let fellBack = false;
    let answer = await this.answer(request, servedBy);
    if (!answer.ok && servedBy === 'readModel') {
      this.recordFallback(request, decision.mode, answer.error, answer.latencyMs);
      servedBy = 'legacy';
      fellBack = true;
      answer = await this.answer(request, 'legacy');
    }
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
