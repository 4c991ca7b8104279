import Database from 'better-sqlite3';
import type { Migration } from '../definition/migration.js';
import type { StoredEvent } from '../eventstore/ports.js';
import { StoreError } from '../lib/errors.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import type { SqliteProjection } from './ports.js';
import { ProjectionRunner, type ProjectorEventSource } from './runner.js';
import { buildCheckpointName, maintainedVersions, VersionRegistry } from './stores/read-model-versions.js';
import { SqliteReadModels } from './stores/sqlite-read-models.js';

/**
 * Replay of one read model into a new version (read-model-versions.ts): the version's own
 * projection and checkpoint, fed from the event store up to a bound, while version 1 and the
 * live version keep serving from their tables.
 */

/** Where a replay starts or ends: an event position, or the source commit time of the events. */
export type ReplayPoint = { position: number } | { time: string };

/** What the live projector applies: version 1 of every read model and each maintained replayed version. */
export function embeddedProjections(migration: Migration, db: Database.Database): SqliteProjection[] {
  const names = new Set(migration.readModels.map((m) => m.name));
  return [
    new SqliteReadModels(migration),
    // A version of a read model the definition no longer has is left alone (drop it).
    ...maintainedVersions(db)
      .filter((v) => names.has(v.readModel))
      .map((v) => new SqliteReadModels(migration, v)),
  ];
}

/** Opens events.db read-only to resolve replay bounds. */
export function openEventsReadOnly(path: string): Database.Database {
  const db = new Database(path, { readonly: true, fileMustExist: true, timeout: 5000 });
  db.pragma('busy_timeout = 5000');
  return db;
}

const head = (events: Database.Database) =>
  (events.prepare('SELECT COALESCE(MAX(position), 0) FROM events').pluck().get() as number) ?? 0;

function txRange(events: Database.Database, position: number): { first: number; last: number } {
  const row = events
    .prepare(
      `SELECT MIN(position) AS first, MAX(position) AS last FROM events
       WHERE source_tx_id = (SELECT source_tx_id FROM events WHERE position = ?)`,
    )
    .get(position) as { first: number | null; last: number | null };
  if (row.first === null || row.last === null) {
    throw new StoreError('REPLAY_POINT_INVALID', `no event at position ${position}`, {
      hint: `positions run from 1 to ${head(events)}`,
    });
  }
  return { first: row.first, last: row.last };
}

const commitMsSql = "CAST(json_extract(metadata, '$.sourceTsMs') AS INTEGER)";

/**
 * The checkpoint a version starting at `from` begins after: the start of the source transaction
 * holding that position (or the first event committed at or after that time), minus one, so a
 * version never holds half a legacy transaction. 0: from the first event.
 */
export function startAfter(events: Database.Database, from: ReplayPoint | undefined): number {
  if (from === undefined) return 0;
  if ('position' in from) return txRange(events, from.position).first - 1;
  const first = events
    .prepare(`SELECT MIN(position) FROM events WHERE ${commitMsSql} >= ?`)
    .pluck()
    .get(Date.parse(from.time)) as number | null;
  if (first === null) {
    throw new StoreError('REPLAY_POINT_INVALID', `no event was committed at or after ${from.time}`, {
      hint: 'pick an earlier --from, or leave it out to replay every event',
    });
  }
  return txRange(events, first).first - 1;
}

/** The last position a frozen version applies: the end of `to`'s transaction, or of the last one committed by that time. */
export function endAt(events: Database.Database, to: ReplayPoint): number {
  if ('position' in to) return txRange(events, to.position).last;
  const last = events
    .prepare(`SELECT MAX(position) FROM events WHERE ${commitMsSql} <= ?`)
    .pluck()
    .get(Date.parse(to.time)) as number | null;
  return last === null ? 0 : txRange(events, last).last;
}

export interface VersionBuilderOptions {
  db: Database.Database;
  eventStore: ProjectorEventSource;
  migration: Migration;
  readModel: string;
  version: number;
  /** Checkpoint the build starts from when it has none yet (startAfter). */
  startAfter: number;
  /** The last position to apply; read before each batch (the live checkpoint moves). */
  upTo: () => number;
  batchSize: number;
  logger?: Logger;
}

/**
 * Builds one version batch by batch with its own checkpoint row, so an interrupted build
 * resumes where it stopped. Each batch is bounded by `upTo` (always a source-transaction end:
 * the live checkpoint, or endAt), so the version never runs past what it is to reach.
 */
export class VersionBuilder {
  readonly projection: SqliteReadModels;
  private readonly runner: ProjectionRunner;
  private readonly name: string;

