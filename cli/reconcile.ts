import type Database from 'better-sqlite3';
import type { FreshnessPort } from '../compare/ports.js';
import { type ReconcileResult, type RepairPort, reconcile } from '../compare/reconcile.js';
import { RotatingSlices } from '../compare/reconcile-cursor.js';
import type { ReconcileMetrics } from '../compare/reconcile-metrics.js';
import { type ScheduledJob, scheduleJob } from '../compare/reconcile-schedule.js';
import type { SqliteComparisonRecorder } from '../compare/recorder.js';
import { ShadowComparator } from '../compare/shadow-compare.js';
import { throttledLegacyDb } from '../compare/throttle.js';
import type { Analytics } from '../definition/analytics.js';
import type { LegacyDb } from '../definition/endpoints.js';
import type { Migration } from '../definition/migration.js';
import type { ReadModels } from '../definition/read-models.js';
import { type Config, dataPath } from '../lib/config.js';
import type { Logger } from '../lib/logger.js';
import { ReadModelRepair } from '../projectors/repair.js';
import type { ProjectorEventSource } from '../projectors/runner.js';

export interface ReconcileDeps {
  config: Config;
  migration: Migration;
  legacy: LegacyDb;
  readModels: ReadModels;
  analytics?: Analytics;
  freshness: FreshnessPort;
  recorder: SqliteComparisonRecorder;
  logger: Logger;
  metrics?: ReconcileMetrics;
  /** Re-projects drifted keys (embedded read models only); without it drift is only recorded. */
  repair?: RepairPort;
}

export interface ReconcileRun {
  /** A random sample of this many parameter sets per endpoint. */
  sample?: number | undefined;
  /** This run's slice of each endpoint's parameter sets (scheduled runs). */
  slices?: RotatingSlices;
  repair?: boolean;
}

/**
 * One reconciliation run, recorded with the shadow comparisons. Every legacy statement it
 * issues goes through `compare.reconcile.maxQueriesPerSecond`.
 */
export function reconcileOnce(deps: ReconcileDeps, run: ReconcileRun = {}): Promise<ReconcileResult> {
  const { config, logger } = deps;
  const { slices } = run;
  return reconcile({
    migration: deps.migration,
    legacy: throttledLegacyDb(deps.legacy, config.compare.reconcile.maxQueriesPerSecond),
    readModels: deps.readModels,
    ...(deps.analytics ? { analytics: deps.analytics } : {}),
    comparator: new ShadowComparator({
      recorder: deps.recorder,
      freshness: deps.freshness,
      recheckDelayMs: config.compare.recheckDelayMs,
      maxRechecks: config.compare.maxRechecks,
      logger,
    }),
    concurrency: config.compare.concurrency,
    ...(run.sample === undefined ? {} : { sample: run.sample }),
    ...(slices === undefined ? {} : { select: (endpoint, sets) => slices.take(endpoint, sets) }),
    ...(run.repair && deps.repair ? { repair: deps.repair } : {}),
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
    logger,
    onProgress: (p) => {
      if (p.done % 1000 === 0 || p.done === p.total) logger.info({ ...p }, 'reconciliation progress');
    },
  });
}

/**
 * The scheduled job of `compare.reconcileCron`, or null when it is off: each run checks the next
 * `compare.reconcile.sliceSize` keys of every endpoint and, with `compare.reconcile.repair`,
 * repairs what drifted.
 */
export function scheduleReconciliation(deps: ReconcileDeps): ScheduledJob | null {
  const { config, logger } = deps;
  const expression = config.compare.reconcileCron;
  if (expression === '') return null;
  const { sliceSize, repair } = config.compare.reconcile;
  if (repair && deps.repair === undefined) {
    logger.warn(
      'compare.reconcile.repair is on, but these read models cannot be repaired here (cdc.mode=kafka): drift is only recorded',
    );
  }
  return scheduleJob(
    'reconcile',
    expression,
    async () => {
      if (sliceSize === 0) return reconcileOnce(deps, { repair });
      const slices = new RotatingSlices(dataPath(config, 'reconcile-cursor.json'), sliceSize);
      const result = await reconcileOnce(deps, { slices, repair });
      slices.commit();
      return result;
    },
    logger,
  );
}

/** Repair of the embedded SQLite read models from the event store (projectors/repair.ts). */
export function embeddedRepair(
  migration: Migration,
  db: Database.Database,
  eventStore: Pick<ProjectorEventSource, 'readAfterSync'>,
  logger: Logger,
): RepairPort {
  const repair = new ReadModelRepair({ migration, db, eventStore, logger });
  return async (drifted) => {
    await repair.repair(drifted.map((d) => ({ endpoint: d.entry.definition, params: d.params })));
  };
}
