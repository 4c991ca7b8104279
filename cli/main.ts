#!/usr/bin/env node
import cluster from 'node:cluster';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type Database from 'better-sqlite3';
import { Registry } from 'prom-client';
import type { RepairPort } from '../compare/reconcile.js';
import { createReconcileMetrics } from '../compare/reconcile-metrics.js';
import { SqliteComparisonRecorder } from '../compare/recorder.js';
import { buildReport } from '../compare/report.js';
import { renderReport, reportFailed } from '../compare/report-formats.js';
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
import { openLegacyDb, parseLegacyUrl, requireDatabase, schemaOf } from '../connectors/legacy/index.js';
import { createChangeSource } from '../connectors/source-factory.js';
import { initDefinition } from '../definition/init/index.js';
import { definitionFileOf, loadDefinition } from '../definition/load.js';
import { endpointsOfDomain, type Migration } from '../definition/migration.js';
import { SqliteEventStore } from '../eventstore/sqlite.js';
import { type Config, DEFAULT_LEGACY_URL, dataPath, loadConfig } from '../lib/config.js';
import { liveHolder, lockDataDir } from '../lib/data-lock.js';
import { AdapterError, ConfigError, errorMessage } from '../lib/errors.js';
import { createLogger, type Logger } from '../lib/logger.js';
import { ProgressMeter } from '../lib/progress.js';
import type { ComposeThreadsOption } from '../projectors/ports.js';
import { embeddedProjections } from '../projectors/replay.js';
import { ProjectionRunner } from '../projectors/runner.js';
import { openReadModelDb } from '../projectors/stores/sqlite.js';
import { renderAuditText, SqliteAuditLog } from '../shadow-api/audit-log.js';
import { runApiWorker } from './api-worker.js';
import { demoPlan, runDemo } from './demo.js';
import type { ConnectorDistance } from './distributed-health.js';
import { flagsCommand } from './flags.js';
import { checkDefinitionQueries } from './legacy-check.js';
import {
  deadLetterDrift,
  listDeadLetters,
  redriveDeadLetters,
  resnapshotTable,
  showSchemaChanges,
} from './operations.js';
import { type EmbeddedPipeline, embeddedAnalytics, startEmbeddedPipeline } from './pipeline.js';
import { type CommandHandlers, type GlobalOptions, runProgram } from './program.js';
import { embeddedRepair, reconcileOnce, scheduleReconciliation } from './reconcile.js';
import { dropCommand, replayCommand, rollbackCommand, switchCommand, versionsCommand } from './replay.js';
import { startRetention } from './retention.js';
import { rolloutCommand } from './rollout.js';
import { serveMetrics, startApi } from './serve.js';
import { storedReadSide } from './stored-read-side.js';

/**
 * The Kafka, MongoDB and OpenSearch clients are imported by the commands that use them: loaded
 * by every command, they were 1,087 of the 1,980 files `--help` opened, and `--help` took 1.2 s
 * instead of 0.8 s built (2.0 s instead of 1.4 s through tsx). test/integration/cli-startup
 * keeps it so.
 */
const distributed = () => import('./distributed.js');
const readSide = () => import('./read-side.js');

/** How often `rebuild` logs its progress (the snapshot's interval). */
const REBUILD_PROGRESS_MS = 2000;

const print = (s: string) => process.stdout.write(`${s}\n`);
const replayIo = {
  out: (text: string) => process.stdout.write(text),
  err: (text: string) => process.stderr.write(text),
  tty: process.stderr.isTTY === true,
};

function renderDistance(d: ConnectorDistance | { error: string }): string {
  if ('error' in d) return `unknown (${d.error})`;
  if (d.caughtUp) return 'caught up with the legacy change log';
  const bound = d.atMostSeconds === null ? '' : ` by at most ${d.atMostSeconds.toFixed(1)} s`;
  return `behind${bound}: connector at ${JSON.stringify(d.offset)}, legacy at ${JSON.stringify(d.legacyEnd)}`;
}

function untilSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
}

