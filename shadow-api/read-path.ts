import { TimeoutStrategy, timeout } from 'cockatiel';
import { type ComparisonJob, type ShadowComparator, timed } from '../compare/shadow-compare.js';
import type { ShadowQueue } from '../compare/shadow-queue.js';
import { AdapterError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { FlagStore } from './flag-store.js';
import { decide, type FlagMode, type ServeSide } from './flags.js';
import { metricSideOf, type ShadowMetrics } from './metrics.js';

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
  requestKey: string;
  /** The answer of one side. */
  query(side: ServeSide): Promise<T>;
  normalize?: (answer: unknown) => unknown;
}

export interface Served<T> {
  value: T;
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
  private readonly readModelTimeout;

  constructor(private readonly deps: ReadPathDeps) {
    // Aggressive: the request moves on at the deadline; the store call finishes on its own.
    this.readModelTimeout =
      deps.readModelTimeoutMs === undefined
        ? null
        : timeout(deps.readModelTimeoutMs, TimeoutStrategy.Aggressive);
  }

  private query<T>(request: ReadRequest<T>, side: ServeSide): Promise<T> {
    const policy = this.readModelTimeout;
    if (side !== 'readModel' || policy === null) return request.query(side);
    return policy
      .execute(() => request.query(side))
      .catch((err: unknown) => {
        if (err instanceof Error && 'isTaskCancelledError' in err)
          throw new ReadModelTimeoutError(request.endpoint, this.deps.readModelTimeoutMs ?? 0);
        throw err;
      });
  }

  async serve<T>(request: ReadRequest<T>): Promise<Served<T>> {
    const { flags, metrics } = this.deps;
    const decision = decide(flags.get(), request.endpoint, request.subject);
    let servedBy = decision.serveFrom;
    let fellBack = false;
    let answer = await timed(() => this.query(request, servedBy));
    metrics.queryDuration.observe(
      { endpoint: request.endpoint, side: metricSideOf(servedBy), role: 'serve' },
      answer.latencyMs / 1000,
    );
    if (!answer.ok && servedBy === 'readModel') {
      this.recordFallback(request, decision.mode, answer.error, answer.latencyMs);
      servedBy = 'legacy';
      fellBack = true;
      answer = await timed(() => request.query('legacy'));
      metrics.queryDuration.observe(
        { endpoint: request.endpoint, side: 'legacy', role: 'serve' },
        answer.latencyMs / 1000,
      );
    }
    if (!answer.ok) throw new LegacyUnavailableError(request.endpoint, answer.cause ?? answer.error);
    metrics.requests.inc({
      endpoint: request.endpoint,
      mode: decision.mode,
      served_by: metricSideOf(servedBy),
    });
    if (decision.compare && !fellBack) {
      const job: ComparisonJob = {
        endpoint: request.endpoint,
        requestKey: request.requestKey,
        subject: request.subject,
        mode: decision.mode,
        servedBy,
        served: answer,
        run: (side) => request.query(side),
        ...(request.normalize ? { normalize: request.normalize } : {}),
      };
      this.deps.queue.enqueue(async () => {
        await this.deps.comparator.compare(job);
      });
    }
    return { value: answer.value, servedBy, mode: decision.mode, fellBack };
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
