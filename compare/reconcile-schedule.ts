import cron from 'node-cron';
import { ConfigError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';

export interface ScheduledJob {
  stop(): Promise<void>;
}

/**
 * Runs `job` on a node-cron schedule. A run still going when the next one is due is not
 * started twice (noOverlap): a slow reconciliation must not pile up on a busy legacy database.
 * A failing run is logged and the schedule goes on.
 */
export function scheduleJob(
  name: string,
  expression: string,
  job: () => Promise<unknown>,
  logger: Logger,
): ScheduledJob {
  if (!cron.validate(expression)) {
    throw new ConfigError(`"${expression}" is not a valid cron expression for ${name}`, {
      hint: 'five or six fields, e.g. "*/15 * * * *" (every 15 minutes); see node-cron',
    });
  }
  let running: Promise<unknown> | null = null;
  const task = cron.schedule(
    expression,
    async () => {
      logger.info({ job: name }, 'scheduled job starting');
      running = job().catch((err: unknown) =>
        logger.error({ job: name, err: errorMessage(err) }, 'scheduled job failed'),
      );
      await running;
      running = null;
    },
    { name, noOverlap: true },
  );
  return {
    async stop() {
      await task.stop();
      await running;
    },
  };
}
