import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { SourceOffset } from '../connectors/change-event.js';
import { type LegacyEnd, openStoredProgress } from '../connectors/source-factory.js';
import type { Migration } from '../definition/migration.js';
import { decodeOffset } from '../eventstore/sqlite-codec.js';
import { type Config, dataPath } from '../lib/config.js';
import { liveHolder } from '../lib/data-lock.js';
import { AdapterError } from '../lib/errors.js';
import { FreshnessTracker } from '../lib/freshness-tracker.js';
import type { Logger } from '../lib/logger.js';
import { appliedPosition } from '../projectors/runner.js';
import { VersionedReadModels } from '../projectors/stores/versioned-read-models.js';
import type { RunningReadSide } from './read-side.js';

/**
 * The embedded read side as the pipeline stored it, opened read-only: the read models from
 * read-models.db, and freshness from the source offset and head in events.db, the projector
 * checkpoint, and the legacy change log's end (one plain connection; no binlog dump, no
 * replication slot). It never writes and takes no data-directory lock, so `reconcile` runs
 * beside a live `run` (SQLite WAL lets readers in while the writer commits). A difference is lag
 * only while the stored position advances, as FreshnessTracker decides for the running
 * pipeline; with no `run` live nothing advances it, so every difference is final.
 */

/** Name of the embedded projector's checkpoint row (ProjectionRunner's default). */
const CHECKPOINT_NAME = 'read-models';
const BUSY_TIMEOUT_MS = 5000;

/** How far behind the stored read models were when last measured. */
export interface StoredFreshness {
  /** A live process (`run`, `demo`) held the data directory, so the read models could move. */
  liveRun: boolean;
  caughtUp: boolean;
  /**
   * Age of the oldest legacy change not yet in the read models, seconds (at most: changes to
   * tables nobody captures also move the legacy log's end); 0 when caught up.
   */
  lagSeconds: number;
  /** Events stored but not yet projected. */
  unprojectedEvents: number;
  /** When the pipeline last stored a source transaction; null when it never did. */
  lastStoredAt: string | null;
}

export interface StoredReadSide extends RunningReadSide {
  /** Measures once more and says how far behind the read models are. */
  measure(): Promise<StoredFreshness>;
}

function openReadOnly(path: string): Database.Database {
  const db = new Database(path, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  return db;
}

/** Opens the stored read side of `config.dataDir`; NO_READ_MODELS when no pipeline ever ran there. */
export function storedReadSide(config: Config, migration: Migration, logger: Logger): StoredReadSide {
  const eventsPath = dataPath(config, 'events.db');
  const readPath = dataPath(config, 'read-models.db');
  if (!existsSync(eventsPath) || !existsSync(readPath)) {
    throw new AdapterError('NO_READ_MODELS', `no embedded read models in ${config.dataDir}`, {
      hint: 'start `run` (or `demo`) on this dataDir first: reconcile compares what the pipeline built',
    });
  }
  const events = openReadOnly(eventsPath);
  const readDb = openReadOnly(readPath);
  const sourceName = config.cdc.name;
  const offsetRow = events.prepare<[string], { offset: string; updated_at: string }>(
    'SELECT "offset" AS offset, updated_at FROM source_offsets WHERE source_name = ?',
  );
  const headOf = events.prepare<[], { head: number }>(
    'SELECT COALESCE(MAX(position), 0) AS head FROM events',
  );
  const nextAfter = events.prepare<[number], { metadata: string }>(
    'SELECT metadata FROM events WHERE position > ? ORDER BY position LIMIT 1',
  );
  const countAfter = events.prepare<[number], { n: number }>(
    'SELECT COUNT(*) AS n FROM events WHERE position > ?',
  );
  const checkpointOf = readDb.prepare<[string], { position: number }>(
    'SELECT position FROM projector_checkpoints WHERE name = ?',
  );
  const stored = () => {
    const row = offsetRow.get(sourceName);
    return row === undefined
      ? { offset: null, at: null }
      : { offset: decodeOffset(sourceName, row.offset), at: row.updated_at };
  };
  // Read once per observation, before the store's head: an offset read after it could vouch for
  // a transaction appended in between, whose events that head does not count.
  let pinned: SourceOffset | null = null;
  const progress = openStoredProgress(config, migration.tables, () => pinned);
  const lastStored = stored().at;
  // Fresh up to the last stored transaction at least: the clock of "behind" starts there.
  const tracker = new FreshnessTracker<LegacyEnd>(
    config.health.stallSeconds * 1000,
    lastStored === null ? Date.now() : Date.parse(lastStored),
  );
  // Observed on every freshness question (one per comparison), so stalls show while reconcile works.
  let liveRun = false;
  let unprojected = 0;

  const observe = async () => {
    // This process holding it (`reconcile --repair`) is no live pipeline: nothing else moves the read models.
    const holder = liveHolder(config.dataDir);
    liveRun = holder !== null && holder.pid !== process.pid;
    // Taken before the end is read: the read models are fresh up to this moment once they reach it.
    const sampledAt = Date.now();
    let end: LegacyEnd | null = null;
    try {
      end = await progress.legacyEnd();
    } catch (err) {
      logger.debug({ err }, 'legacy change-log end unknown; lag measured from the last known');
    }
    pinned = stored().offset;
    const checkpoint = checkpointOf.get(CHECKPOINT_NAME)?.position ?? 0;
    const head = headOf.get()?.head ?? 0;
    const next = checkpoint < head ? nextAfter.get(checkpoint) : undefined;
    unprojected = checkpoint < head ? (countAfter.get(checkpoint)?.n ?? 0) : 0;
    return tracker.observe({
      now: sampledAt,
      end,
      reached: (e) => progress.reached(e),
      checkpoint,
      head,
      applied: appliedPosition(readDb, CHECKPOINT_NAME),
      oldestUnprojectedCommitMs:
        next === undefined ? null : (JSON.parse(next.metadata) as { sourceTsMs: number }).sourceTsMs,
    });
  };
  return {
    // Each read model from its live version, as the running API serves it.
    readModels: new VersionedReadModels(migration, readDb).readModels,
    freshness: {
      isCaughtUp: async () => {
        // Asked after legacy's read. Writes elsewhere on the server keep the change log's end
        // moving, and the stored offset follows it a heartbeat behind (cdc.heartbeatIntervalMs):
        // fresh up to a moment after the question covers what legacy read, as caught up does.
        const askedAt = Date.now();
        let state = await observe();
        const waitMs = config.cdc.heartbeatIntervalMs + 1000;
        while (
          !state.caughtUp &&
          liveRun &&
          config.cdc.heartbeatIntervalMs > 0 &&
          tracker.freshUpTo() < askedAt &&
          Date.now() - askedAt < waitMs
        ) {
          await new Promise((r) => setTimeout(r, 200));
          state = await observe();
        }
        return state.caughtUp || tracker.freshUpTo() >= askedAt;
      },
      // Nothing moves the stored read models without a live `run`: a difference then is final.
      isStalled: () => !liveRun || tracker.current().stalled,
    },
    async measure() {
      const state = await observe();
      return {
        liveRun,
        caughtUp: state.caughtUp,
        lagSeconds: state.lagSeconds,
        unprojectedEvents: unprojected,
        lastStoredAt: stored().at,
      };
    },
    async stop() {
      await progress.close();
      events.close();
      readDb.close();
    },
  };
}
