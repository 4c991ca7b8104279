import { EventEmitter } from 'node:events';
import type { Logger } from '../lib/logger.js';
import { silentLogger } from '../lib/logger.js';
import type { QueueReport } from './report.js';

export interface ShadowQueueOptions {
  /** Tasks running at once. Default 2. */
  concurrency?: number;
  /** Tasks waiting at most; beyond it new tasks are dropped. Default 1000. */
  maxSize?: number;
  logger?: Logger;
}

export type ShadowTask = () => Promise<void>;

/**
 * A bounded in-process queue for shadow comparisons. `enqueue` never waits and never runs the
 * task in the caller's turn of the event loop: the request that produced the task answers
 * first. When the queue is full the task is dropped and counted — losing a comparison is
 * better than slowing or failing a request. Emits `drop` per dropped task.
 */
export class ShadowQueue extends EventEmitter<{ drop: []; idle: [] }> {
  readonly concurrency: number;
  readonly maxSize: number;
  private readonly waiting: ShadowTask[] = [];
  private active = 0;
  private counts = { enqueued: 0, dropped: 0, completed: 0, failed: 0 };
  private closed = false;
  private readonly logger: Logger;

  constructor(options: ShadowQueueOptions = {}) {
    super();
    this.concurrency = options.concurrency ?? 2;
    this.maxSize = options.maxSize ?? 1000;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) {
      throw new RangeError(`concurrency must be a positive integer, got ${this.concurrency}`);
    }
    if (!Number.isInteger(this.maxSize) || this.maxSize < 0) {
      throw new RangeError(`maxSize must be a non-negative integer, got ${this.maxSize}`);
    }
    this.logger = (options.logger ?? silentLogger).child({ component: 'shadow-queue' });
  }

  /** False when the task was dropped (queue full or closed). */
  enqueue(task: ShadowTask): boolean {
    if (this.closed || this.waiting.length >= this.maxSize) {
      this.counts.dropped++;
      this.emit('drop');
      return false;
    }
    this.waiting.push(task);
    this.counts.enqueued++;
    setImmediate(() => this.pump());
    return true;
  }

  /** Tasks waiting to start. */
  get depth(): number {
    return this.waiting.length;
  }

  get running(): number {
    return this.active;
  }

  stats(): QueueReport {
    return { depth: this.waiting.length, running: this.active, ...this.counts };
  }

  /** Resolves once nothing is waiting or running. */
  onIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.once('idle', () => resolve()));
  }

  /** Stops accepting tasks and waits for those already accepted. */
  async close(): Promise<void> {
    this.closed = true;
    await this.onIdle();
  }

  private isIdle(): boolean {
    return this.active === 0 && this.waiting.length === 0;
  }

  private pump(): void {
    while (this.active < this.concurrency) {
      const task = this.waiting.shift();
      if (task === undefined) break;
      this.active++;
      void this.run(task);
    }
  }

  private async run(task: ShadowTask): Promise<void> {
    try {
      await task();
      this.counts.completed++;
    } catch (err) {
      // Tasks handle their own failures; reaching here is a bug worth a log line, not a crash.
      this.counts.failed++;
      this.logger.error({ err }, 'shadow task failed');
    } finally {
      this.active--;
      // The next task starts on a later turn of the event loop: a comparison that needs no I/O
      // (equal answers) settles in microtasks, and a backlog of those run back to back would
      // hold off the requests waiting on this thread.
      if (this.waiting.length > 0) setImmediate(() => this.pump());
      else if (this.active === 0) this.emit('idle');
    }
  }
}
