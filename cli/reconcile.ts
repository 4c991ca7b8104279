import type { Pool } from 'mysql2/promise';
import type { FreshnessPort } from '../compare/ports.js';
import { type ReconcileResult, reconcile } from '../compare/reconcile.js';
import { type ScheduledJob, scheduleJob } from '../compare/reconcile-schedule.js';
import type { SqliteComparisonRecorder } from '../compare/recorder.js';
import { ShadowComparator } from '../compare/shadow-compare.js';
import type { AccountQueries } from '../examples/bank/contract.js';
import { LegacyQueries, legacyAccountIds } from '../examples/bank/legacy-queries.js';
import type { Config } from '../lib/config.js';
import type { Logger } from '../lib/logger.js';

export interface ReconcileDeps {
  config: Config;
  legacyPool: Pool;
  readModel: AccountQueries;
  freshness: FreshnessPort;
  recorder: SqliteComparisonRecorder;
  logger: Logger;
}

/** One reconciliation run over the bank's accounts, recorded with the shadow comparisons. */
export function reconcileOnce(deps: ReconcileDeps, sample?: number): Promise<ReconcileResult> {
  const { config, logger } = deps;
  return reconcile({
    legacy: new LegacyQueries(deps.legacyPool),
    readModel: deps.readModel,
    comparator: new ShadowComparator({
      recorder: deps.recorder,
      freshness: deps.freshness,
      recheckDelayMs: config.compare.recheckDelayMs,
      maxRechecks: config.compare.maxRechecks,
      logger,
    }),
    accountIds: () => legacyAccountIds(deps.legacyPool),
    concurrency: config.compare.concurrency,
    ...(sample === undefined ? {} : { sample }),
    logger,
    onProgress: (p) => {
      if (p.done % 1000 === 0 || p.done === p.total)
        logger.info({ ...p }, 'reconciliation progress (accounts)');
    },
  });
}

/** The scheduled job of `compare.reconcileCron`, or null when it is off. */
export function scheduleReconciliation(deps: ReconcileDeps): ScheduledJob | null {
  const expression = deps.config.compare.reconcileCron;
  if (expression === '') return null;
  return scheduleJob('reconcile', expression, () => reconcileOnce(deps), deps.logger);
}
