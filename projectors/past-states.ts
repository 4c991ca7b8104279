import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { Histogram, type Registry } from 'prom-client';
import type { Migration } from '../definition/migration.js';
import type { ReadModels } from '../definition/read-models.js';
import type { StoredEvent } from '../eventstore/ports.js';
import type { SqliteEventStore } from '../eventstore/sqlite.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import { writePastStateOffThread } from './past-state-thread.js';
import { DEFAULT_DEFER_MAX_DOCUMENTS, ProjectionError, type ProjectorEventSource } from './runner.js';
import { SqliteReadModels } from './stores/sqlite-read-models.js';

/**
 * Read models as they stood after one event position (time travel): the events up to it are
 * replayed into a scratch SQLite database by the same SqliteReadModels the live pipeline
 * projects with, so a past answer is exactly what the live read model answered when its
 * checkpoint was there. Only the read models asked for are built, and a few built states are
 * kept, so repeated questions about one instant cost one replay.
 */

/** A read-model state rebuilt as it stood after some event position. */
export interface PastState {
  readModels: ReadModels;
  /** Frees the state (its scratch file); called once no lease holds it. */
  close(): void;
}

/** One request's hold on a past state: the state stays open until released. */
export interface PastLease {
  readonly position: number;
  readonly readModels: ReadModels;
  release(): void;
}

/** What the shadow API asks of time travel; the embedded pipeline provides it. */
export interface TimeTravelPort {
  /** Most events one past state may replay (timeTravel.maxEvents). */
  readonly maxEvents: number;
  /** The last position whose state a time (epoch ms) shows: see SqliteEventStore.positionAtSync. */
  positionAt(commitMs: number): number;
  /** The read models `models` as they stood after `position`, built or shared. */
  lease(position: number, models: ReadonlySet<string>): Promise<PastLease>;
  close(): void;
}

/** The events of `events` up to `position` (positions are gap-free): what a past state replays. */
export function eventsUpTo(events: ProjectorEventSource, position: number): ProjectorEventSource {
  return {
    headPositionSync: () => Math.min(position, events.headPositionSync()),
    readAfterSync: (after, limit) =>
      after >= position ? [] : events.readAfterSync(after, Math.min(limit, position - after)),
  };
}

/** The migration with only the read models named in `models` (the others are neither built nor fed). */
export function restrictTo(migration: Migration, models: ReadonlySet<string>): Migration {
  return {
    ...migration,
    readModels: migration.readModels.filter((m) => models.has(m.name)),
    viewPlans: new Map([...migration.viewPlans].filter(([name]) => models.has(name))),
  };
}

export interface BuildPastStateOptions {
  events: ProjectorEventSource;
  migration: Migration;
  models: ReadonlySet<string>;
  position: number;
  /** The scratch database; removed when the state closes (or its build fails). */
  file: string;
  /** Events per chunk; the thread is handed back to the event loop between chunks. */
  batchSize: number;
}

/**
 * Replays events 1..position into a new scratch database file, `batchSize` events per write
 * transaction, the event loop running between them, so on the serving thread the API keeps
 * answering (/health included) while a long replay goes on. Unlike the live ProjectionRunner, a
 * chunk may end inside a source transaction: nobody reads the scratch state before it is
 * complete, and a snapshot chunk or a big legacy transaction applied whole held the thread for
 * a second (view documents are composed from the rows once, at the end). The file is removed if the replay fails.
 */
export async function writePastState(options: BuildPastStateOptions): Promise<void> {
  const db = new Database(options.file);
  try {
    // Rebuilt from the event store whenever it is lost: durability would buy nothing.
    db.pragma('journal_mode = MEMORY');
    db.pragma('synchronous = OFF');
    const store = new SqliteReadModels(restrictTo(options.migration, options.models));
    store.migrate(db);
    // Pure bulk: view documents are composed once, at the end (or when a bound's worth are
    // marked), not per chunk; the code projections' documents are written per chunk.
    const applyChunk = db.transaction((events: readonly StoredEvent[]) => {
      for (const event of events) {
        if (!store.handles.has(event.type)) continue;
        try {
          store.apply(db, event);
        } catch (cause) {
          throw new ProjectionError(event, store.name, cause);
        }
      }
      if (store.pending() >= DEFAULT_DEFER_MAX_DOCUMENTS) store.flush(db);
      else store.writeHeld(db);
    });
    const events = eventsUpTo(options.events, options.position);
    for (let after = 0; ; ) {
      const chunk = events.readAfterSync(after, options.batchSize);
      const last = chunk.at(-1);
      if (last === undefined) break;
      applyChunk(chunk);
      // Nobody invalidates a cache from a scratch state: what it notes is dropped.
      store.drainTouched();
      after = last.position;
      await nextTurn();
    }
    db.transaction(() => store.flush(db))();
    store.drainTouched();
    db.close();
  } catch (err) {
    db.close();
    rmSync(options.file, { force: true });
    throw err;
  }
}

/** The read models of a scratch database writePastState completed; closing removes the file. */
export function openPastState(file: string, migration: Migration, models: ReadonlySet<string>): PastState {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  return {
    readModels: new SqliteReadModels(restrictTo(migration, models)).readModels(db),
    close: () => {
      if (db.open) db.close();
      rmSync(file, { force: true });
    },
  };
}

