import type { Registry } from 'prom-client';
import type { FreshnessPort } from '../compare/ports.js';
import type { AccountQueries } from '../examples/bank/contract.js';
import type { Config } from '../lib/config.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import { openServerReadModelQueries } from '../projectors/stores/server-queries.js';
import {
  documentProjection,
  kafkaFrom,
  lagFreshness,
  type RunningProjector,
  STORES,
  startProjector,
  startTranslator,
} from './distributed.js';
import { startEmbeddedPipeline } from './pipeline.js';

/** What the API and the reconciliation job read from the new side, whichever mode runs it. */
export interface RunningReadSide {
  readModels: AccountQueries;
  freshness: FreshnessPort;
  stop(): Promise<void>;
}

/** The server read models with consumer-group lag as freshness; the pipeline runs elsewhere. */
export function serverReadSide(config: Config): RunningReadSide {
  const queries = openServerReadModelQueries(config.stores);
  const kafka = kafkaFrom(config, 'read-side');
  const projections = STORES.map((s) => documentProjection(config, s, silentLogger));
  return {
    readModels: queries,
    freshness: lagFreshness(config, kafka, projections),
    async stop() {
      await queries.close();
      await Promise.all(projections.map((p) => p.close()));
    },
  };
}

/** The embedded pipeline, caught up from its stored offset; for one-off jobs when `run` is not running. */
export async function embeddedReadSide(config: Config, logger: Logger): Promise<RunningReadSide> {
  const pipeline = await startEmbeddedPipeline({ config, logger });
  await pipeline.waitForCatchUp(10 * 60_000);
  return pipeline;
}

/** cdc.mode=kafka in one process: translator, both projectors and the server read side. */
export async function startDistributedInProcess(
  config: Config,
  logger: Logger,
  registry: Registry,
): Promise<RunningReadSide> {
  const translator = await startTranslator(config, logger, registry);
  const projectors: RunningProjector[] = [];
  for (const store of STORES) projectors.push(await startProjector(config, store, logger, registry));
  const side = serverReadSide(config);
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
