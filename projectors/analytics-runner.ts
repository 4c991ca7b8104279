import type { StoredEvent } from '../eventstore/ports.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import { PollLoop } from './poll-loop.js';
import type { AnalyticsStore } from './ports.js';
import { ProjectionError, type Projector, type ProjectorEventSource } from './runner.js';

export interface AnalyticsRunnerOptions {
  eventStore: ProjectorEventSource;
  store: AnalyticsStore;
  /** Name of the checkpoint row in the store; one runner per name. */
  name?: string;
  batchSize?: number;
  pollIntervalMs?: number;
  /**
   * Once caught up, the next batch starts no sooner than this after the last one (default
   * 200 ms): a DuckDB commit costs about 10 ms of CPU whatever it holds, so a trickle of legacy
   * transactions committed one per batch kept the store busy at any rate (20 a second, the
   * bench's markers alone, cost 200 ms of CPU a second). Analytics lag by at most this much more.
   */
  minBatchIntervalMs?: number;
  logger?: Logger;
  onError?: (err: Error) => void;
  /**
   * A first build (checkpoint 0) waits until the source's initial snapshot is over, so it does
   * not take the cores the snapshot's reads, mapping and appends need (the live pipeline's
   * choice; a rebuild applies whatever is stored).
   */
  awaitInitialSnapshot?: boolean;
  /** After each batch's store commit, with the position it reached. */
  onCommitted?: (position: number) => void;
}

export const DEFAULT_MIN_BATCH_INTERVAL_MS = 200;

/**
 * Applies stored events to an analytics store. Like ProjectionRunner, a batch ends on a
 * source-transaction boundary and commits with its checkpoint in one store transaction, so a
 * query never sees half a legacy transaction and a restart resumes exactly; the store is
 * asynchronous (DuckDB), so this loop is its own, beside the SQLite one.
 */
export class AnalyticsRunner implements Projector {
  private readonly name: string;
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  private readonly minBatchIntervalMs: number;
  private readonly logger: Logger;
  private running = false;
  private loop: Promise<void> | null = null;
  private readonly poll = new PollLoop();
  /** The committed checkpoint, kept here: `checkpoint()` is synchronous. */
  private position = 0;
  private migrated = false;
  /** A first build waiting for the initial snapshot's end (awaitInitialSnapshot). */
  private awaitingSnapshot = false;

  constructor(private readonly options: AnalyticsRunnerOptions) {
    this.name = options.name ?? 'analytics';
    this.batchSize = options.batchSize ?? 500;
    this.pollIntervalMs = options.pollIntervalMs ?? 200;
    this.minBatchIntervalMs = options.minBatchIntervalMs ?? DEFAULT_MIN_BATCH_INTERVAL_MS;
    this.logger = (options.logger ?? silentLogger).child({ component: 'analytics', runner: this.name });
  }

  checkpoint(): number {
    return this.position;
  }

  /** Creates the tables (replaying from the start when the definition changed) and reads the checkpoint. */
  async init(): Promise<void> {
    if (this.migrated) return;
    if (await this.options.store.migrate()) {
      this.logger.warn('analytics definitions changed; replaying the event store');
      await this.options.store.reset(this.name);
    }
    this.position = await this.options.store.checkpoint(this.name);
    this.awaitingSnapshot = this.options.awaitInitialSnapshot === true && this.position === 0;
    this.migrated = true;
  }

  /** Applies one batch; returns how many events it applied (0 = caught up). */
  async step(): Promise<number> {
    await this.init();
    const { eventStore, store } = this.options;
    if (this.awaitingSnapshot) {
      // An empty store: the source has not stored its snapshot's first chunk yet (read first, so
      // a chunk stored between the two reads is seen as a snapshot in progress).
      if (eventStore.headPositionSync() === 0) return 0;
      if (eventStore.snapshotInProgressSync?.() === true) return 0;
      this.awaitingSnapshot = false;
    }
    const first = eventStore.readAfterSync(this.position, this.batchSize);
    if (first.length === 0) return 0;
    let last = first[first.length - 1] as StoredEvent;
    let applied = 0;
    await store.write(this.name, async (tx) => {
      const apply = async (events: readonly StoredEvent[]) => {
        try {
          await tx.apply(events);
        } catch (cause) {
          throw new ProjectionError(events[0] as StoredEvent, 'analytics', cause);
        }
        applied += events.length;
      };
      await apply(first);
      if (first.length === this.batchSize) {
        // The batch's last source transaction may go on past it: read the rest a chunk at a time.
        const sourceTx = last.metadata.sourceTxId;
        for (;;) {
          const more = eventStore.readAfterSync(last.position, this.batchSize);
          const cut = more.findIndex((e) => e.metadata.sourceTxId !== sourceTx);
          const chunk = cut === -1 ? more : more.slice(0, cut);
          if (chunk.length > 0) {
            await apply(chunk);
            last = chunk[chunk.length - 1] as StoredEvent;
          }
          if (cut !== -1 || more.length < this.batchSize) break;
        }
      }
      await tx.commit({ position: last.position, sourceTxId: last.metadata.sourceTxId });
    });
    this.position = last.position;
    this.options.onCommitted?.(last.position);
    return applied;
  }

  async catchUp(): Promise<number> {
    let total = 0;
    for (let n = await this.step(); n > 0; n = await this.step()) total += n;
    return total;
  }

  async start(): Promise<void> {
    if (this.running) return;
    await this.init();
    this.running = true;
    this.loop = this.run();
  }

  async restart(): Promise<void> {
    // The checkpoint in memory may be ahead of a rolled-back batch: read the committed one.
    this.position = await this.options.store.checkpoint(this.name);
    await this.step();
    await this.start();
  }

  notify(): void {
    this.poll.notify();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.notify();
    await this.loop;
    this.loop = null;
  }

  /** Empties every analytics table and replays the whole event store. */
  async rebuild(): Promise<number> {
    const wasRunning = this.running;
    await this.stop();
    await this.init();
    await this.options.store.reset(this.name);
    this.position = 0;
    const n = await this.catchUp();
    if (wasRunning) await this.start();
    return n;
  }

  private run(): Promise<void> {
    return this.poll.run({
      step: () => this.step(),
      running: () => this.running,
      pollIntervalMs: this.pollIntervalMs,
      batchSize: this.batchSize,
      minBatchIntervalMs: this.minBatchIntervalMs,
      onFailure: (failure) => {
        this.running = false;
        this.logger.error({ err: failure }, 'analytics projector stopped');
        this.options.onError?.(failure);
      },
    });
  }
}
