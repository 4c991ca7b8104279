import type { FreshnessPort } from '../compare/ports.js';
import { type ReconcileResult, reconcile } from '../compare/reconcile.js';
import { type ScheduledJob, scheduleJob } from '../compare/reconcile-schedule.js';
import type { SqliteComparisonRecorder } from '../compare/recorder.js';
import { ShadowComparator } from '../compare/shadow-compare.js';
import type { Analytics } from '../definition/analytics.js';
import type { LegacyDb } from '../definition/endpoints.js';
import type { Migration } from '../definition/migration.js';
import type { ReadModels } from '../definition/read-models.js';
import type { Config } from '../lib/config.js';
import type { Logger } from '../lib/logger.js';

export interface ReconcileDeps {
  config: Config;
  migration: Migration;
  legacy: LegacyDb;
  readModels: ReadModels;
  analytics?: Analytics;
  freshness: FreshnessPort;
  recorder: SqliteComparisonRecorder;
  logger: Logger;
}

/** One reconciliation run over every endpoint's parameter sets, recorded with the shadow comparisons. */
export function reconcileOnce(deps: ReconcileDeps, sample?: number): Promise<ReconcileResult> {
  const { config, logger } = deps;
  return reconcile({
    migration: deps.migration,
    legacy: deps.legacy,
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
    ...(sample === undefined ? {} : { sample }),
    logger,
    onProgress: (p) => {
      if (p.done % 1000 === 0 || p.done === p.total) logger.info({ ...p }, 'reconciliation progress');
    },
  });
}

/** The scheduled job of `compare.reconcileCron`, or null when it is off. */
export function scheduleReconciliation(deps: ReconcileDeps): ScheduledJob | null {
  const expression = deps.config.compare.reconcileCron;
  if (expression === '') return null;
  return scheduleJob('reconcile', expression, () => reconcileOnce(deps), deps.logger);
}
