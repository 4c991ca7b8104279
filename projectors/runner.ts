import type Database from 'better-sqlite3';
import type { StoredEvent } from '../eventstore/ports.js';
import type { SqliteEventStore } from '../eventstore/sqlite.js';
import { AdapterError } from '../lib/errors.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import { PollLoop } from './poll-loop.js';
import type { SqliteProjection, TouchedDocument } from './ports.js';

export class ProjectionError extends AdapterError {
  constructor(event: StoredEvent, projection: string, cause: unknown) {
    super(
      'PROJECTION_FAILED',
      `projection ${projection} failed on event ${event.position} (${event.type}, stream ${event.streamId})`,
      { cause },
    );
  }
}

/**
 * What the runner reads events from. Synchronous: the chunks of one source transaction are read
 * while the SQLite write transaction that applies them is open, and better-sqlite3 transactions
 * cannot await.
 */
export type ProjectorEventSource = Pick<SqliteEventStore, 'readAfterSync' | 'headPositionSync'>;

/** What the embedded pipeline drives, whether the runner is in its thread or in a worker. */
export interface Projector {
  /** Position of the last event applied to the read models (0: none). */
  checkpoint(): number;
  /** Wakes the loop now: the pipeline calls it after each append. */
  notify(): void;
  /** Starts the loop from the checkpoint; resolves once the read models' tables exist. */
  start(): Promise<void>;
  /**
   * (Re)starts the loop from the checkpoint after one batch applied here: a restart after a
   * failure resolves only once the read-model database takes writes again, and rejects if not.
   */
  restart(): Promise<void>;
  /** Stops after the batch in progress. */
  stop(): Promise<void>;
}

export interface RunnerOptions {
  eventStore: ProjectorEventSource;
  db: Database.Database;
  projections: SqliteProjection[];
  /** Name of the checkpoint row; one runner per name. */
  name?: string;
  batchSize?: number;
  pollIntervalMs?: number;
  logger?: Logger;
  onError?: (err: Error) => void;
  /**
   * After each batch is committed: the checkpoint it reached and the read-model documents it
   * wrote (e.g. to invalidate a cache). Called before the next batch starts.
   */
  onCommitted?: (position: number, touched: TouchedDocument[]) => void;
}

/**
 * Applies stored events to SQLite read models. A batch always ends on a source-transaction
 * boundary and is applied together with its checkpoint in one SQLite transaction, so a reader
 * never sees half of a legacy transaction and a restart never applies an event twice.
 *
 * A batch that reaches into a source transaction goes on to that transaction's end, however
 * large: its events are read and applied `batchSize` at a time, inside the one write
 * transaction, a projection flushed between chunks once a batch's worth of documents is stale. Memory is bounded by the chunk, not by the
 * transaction, and a failure anywhere rolls the whole of it back with the checkpoint.
 */
export class ProjectionRunner implements Projector {
  private readonly name: string;
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  private readonly logger: Logger;
  private running = false;
  private loop: Promise<void> | null = null;
  private readonly poll = new PollLoop();
  private readonly applyBatch: (first: StoredEvent[]) => number;
  private readonly readCheckpoint: Database.Statement;
  private failure: Error | null = null;

