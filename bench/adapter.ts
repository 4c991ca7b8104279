import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { type EmbeddedPipeline, startEmbeddedPipeline } from '../cli/pipeline.js';
import { type RunningApi, startApi } from '../cli/serve.js';
import { openLegacyDb } from '../connectors/legacy/index.js';
import type { Migration } from '../definition/migration.js';
import type { MysqlConnOptions } from '../examples/bank/db.js';
import bank from '../examples/bank/migration.js';
import { type Config, configSchema } from '../lib/config.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { BenchError } from './errors.js';

/** The migration every scenario runs: the sample bank, as `run --definition examples/bank/migration.ts`. */
export const BENCH_MIGRATION: Migration = bank;
/**
 * Its file, handed to the pipeline as `run --definition` does: with it the projector runs on its
 * own worker thread (it loads the definition again); without it, on the API's thread.
 */
export const BENCH_DEFINITION_FILE = fileURLToPath(new URL('../examples/bank/migration.ts', import.meta.url));

export interface BenchTarget {
  server: MysqlConnOptions;
  database: string;
  /** The adapter's stores. */
  dataDir: string;
}

/** A replica id per reader: other checkouts' pipelines stream from the same server. */
export function benchServerId(): number {
  return 100_000 + Math.floor(Math.random() * 1_000_000);
}

/**
 * The adapter's configuration for a bench run: the bench bank (its tables from the definition),
 * its own stores, a free API port, every endpoint on the legacy side until a scenario sets its flags.
 */
export function benchConfig(target: BenchTarget): Config {
  const { host, port, user, password } = target.server;
  const url = `mysql://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}/${target.database}`;
  return configSchema.parse({
    legacy: { url, flavor: 'mariadb' },
    cdc: { serverId: benchServerId() },
    dataDir: target.dataDir,
    api: { host: '127.0.0.1', port: 0, admin: { port: 0 } },
    flags: { defaultMode: 'legacy' },
    log: { level: 'warn' },
  });
}

export interface RunningAdapter {
  config: Config;
  registry: Registry;
  pipeline: EmbeddedPipeline;
  /**
   * Milliseconds from the call until the source had delivered its snapshot into the event store
   * (the pipeline's start resolves then; 0 without a snapshot to take), and until the read models
   * had caught up.
   */
  startup: { sourceReadyMs: number; caughtUpMs: number };
  stop(): Promise<void>;
}

export interface ServingAdapter extends RunningAdapter {
  api: RunningApi;
}

/**
 * The embedded pipeline in this process, caught up with everything the legacy database had
 * committed when it started (after a snapshot, if its stores are empty).
 */
export async function startAdapter(
  target: BenchTarget,
  logger: Logger,
  options: { catchUpTimeoutMs: number },
): Promise<RunningAdapter> {
  const config = benchConfig(target);
  const registry = new Registry();
  let failure: Error | null = null;
  const t0 = performance.now();
  const pipeline = await startEmbeddedPipeline({
    config,
    migration: BENCH_MIGRATION,
    definitionFile: BENCH_DEFINITION_FILE,
    logger,
    registry,
    onError: (err) => {
      failure = err;
      logger.error({ err }, 'pipeline failed during the benchmark');
    },
  });
  const sourceReadyMs = performance.now() - t0;
  let caughtUp: boolean;
  try {
    caughtUp = await pipeline.waitForCatchUp(options.catchUpTimeoutMs);
  } catch (cause) {
    // A pipeline left running would keep the process alive and write into the shared stores.
    await pipeline.stop();
    throw new BenchError(
      'BENCH_CATCH_UP',
      `waiting for the pipeline to catch up failed: ${errorMessage(cause)}`,
      {
        cause,
      },
    );
  }
  if (!caughtUp) {
    await pipeline.stop();
    throw new BenchError(
      'BENCH_CATCH_UP',
      `the pipeline did not catch up within ${options.catchUpTimeoutMs} ms${failure ? `: ${String(failure)}` : ''}`,
    );
  }
  const startup = { sourceReadyMs, caughtUpMs: performance.now() - t0 };
  return { config, registry, pipeline, startup, stop: () => pipeline.stop() };
}

/** The pipeline and the shadow API over it and the legacy database, as `run` serves them. */
export async function startServingAdapter(
  target: BenchTarget,
  logger: Logger,
  options: { catchUpTimeoutMs: number },
): Promise<ServingAdapter> {
  const adapter = await startAdapter(target, logger, options);
  const legacy = openLegacyDb(adapter.config.legacy.url, {
    poolSize: adapter.config.legacy.poolSize,
    logger,
  });
  try {
    const api = await startApi(
      adapter.config,
      BENCH_MIGRATION,
      adapter.pipeline,
      legacy,
      logger,
      adapter.registry,
    );
    return {
      ...adapter,
      api,
      async stop() {
        await api.close();
        await adapter.stop();
        await legacy.close();
      },
    };
  } catch (err) {
    await adapter.stop();
    await legacy.close();
    throw err;
  }
}