interface Entry {
  state: Promise<PastState>;
  leases: number;
  evicted: boolean;
}

/**
 * The most recently asked past states, at most `capacity`, keyed by position and read models.
 * Requests for a state being built wait for that one build; builds run one at a time, so a burst
 * of different instants costs the serving thread one replay at a time. An evicted state closes
 * once the last request reading it releases it.
 */
export class PastStateCache {
  private readonly entries = new Map<string, Entry>();
  private building: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly capacity: number,
    private readonly build: (position: number, models: ReadonlySet<string>) => Promise<PastState>,
  ) {}

  async lease(position: number, models: ReadonlySet<string>): Promise<PastLease> {
    const key = `${position}\u0000${[...models].sort().join('\u0000')}`;
    let entry = this.entries.get(key);
    if (entry === undefined) {
      const state = this.building.then(() => this.build(position, models));
      this.building = state.catch(() => undefined);
      const created: Entry = { state, leases: 0, evicted: false };
      entry = created;
      // A failed build is not kept: the next question tries again.
      state.catch(() => {
        if (this.entries.get(key) === created) this.entries.delete(key);
      });
    } else {
      this.entries.delete(key);
    }
    // Map order is recency: the first entry is the least recently asked.
    this.entries.set(key, entry);
    entry.leases += 1;
    this.evictBeyondCapacity();
    const held = entry;
    let state: PastState;
    try {
      state = await held.state;
    } catch (err) {
      held.leases -= 1;
      throw err;
    }
    let released = false;
    return {
      position,
      readModels: state.readModels,
      release: () => {
        if (released) return;
        released = true;
        held.leases -= 1;
        if (held.evicted && held.leases === 0) state.close();
      },
    };
  }

  /** States kept (built or building). */
  size(): number {
    return this.entries.size;
  }

  /** Drops every state; those still read close when released. */
  close(): void {
    for (const entry of this.entries.values()) this.evict(entry);
    this.entries.clear();
  }

  private evictBeyondCapacity(): void {
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= this.capacity) return;
      this.entries.delete(key);
      this.evict(entry);
    }
  }

  private evict(entry: Entry): void {
    entry.evicted = true;
    if (entry.leases === 0) entry.state.then((s) => s.close()).catch(() => undefined);
  }
}

export interface EmbeddedTimeTravelOptions {
  eventStore: Pick<SqliteEventStore, 'readAfterSync' | 'headPositionSync' | 'positionAtSync'>;
  migration: Migration;
  /**
   * The event store's file and the module `migration` was loaded from: with both, each replay
   * runs on a worker thread of its own (which loads the definition again), never on the thread
   * that serves; without (a migration built in code), on this thread between requests.
   */
  offThread?: { eventsPath: string; definition: string };
  /** Folder of the scratch databases (emptied at start: nothing in it outlives a process). */
  dir: string;
  maxEvents: number;
  cachedStates: number;
  batchSize: number;
  logger?: Logger;
  /** Where cqrs_time_travel_build_seconds{thread} is registered. */
  registry?: Registry;
}

/** Time travel over the embedded event store, scratch states under `dir`. */
export function embeddedTimeTravel(options: EmbeddedTimeTravelOptions): TimeTravelPort {
  const log = (options.logger ?? silentLogger).child({ component: 'time-travel' });
  mkdirSync(options.dir, { recursive: true });
  for (const name of readdirSync(options.dir))
    if (/^state-.*\.db$/.test(name)) rmSync(join(options.dir, name), { force: true });
  const thread = options.offThread ? 'worker' : 'serving';
  const buildSeconds = new Histogram({
    name: 'cqrs_time_travel_build_seconds',
    help: 'Time to rebuild one past read-model state from the event store (GET …?_asOf=)',
    labelNames: ['thread'],
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: options.registry ? [options.registry] : [],
  }).labels({ thread });
  let built = 0;
  const cache = new PastStateCache(options.cachedStates, async (position, models) => {
    built += 1;
    const started = performance.now();
    const file = join(options.dir, `state-${position}-${built}.db`);
    try {
      if (options.offThread === undefined)
        await writePastState({
          events: options.eventStore,
          migration: options.migration,
          models,
          position,
          file,
          batchSize: options.batchSize,
        });
      else
        await writePastStateOffThread({
          ...options.offThread,
          models: [...models],
          position,
          file,
          batchSize: options.batchSize,
        });
    } catch (err) {
      // A worker that died mid-replay removed nothing.
      rmSync(file, { force: true });
      throw err;
    }
    const ms = performance.now() - started;
    buildSeconds.observe(ms / 1000);
    log.info(
      { position, readModels: [...models], ms: Math.round(ms), thread },
      'past read-model state rebuilt',
    );
    return openPastState(file, options.migration, models);
  });
  return {
    maxEvents: options.maxEvents,
    positionAt: (commitMs) => options.eventStore.positionAtSync(commitMs),
    lease: (position, models) => cache.lease(position, models),
    close: () => cache.close(),
  };
}