  constructor(private readonly options: RunnerOptions) {
    this.name = options.name ?? 'read-models';
    this.batchSize = options.batchSize ?? 500;
    this.pollIntervalMs = options.pollIntervalMs ?? 200;
    this.logger = (options.logger ?? silentLogger).child({ component: 'projector', runner: this.name });
    const db = options.db;
    const changed = options.projections.flatMap((p) => p.migrate?.(db) ?? []);
    if (changed.length > 0) {
      // Their data was built by another definition: rebuild them from the whole event store.
      // Every projection sharing the checkpoint is emptied with it (replayed read-model versions
      // too), or the replay would apply its events a second time to what they hold.
      this.logger.warn({ readModels: changed }, 'read-model definitions changed; replaying the event store');
      db.transaction(() => {
        for (const p of options.projections) p.reset(db);
        db.prepare('DELETE FROM projector_checkpoints WHERE name = ?').run(this.name);
      })();
    }
    this.readCheckpoint = db.prepare('SELECT position FROM projector_checkpoints WHERE name = ?').pluck();
    const save = db.prepare(
      `INSERT INTO projector_checkpoints (name, position, source_tx_id, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT(name) DO UPDATE SET position = excluded.position, source_tx_id = excluded.source_tx_id,
       updated_at = excluded.updated_at`,
    );
    const applyChunk = (events: readonly StoredEvent[]) => {
      for (const event of events) {
        for (const p of options.projections) {
          if (!p.handles.has(event.type)) continue;
          try {
            p.apply(db, event);
          } catch (cause) {
            throw new ProjectionError(event, p.name, cause);
          }
        }
      }
    };
    // Between chunks, only what holds a batch's worth of stale documents: what it keeps never
    // grows with the transaction, and a document many chunks touch is still written once.
    const flushFull = () => {
      for (const p of options.projections)
        if ((p.pending?.() ?? this.batchSize) >= this.batchSize) p.flush?.(db);
    };
    // IMMEDIATE: the write lock is taken before the first read, so a long transaction never
    // fails half-way on upgrading its lock.
    this.applyBatch = db.transaction((first: StoredEvent[]) => {
      applyChunk(first);
      let last = first[first.length - 1] as StoredEvent;
      let applied = first.length;
      if (first.length === this.batchSize) {
        // The batch's last source transaction may go on past it: read the rest a chunk at a time.
        const tx = last.metadata.sourceTxId;
        for (;;) {
          const more = options.eventStore.readAfterSync(last.position, this.batchSize);
          const cut = more.findIndex((e) => e.metadata.sourceTxId !== tx);
          const chunk = cut === -1 ? more : more.slice(0, cut);
          if (chunk.length > 0) {
            flushFull();
            applyChunk(chunk);
            last = chunk[chunk.length - 1] as StoredEvent;
            applied += chunk.length;
          }
          if (cut !== -1 || more.length < this.batchSize) break;
        }
      }
      for (const p of options.projections) p.flush?.(db);
      save.run(this.name, last.position, last.metadata.sourceTxId, new Date().toISOString());
      return applied;
    }).immediate;
  }

  checkpoint(): number {
    return (this.readCheckpoint.get(this.name) as number | undefined) ?? 0;
  }

  async status(): Promise<{ checkpoint: number; head: number; lag: number }> {
    const head = this.options.eventStore.headPositionSync();
    const checkpoint = this.checkpoint();
    return { checkpoint, head, lag: head - checkpoint };
  }

  /**
   * Adds a projection the next batch applies as well (a replayed read-model version caught up to
   * this runner's checkpoint). Call it between batches, from the thread that runs them.
   */
  addProjection(projection: SqliteProjection): void {
    projection.migrate?.(this.options.db);
    this.options.projections.push(projection);
  }

  /** Stops applying the projection named `name` (a dropped version). */
  removeProjection(name: string): void {
    const i = this.options.projections.findIndex((p) => p.name === name);
    if (i !== -1) this.options.projections.splice(i, 1);
  }

  /** Applies one batch; returns how many events it applied (0 = caught up). */
  async step(): Promise<number> {
    const events = this.options.eventStore.readAfterSync(this.checkpoint(), this.batchSize);
    if (events.length === 0) return 0;
    const applied = this.applyBatch(events);
    // Drained whether or not anyone listens, so what the projections note never accumulates.
    const touched = this.options.projections.flatMap((p) => p.drainTouched?.() ?? []);
    this.options.onCommitted?.(this.checkpoint(), touched);
    return applied;
  }

  async catchUp(): Promise<number> {
    let total = 0;
    for (let n = await this.step(); n > 0; n = await this.step()) total += n;
    return total;
  }

  async start(): Promise<void> {
    if (this.running) return;
    // A restart after a failure (the supervisor's) starts clean from the checkpoint.
    this.failure = null;
    this.running = true;
    this.loop = this.run();
  }

  async restart(): Promise<void> {
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

  error(): Error | null {
    return this.failure;
  }

  /** Empties every read model and replays the whole event store. */
  async rebuild(): Promise<number> {
    const wasRunning = this.running;
    await this.stop();
    this.options.db.transaction(() => {
      for (const p of this.options.projections) p.reset(this.options.db);
      this.options.db.prepare('DELETE FROM projector_checkpoints WHERE name = ?').run(this.name);
    })();
    const n = await this.catchUp();
    if (wasRunning) await this.start();
    return n;
  }

  private run(): Promise<void> {
    return this.poll.run({
      step: () => this.step(),
      running: () => this.running,
      pollIntervalMs: this.pollIntervalMs,
      onFailure: (failure) => {
        this.failure = failure;
        this.running = false;
        this.logger.error({ err: failure }, 'projector stopped');
        this.options.onError?.(failure);
      },
    });
  }
}
