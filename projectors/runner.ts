import { setImmediate as nextTurn } from 'node:timers/promises';
import type Database from 'better-sqlite3';
import type { StoredEvent } from '../eventstore/ports.js';
import type { SqliteEventStore } from '../eventstore/sqlite.js';
import { AdapterError } from '../lib/errors.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import { ProgressMeter } from '../lib/progress.js';
import { type DeferralBounds, deferralEnabled, defersAt } from './deferral.js';
import { PollLoop } from './poll-loop.js';
import type { ComposeThreadsOption, FlushOptions, SqliteProjection, TouchedDocument } from './ports.js';

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
export type ProjectorEventSource = Pick<SqliteEventStore, 'readAfterSync' | 'headPositionSync'> &
  Partial<Pick<SqliteEventStore, 'snapshotInProgressSync'>>;

/** What the embedded pipeline drives, whether the runner is in its thread or in a worker. */
export interface Projector {
  /** Position up to which the read models' documents are complete (0: none). */
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
   * After each batch is committed: the checkpoint (documents complete up to it) and the
   * read-model documents it wrote (e.g. to invalidate a cache). Called before the next batch
   * starts. A deferred batch leaves the checkpoint where it was and names the code projections'
   * documents it wrote; the batch that composes names them again with the view documents, under
   * the checkpoint that now covers them (a cache entry filled in between is dropped then).
   */
  onCommitted?: (position: number, touched: TouchedDocument[]) => void;
  /**
   * Most view documents a catch-up leaves to compose before it composes them
   * (projector.deferMaxDocuments); 0: every batch composes its documents.
   */
  deferMaxDocuments?: number;
  /**
   * Longest a catch-up leaves documents to compose, from its first deferred batch
   * (projector.deferMaxMs): what bounds live lag under a steady backlog. 0: never defers.
   */
  deferMaxMs?: number;
  /** A bulk build (a version's replay, a scratch replay): no time bound, composed when caught up or at deferMaxDocuments. */
  bulk?: boolean;
  /**
   * Build read models that never had a document composed (checkpoint 0) in bulk: through the
   * source's initial snapshot, views are composed once, whole, when it is done and the runner
   * has caught up, instead of as a live catch-up composes (every second, what the second marked).
   * Nothing is served from documents before that anyway. A restart during it goes on in bulk.
   */
  bulkInitialBuild?: boolean;
  /**
   * The bulk initial build applies nothing while the source's snapshot is being stored
   * (projector.awaitInitialSnapshot): its documents are composed only at its end anyway.
   */
  awaitInitialSnapshot?: boolean;
  /** PollLoop's minBatchIntervalMs (projector.minBatchIntervalMs): 0, a batch at every notify. */
  minBatchIntervalMs?: number;
  /**
   * Threads composing a bulk build's views, each loading the definition's module again
   * (projector.composeThreads); absent: composed on the thread running this runner.
   */
  compose?: ComposeThreadsOption;
}

export const DEFAULT_DEFER_MAX_DOCUMENTS = 50_000;
export const DEFAULT_DEFER_MAX_MS = 1000;

/**
 * WAL pages between automatic checkpoints while a bulk build commits (SQLite's default is 1000):
 * a page its batches write again within the window is copied into the database once, not once
 * per window. A full small-scale replay wrote 13% fewer bytes and read 8% fewer. Crash safety is
 * the WAL's as before; only the WAL grows larger between checkpoints (128 MiB at most here, less
 * than the one transaction composing a bulk build's documents already writes to it).
 */
export const BULK_WAL_AUTOCHECKPOINT_PAGES = 32_768;

/** Between a bulk build's compose progress lines, as the rebuild's own progress. */
const COMPOSE_PROGRESS_MS = 2000;

const APPLIED_SQL =
  'SELECT MAX(position, COALESCE(applied_position, 0)) FROM projector_checkpoints WHERE name = ?';

/**
 * How far a runner applied rows (and code projections): where it resumes. Ahead of the
 * checkpoint (`position`, documents complete) while a catch-up defers composing view documents.
 * What joins the live runner (a replayed version) must be built up to here, not to the checkpoint.
 */
