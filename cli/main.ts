#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { SqliteComparisonRecorder } from '../compare/recorder.js';
import { buildReport, renderReportText } from '../compare/report.js';
import {
  connectorStatus,
  deleteConnector,
  deployConnector,
  pauseConnector,
  renderConnector,
  resumeConnector,
} from '../connectors/debezium/cli.js';
import { buildConnector, type ConnectorKind, type ConnectorOptions } from '../connectors/debezium/config.js';
import { ConnectClient } from '../connectors/debezium/connect-client.js';
import { parsePostgresUrl } from '../connectors/pgoutput/config.js';
import { SqliteEventStore } from '../eventstore/sqlite.js';
import { createBankDatabase, openPool, parseMysqlUrl } from '../examples/bank/db.js';
import { BANK_TABLES, generateBank, type ScaleName } from '../examples/bank/generate.js';
import { runWorkload } from '../examples/bank/workload.js';
import { type Config, dataPath, loadConfig } from '../lib/config.js';
import { AdapterError, errorMessage } from '../lib/errors.js';
import { createLogger } from '../lib/logger.js';
import { rebuildProjection } from '../projectors/kafka-runner.js';
import { ProjectionRunner } from '../projectors/runner.js';
import { openReadModelDb } from '../projectors/stores/sqlite.js';
import { runDemo } from './demo.js';
import {
  distributedLag,
  documentProjection,
  kafkaFrom,
  parseStore,
  STORES,
  startProjector,
  startTranslator,
} from './distributed.js';
import { bankProjections, startEmbeddedPipeline } from './pipeline.js';
import { embeddedReadSide, serverReadSide, startDistributedInProcess } from './read-side.js';
import { reconcileOnce, scheduleReconciliation } from './reconcile.js';
import { serveMetrics, startApi } from './serve.js';

const USAGE = `cqrs-migrate <command> [options]

  demo [--duration 60] [--scale tiny|small|bench] [--write-rate 50] [--read-rate 40] [--seed 42]
                          sample bank + embedded pipeline + shadow API under load, then the report
  run                     embedded pipeline + shadow API until interrupted
  report [--json]         comparison match rates per endpoint
  rebuild [--store mongo|opensearch]
                          replay the event store into empty read models (with --store: empty the
                          server read model and rewind its consumer group; projectors stopped)
  dead-letters [--limit 20]
  bank create [--scale tiny|small|bench] [--seed 42]     (re)create the sample bank in legacy.url
  bank load [--rate 50] [--duration 60] [--seed 43]      write load on the sample bank
  reconcile [--sample N]  compare every (or N sampled) account's summary and history with the legacy answer
  connector render|deploy|status|pause|resume|stop|offsets|delete [--kind mariadb|mysql|postgresql] [--name N]
                          Debezium connector on Kafka Connect (connect.url, default http://127.0.0.1:8083)

  distributed mode (Debezium on Kafka Connect → Kafka → MongoDB / OpenSearch):
  translate               Debezium topics → domain-event topics (extra instances are hot standbys)
  project --store mongo|opensearch
                          one projector process; start several per store to share the partitions
  serve                   shadow API over the server read models (no pipeline in this process)
  lag [--json]            consumer-group lag of the translator and each projector
  run                     with cdc.mode=kafka: translator, both projectors and the API in one process

  --config FILE           configuration file (default ./cqrs-migrate.config.json); see README
`;

const print = (s: string) => process.stdout.write(`${s}\n`);

function untilSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
}

/**
 * The connector options from the configuration. The legacy database and Kafka are addressed as
 * the Connect workers reach them, which in Docker differs from this process's view.
 */
