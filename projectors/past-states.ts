import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import Database from 'better-sqlite3';
import type { Migration } from '../definition/migration.js';
import type { ReadModels } from '../definition/read-models.js';
import type { SqliteEventStore } from '../eventstore/sqlite.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import { applyMigrations, migrationFiles, sqliteMigrationsDir } from '../migrations/sqlite.js';
import { ProjectionRunner, type ProjectorEventSource } from './runner.js';
import { SqliteReadModels } from './stores/sqlite-read-models.js';

/**
 * Read models as they stood after one event position (time travel): the events up to it are
 * replayed into a scratch SQLite database by the same SqliteReadModels and ProjectionRunner the
 * live pipeline uses, so a past answer is exactly what the live read model answered when its
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
  /** Events per projector step; the thread is handed back to the event loop between steps. */
  batchSize: number;
  logger?: Logger;
}

/**
 * Replays events 1..position into a new scratch database. Each projector step is one batch
 * (ending on a source-transaction boundary); between steps the event loop runs, so the API
 * keeps serving (/health included) while a long replay goes on.
 */
export async function buildPastState(options: BuildPastStateOptions): Promise<PastState> {
  const db = new Database(options.file);
  const discard = () => {
    if (db.open) db.close();
    rmSync(options.file, { force: true });
  };
  try {
    // Rebuilt from the event store whenever it is lost: durability would buy nothing.
    db.pragma('journal_mode = MEMORY');
    db.pragma('synchronous = OFF');
    applyMigrations(db, migrationFiles(sqliteMigrationsDir('read-models')));
    const store = new SqliteReadModels(restrictTo(options.migration, options.models));
    const runner = new ProjectionRunner({
      eventStore: eventsUpTo(options.events, options.position),
      db,
      projections: [store],
      name: 'time-travel',
      batchSize: options.batchSize,
      ...(options.logger ? { logger: options.logger } : {}),
    });
    while ((await runner.step()) > 0) await nextTurn();
    return { readModels: store.readModels(db), close: discard };
  } catch (err) {
    discard();
    throw err;
  }
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
  /** Folder of the scratch databases (emptied at start: nothing in it outlives a process). */
  dir: string;
  maxEvents: number;
  cachedStates: number;
  batchSize: number;
  logger?: Logger;
}

/** Time travel over the embedded event store, scratch states under `dir`. */
export function embeddedTimeTravel(options: EmbeddedTimeTravelOptions): TimeTravelPort {
  const log = (options.logger ?? silentLogger).child({ component: 'time-travel' });
  mkdirSync(options.dir, { recursive: true });
  for (const name of readdirSync(options.dir))
    if (/^state-.*\.db$/.test(name)) rmSync(join(options.dir, name), { force: true });
  let built = 0;
  const cache = new PastStateCache(options.cachedStates, async (position, models) => {
    built += 1;
    const started = performance.now();
    const state = await buildPastState({
      events: options.eventStore,
      migration: options.migration,
      models,
      position,
      file: join(options.dir, `state-${position}-${built}.db`),
      batchSize: options.batchSize,
      logger: log,
    });
    log.info(
      { position, readModels: [...models], ms: Math.round(performance.now() - started) },
      'past read-model state rebuilt',
    );
    return state;
  });
  return {
    maxEvents: options.maxEvents,
    positionAt: (commitMs) => options.eventStore.positionAtSync(commitMs),
    lease: (position, models) => cache.lease(position, models),
    close: () => cache.close(),
  };
}
