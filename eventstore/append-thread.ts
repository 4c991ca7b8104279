import type { Worker } from 'node:worker_threads';
import { AdapterError } from '../lib/errors.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import { nameThread, startWorker, type TransferredError, WorkerError } from '../lib/worker-thread.js';
import { type EncodedAppendBatch, encodeBatch } from './event-encoding.js';
import type { AppendBatch, AppendResult } from './ports.js';

export type AppendRequest =
  | { type: 'append'; id: number; batch: EncodedAppendBatch }
  | { type: 'appendMany'; id: number; batches: EncodedAppendBatch[] };
export type AppendReply =
  | { id: number; ready: true; tid: number | null }
  | { id: number; results: AppendResult[] }
  | { id: number; error: TransferredError };

/** The writer thread ended: a restart of the source (from its stored offset) delivers its appends again. */
export class WriterLostError extends AdapterError {
  readonly retriable = true;

  constructor(cause: Error) {
    super('EVENT_STORE_WRITER_LOST', `event store writer thread ended: ${cause.message}`, {
      cause,
      hint: 'the source restarts from the stored offset and delivers the unacknowledged transactions again',
    });
  }
}

export interface AppendThreadOptions {
  /** The event store's file; the thread opens its own connection (SQLite handles do not cross threads). */
  path: string;
  sensitiveColumns: ReadonlyMap<string, readonly string[]>;
  logger?: Logger;
}

/**
 * Appends to the SQLite event store from a worker thread (append-worker.ts). better-sqlite3 is
 * synchronous: on the thread that serves the API, publishing a large source transaction (every
 * staged fragment re-read and inserted in one write transaction) or a snapshot chunk stalls
 * every request and the change stream's reads for as long as it takes. Readers keep their own
 * connections (WAL): an append is visible to them once its promise resolves.
 *
 * A thread that dies fails the appends in flight with a retriable error and is started anew by
 * the next append: the source, restarted from the stored offset, delivers them again.
 */
export class AppendThread {
  private worker: Worker | null = null;
  private ready: Promise<void> | null = null;
  private readonly pending = new Map<
    number,
    { resolve: (r: AppendResult[]) => void; reject: (e: Error) => void }
  >();
  private nextId = 1;
  private readonly logger: Logger;

  constructor(private readonly options: AppendThreadOptions) {
    this.logger = (options.logger ?? silentLogger).child({ component: 'event-store-writer' });
  }

  /** Starts the thread (and migrates the store) ahead of the first append. */
  async start(): Promise<void> {
    await this.running();
  }

  append(batch: AppendBatch): Promise<AppendResult> {
    return this.appendEncoded(encodeBatch(batch));
  }

  /**
   * Appends a batch encoded on the caller's thread (encodeBatch): one flat message for the
   * writer. A caller that encodes ahead (while the previous append runs) keeps it off the
   * writer's critical path.
   */
  async appendEncoded(encoded: EncodedAppendBatch): Promise<AppendResult> {
    const [result] = await this.request((id) => ({ type: 'append', id, batch: encoded }));
    return result as AppendResult;
  }

  /** Encoded batches in one write transaction of the writer (appendEncodedManySync): all or none. */
  appendEncodedMany(encoded: EncodedAppendBatch[]): Promise<AppendResult[]> {
    return this.request((id) => ({ type: 'appendMany', id, batches: encoded }));
  }

  private async request(message: (id: number) => AppendRequest): Promise<AppendResult[]> {
    await this.running();
    const worker = this.worker as Worker;
    const id = this.nextId++;
    return new Promise<AppendResult[]>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage(message(id));
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    if (worker === null) return;
    this.worker = null;
    this.ready = null;
    const ended = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ type: 'close' });
    await ended;
  }

  private running(): Promise<void> {
    this.ready ??= this.spawn();
    return this.ready;
  }

  private spawn(): Promise<void> {
    const worker = startWorker(import.meta.url, 'append-worker', {
      path: this.options.path,
      logLevel: this.logger.level,
      sensitiveColumns: new Map(
        [...this.options.sensitiveColumns].map(([table, columns]) => [table, [...columns]]),
      ),
    });
    this.worker = worker;
    return new Promise<void>((resolve, reject) => {
      let starting = true;
      const lost = (cause: Error) => {
        if (this.worker === worker) {
          this.worker = null;
          this.ready = null;
        }
        const err = new WriterLostError(cause);
        if (starting) {
          starting = false;
          reject(err);
        }
        for (const [id, call] of this.pending) {
          this.pending.delete(id);
          call.reject(err);
        }
      };
      worker.on('message', (reply: AppendReply) => {
        if ('ready' in reply) {
          nameThread(reply.tid, 'event-store-writer');
          starting = false;
          resolve();
          return;
        }
        const call = this.pending.get(reply.id);
        if (call === undefined) return;
        this.pending.delete(reply.id);
        if ('error' in reply) call.reject(new WorkerError(reply.error, 'STORE_APPEND_FAILED'));
        else call.resolve(reply.results);
      });
      worker.on('error', (err) => {
        this.logger.error({ err }, 'event store writer thread failed');
        lost(err);
      });
      worker.on('exit', (code) => {
        if (this.worker === worker) lost(new Error(`exit code ${code}`));
      });
    });
  }
}
