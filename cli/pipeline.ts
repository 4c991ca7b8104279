import { mkdirSync } from 'node:fs';
import type Database from 'better-sqlite3';
import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';
import type { FreshnessPort } from '../compare/ports.js';
import type { SourceTransaction } from '../connectors/change-event.js';
import {
  createChangeSource,
  type LegacyChangeSource,
  type SourceProgress,
} from '../connectors/source-factory.js';
import type { Migration } from '../definition/migration.js';
import type { ReadModels } from '../definition/read-models.js';
import { SqliteEventStore } from '../eventstore/sqlite.js';
import { type Config, dataPath } from '../lib/config.js';
import { type DataDirLock, lockDataDir } from '../lib/data-lock.js';
import type { Logger } from '../lib/logger.js';
import { ProjectionRunner } from '../projectors/runner.js';
import { openReadModelDb } from '../projectors/stores/sqlite.js';
import { SqliteReadModels } from '../projectors/stores/sqlite-read-models.js';
import { CaptureGuard } from './capture-guard.js';

export interface EmbeddedPipeline {
  source: LegacyChangeSource;
  eventStore: SqliteEventStore;
  readDb: Database.Database;
  runner: ProjectionRunner;
  readModels: ReadModels;
  freshness: FreshnessPort;
  /** Resolves true once everything the legacy database had committed at the call is in the read models. */
  waitForCatchUp(timeoutMs: number): Promise<boolean>;
  stop(): Promise<void>;
}

export interface PipelineOptions {
  config: Config;
  /** The user's definition: what to capture and which read models to build. */
  migration: Migration;
  logger: Logger;
  registry?: Registry;
  /** Called when the source or the projector stops on an error. */
  onError?: (err: Error) => void;
  /** What holds the data directory, as the lock shows it to a second process (default "run"). */
  role?: string;
}

function pipelineMetrics(registry: Registry | undefined) {
  const registers = registry ? [registry] : [];
  return {
    transactions: new Counter({
      name: 'cqrs_cdc_transactions_total',
      help: 'Source transactions stored',
      registers,
    }),
    events: new Counter({ name: 'cqrs_domain_events_total', help: 'Domain events appended', registers }),
    deadLetters: new Counter({
      name: 'cqrs_dead_letters_total',
      help: 'Rows sent to the dead-letter store',
      registers,
    }),
    lag: new Gauge({
      name: 'cqrs_cdc_lag_ms',
      help: 'Source commit to event-store append, last transaction',
      registers,
    }),
  };
}

/** The embedded read models of a migration, ready for a ProjectionRunner over `db`. */
export function embeddedReadModels(migration: Migration): SqliteReadModels {
  return new SqliteReadModels(migration);
}

/**
 * The embedded default in one process: change source (binlog or pgoutput, from legacy.url's
 * scheme) → the definition's capture rules → SQLite event store → projection runner → SQLite
 * read models. The source offset is stored with each transaction's events, and the projector
 * checkpoint with each batch's writes, so stop/start anywhere resumes exactly.
 */
export async function startEmbeddedPipeline(options: PipelineOptions): Promise<EmbeddedPipeline> {
  mkdirSync(options.config.dataDir, { recursive: true });
  const lock = lockDataDir(options.config.dataDir, options.role ?? 'run');
  try {
    return await startWithLock(options, lock);
  } catch (err) {
    lock.release();
    throw err;
  }
}

async function startWithLock(options: PipelineOptions, lock: DataDirLock): Promise<EmbeddedPipeline> {
  const { config, logger, migration } = options;
  const fail = options.onError ?? ((err: Error) => logger.error({ err }, 'pipeline component failed'));
  const source = createChangeSource(config, { tables: migration.tables, logger, onError: fail });
  await source.preflight();
  const eventStore = new SqliteEventStore(dataPath(config, 'events.db'), { logger });
  const readDb = openReadModelDb(dataPath(config, 'read-models.db'), logger);
  const store = embeddedReadModels(migration);
  const metrics = pipelineMetrics(options.registry);
  const runner = new ProjectionRunner({
    eventStore,
    db: readDb,
    projections: [store],
    batchSize: config.projector.batchSize,
    pollIntervalMs: config.projector.pollIntervalMs,
    logger,
    onError: fail,
  });
  const open = eventStore.listSchemaChanges({ unresolvedBreaking: true });
  const guard = new CaptureGuard(migration.rules, source.name, open, logger, options.registry);
  const sink = async (tx: SourceTransaction) => {
    const { events, deadLetters, sweep, schemaChanges } = guard.map(tx);
    for (const d of deadLetters)
      logger.warn({ table: d.table, op: d.op, reason: d.reason }, 'row dead-lettered');
    await eventStore.append({
      sourceName: source.name,
      sourceTxId: tx.id,
      offset: tx.offset,
      events,
      deadLetters,
      ...(sweep === undefined ? {} : { sweep }),
      schemaChanges,
    });
    metrics.transactions.inc();
    metrics.events.inc(events.length);
    metrics.deadLetters.inc(deadLetters.length);
    const commitMs = tx.events[0]?.source.ts_ms;
    if (!tx.snapshot && commitMs !== undefined) metrics.lag.set(Date.now() - commitMs);
    runner.notify();
  };
  runner.start();
  await source.start(await eventStore.loadOffset(source.name), sink);

  const progress: SourceProgress = source.openProgress();
  const projectedAll = () => runner.checkpoint() >= eventStore.headPositionSync();
  const waitForCatchUp = async (timeoutMs: number) => {
    const end = await progress.legacyEnd();
    const deadline = Date.now() + timeoutMs;
    while (!(progress.reached(end) && projectedAll())) {
      if (Date.now() >= deadline || runner.error()) return false;
      await new Promise((r) => setTimeout(r, 25));
    }
    return true;
  };
  return {
    source,
    eventStore,
    readDb,
    runner,
    readModels: store.readModels(readDb),
    freshness: {
      isCaughtUp: async () => (await progress.reachedLegacyEnd()) && projectedAll(),
      waitForCatchUp,
    },
    waitForCatchUp,
    async stop() {
      await source.stop();
      await runner.stop();
      await eventStore.close();
      readDb.close();
      await progress.close();
      lock.release();
    },
  };
}
