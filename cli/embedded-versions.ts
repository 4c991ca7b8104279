import type Database from 'better-sqlite3';
import type { Migration } from '../definition/migration.js';
import { StoreError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { endAt, openEventsReadOnly, type ReplayHost, startAfter } from '../projectors/replay.js';
import { readModelOf } from '../projectors/stores/read-model-documents.js';
import { VersionRegistry } from '../projectors/stores/read-model-versions.js';
import { SqliteReadModels } from '../projectors/stores/sqlite-read-models.js';
import type { VersionedReadModels } from '../projectors/stores/versioned-read-models.js';
import type { ReadModelVersionsPort, ReplayJobView } from '../shadow-api/read-model-routes.js';

export interface EmbeddedVersionsOptions {
  migration: Migration;
  /** The API thread's connection to read-models.db. */
  readDb: Database.Database;
  eventsPath: string;
  versions: VersionedReadModels;
  host: ReplayHost;
  /** Drops cached documents: after a switch they come from another version. */
  dropCache: () => Promise<void>;
  logger: Logger;
}

/**
 * The read-model versions of a live embedded pipeline, for the admin routes: the registry on the
 * API thread's connection, replays handed to the projector's thread, and the read side's live
 * versions read again after every change, so the next request is served by the new one.
 */
export function embeddedVersions(options: EmbeddedVersionsOptions): ReadModelVersionsPort {
  const { migration, readDb, versions, host, logger } = options;
  const registry = new VersionRegistry(readDb);
  const jobs = new Map<string, ReplayJobView>();
  const known = (readModel: string) => readModelOf(migration, readModel);
  const changed = async () => {
    versions.refresh();
    await options.dropCache();
  };
  return {
    list(readModel) {
      known(readModel);
      return registry.list(readModel);
    },
    replay(readModel, range) {
      known(readModel);
      if (jobs.get(readModel)?.state === 'running') {
        throw new StoreError(
          'REPLAY_RUNNING',
          `a replay of ${readModel} is already running in this process`,
          {
            hint: `follow it with GET /admin/read-models/${readModel}/replay`,
          },
        );
      }
      const events = openEventsReadOnly(options.eventsPath);
      let after: number;
      let end: number | null;
      try {
        after = startAfter(events, range.from);
        end = range.to === undefined ? null : endAt(events, range.to);
      } finally {
        events.close();
      }
      const record = registry.create(readModel, {
        fromPosition: range.from === undefined ? null : after + 1,
        toPosition: end,
      });
      const job: ReplayJobView = {
        readModel,
        version: record.version,
        state: 'running',
        done: 0,
        total: null,
      };
      jobs.set(readModel, job);
      logger.info(
        { readModel, version: record.version, startAfter: after, end },
        'read-model replay started',
      );
      host.replay({ readModel, version: record.version, startAfter: after, end }, (report) => {
        Object.assign(job, report);
        if (report.state !== 'running')
          logger.info({ readModel, version: record.version, ...report }, 'read-model replay ended');
      });
      return { ...job };
    },
    job(readModel) {
      const job = jobs.get(readModel);
      return job === undefined ? null : { ...job };
    },
    async switchTo(readModel, version, force) {
      known(readModel);
      const result = registry.switchTo(readModel, version, force);
      await changed();
      logger.info({ readModel, ...result }, 'read-model version switched');
      return result;
    },
    async rollback(readModel) {
      known(readModel);
      const result = registry.switchTo(readModel, registry.previous(readModel).version, true);
      await changed();
      logger.info({ readModel, ...result }, 'read-model version rolled back');
      return result;
    },
    async drop(readModel, version) {
      known(readModel);
      registry.checkDroppable(readModel, version);
      const job = jobs.get(readModel);
      if (job?.state === 'running' && job.version === version) {
        throw new StoreError('REPLAY_RUNNING', `version ${version} of ${readModel} is still being built`, {
          hint: 'wait for its replay to end, then drop it',
        });
      }
      const store = new SqliteReadModels(migration, { readModel, version });
      // The live projector lets go of it first: no batch writes its tables once they are gone.
      await host.forget(store.name);
      registry.drop(readModel, version, store.tables());
      logger.info({ readModel, version }, 'read-model version dropped');
    },
  };
}