function connectorOptions(
  config: Config,
  kind: ConnectorKind,
  name: string,
): ConnectorOptions<ConnectorKind> {
  const url = config.connect.legacyUrl ?? config.legacy.url;
  const common = {
    name,
    topicPrefix: config.cdc.name,
    tables: config.cdc.tables.length > 0 ? config.cdc.tables : [...BANK_TABLES],
  };
  if (kind === 'postgresql') {
    const pg = parsePostgresUrl(url);
    return {
      ...common,
      host: pg.host,
      port: pg.port,
      user: pg.user,
      password: pg.password,
      database: pg.database,
    };
  }
  const legacy = parseMysqlUrl(url);
  return {
    ...common,
    kafkaBootstrap: config.connect.kafkaBootstrap ?? config.kafka.brokers.join(','),
    host: legacy.host,
    port: legacy.port,
    user: legacy.user,
    password: legacy.password,
    database: legacy.database ?? 'legacy_bank',
  };
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      duration: { type: 'string' },
      scale: { type: 'string' },
      seed: { type: 'string' },
      rate: { type: 'string' },
      'write-rate': { type: 'string' },
      'read-rate': { type: 'string' },
      json: { type: 'boolean' },
      limit: { type: 'string' },
      kind: { type: 'string' },
      name: { type: 'string' },
      store: { type: 'string' },
      sample: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, sub] = positionals;
  if (values.help || !command) {
    print(USAGE);
    return command ? 0 : 2;
  }
  const config = loadConfig(values.config ? { file: values.config } : {});
  const logger = createLogger({
    level: command === 'demo' ? (process.env.LOG_LEVEL ?? 'warn') : config.log.level,
  });
  const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));

  switch (command) {
    case 'demo':
      await runDemo(
        config,
        {
          durationSec: num(values.duration, 60),
          scale: (values.scale ?? 'small') as ScaleName,
          writeRate: num(values['write-rate'], 50),
          readRate: num(values['read-rate'], 40),
          seed: num(values.seed, 42),
        },
        logger,
      );
      return 0;
    case 'run': {
      const registry = new Registry();
      const legacy = parseMysqlUrl(config.legacy.url);
      const pool = openPool(legacy, legacy.database ?? 'legacy_bank', {
        connectionLimit: config.legacy.poolSize,
      });
      const side =
        config.cdc.mode === 'kafka'
          ? await startDistributedInProcess(config, logger, registry)
          : await startEmbeddedPipeline({ config, logger, registry });
      const api = await startApi(config, side, pool, logger, registry);
      const job = scheduleReconciliation({
        config,
        legacyPool: pool,
        readModel: side.readModels,
        freshness: side.freshness,
        recorder: api.recorder,
        logger,
      });
      logger.info({ url: api.url, mode: config.cdc.mode }, 'pipeline and shadow API running');
      print(`shadow API on ${api.url} (${config.cdc.mode} pipeline) — Ctrl-C stops`);
      await untilSignal();
      job?.stop();
      await api.close();
      await side.stop();
      await pool.end();
      return 0;
    }
    case 'serve': {
      const registry = new Registry();
      const legacy = parseMysqlUrl(config.legacy.url);
      const pool = openPool(legacy, legacy.database ?? 'legacy_bank', {
        connectionLimit: config.legacy.poolSize,
      });
      const side = serverReadSide(config);
      const api = await startApi(config, side, pool, logger, registry);
      print(`shadow API on ${api.url} over the server read models — Ctrl-C stops`);
      await untilSignal();
      await api.close();
      await side.stop();
      await pool.end();
      return 0;
    }
    case 'translate': {
      const registry = new Registry();
      const running = await startTranslator(config, logger, registry);
      const metrics = await serveMetrics(config, registry, logger);
      print(`translating ${config.cdc.name}.* → ${config.kafka.topicPrefix}.events.* — Ctrl-C stops`);
      await untilSignal();
      await running.stop();
      await metrics.close();
      return 0;
    }
    case 'project': {
      const store = parseStore(values.store);
      const registry = new Registry();
      const running = await startProjector(config, store, logger, registry);
      const metrics = await serveMetrics(config, registry, logger);
      print(`projecting ${running.projection.name} into ${store} — Ctrl-C stops`);
      await untilSignal();
      await running.stop();
      await metrics.close();
      return 0;
    }
    case 'lag': {
      const kafka = kafkaFrom(config, 'lag');
      const lag = await distributedLag(
        config,
        kafka,
        STORES.map((s) => documentProjection(config, s, logger)),
      );
      if (values.json) print(JSON.stringify(lag, null, 2));
      else {
        print(`translator           ${lag.translator}`);
        for (const [name, n] of Object.entries(lag.projectors)) print(`${name.padEnd(20)} ${n}`);
      }
      return 0;
    }
    case 'reconcile': {
      const legacy = parseMysqlUrl(config.legacy.url);
      const pool = openPool(legacy, legacy.database ?? 'legacy_bank', {
        connectionLimit: config.legacy.poolSize,
      });
      const side =
        config.cdc.mode === 'kafka' ? serverReadSide(config) : await embeddedReadSide(config, logger);
      const recorder = new SqliteComparisonRecorder({ path: dataPath(config, 'compare.db'), logger });
      const result = await reconcileOnce(
        { config, legacyPool: pool, readModel: side.readModels, freshness: side.freshness, recorder, logger },
        values.sample === undefined ? undefined : num(values.sample, 0),
      );
      print(JSON.stringify(result, null, 2));
      recorder.close();
      await side.stop();
      await pool.end();
      return 0;
    }
    case 'report': {
      const recorder = new SqliteComparisonRecorder({ path: dataPath(config, 'compare.db') });
      const report = buildReport(recorder.stats());
      print(values.json ? JSON.stringify(report, null, 2) : renderReportText(report));
      recorder.close();
      return 0;
    }
    case 'rebuild': {
      if (values.store !== undefined) {
        const store = parseStore(values.store);
        const projection = documentProjection(config, store, logger);
        await rebuildProjection(kafkaFrom(config, 'rebuild', logger), projection, config.kafka.topicPrefix);
        await projection.close();
        print(
          `${projection.name} in ${store} emptied; its projectors replay the domain topics from the start when started`,
        );
        return 0;
      }
      const eventStore = new SqliteEventStore(dataPath(config, 'events.db'));
      const db = openReadModelDb(dataPath(config, 'read-models.db'));
      const runner = new ProjectionRunner({
        eventStore,
        db,
        projections: bankProjections(),
        batchSize: config.projector.batchSize,
        logger,
      });
      const t0 = performance.now();
      const n = await runner.rebuild();
      const sec = (performance.now() - t0) / 1000;
      print(`rebuilt read models from ${n} events in ${sec.toFixed(1)} s (${Math.round(n / sec)} events/s)`);
      await eventStore.close();
      db.close();
      return 0;
    }
    case 'dead-letters': {
      const store = new SqliteEventStore(dataPath(config, 'events.db'));
      for (const d of await store.listDeadLetters(num(values.limit, 20))) {
        print(
          `${d.recordedAt} ${d.table} op=${d.op} at ${d.sourcePosition} (tx ${d.sourceTxId}): ${d.reason}`,
        );
      }
      print(`${await store.countDeadLetters()} dead letters in total`);
      await store.close();
      return 0;
    }
    case 'bank': {
      const legacy = parseMysqlUrl(config.legacy.url);
      const database = legacy.database ?? 'legacy_bank';
      if (sub === 'create') {
        await createBankDatabase(legacy, database, { dropExisting: true });
        const pool = openPool(legacy, database);
        const r = await generateBank(
          pool,
          { seed: num(values.seed, 42), scale: (values.scale ?? 'small') as ScaleName },
          (p) => logger.info(p, 'generating'),
        );
        print(`${database}: ${r.rows} rows in ${(r.elapsedMs / 1000).toFixed(1)} s (${r.rowsPerSec} rows/s)`);
        await pool.end();
        return 0;
      }
      if (sub === 'load') {
        const pool = openPool(legacy, database, { connectionLimit: 8 });
        const stats = await runWorkload(pool, {
          seed: num(values.seed, 43),
          ratePerSec: num(values.rate, 50),
          durationMs: num(values.duration, 60) * 1000,
          logger,
        });
        print(JSON.stringify(stats, null, 2));
        await pool.end();
        return 0;
      }
      break;
    }
    case 'connector': {
      const kind = (values.kind ?? 'mariadb') as ConnectorKind;
      const name = values.name ?? `${config.cdc.name}-${kind}`;
      const client = new ConnectClient({ url: config.connect.url, logger });
      const show = (v: unknown) => print(typeof v === 'string' ? v : JSON.stringify(v, null, 2));
      switch (sub) {
        case 'render': {
          show(renderConnector(kind, connectorOptions(config, kind, name)));
          return 0;
        }
        case 'deploy':
          show(await deployConnector(client, buildConnector(kind, connectorOptions(config, kind, name))));
          return 0;
        case 'status':
          show(await connectorStatus(client, name));
          return 0;
        case 'pause':
          show(await pauseConnector(client, name));
          return 0;
        case 'resume':
          show(await resumeConnector(client, name));
          return 0;
        case 'delete':
          show(await deleteConnector(client, name));
          return 0;
        case 'stop':
          await client.stop(name);
          show(await connectorStatus(client, name));
          return 0;
        case 'offsets':
          show(await client.offsets(name));
          return 0;
      }
      break;
    }
  }
  process.stderr.write(`unknown command: ${positionals.join(' ')}\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof AdapterError) {
      process.stderr.write(`error [${err.code}]: ${err.message}\n`);
      if (err.hint) process.stderr.write(`  fix: ${err.hint}\n`);
    } else {
      process.stderr.write(`error: ${errorMessage(err)}\n`);
      if (err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    }
    process.exit(1);
  },
);