  constructor(private readonly options: VersionBuilderOptions) {
    const { db, readModel, version } = options;
    this.name = buildCheckpointName(readModel, version);
    this.projection = new SqliteReadModels(options.migration, { readModel, version });
    const bounded: ProjectorEventSource = {
      readAfterSync: (after, limit) => {
        // Read once per read, not per event: it is a statement on the live checkpoint row, and
        // nothing can move that checkpoint while this synchronous read runs.
        const bound = options.upTo();
        return options.eventStore.readAfterSync(after, limit).filter((e: StoredEvent) => e.position <= bound);
      },
      headPositionSync: () => Math.min(options.eventStore.headPositionSync(), options.upTo()),
    };
    db.prepare(
      `INSERT OR IGNORE INTO projector_checkpoints (name, position, source_tx_id, updated_at) VALUES (?, ?, NULL, ?)`,
    ).run(this.name, options.startAfter, new Date().toISOString());
    this.runner = new ProjectionRunner({
      eventStore: bounded,
      db,
      projections: [this.projection],
      name: this.name,
      batchSize: options.batchSize,
      logger: options.logger ?? silentLogger,
      // Nobody reads a version being built: its documents are composed once, when it caught up.
      bulk: true,
    });
  }

  checkpoint(): number {
    return this.runner.checkpoint();
  }

  /** Applies one batch; 0 once it reached `upTo`. */
  step(): Promise<number> {
    return this.runner.step();
  }

  /** Done with the build: its checkpoint row goes (the live projector maintains it from here, or nothing does). */
  finish(): void {
    this.options.db.prepare('DELETE FROM projector_checkpoints WHERE name = ?').run(this.name);
  }
}

/** A replay the live process runs: which version, from where, up to where (null: the live checkpoint). */
export interface ReplayJobSpec {
  readModel: string;
  version: number;
  startAfter: number;
  /** Last position of a frozen (--to) version; null: catch up with the live projector and join it. */
  end: number | null;
}

export interface ReplayReport {
  state: 'running' | 'done' | 'failed';
  done: number;
  total: number | null;
  error?: string;
}

/** Where a live process's replay runs: beside its live projector, on the same thread and connection. */
export interface VersionHost {
  db: Database.Database;
  eventStore: ProjectorEventSource;
  migration: Migration;
  batchSize: number;
  logger?: Logger;
  runner: Pick<ProjectionRunner, 'appliedPosition' | 'addProjection'>;
}

const WAIT_MS = 50;

/**
 * Builds a version batch by batch in the live projector's thread, yielding after each batch so
 * the live batches run in between (neither starves). Once the version has reached the live
 * applied position, it is handed to the live projector in the same synchronous stretch of code, so
 * no live batch can commit in between: from the next batch on, both are applied together. A
 * frozen version stops at its end and is not handed over.
 */
export async function runReplayJob(
  host: VersionHost,
  spec: ReplayJobSpec,
  report: (r: ReplayReport) => void,
  stopped: () => boolean,
): Promise<void> {
  // The position the live runner applied (ahead of its checkpoint while it defers composing):
  // its next batch starts after it, so a version joining it must hold every event up to there.
  const upTo = () => spec.end ?? host.runner.appliedPosition();
  let done = 0;
  const total = () => Math.max(0, upTo() - spec.startAfter);
  try {
    const builder = new VersionBuilder({
      db: host.db,
      eventStore: host.eventStore,
      migration: host.migration,
      readModel: spec.readModel,
      version: spec.version,
      startAfter: spec.startAfter,
      upTo,
      batchSize: host.batchSize,
      ...(host.logger ? { logger: host.logger } : {}),
    });
    const registry = new VersionRegistry(host.db);
    for (;;) {
      if (stopped()) return;
      const n = await builder.step();
      done += n;
      if (n === 0) {
        // Read again here: a live batch may have committed since the step (microtasks run between).
        const target = upTo();
        if (builder.checkpoint() < target) continue;
        // A --from past the live checkpoint waits for the live projector to get there.
        if (builder.checkpoint() > target && spec.end === null) {
          await new Promise((r) => setTimeout(r, WAIT_MS));
          continue;
        }
        if (spec.end === null) host.runner.addProjection(builder.projection);
        builder.finish();
        registry.markReady(spec.readModel, spec.version, target);
        report({ state: 'done', done, total: total() });
        return;
      }
      report({ state: 'running', done, total: total() });
      // Lets the live projector's loop (and the thread's messages) in between two batches.
      await new Promise((r) => setImmediate(r));
    }
  } catch (err) {
    (host.logger ?? silentLogger).error({ err, ...spec }, 'read-model replay failed');
    report({
      state: 'failed',
      done,
      total: total(),
      error: err instanceof Error ? err.message : String(err),
    });
  }
}

/** What runs replays in a live process: its projection worker, or its in-thread runner. */
export interface ReplayHost {
  /** Starts a replay; `onReport` hears of each batch and of the end (done or failed). */
  replay(spec: ReplayJobSpec, onReport: (report: ReplayReport) => void): void;
  /** Resolves once the live projector no longer applies the projection `name` (a version to drop). */
  forget(name: string): Promise<void>;
}

/** The ReplayHost of a runner in this thread; `stopped` ends its replays (the pipeline stops). */
export function inThreadReplayHost(
  host: VersionHost & { runner: Pick<ProjectionRunner, 'removeProjection'> },
  stopped: () => boolean,
): ReplayHost {
  return {
    replay(spec, onReport) {
      void runReplayJob(host, spec, onReport, stopped);
    },
    async forget(name) {
      host.runner.removeProjection(name);
    },
  };
}
