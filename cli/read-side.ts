import type { Registry } from 'prom-client';
import type { FreshnessPort } from '../compare/ports.js';
import type { Migration } from '../definition/migration.js';
import type { ReadModels } from '../definition/read-models.js';
import type { Config } from '../lib/config.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import {
  kafkaFrom,
  lagFreshness,
  openServerReadModels,
  placementOf,
  type RunningProjector,
  STORES,
  startProjector,
  startTranslator,
} from './distributed.js';

/** What the API and the reconciliation job read from the new side, whichever mode runs it. */
export interface RunningReadSide {
  readModels: ReadModels;
  freshness: FreshnessPort;
  stop(): Promise<void>;
}

/**
 * The server read models (each from the store `stores.placement` puts it in) with
 * consumer-group lag as freshness; the pipeline runs elsewhere.
 */
export function serverReadSide(
  config: Config,
  migration: Migration,
  logger: Logger = silentLogger,
): RunningReadSide {
  const opened = openServerReadModels(config, migration, logger);
  const kafka = kafkaFrom(config, 'read-side', logger);
  return {
    readModels: opened.readModels,
    freshness: lagFreshness(config, migration, kafka),
    stop: () => opened.close(),
  };
}

/** cdc.mode=kafka in one process: translator, a projector per store in use, and the server read side. */
export async function startDistributedInProcess(
  config: Config,
  migration: Migration,
  logger: Logger,
  registry: Registry,
  onError: (err: Error) => void = () => undefined,
): Promise<RunningReadSide> {
  const translator = await startTranslator(config, migration, logger, registry);
  void translator.failed.then(onError);
  const projectors: RunningProjector[] = [];
  const used = new Set(placementOf(config, migration).values());
  for (const store of STORES) {
    if (used.has(store)) projectors.push(await startProjector(config, migration, store, logger, registry));
  }
  for (const p of projectors) void p.failed.then(onError);
  const side = serverReadSide(config, migration, logger);
  return {
    readModels: side.readModels,
    freshness: side.freshness,
    async stop() {
      await translator.stop();
      for (const p of projectors) await p.stop();
      await side.stop();
    },
  };
}