export function appliedPosition(db: Database.Database, name: string): number {
  return (db.prepare(APPLIED_SQL).pluck().get(name) as number | null | undefined) ?? 0;
}

/**
 * Applies stored events to SQLite read models. A batch always ends on a source-transaction
 * boundary and is applied together with its checkpoint in one SQLite transaction, so a reader
 * never sees half of a legacy transaction and a restart never applies an event twice.
 *
 * A batch that reaches into a source transaction goes on to that transaction's end, however
 * large: its events are read and applied `batchSize` at a time, inside the one write
 * transaction, a projection flushed between chunks once enough documents are stale. Memory is
 * bounded by the chunk, not by the transaction, and a failure anywhere rolls the whole of it
 * back with the checkpoint.
 *
 * Behind by more than a batch (a snapshot, a rebuild, a burst), it defers composing view
 * documents: each batch applies its rows and records the documents they mark (rm_dirty) and
 * how far it applied (`applied_position`) in its transaction, and leaves `position` (documents
 * complete up to there: what readers, freshness and caches go by) where it was. Once caught up,
 * or `deferMaxDocuments` marked, or `deferMaxMs` after the first deferred batch, one batch
 * composes every marked document once and moves `position` to what it applied. Code projections
 * are still written every batch: during a deferral their documents run ahead of the checkpoint
 * (never behind it), and a reader may see them newer than the views.
 */
export class ProjectionRunner implements Projector {
  private readonly name: string;
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  private readonly logger: Logger;
  private readonly deferMaxDocuments: number;
  private readonly deferMaxMs: number;
  private bulk: boolean;
  /** In the bulk build of read models that never had a composed document (bulkInitialBuild). */
  private initialBuild = false;
  private running = false;
  private loop: Promise<void> | null = null;
  private readonly poll = new PollLoop();
  private readonly applyBatch: (first: StoredEvent[]) => { applied: number; deferred: boolean };
  private readonly composeDeferred: (options: Pick<FlushOptions, 'onComposed' | 'onIndex'>) => void;
  private readonly prepareCompose: (options: Pick<FlushOptions, 'onIndex'>) => void;
  private readonly readCheckpoint: Database.Statement;
  private readonly readApplied: Database.Statement;
  private failure: Error | null = null;
  /** When the first batch of the deferral in progress committed (null: none in progress). */
  private deferredSince: number | null = null;
  /** Documents written by the deferred batches: named again when their checkpoint arrives. */
  private readonly deferredTouched = new Set<string>();

