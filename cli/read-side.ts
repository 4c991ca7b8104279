import type { Registry } from 'prom-client';
import type { FreshnessPort } from '../compare/ports.js';
import type { Analytics } from '../definition/analytics.js';
import type { Migration } from '../definition/migration.js';
import type { ReadModels } from '../definition/read-models.js';
import type { Config } from '../lib/config.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import type { HealthPort } from '../shadow-api/health.js';
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
import { DistributedMonitor } from './distributed-health.js';

/** What the API and the reconciliation job read from the new side, whichever mode runs it. */
export interface RunningReadSide {
  readModels: ReadModels;
  /** Analytics read models, when this side has them open. */
  analytics?: Analytics;
  freshness: FreshnessPort;
  /** Components and lag for /health/ready; absent for one-off jobs. */
  health?: HealthPort;
  stop(): Promise<void>;
}

/**
 * The server read models (each from the store `stores.placement` puts it in) with
 * consumer-group lag as freshness; the pipeline runs elsewhere. `monitor` (for `serve` and
 * `run`) also measures the pipeline for /health/ready and the lag gauge.
 */
export function serverReadSide(
  config: Config,
  migration: Migration,
  logger: Logger = silentLogger,
  monitor?: { registry: Registry },
): RunningReadSide {
  const opened = openServerReadModels(config, migration, logger, monitor);
  const kafka = kafkaFrom(config, 'read-side', logger);
  const health =
    monitor === undefined
      ? undefined
      : new DistributedMonitor({
          config,
          migration,
          kafka,
          stores: opened.stores,
          logger,
          registry: monitor.registry,
        });
  health?.start();
  return {
    readModels: opened.readModels,
    freshness: lagFreshness(config, migration, kafka),
    ...(health ? { health: health.health() } : {}),
    async stop() {
      await health?.stop();
      await opened.close();
    },
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
  const side = serverReadSide(config, migration, logger, { registry });
  return {
    readModels: side.readModels,
    freshness: side.freshness,
    ...(side.health ? { health: side.health } : {}),
    async stop() {
      await translator.stop();
      for (const p of projectors) await p.stop();
      await side.stop();
    },
  };
}
