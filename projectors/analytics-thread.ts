import { z } from 'zod';
import type { Analytics, AnalyticsRow } from '../definition/analytics.js';
import type { Scalar } from '../definition/read-models.js';
import { AdapterError } from '../lib/errors.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import {
  nameThread,
  startWorker,
  type TransferredError,
  WorkerError,
  WorkerSlot,
} from '../lib/worker-thread.js';
import type { Projector } from './runner.js';

export const analyticsWorkerSettingsSchema = z.strictObject({
  eventsPath: z.string().min(1),
  analyticsPath: z.string().min(1),
  /** The migration definition module; the worker loads it again (its analytics models are code). */
  definition: z.string().min(1),
  batchSize: z.number().int().min(1),
  pollIntervalMs: z.number().int().min(1),
  logLevel: z.string(),
  /** AnalyticsRunnerOptions.awaitInitialSnapshot. */
  awaitInitialSnapshot: z.boolean(),
  /** Apply one batch before reporting `stepped` (a restart proves the store takes writes again). */
  stepFirst: z.boolean(),
});
export type AnalyticsWorkerSettings = z.infer<typeof analyticsWorkerSettingsSchema>;

/** Main thread → analytics worker. */
export type ToAnalyticsWorker =
  | { type: 'notify' }
  | { type: 'stop' }
  | { type: 'query'; id: number; model: string; query: string; params: Record<string, Scalar> };

/** Analytics worker → main thread. */
export type FromAnalyticsWorker =
  /** The store is open and migrated; `position` is its committed checkpoint. */
  | { type: 'started'; tid: number | null; position: number }
  | { type: 'stepped' }
  | { type: 'committed'; position: number }
  | { type: 'answer'; id: number; rows: AnalyticsRow[] }
  | { type: 'answer'; id: number; error: TransferredError }
  | { type: 'failed'; error: TransferredError };

export interface AnalyticsThreadOptions {
  eventsPath: string;
  analyticsPath: string;
  definition: string;
  /** The definition's analytics model names: the query handles this thread relays. */
  models: readonly string[];
  batchSize: number;
  pollIntervalMs: number;
  awaitInitialSnapshot: boolean;
  logger?: Logger;
  /** A failure after the worker started (its own error, or its thread ending unasked). */
  onError: (err: Error) => void;
}

/** The worker is down (restarting, or stopped with the pipeline): its queries are not answered. */
export class AnalyticsUnavailableError extends AdapterError {
  readonly retriable = true;

  constructor(reason: string) {
    super('ANALYTICS_UNAVAILABLE', `the analytics store is not open: ${reason}`, {
      hint: 'retry shortly; /health shows the analytics component',
    });
  }
}

interface PendingQuery {
  resolve(rows: AnalyticsRow[]): void;
  reject(err: Error): void;
}

/**
 * Runs the analytics loop (AnalyticsRunner) and its DuckDB store in a worker thread
 * (analytics-worker.ts). On the pipeline's thread it read and decoded every stored event (a
 * JSON.parse of each event's data and metadata) and folded it into columnar rows: during a
 * snapshot that thread also maps and encodes the source's rows, and it serves the API, so both
 * waited for analytics. The store is open in the worker only (DuckDB admits one writer per
 * file), so `handles()` relays the API's queries to it; a query while the worker is down
 * (restarting) fails with ANALYTICS_UNAVAILABLE, which is retriable.
 */
export class AnalyticsThread implements Projector {
  private readonly slot = new WorkerSlot();
  private readonly pending = new Map<number, PendingQuery>();
  private nextId = 1;
  private position = 0;
  private readonly logger: Logger;

  constructor(private readonly options: AnalyticsThreadOptions) {
    this.logger = (options.logger ?? silentLogger).child({ component: 'analytics' });
  }

  /** The last position the worker reported committed. */
  checkpoint(): number {
    return this.position;
  }

  notify(): void {
    this.slot.post({ type: 'notify' } satisfies ToAnalyticsWorker);
  }

  /** Resolves once the worker has opened and migrated the store. */
  async start(): Promise<void> {
    if (this.slot.current !== null) return;
    await this.spawn(false);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.spawn(true);
  }

  /** Asks the worker to stop after its batch in progress and waits for its thread to end. */
  async stop(): Promise<void> {
    await this.slot.stop({ type: 'stop' } satisfies ToAnalyticsWorker);
  }

  /** Query handles by model name, each query answered by the worker. */
  handles(): Analytics {
    return Object.fromEntries(
      this.options.models.map((model) => [
        model,
        {
          query: (query: string, params: Readonly<Record<string, Scalar>> = {}) =>
            this.query(model, query, params),
        },
      ]),
    );
  }

  private query(model: string, query: string, params: Readonly<Record<string, Scalar>>) {
    const worker = this.slot.current;
    if (worker === null) return Promise.reject(new AnalyticsUnavailableError('its thread is not running'));
    const id = this.nextId++;
    return new Promise<AnalyticsRow[]>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({
        type: 'query',
        id,
        model,
        query,
        params: { ...params },
      } satisfies ToAnalyticsWorker);
    });
  }

  /** Queries the ended worker will not answer. */
  private abandon(reason: string): void {
    for (const { reject } of this.pending.values()) reject(new AnalyticsUnavailableError(reason));
    this.pending.clear();
  }

  private spawn(stepFirst: boolean): Promise<void> {
    const settings: AnalyticsWorkerSettings = {
      eventsPath: this.options.eventsPath,
      analyticsPath: this.options.analyticsPath,
      definition: this.options.definition,
      batchSize: this.options.batchSize,
      pollIntervalMs: this.options.pollIntervalMs,
      awaitInitialSnapshot: this.options.awaitInitialSnapshot,
      logLevel: this.logger.level,
      stepFirst,
    };
    const worker = startWorker(import.meta.url, 'analytics-worker', settings);
    const until = stepFirst ? 'stepped' : 'started';
    return this.slot.watch<FromAnalyticsWorker>(worker, {
      isReady: (message) => message.type === until,
      failureOf: (message) =>
        message.type === 'failed' ? new WorkerError(message.error, 'ANALYTICS_WORKER_FAILED') : null,
      onMessage: (message) => {
        if (message.type === 'committed') this.position = message.position;
        else if (message.type === 'started') {
          nameThread(message.tid, 'analytics-worker');
          this.position = message.position;
        } else if (message.type === 'answer') {
          const call = this.pending.get(message.id);
          if (call === undefined) return;
          this.pending.delete(message.id);
          if ('error' in message) call.reject(new WorkerError(message.error, 'ANALYTICS_QUERY_FAILED'));
          else call.resolve(message.rows);
        }
      },
      onFailure: (err) => {
        this.logger.error({ err }, 'analytics worker failed');
        this.options.onError(err);
      },
      onExit: (code) => this.abandon(`the analytics worker ended (exit code ${code})`),
      stoppedError: () => new AdapterError('ANALYTICS_WORKER_STOPPED', 'analytics worker stopped'),
      exitedError: (code) =>
        new AdapterError('ANALYTICS_WORKER_EXITED', `analytics worker ended unasked (exit code ${code})`),
    });
  }
}