  constructor(private readonly options: RunnerOptions) {
    this.name = options.name ?? 'read-models';
    this.batchSize = options.batchSize ?? 500;
    this.pollIntervalMs = options.pollIntervalMs ?? 200;
    this.deferMaxDocuments = options.deferMaxDocuments ?? DEFAULT_DEFER_MAX_DOCUMENTS;
    this.deferMaxMs = options.deferMaxMs ?? DEFAULT_DEFER_MAX_MS;
    this.bulk = options.bulk ?? false;
    this.logger = (options.logger ?? silentLogger).child({ component: 'projector', runner: this.name });
    const db = options.db;
    const onIndex = this.indexProgress();
    const changed = options.projections.flatMap((p) => p.migrate?.(db, onIndex) ?? []);
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
    for (const p of options.projections) {
      p.restore?.(db);
      p.setBulk?.(this.bulk);
      p.composeOffThread?.(options.compose ?? null);
      p.trackTouched?.(options.onCommitted !== undefined);
    }
    this.readCheckpoint = db.prepare('SELECT position FROM projector_checkpoints WHERE name = ?').pluck();
    this.readApplied = db.prepare(APPLIED_SQL).pluck();
    if (options.bulkInitialBuild === true && !this.bulk && this.checkpoint() === 0) {
      this.initialBuild = true;
      this.setBulk(true);
    }
    // A deferral interrupted by a stop or a crash goes on; its time bound counts from now.
    if (this.appliedPosition() > this.checkpoint()) this.deferredSince = performance.now();
    const saveComposed = db.prepare(
      `INSERT INTO projector_checkpoints (name, position, source_tx_id, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT(name) DO UPDATE SET position = excluded.position, source_tx_id = excluded.source_tx_id,
       updated_at = excluded.updated_at, applied_position = NULL, applied_source_tx_id = NULL`,
    );
    const saveApplied = db.prepare(
      `INSERT INTO projector_checkpoints (name, position, updated_at, applied_position, applied_source_tx_id)
       VALUES (?, 0, ?, ?, ?)
       ON CONFLICT(name) DO UPDATE SET applied_position = excluded.applied_position,
       applied_source_tx_id = excluded.applied_source_tx_id, updated_at = excluded.updated_at`,
    );
    const promoteApplied = db.prepare(
      `UPDATE projector_checkpoints SET position = applied_position, source_tx_id = applied_source_tx_id,
       applied_position = NULL, applied_source_tx_id = NULL, updated_at = ?
       WHERE name = ? AND applied_position > position`,
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
    // Between chunks: what memory holds is written, and only a projection with a bound's worth
    // of stale documents composes them, so what it keeps never grows with the transaction and
    // a document many chunks touch is still written once.
    // A batch that composed between its chunks ends composed: documents never run ahead of
    // the checkpoint it commits.
    let composedBetween = false;
    const between = () => {
      const bound = this.deferrable() ? this.deferMaxDocuments : this.batchSize;
      for (const p of options.projections) {
        if ((p.pending?.() ?? bound) >= bound) {
          p.flush?.(db);
          composedBetween = true;
        } else p.writeHeld?.(db);
      }
    };
    // IMMEDIATE: the write lock is taken before the first read, so a long transaction never
    // fails half-way on upgrading its lock.
    this.applyBatch = db.transaction((first: StoredEvent[]) => {
      composedBetween = false;
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
            between();
            applyChunk(chunk);
            last = chunk[chunk.length - 1] as StoredEvent;
            applied += chunk.length;
          }
          if (cut !== -1 || more.length < this.batchSize) break;
        }
      }
      const now = new Date().toISOString();
      const behind = first.length === this.batchSize && options.eventStore.headPositionSync() > last.position;
      if (!composedBetween && this.mayDefer(behind)) {
        for (const p of options.projections) p.defer?.(db);
        saveApplied.run(this.name, now, last.position, last.metadata.sourceTxId);
        return { applied, deferred: true };
      }
      for (const p of options.projections) p.flush?.(db);
      saveComposed.run(this.name, last.position, last.metadata.sourceTxId, now);
      return { applied, deferred: false };
    }).immediate;
    this.prepareCompose = db.transaction((compose: Pick<FlushOptions, 'onIndex'>) => {
      for (const p of options.projections) p.prepareCompose?.(db, compose);
    }).immediate;
    // Every row is committed by the deferred batches (and what prepareCompose needed), so the
    // views may be composed on another connection while this one writes them.
    this.composeDeferred = db.transaction((compose: Pick<FlushOptions, 'onComposed' | 'onIndex'>) => {
      for (const p of options.projections) p.flush?.(db, { ...compose, rowsCommitted: true });
      promoteApplied.run(new Date().toISOString(), this.name);
    }).immediate;
  }

  /** Position up to which the read models' documents are complete (0: none). */
  checkpoint(): number {
    return (this.readCheckpoint.get(this.name) as number | undefined) ?? 0;
  }

  /** Position of the last event applied (the checkpoint, or ahead of it during a deferral). */
  appliedPosition(): number {
    return (this.readApplied.get(this.name) as number | null | undefined) ?? 0;
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
    projection.setBulk?.(this.bulk);
    projection.composeOffThread?.(this.options.compose ?? null);
    projection.trackTouched?.(this.options.onCommitted !== undefined);
    this.options.projections.push(projection);
  }

  /** Stops applying the projection named `name` (a dropped version). */
  removeProjection(name: string): void {
    const i = this.options.projections.findIndex((p) => p.name === name);
    if (i !== -1) this.options.projections.splice(i, 1);
  }

  /**
   * Applies one batch; returns how many events it applied (0 = caught up, and every document
   * composed: a step that finds no event composes what a deferral left).
   */
  async step(): Promise<number> {
    // The initial bulk build composes its documents only once the source's snapshot is over
    // (the checkpoint stays 0 until then): applying rows meanwhile took the cores the
    // snapshot's reads, mapping and appends need.
    if (this.options.awaitInitialSnapshot === true && this.snapshotGoesOn()) return 0;
    const events = this.options.eventStore.readAfterSync(this.appliedPosition(), this.batchSize);
    if (events.length === 0) {
      // Caught up with a snapshot still being read: its next chunks are on their way.
      if (!this.snapshotGoesOn()) this.composePending();
      return 0;
    }
    const { applied, deferred } = this.guarded(() => this.bulkWal(() => this.applyBatch(events)));
    this.committed(deferred);
    return applied;
  }

  /** Composes what a deferral left, so the checkpoint reaches the applied position (a bounded bulk run stopping early). */
  composePending(): void {
    const applied = this.appliedPosition();
    if (applied <= this.checkpoint()) return;
    // A bulk build's composing runs for minutes at scale after its last batch's progress line.
    const started = performance.now();
    // committed() ends an initial build's bulk mode.
    const bulk = this.bulk;
    if (bulk) this.logger.info({ position: applied }, 'composing the documents');
    this.guarded(() =>
      this.bulkWal(() => {
        const onIndex = bulk ? this.indexProgress() : undefined;
        this.prepareCompose({ onIndex });
        this.composeDeferred({ onComposed: bulk ? this.composeProgress() : undefined, onIndex });
      }),
    );
    this.committed(false);
    if (bulk)
      this.logger.info(
        { position: applied, ms: Math.round(performance.now() - started) },
        'documents composed',
      );
  }

  /** A bulk build's log of the indexes it creates again: one statement each, of minutes at scale. */
  private indexProgress(): NonNullable<FlushOptions['onIndex']> {
    return ({ table, index, ms }) => {
      if (ms === undefined) this.logger.info({ table, index }, 'building an index');
      else this.logger.info({ table, index, ms }, 'index built');
    };
  }

  /** A bulk build's compose step's progress log: each view's roots composed, rate and ETA. */
  private composeProgress(): NonNullable<FlushOptions['onComposed']> {
    let view = '';
    let meter = new ProgressMeter();
    let done = 0;
    return (name, composed, total) => {
      if (name !== view) {
        view = name;
        meter = new ProgressMeter(total);
        done = 0;
      }
      const p = meter.addDue(composed - done, COMPOSE_PROGRESS_MS);
      done = composed;
      if (p === null) return;
      this.logger.info(
        { view, roots: p.done, total, rootsPerSec: p.rowsPerSec, etaSec: p.etaSec },
        'compose progress',
      );
    };
  }

  /**
   * Runs a batch of a bulk build with checkpoints BULK_WAL_AUTOCHECKPOINT_PAGES apart, and puts
   * the connection's own setting back after it: a version built in a live process shares the
   * live runner's connection, whose batches keep checkpointing as configured.
   */
  private bulkWal<T>(work: () => T): T {
    if (!this.bulk) return work();
    const db = this.options.db;
    const before = db.pragma('wal_autocheckpoint', { simple: true }) as number;
    db.pragma(`wal_autocheckpoint = ${BULK_WAL_AUTOCHECKPOINT_PAGES}`);
    try {
      return work();
    } finally {
      db.pragma(`wal_autocheckpoint = ${before}`);
    }
  }

  /** Whether a batch may defer: every projection can, and neither bound is reached. */
  private mayDefer(behind: boolean): boolean {
    if (!this.deferrable()) return false;
    if (!behind && this.snapshotGoesOn()) behind = true;
    let pending = this.deferredTouched.size;
    for (const p of this.options.projections) pending += p.pending?.() ?? 0;
    return defersAt(this.bounds(), {
      behind,
      pending,
      deferredSinceMs: this.deferredSince,
      nowMs: performance.now(),
    });
  }

  private bounds(): DeferralBounds {
    return { maxDocuments: this.deferMaxDocuments, maxMs: this.deferMaxMs, bulk: this.bulk };
  }

  private deferrable(): boolean {
    return (
      deferralEnabled(this.bounds()) &&
      this.options.projections.every((p) => p.defer !== undefined || p.flush === undefined)
    );
  }

  /** A rolled-back batch took its marks with it: what the projections hold is reloaded from the database. */
  private guarded<T>(work: () => T): T {
    try {
      return work();
    } catch (err) {
      try {
        for (const p of this.options.projections) p.restore?.(this.options.db);
      } catch (cause) {
        this.logger.warn({ err: cause }, 'could not reload the deferred documents after a failed batch');
      }
      throw err;
    }
  }

  /** In an initial bulk build, while the source's snapshot is being read. */
  private snapshotGoesOn(): boolean {
    return this.initialBuild && this.options.eventStore.snapshotInProgressSync?.() === true;
  }

  private committed(deferred: boolean): void {
    if (!deferred && this.initialBuild) {
      // The documents are composed: from here on, batches compose as a live runner's do.
      this.initialBuild = false;
      this.setBulk(this.options.bulk ?? false);
    }
    // Drained whether or not anyone listens, so what the projections note never accumulates.
    const touched = this.options.projections.flatMap((p) => p.drainTouched?.() ?? []);
    if (deferred) {
      this.deferredSince ??= performance.now();
      if (this.options.onCommitted !== undefined)
        for (const [model, key] of touched) this.deferredTouched.add(`${model}\u0000${key}`);
      this.options.onCommitted?.(this.checkpoint(), touched);
      return;
    }
    this.deferredSince = null;
    if (this.deferredTouched.size > 0) {
      const seen = new Set(touched.map(([model, key]) => `${model}\u0000${key}`));
      for (const id of this.deferredTouched)
        if (!seen.has(id)) touched.push(id.split('\u0000', 2) as TouchedDocument);
      this.deferredTouched.clear();
    }
    this.options.onCommitted?.(this.checkpoint(), touched);
  }

  /** Applies batches until none is left; `onBatch` hears each batch's event count. */
  async catchUp(onBatch?: (events: number) => void): Promise<number> {
    let total = 0;
    for (let n = await this.step(); n > 0; n = await this.step()) {
      total += n;
      onBatch?.(n);
      // A batch is synchronous work: without a turn of the event loop between them, a rebuild
      // held back its own progress lines (pino writes them from the loop), signal handlers and
      // timers until its very end.
      await nextTurn();
    }
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
  async rebuild(onBatch?: (events: number) => void): Promise<number> {
    const wasRunning = this.running;
    await this.stop();
    this.options.db.transaction(() => {
      for (const p of this.options.projections) p.reset(this.options.db);
      this.options.db.prepare('DELETE FROM projector_checkpoints WHERE name = ?').run(this.name);
    })();
    this.deferredSince = null;
    // Bulk: documents composed once at the end (or at deferMaxDocuments), whatever the time.
    this.setBulk(true);
    let n: number;
    try {
      n = await this.catchUp(onBatch);
    } finally {
      this.setBulk(this.options.bulk ?? false);
    }
    if (wasRunning) await this.start();
    return n;
  }

  private setBulk(bulk: boolean): void {
    this.bulk = bulk;
    for (const p of this.options.projections) p.setBulk?.(bulk);
  }

  private run(): Promise<void> {
    return this.poll.run({
      step: () => this.step(),
      running: () => this.running,
      pollIntervalMs: this.pollIntervalMs,
      batchSize: this.batchSize,
      minBatchIntervalMs: this.options.minBatchIntervalMs ?? 0,
      onFailure: (failure) => {
        this.failure = failure;
        this.running = false;
        this.logger.error({ err: failure }, 'projector stopped');
        this.options.onError?.(failure);
      },
    });
  }
}
