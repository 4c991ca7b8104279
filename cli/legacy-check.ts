import { checkLegacyQueries } from '../connectors/legacy/query-check.js';
import type { Migration } from '../definition/migration.js';
import type { Config } from '../lib/config.js';
import type { Logger } from '../lib/logger.js';

/**
 * The start-up check of `run`, `serve`, `demo` and `reconcile`: every endpoint's legacy SQL is
 * prepared on the legacy database before any change capture starts (legacy.checkQueries).
 */
export async function checkDefinitionQueries(
  config: Config,
  migration: Migration,
  definition: string,
  logger: Logger,
): Promise<void> {
  if (!config.legacy.checkQueries) {
    logger.info('legacy queries not checked against the legacy schema (legacy.checkQueries is false)');
    return;
  }
  const { checked, unchecked } = await checkLegacyQueries(config.legacy.url, migration, {
    definition,
    logger,
  });
  logger.info({ checked, unchecked: unchecked.length }, 'legacy queries checked against the legacy schema');
}