/** A distributed process whose consumer could not be restarted says so and exits non-zero, so its supervisor restarts it. */
function reportStopped(logger: Logger, err: AdapterError): void {
  logger.error({ err }, 'consumer stopped for good; exiting');
  process.stderr.write(
    `error [${err.code}]: ${err.message}\n  exiting so a supervisor restarts the process\n`,
  );
}

/** The checkout's examples folder (absent from an installed package). */
function exampleDefinition(name: string): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const root of [join(here, '..'), join(here, '..', '..')]) {
    const path = join(root, 'examples', name, 'migration.ts');
    if (existsSync(path)) return path;
  }
  throw new ConfigError(`no example named "${name}"`, {
    hint: 'examples ship with the source checkout: examples/<name>/migration.ts (bank, shop)',
  });
}

/** ", API workers 123, 124" when api.workers > 1 forked them, else nothing. */
function workersNote(pids: number[]): string {
  return pids.length === 0 ? '' : `, API workers ${pids.join(', ')}`;
}

interface Context {
  config: Config;
  logger: Logger;
}

function context(options: GlobalOptions, quiet = false): Context {
  const config = loadConfig(options.config === undefined ? {} : { file: options.config });
  const logger = createLogger({ level: quiet ? (process.env.LOG_LEVEL ?? 'warn') : config.log.level });
  return { config, logger };
}

function knownDomain(migration: Migration, domain: string): string[] {
  const endpoints = endpointsOfDomain(migration, domain);
  if (endpoints === null)
    throw new ConfigError(`no domain "${domain}" in the definition`, {
      hint: `domains: ${migration.domains.join(', ')}`,
    });
  return endpoints;
}

/** The user's definition file: --definition, else CQRS_DEFINITION / the config's `definition`. */
function definitionPathOf(options: GlobalOptions, config: Config): string {
  const path = options.definition ?? config.definition;
  if (path === undefined) {
    throw new ConfigError('no migration definition given', {
      hint: 'pass --definition ./migration.ts (or set CQRS_DEFINITION); `cqrs-migrate init` writes a starter one from your database',
    });
  }
  return path;
}

/** RunnerOptions.compose: projector.composeThreads, when the definition came from a file they can load. */
function composeOf(config: Config, migration: Migration): { compose?: ComposeThreadsOption } {
  const definition = definitionFileOf(migration);
  const threads = config.projector.composeThreads;
  return threads > 0 && definition !== undefined ? { compose: { definition, threads } } : {};
}

/** The user's definition (see definitionPathOf). */
function definitionOf(options: GlobalOptions, config: Config): Promise<Migration> {
  return loadDefinition(definitionPathOf(options, config));
}

/** The definition of a command that serves or compares it, its legacy SQL checked on the legacy database first. */
async function checkedDefinitionOf(
  options: GlobalOptions,
  config: Config,
  logger: Logger,
): Promise<Migration> {
  const path = definitionPathOf(options, config);
  const migration = await loadDefinition(path);
  await checkDefinitionQueries(config, migration, path, logger);
  return migration;
}

function connectorOptions(
  config: Config,
  migration: Migration,
  kind: ConnectorKind,
  name: string,
): ConnectorOptions<ConnectorKind> {
  const url = config.connect.legacyUrl ?? config.legacy.url;
  const legacy = parseLegacyUrl(url);
  const common = {
    name,
    topicPrefix: config.cdc.name,
    tables: config.cdc.tables.length > 0 ? config.cdc.tables : [...migration.tables],
    host: legacy.host,
    port: legacy.port,
    user: legacy.user,
    password: legacy.password,
    database: requireDatabase(url, legacy),
    pollIntervalMs: config.connect.pollIntervalMs,
  };
  if (kind === 'postgresql') return { ...common, schema: schemaOf(legacy) };
  return { ...common, kafkaBootstrap: config.connect.kafkaBootstrap ?? config.kafka.brokers.join(',') };
}

/**
 * What `reconcile --repair` writes with: the embedded read models and event store, under the
 * data directory's lock. Beside a live `run` it refuses instead of handing the repair over: that
 * process is the read models' one writer, and its own scheduled job repairs with
 * compare.reconcile.repair, so a second writing path (an admin route) is not needed.
 */
