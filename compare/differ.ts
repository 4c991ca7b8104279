import type { Worker } from 'node:worker_threads';
import { JsonText } from '../definition/json-text.js';
import type { Logger } from '../lib/logger.js';
import { silentLogger } from '../lib/logger.js';
import { startWorker } from '../lib/worker-thread.js';
import type { Difference } from './diff.js';
import { type DiffRequest, type DiffResult, diffTexts } from './diff-texts.js';

/**
 * Diffs two present answers of a comparison. Answers are compared as the JSON the client
 * gets: a value is serialised (a Date becomes its ISO text, an undefined field disappears),
 * JSON text is taken as it is.
 */
export interface Differ {
  diff(legacy: unknown, readModel: unknown): Promise<Difference[]>;
  /** Diffs asked after close run on the calling thread. */
  close(): Promise<void>;
  /** Whether diffs run on a worker thread now (false after a worker failure or close). */
  readonly offThread: boolean;
}

function textOf(answer: unknown): string {
  if (answer instanceof JsonText) return answer.json;
  // JSON.stringify(undefined) has no text; a present answer always has one, 'null' keeps it total.
  return JSON.stringify(answer) ?? 'null';
}

function settled(result: DiffResult): Difference[] {
  if ('error' in result) throw new Error(result.error);
  return result.differences;
}

/** Diffs on the calling thread (tests, and the fallback when no worker can run). */
export const inlineDiffer: Differ = {
  diff: async (legacy, readModel) =>
    settled(diffTexts({ id: 0, legacy: textOf(legacy), readModel: textOf(readModel) })),
  close: async () => undefined,
  offThread: false,
};

interface Pending {
  request: DiffRequest;
  resolve(differences: Difference[]): void;
  reject(err: Error): void;
}

/**
 * Diffs differing answers on a worker thread, so parsing both and walking them does not take
 * the serving thread's time. Requests of one event-loop turn go in one message. When the worker
 * fails (it cannot load, or crashes), the pending and later diffs run on the calling thread
 * and the failure is logged: comparisons go on, slower, never silently stop.
 */
export class WorkerDiffer implements Differ {
  private worker: Worker | null;
  private readonly pending = new Map<number, Pending>();
  private batch: DiffRequest[] = [];
  private nextId = 1;
  private flushScheduled = false;
  private readonly logger: Logger;
  private drained: (() => void) | null = null;

  constructor(options: { logger?: Logger } = {}) {
    this.logger = (options.logger ?? silentLogger).child({ component: 'diff-worker' });
    this.worker = startWorker(import.meta.url, 'diff-worker', undefined);
    this.worker.on('message', (results: DiffResult[]) => this.settle(results));
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => {
      if (this.worker !== null) this.fail(new Error(`diff worker exited with code ${code}`));
    });
    // Only pending diffs keep the process alive.
    this.worker.unref();
  }

  get offThread(): boolean {
    return this.worker !== null;
  }

  diff(legacy: unknown, readModel: unknown): Promise<Difference[]> {
    const request: DiffRequest = { id: this.nextId++, legacy: textOf(legacy), readModel: textOf(readModel) };
    // Equal texts, the common case, are settled here: comparing them costs less than copying
    // both to the worker, and the comparison frees its queue slot without a round trip.
    if (request.legacy === request.readModel) return Promise.resolve([]);
    if (this.worker === null) return Promise.resolve().then(() => settled(diffTexts(request)));
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) this.worker?.ref();
      this.pending.set(request.id, { request, resolve, reject });
      this.batch.push(request);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    if (worker === null) return;
    if (this.pending.size > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    this.worker = null;
    await worker.terminate();
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.batch;
    this.batch = [];
    if (batch.length === 0) return;
    if (this.worker === null) {
      for (const request of batch) this.settleInline(request.id);
      return;
    }
    this.worker.postMessage(batch);
  }

  private settle(results: DiffResult[]): void {
    for (const result of results) {
      const pending = this.pending.get(result.id);
      if (pending === undefined) continue;
      this.pending.delete(result.id);
      if ('error' in result) pending.reject(new Error(result.error));
      else pending.resolve(result.differences);
    }
    this.afterSettle();
  }

  private settleInline(id: number): void {
    const pending = this.pending.get(id);
    if (pending === undefined) return;
    this.pending.delete(id);
    try {
      pending.resolve(settled(diffTexts(pending.request)));
    } catch (err) {
      pending.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private afterSettle(): void {
    if (this.pending.size > 0) return;
    this.worker?.unref();
    this.drained?.();
    this.drained = null;
  }

  private fail(err: Error): void {
    if (this.worker === null) return;
    this.logger.error({ err }, 'diff worker failed; comparisons are diffed on the serving thread');
    this.worker = null;
    this.batch = [];
    for (const id of [...this.pending.keys()]) this.settleInline(id);
    this.afterSettle();
  }
}
