import type { SqliteComparisonRecorder } from '../compare/recorder.js';
import type { SqliteEventStore } from '../eventstore/sqlite.js';
import type { Config } from '../lib/config.js';
import type { Logger } from '../lib/logger.js';
import type { RetentionPolicy } from '../lib/retention.js';

const DAY_MS = 86_400_000;

export interface RetentionTargets {
  comparisons?: Pick<SqliteComparisonRecorder, 'prune'>;
  /** The embedded event store's dead letters; absent in the distributed mode. */
  deadLetters?: Pick<SqliteEventStore, 'pruneDeadLetters'>;
}

/** The two policies config.retention describes. */
export function retentionPolicies(config: Config): {
  comparisons: RetentionPolicy;
  deadLetters: RetentionPolicy;
} {
  const r = config.retention;
  return {
    comparisons: {
      maxAgeMs: r.comparisonsMaxAgeDays * DAY_MS,
      maxRows: r.comparisonsMaxRows,
      batchRows: r.batchRows,
    },
    deadLetters: {
      maxAgeMs: r.deadLettersMaxAgeDays * DAY_MS,
      maxRows: r.deadLettersMaxRows,
      batchRows: r.batchRows,
    },
  };
}

/**
 * Prunes comparison records and dead letters every retention.intervalSec (first after one
 * interval, so a start is not slowed). A failed round is logged and the next one tries again:
 * retention must never stop the API.
 */
export function startRetention(
  config: Config,
  targets: RetentionTargets,
  logger: Logger,
): { stop(): Promise<void> } {
  const log = logger.child({ component: 'retention' });
  const policies = retentionPolicies(config);
  let running: Promise<void> | null = null;
  const round = async () => {
    try {
      const comparisons = (await targets.comparisons?.prune(policies.comparisons)) ?? 0;
      const deadLetters = (await targets.deadLetters?.pruneDeadLetters(policies.deadLetters)) ?? 0;
      if (comparisons + deadLetters > 0) log.info({ comparisons, deadLetters }, 'pruned by retention');
    } catch (err) {
      log.error({ err }, 'retention round failed; retrying next interval');
    }
  };
  const timer = setInterval(() => {
    if (running !== null) return;
    running = round().finally(() => {
      running = null;
    });
  }, config.retention.intervalSec * 1000);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