function openRepair(
  config: Config,
  migration: Migration,
  logger: Logger,
): { port: RepairPort; close(): void } {
  if (config.cdc.mode === 'kafka') {
    throw new ConfigError('reconcile --repair re-projects the embedded read models; cdc.mode is kafka', {
      hint: 'rebuild the server read models with `rebuild`, or re-capture the drifted rows with `resnapshot --table <t> --where <key condition> --force`',
    });
  }
  const holder = liveHolder(config.dataDir);
  if (holder !== null) {
    throw new AdapterError(
      'DATA_DIR_LOCKED',
      `reconcile --repair writes the read models, and \`${holder.role}\` (pid ${holder.pid}) owns ${config.dataDir}`,
      {
        hint: 'let the live process repair: set compare.reconcile.repair (CQRS_RECONCILE_REPAIR=true) with compare.reconcileCron; or stop it and repair; `reconcile` without --repair runs beside it',
      },
    );
  }
  const lock = lockDataDir(config.dataDir, 'reconcile --repair');
  const opened: { db?: Database.Database; events?: SqliteEventStore } = {};
  try {
    opened.db = openReadModelDb(dataPath(config, 'read-models.db'), logger);
    opened.events = new SqliteEventStore(dataPath(config, 'events.db'), { logger });
  } catch (err) {
    opened.db?.close();
    lock.release();
    throw err;
  }
  const { db, events } = opened;
  return {
    port: embeddedRepair(migration, db, events, logger),
    close() {
      events.closeSync();
      db.close();
      lock.release();
    },
  };
}

/** The scheduled job's repair in `run`: a repair moves no checkpoint, so the cache is dropped after it. */
function repairThenDropCache(embedded: EmbeddedPipeline, migration: Migration, logger: Logger): RepairPort {
  const repair = embeddedRepair(migration, embedded.readDb, embedded.eventStore, logger);
  return async (drifted) => {
    await repair(drifted);
    await embedded.dropCache();
  };
}

