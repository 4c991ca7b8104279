import { mkdirSync } from 'node:fs';
import type Database from 'better-sqlite3';
import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';
import type { FreshnessPort } from '../compare/ports.js';
import type { BinlogPosition, BinlogSourceConfigInput } from '../connectors/binlog/config.js';
import { binlogEnd, positionAtLeast } from '../connectors/binlog/server-position.js';
import { MysqlBinlogSource } from '../connectors/binlog/source.js';
import type { SourceTransaction } from '../connectors/change-event.js';
import { mapTransaction } from '../connectors/mapping/mapper.js';
import type { RuleSet } from '../connectors/mapping/rule-set.js';
import { SqliteEventStore } from '../eventstore/sqlite.js';
import { openPool, parseMysqlUrl } from '../examples/bank/db.js';
import { bankRules } from '../examples/bank/mapping.js';
import { type Config, dataPath } from '../lib/config.js';
import type { Logger } from '../lib/logger.js';
import { AccountSummaryProjection } from '../projectors/account-summary.js';
import type { SqliteProjection } from '../projectors/ports.js';
import { ProjectionRunner } from '../projectors/runner.js';
import { openReadModelDb, SqliteReadModelQueries } from '../projectors/stores/sqlite.js';
import { TransactionHistoryProjection } from '../projectors/transaction-history.js';

export interface EmbeddedPipeline {
  source: MysqlBinlogSource;
  eventStore: SqliteEventStore;
  readDb: Database.Database;
  runner: ProjectionRunner;
  readModels: SqliteReadModelQueries;
  freshness: FreshnessPort;
  /** Resolves true once everything the legacy database had committed at the call is in the read models. */
  waitForCatchUp(timeoutMs: number): Promise<boolean>;
  stop(): Promise<void>;
}

export interface PipelineOptions {
  config: Config;
  logger: Logger;
  registry?: Registry;
  rules?: RuleSet;
  /** Called when the source or the projector stops on an error. */
  onError?: (err: Error) => void;
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

/** The read models of the sample bank, in the order the runner applies them. */
export function bankProjections(): SqliteProjection[] {
  return [new AccountSummaryProjection(), new TransactionHistoryProjection()];
}

/** The embedded reader's settings, from the adapter's configuration. */
export function binlogSourceConfigFrom(config: Config): BinlogSourceConfigInput {
  const legacy = parseMysqlUrl(config.legacy.url);
  return {
    host: legacy.host,
    port: legacy.port,
    user: legacy.user,
    password: legacy.password,
    database: legacy.database ?? 'legacy_bank',
    serverId: config.cdc.serverId,
    name: config.cdc.name,
    flavor: config.legacy.flavor,
    tables: config.cdc.tables,
    snapshotMode: config.cdc.snapshotMode,
    snapshotChunkRows: config.cdc.snapshotChunkRows,
  };
}

/**
 * The embedded default in one process: binlog reader → mapping rules → SQLite event store →
 * projection runner → SQLite read models. The source offset is stored with each transaction's
 * events, and the projector checkpoint with each batch's writes, so stop/start anywhere
 * resumes exactly.
 */
export async function startEmbeddedPipeline(options: PipelineOptions): Promise<EmbeddedPipeline> {
  const { config, logger } = options;
  const rules = options.rules ?? bankRules;
  mkdirSync(config.dataDir, { recursive: true });
  const legacy = parseMysqlUrl(config.legacy.url);
  const eventStore = new SqliteEventStore(dataPath(config, 'events.db'), { logger });
  const readDb = openReadModelDb(dataPath(config, 'read-models.db'), logger);
  const metrics = pipelineMetrics(options.registry);
  const fail = options.onError ?? ((err: Error) => logger.error({ err }, 'pipeline component failed'));
  const runner = new ProjectionRunner({
    eventStore,
    db: readDb,
    projections: bankProjections(),
    batchSize: config.projector.batchSize,
    pollIntervalMs: config.projector.pollIntervalMs,
    logger,
    onError: fail,
  });
  const source = new MysqlBinlogSource(binlogSourceConfigFrom(config), { logger, onError: fail });
  const sink = async (tx: SourceTransaction) => {
    const { events, deadLetters } = mapTransaction(tx, rules);
    for (const d of deadLetters)
      logger.warn({ table: d.table, op: d.op, reason: d.reason }, 'row dead-lettered');
    await eventStore.append({
      sourceName: source.name,
      sourceTxId: tx.id,
      offset: tx.offset,
      events,
      deadLetters,
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

  // Freshness checks run per shadow comparison: one kept connection, not one per check.
  const headPool = openPool(legacy, legacy.database ?? 'legacy_bank', { connectionLimit: 1 });
  const legacyHead = () => binlogEnd(headPool, config.legacy.flavor ?? 'mariadb');
  const projectedAll = () => runner.checkpoint() >= eventStore.headPositionSync();
  const reached = (head: Pick<BinlogPosition, 'file' | 'pos'>) => {
    const seen = source.seenPosition();
    const stored = source.offset();
    const at = seen ?? (stored?.phase === 'stream' ? { file: stored.file, pos: stored.pos } : null);
    return at !== null && positionAtLeast(at, head) && source.idle() && projectedAll();
  };
  const waitForCatchUp = async (timeoutMs: number) => {
    const head = await legacyHead();
    const deadline = Date.now() + timeoutMs;
    while (!reached(head)) {
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
    readModels: new SqliteReadModelQueries(readDb),
    freshness: {
      isCaughtUp: async () => reached(await legacyHead()),
      waitForCatchUp,
    },
    waitForCatchUp,
    async stop() {
      await source.stop();
      await runner.stop();
      await eventStore.close();
      readDb.close();
      await headPool.end();
    },
  };
}