/** Versions of the server read models (this branch); the embedded read models' versions are another path. */
const handlers: CommandHandlers = {
  async demo(options) {
    const { config: loaded, logger } = context(options, true);
    const definition =
      options.definition ?? loaded.definition ?? exampleDefinition(options.example ?? 'bank');
    const migration = await loadDefinition(definition);
    const { sample } = demoPlan(migration, { ...options, scale: options.scale });
    const config =
      loaded.legacy.url === DEFAULT_LEGACY_URL && sample.url !== undefined
        ? { ...loaded, legacy: { ...loaded.legacy, url: sample.url } }
        : loaded;
    await runDemo(config, migration, { ...options, scale: options.scale }, logger, definition);
    return 0;
  },

  async run(options) {
    const { config, logger } = context(options);
    // An API worker forked by this command's primary (api.workers > 1): the same argv, its own job.
    if (cluster.isWorker)
      return runApiWorker(
        config,
        await definitionOf(options, config),
        logger,
        config.cdc.mode === 'kafka' ? 'server' : 'embedded',
      );
    const migration = await checkedDefinitionOf(options, config, logger);
    const registry = new Registry();
    const legacy = openLegacyDb(config.legacy.url, { poolSize: config.legacy.poolSize, logger });
    // The pipeline restarts a failed source or projector itself; one that stays down past
    // supervision.failureBudgetMs (or fails in a way a restart cannot fix) must not leave an API
    // that looks healthy over read models going stale: the process exits non-zero, and a
    // supervisor's restart resumes exactly from the stored offset and checkpoint.
    let componentFailed: (err: Error) => void = () => undefined;
    const failure = new Promise<Error>((resolve) => {
      componentFailed = resolve;
    });
    const embedded =
      config.cdc.mode === 'kafka'
        ? undefined
        : await startEmbeddedPipeline({
            config,
            migration,
            logger,
            registry,
            onError: (err) => componentFailed(err),
          });
    const side =
      embedded ??
      (await (
        await readSide()
      ).startDistributedInProcess(config, migration, logger, registry, (err) => componentFailed(err)));
    const api = await startApi(config, migration, side, legacy, logger, registry);
    const job = scheduleReconciliation({
      config,
      migration,
      legacy,
      readModels: side.readModels,
      ...(side.analytics ? { analytics: side.analytics } : {}),
      freshness: side.freshness,
      recorder: api.recorder,
      logger,
      metrics: createReconcileMetrics(registry),
      // This process owns the data directory: its scheduled job is where embedded repairs run.
      ...(embedded ? { repair: repairThenDropCache(embedded, migration, logger) } : {}),
    });
    const retention = startRetention(
      config,
      { comparisons: api.recorder, ...(embedded ? { deadLetters: embedded.eventStore } : {}) },
      logger,
    );
    logger.info(
      { url: api.url, adminUrl: api.adminUrl, mode: config.cdc.mode },
      'pipeline and shadow API running',
    );
    print(
      `shadow API on ${api.url} — admin on ${api.adminUrl} (${config.cdc.mode} pipeline, ${migration.name}${workersNote(api.workerPids())}) — Ctrl-C stops`,
    );
    const failed = await Promise.race([untilSignal().then(() => null), failure, api.failed]);
    if (failed !== null) {
      logger.error({ err: failed }, 'pipeline component or API workers failed; stopping');
      const code = (failed as Partial<AdapterError>).code ?? 'PIPELINE_FAILED';
      process.stderr.write(
        `error [${code}]: ${errorMessage(failed)}\n  the pipeline stopped; exiting so a supervisor restarts it (it resumes from the stored offset)\n`,
      );
    }
    job?.stop();
    await retention.stop();
    await api.close();
    await side.stop();
    await legacy.close();
    return failed === null ? 0 : 1;
  },

  async serve(options) {
    const { config, logger } = context(options);
    if (cluster.isWorker) return runApiWorker(config, await definitionOf(options, config), logger, 'server');
    const migration = await checkedDefinitionOf(options, config, logger);
    const registry = new Registry();
    const legacy = openLegacyDb(config.legacy.url, { poolSize: config.legacy.poolSize, logger });
    const side = (await readSide()).serverReadSide(config, migration, logger, { registry });
    const api = await startApi(config, migration, side, legacy, logger, registry);
    const retention = startRetention(config, { comparisons: api.recorder }, logger);
    print(
      `shadow API on ${api.url} — admin on ${api.adminUrl}, over the server read models${workersNote(api.workerPids())} — Ctrl-C stops`,
    );
    const failed = await Promise.race([untilSignal().then(() => null), api.failed]);
    if (failed !== null) {
      logger.error({ err: failed }, 'API workers failed; stopping');
      process.stderr.write(
        `error [${(failed as Partial<AdapterError>).code ?? 'API_FAILED'}]: ${errorMessage(failed)}\n`,
      );
    }
    await retention.stop();
    await api.close();
    await side.stop();
    await legacy.close();
    return failed === null ? 0 : 1;
  },

  async translate(options) {
    const { config, logger } = context(options);
    const migration = await definitionOf(options, config);
    const registry = new Registry();
    const running = await (await distributed()).startTranslator(config, migration, logger, registry);
    const metrics = await serveMetrics(config, registry, logger);
    print(`translating ${config.cdc.name}.* → ${config.kafka.topicPrefix}.events.* — Ctrl-C stops`);
    const failed = await Promise.race([untilSignal().then(() => null), running.failed]);
    if (failed !== null) reportStopped(logger, failed);
    await running.stop();
    await metrics.close();
    return failed === null ? 0 : 1;
  },

  async project(options) {
    const { config, logger } = context(options);
    const migration = await definitionOf(options, config);
    const registry = new Registry();
    const running = await (await distributed()).startProjector(
      config,
      migration,
      options.store,
      logger,
      registry,
    );
    const metrics = await serveMetrics(config, registry, logger);
    print(`projecting ${running.names.join(', ') || 'no read model'} into ${options.store} — Ctrl-C stops`);
    const failed = await Promise.race([untilSignal().then(() => null), running.failed]);
    if (failed !== null) reportStopped(logger, failed);
    await running.stop();
    await metrics.close();
    return failed === null ? 0 : 1;
  },

  async lag(options) {
    const { config, logger } = context(options);
    const migration = await definitionOf(options, config);
    const { kafkaFrom, distributedLag } = await distributed();
    const { connectorDistance } = await import('./distributed-health.js');
    const kafka = kafkaFrom(config, 'lag', logger);
    const lag = await distributedLag(config, migration, kafka);
    const source =
      lag.connector === null
        ? null
        : await connectorDistance(config, kafka, lag.connector.name).catch((err: unknown) => ({
            error: errorMessage(err),
          }));
    if (options.json) print(JSON.stringify({ ...lag, source }, null, 2));
    else {
      print(
        `connector            ${lag.connector === null ? `none found on Connect at ${config.connect.url}` : `${lag.connector.name} ${lag.connector.state}`}`,
      );
      if (source !== null) print(`source               ${renderDistance(source)}`);
      print(`translator           ${lag.translator}`);
      for (const [name, n] of Object.entries(lag.projectors)) print(`${name.padEnd(20)} ${n}`);
    }
    return 0;
  },

  async report(options) {
    const { config } = context(options);
    const endpoints =
      options.domain === undefined
        ? undefined
        : knownDomain(await definitionOf(options, config), options.domain);
    const recorder = new SqliteComparisonRecorder({ path: dataPath(config, 'compare.db') });
    try {
      const report = buildReport(
        recorder.stats({
          ...(options.since === undefined ? {} : { since: new Date(options.since) }),
          ...(options.until === undefined ? {} : { until: new Date(options.until) }),
          ...(endpoints === undefined ? {} : { endpoints }),
        }),
        undefined,
        options.domain ?? null,
      );
      const text = renderReport(report, options.format);
      if (options.out === undefined) process.stdout.write(text);
      else writeFileSync(options.out, text);
      // In CI, a junit report with a failing endpoint fails the job as a failed test would.
      return options.format === 'junit' && report.endpoints.some((e) => reportFailed(e)) ? 1 : 0;
    } finally {
      recorder.close();
    }
  },

  async audit(options) {
    const { config } = context(options, true);
    const audit = new SqliteAuditLog(dataPath(config, 'audit.db'));
    try {
      const entries = audit.list({
        ...(options.since ? { since: options.since } : {}),
        limit: options.limit,
      });
      process.stdout.write(options.json ? `${JSON.stringify(entries, null, 2)}\n` : renderAuditText(entries));
    } finally {
      audit.close();
    }
    return 0;
  },

  async rollout(options) {
    const { config } = context(options, true);
    return rolloutCommand(config, options, (text) => process.stdout.write(text));
  },

  async flags(options) {
    const { config } = context(options, true);
    return flagsCommand(config, options, (text) => process.stdout.write(text));
  },

  async rebuild(options) {
    const { config, logger } = context(options);
    const migration = await definitionOf(options, config);
    if (options.store !== undefined) {
      const names = await (await distributed()).rebuildStore(config, migration, options.store, logger);
      print(
        `${names.join(', ')} in ${options.store} emptied; its projectors replay the domain topics from the start when started`,
      );
      return 0;
    }
    mkdirSync(config.dataDir, { recursive: true });
    const lock = lockDataDir(config.dataDir, 'rebuild');
    const eventStore = new SqliteEventStore(dataPath(config, 'events.db'));
    const db = openReadModelDb(dataPath(config, 'read-models.db'));
    const runner = new ProjectionRunner({
      eventStore,
      db,
      // Replayed versions the live projector maintains are rebuilt with version 1.
      projections: embeddedProjections(migration, db),
      batchSize: config.projector.batchSize,
      deferMaxDocuments: config.projector.deferMaxDocuments,
      ...composeOf(config, migration),
      logger,
    });
    try {
      const t0 = performance.now();
      // Rate and ETA while it runs: a large event store takes many minutes, composing at the end.
      const meter = new ProgressMeter(await eventStore.headPosition());
      const n = await runner.rebuild((events) => {
        const p = meter.addDue(events, REBUILD_PROGRESS_MS);
        if (p === null) return;
        logger.info(
          { events: p.done, total: p.total, eventsPerSec: p.rowsPerSec, etaSec: p.etaSec },
          'rebuild progress',
        );
      });
      const sec = (performance.now() - t0) / 1000;
      print(`rebuilt read models from ${n} events in ${sec.toFixed(1)} s (${Math.round(n / sec)} events/s)`);
      const analytics = await embeddedAnalytics(config, migration, { eventStore, logger });
      if (analytics !== null) {
        try {
          const t1 = performance.now();
          const m = await analytics.runner.rebuild();
          print(`rebuilt analytics from ${m} events in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
        } finally {
          await analytics.store.close();
        }
      }
    } finally {
      await eventStore.close();
      db.close();
      lock.release();
    }
    return 0;
  },

  async replay(options) {
    const { config, logger } = context(options, true);
    const migration = await definitionOf(options, config);
    if (options.store !== undefined)
      return (await import('./replay-distributed.js')).replayDistributed(
        config,
        migration,
        { ...options, store: options.store },
        logger,
        {
          out: print,
          err: (text) => process.stderr.write(text),
        },
      );
    return replayCommand({ config, migration, logger, io: replayIo }, options);
  },

  async readModel(options) {
    const { config, logger } = context(options, true);
    const env = { config, migration: await definitionOf(options, config), logger, io: replayIo };
    if (options.store !== undefined)
      return (await import('./replay-distributed.js')).readModelVersionsCommand(
        env.config,
        env.migration,
        {
          action: options.action,
          readModel: options.readModel,
          store: options.store,
          version: 'version' in options ? options.version : undefined,
          force: 'force' in options ? options.force : false,
          sample: 'sample' in options ? options.sample : undefined,
          json: 'json' in options ? options.json : false,
        },
        logger,
        { out: print, err: (text) => process.stderr.write(text) },
      );
    switch (options.action) {
      case 'versions':
        return versionsCommand(env, options);
      case 'switch':
        return switchCommand(env, options);
      case 'rollback':
        return rollbackCommand(env, options);
      case 'drop':
        return dropCommand(env, options);
    }
  },

  async deadLetters(options) {
    const { config, logger } = context(options);
    if (config.cdc.mode === 'kafka') {
      const kafka = (await distributed()).kafkaFrom(config, 'dead-letters', logger);
      const { readDeadLetterTopic } = await import('../connectors/kafka/dead-letter-reader.js');
      const { total, letters } = await readDeadLetterTopic(kafka, config.kafka.topicPrefix, options.limit);
      for (const d of letters) {
        const what =
          d.table === null
            ? `record ${d.key ?? ''}`
            : `${d.table} op=${d.op} at ${d.sourcePosition} (tx ${d.sourceTxId})`;
        print(`${d.recordedAt.toISOString()} ${what}: ${d.reason}`);
      }
      print(`${total} dead letters in total (topic ${config.kafka.topicPrefix}.dead-letters)`);
      return 0;
    }
    return listDeadLetters(config, options, print);
  },

  async deadLettersRedrive(options) {
    const { config, logger } = context(options);
    return redriveDeadLetters(config, await definitionOf(options, config), options, logger, print);
  },

  async deadLettersDrift(options) {
    const { config } = context(options);
    return deadLetterDrift(config, await definitionOf(options, config), options, print);
  },

  async schemaChanges(options) {
    const { config } = context(options);
    return showSchemaChanges(config, options, print);
  },

  async resnapshot(options) {
    const { config, logger } = context(options);
    return resnapshotTable(config, await definitionOf(options, config), options, logger, print);
  },

  async reconcile(options) {
    const { config, logger } = context(options);
    const migration = await checkedDefinitionOf(options, config, logger);
    const repair = options.repair ? openRepair(config, migration, logger) : null;
    // Never a pipeline of its own: the read models as the running (or last) `run` stored them.
    const stored = config.cdc.mode === 'kafka' ? null : storedReadSide(config, migration, logger);
    const side = stored ?? (await readSide()).serverReadSide(config, migration);
    const legacy = openLegacyDb(config.legacy.url, { poolSize: config.legacy.poolSize, logger });
    const recorder = new SqliteComparisonRecorder({
      path: dataPath(config, 'compare.db'),
      sensitive: migration.sensitiveFields,
      logger,
    });
    try {
      const result = await reconcileOnce(
        {
          config,
          migration,
          legacy,
          readModels: side.readModels,
          freshness: side.freshness,
          recorder,
          logger,
          ...(repair === null ? {} : { repair: repair.port }),
        },
        { sample: options.sample, repair: options.repair },
      );
      const readSide = stored === null ? undefined : await stored.measure();
      print(JSON.stringify(readSide === undefined ? result : { ...result, readSide }, null, 2));
      if (readSide !== undefined && !readSide.liveRun && !readSide.caughtUp) {
        process.stderr.write(
          `warning: no \`run\` is live on ${config.dataDir}: compared the read models as stored, up to ${readSide.lagSeconds.toFixed(1)} s behind the legacy database (${readSide.unprojectedEvents} events not projected); start \`run\` to catch them up\n`,
        );
      }
      return result.repair !== undefined && result.repair.stillDifferent.length > 0 ? 1 : 0;
    } finally {
      recorder.close();
      await side.stop();
      await legacy.close();
      repair?.close();
    }
  },

  async connector(options) {
    const { config, logger } = context(options);
    const kind: ConnectorKind =
      options.kind ??
      (parseLegacyUrl(config.legacy.url).dialect === 'postgres'
        ? 'postgresql'
        : (config.legacy.flavor ?? 'mariadb'));
    const name = options.name ?? `${config.cdc.name}-${kind}`;
    const client = new ConnectClient({ url: config.connect.url, logger });
    const show = (v: unknown) => print(typeof v === 'string' ? v : JSON.stringify(v, null, 2));
    switch (options.action) {
      case 'render':
        show(
          renderConnector(kind, connectorOptions(config, await definitionOf(options, config), kind, name)),
        );
        return 0;
      case 'deploy': {
        const migration = await definitionOf(options, config);
        // The checks `run` makes first come before the connector, not after an outage: on
        // PostgreSQL the publication Debezium creates makes the server refuse the monolith's
        // UPDATE and DELETE on a table without a replica identity (wal_level, REPLICATION,
        // REPLICA IDENTITY FULL); on MariaDB/MySQL a connector without the grants or the binlog
        // settings is created only to fail (log_bin, ROW, FULL, REPLICATION grants).
        await createChangeSource(config, { tables: migration.tables, logger }).preflight();
        show(
          await deployConnector(
            client,
            buildConnector(kind, connectorOptions(config, migration, kind, name)),
          ),
        );
        return 0;
      }
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
  },

  async init(options) {
    const { config } = context(options);
    const url = options.url ?? config.legacy.url;
    const result = await initDefinition(url, {
      out: options.out,
      force: options.force,
      ...(options.tables === undefined ? {} : { tables: options.tables }),
    });
    print(
      `wrote ${result.path}: ${result.tables} captured tables, ${result.views} views (one active, the rest commented out)`,
    );
    if (result.keyless.length > 0)
      print(`left out (no primary key, no UNIQUE key over NOT NULL columns): ${result.keyless.join(', ')}`);
    if (result.omittedColumns.length > 0)
      print(
        `left out (generated; change-data-capture does not carry them): ${result.omittedColumns.join(', ')}`,
      );
    for (const cascade of result.cascades) {
      print(`warning: ${cascade} — the binlog does not carry cascaded changes; see the WARNING in the file`);
    }
    print(`next: cqrs-migrate run --definition ${options.out}`);
    return 0;
  },
};

runProgram(process.argv.slice(2), handlers).then(
  (code) => process.exit(code),
  (err: unknown) => {
    // Duck-typed: a definition loaded from source may throw the source copy of AdapterError.
    const typed = err as Partial<AdapterError>;
    if (err instanceof AdapterError || (typeof typed.code === 'string' && err instanceof Error)) {
      process.stderr.write(`error [${typed.code}]: ${errorMessage(err)}\n`);
      if (typed.hint) process.stderr.write(`  fix: ${typed.hint}\n`);
    } else {
      process.stderr.write(`error: ${errorMessage(err)}\n`);
      if (err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    }
    process.exit(1);
  },
);
