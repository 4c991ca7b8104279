import { mkdirSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';
import type { FreshnessPort } from '../compare/ports.js';
import { orderedSink } from '../connectors/snapshot-delivery.js';
import {
  createChangeSource,
  type LegacyChangeSource,
  type LegacyEnd,
  type SourceProgress,
} from '../connectors/source-factory.js';
import type { Analytics } from '../definition/analytics.js';
import { definitionFileOf } from '../definition/load.js';
import type { Migration } from '../definition/migration.js';
import type { ReadModels } from '../definition/read-models.js';
import { AppendThread } from '../eventstore/append-thread.js';
import { deadLetterMask } from '../eventstore/dead-letter-mask.js';
import { type EncodedAppendBatch, encodeBatch } from '../eventstore/event-encoding.js';
import { type AppendResult, movesOffsetOnly } from '../eventstore/ports.js';
import { SqliteEventStore } from '../eventstore/sqlite.js';
import { type Config, dataPath } from '../lib/config.js';
import { type DataDirLock, lockDataDir } from '../lib/data-lock.js';
import { FreshnessTracker } from '../lib/freshness-tracker.js';
import type { Logger } from '../lib/logger.js';
import { Supervisor } from '../lib/supervisor.js';
import { AnalyticsRunner, type AnalyticsRunnerOptions } from '../projectors/analytics-runner.js';
import { AnalyticsThread } from '../projectors/analytics-thread.js';
import { embeddedTimeTravel, type TimeTravelPort } from '../projectors/past-states.js';
import type { TouchedDocument } from '../projectors/ports.js';
import { embeddedProjections, inThreadReplayHost, type ReplayHost } from '../projectors/replay.js';
import { ProjectionRunner, type Projector } from '../projectors/runner.js';
import type { DuckDbAnalytics } from '../projectors/stores/duckdb-analytics.js';
import { ensureVersionRegistry } from '../projectors/stores/read-model-versions.js';
import { openReadModelDb } from '../projectors/stores/sqlite.js';
import { SqliteReadModels, turnSnapshot } from '../projectors/stores/sqlite-read-models.js';
import { VersionedReadModels } from '../projectors/stores/versioned-read-models.js';
import { ProjectionWorker } from '../projectors/worker-runner.js';
import type { HealthPort } from '../shadow-api/health.js';
import { ReadModelCache } from '../shadow-api/read-model-cache.js';
import type { ReadModelVersionsPort } from '../shadow-api/read-model-routes.js';
import { CaptureGuard } from './capture-guard.js';
import { embeddedVersions } from './embedded-versions.js';

export interface EmbeddedPipeline {
  /** The running change source; a new one replaces it after each restart. */
  readonly source: LegacyChangeSource;
  eventStore: SqliteEventStore;
  /**
   * This thread's writable connection to the read models (the registry of versions, repairs;
   * the projector's own when it runs in this thread). The API reads through a read-only one.
   */
  readDb: Database.Database;
  runner: Projector;
  readModels: ReadModels;
  /** Which version of each read model answers (replay): refresh it after a switch. */
  versions: VersionedReadModels;
  /** Replay, switch, rollback and drop of read-model versions in this process (admin routes). */
  readModelVersions: ReadModelVersionsPort;
  /** The analytics read models (DuckDB), empty when the definition has none. */
  analytics: Analytics;
  freshness: FreshnessPort;
  /** Component states and read-model lag, for /health/ready. */
  health: HealthPort;
  /** Resolves true once everything the legacy database had committed at the call is in the read models. */
  waitForCatchUp(timeoutMs: number): Promise<boolean>;
  /** Drops every cached read-model document (cache.redisUrl): after writes that move no checkpoint, e.g. a repair. */
  dropCache(): Promise<void>;
  /** Past read-model states rebuilt from the event store (`GET …?_asOf=`). */
  timeTravel: TimeTravelPort;
  stop(): Promise<void>;
}

export interface PipelineOptions {
  config: Config;
  /** The user's definition: what to capture and which read models to build. */
  migration: Migration;
  /**
   * The module `migration` was loaded from (default: the file loadDefinition read it from).
   * With one, projection runs in a worker thread that loads it again; without (a migration
   * built in code), in this thread.
   */
  definitionFile?: string;
  logger: Logger;
  registry?: Registry;
  /**
   * Called when the source or the projector fails for good: a failure a restart cannot fix,
   * or one that outlasts `supervision.failureBudgetMs` (see Supervisor). Transient failures
   * are restarted without a word here.
   */
  onError?: (err: Error) => void;
  /** What holds the data directory, as the lock shows it to a second process (default "run"). */
  role?: string;
}

/** A restarted component that fails again within this time is flapping: its outage goes on. */
const STABLE_MS = 10_000;
/** How often lag and stalls are measured (one query of the legacy change log's end). */
const MEASURE_INTERVAL_MS = 1000;
/** Name of the embedded projector's checkpoint row (ProjectionRunner's and ProjectionWorker's default). */
const CHECKPOINT_NAME = 'read-models';
/** Streamed transactions the binlog reader hands over before the oldest is stored (DeliveryOptions). */
const STREAM_IN_FLIGHT = 128;

/**
 * The API's connection to read-models.db: read-only, so a turn's reads share one read
 * transaction (turnSnapshot) instead of opening one per statement, which a connection that
 * writes (the projector's, in this thread) cannot do. WAL lets it read while the projector
 * commits. With it, the checkpoint the read side compares with: read on the same connection, in
 * the same turn's snapshot as the documents (or before it begins), it never claims a position
 * whose writes the reads do not see, and the cache never vouches for a document read before it.
 */
function openApiReads(path: string): { db: Database.Database; checkpoint: () => number } {
  const db = new Database(path, { readonly: true, fileMustExist: true, timeout: 5000 });
  const snapshot = turnSnapshot(db);
  const position = db.prepare('SELECT position FROM projector_checkpoints WHERE name = ?').pluck();
  return {
    db,
    checkpoint: () => {
      snapshot();
      return (position.get(CHECKPOINT_NAME) as number | undefined) ?? 0;
    },
  };
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
      name: 'cqrs_read_model_lag_seconds',
      help: 'Seconds since the oldest legacy commit not yet in the read models (0 when caught up), measured every second',
      registers,
    }),
  };
}

/** The embedded read models of a migration, ready for a ProjectionRunner over `db`. */
export function embeddedReadModels(migration: Migration): SqliteReadModels {
  return new SqliteReadModels(migration);
}

/**
 * Events per analytics batch, in projector batches: a DuckDB statement and commit cost the same
 * for a few rows or thousands, so a catch-up (the initial snapshot, a backlog) takes them in
 * thousands of rows. Into an empty store the sample bank's first 300,000 events went in at
 * 30,000 events/s 500 a batch and 53,000–64,000/s 5,000 a batch; a live batch holds what arrived
 * since the last one either way.
 */
const ANALYTICS_BATCH_FACTOR = 10;

/** The embedded analytics store (data dir's analytics.duckdb) and its runner; null when the definition has no analytics. */
export async function embeddedAnalytics(
  config: Config,
  migration: Migration,
  options: Omit<AnalyticsRunnerOptions, 'store' | 'batchSize' | 'pollIntervalMs'>,
): Promise<{ runner: AnalyticsRunner; store: DuckDbAnalytics } | null> {
  if (migration.analytics.length === 0) return null;
  // DuckDB loaded here, not with the module: the pipeline runs analytics on a thread of its own,
  // which loads it there, and commands without analytics never need it.
  const { DuckDbAnalytics } = await import('../projectors/stores/duckdb-analytics.js');
  const store = await DuckDbAnalytics.open(dataPath(config, 'analytics.duckdb'), migration);
  const runner = new AnalyticsRunner({
    ...options,
    store,
    batchSize: config.projector.batchSize * ANALYTICS_BATCH_FACTOR,
    pollIntervalMs: config.projector.pollIntervalMs,
  });
  return { runner, store };
}

/** The pipeline's analytics: its loop (on a thread of its own when the definition has a file) and query handles. */
interface PipelineAnalytics {
  runner: Projector;
  handles(): Analytics;
  close(): Promise<void>;
}

async function pipelineAnalytics(
  config: Config,
  migration: Migration,
  definitionFile: string | undefined,
  options: Pick<AnalyticsRunnerOptions, 'eventStore' | 'logger'> & { onError: (err: Error) => void },
): Promise<PipelineAnalytics | null> {
  if (migration.analytics.length === 0) return null;
  if (definitionFile === undefined) {
    const inThread = await embeddedAnalytics(config, migration, {
      ...options,
      awaitInitialSnapshot: config.projector.awaitInitialSnapshot,
    });
    if (inThread === null) return null;
    return {
      runner: inThread.runner,
      handles: () => inThread.store.handles(),
      close: () => inThread.store.close(),
    };
  }
  const thread = new AnalyticsThread({
    eventsPath: dataPath(config, 'events.db'),
    analyticsPath: dataPath(config, 'analytics.duckdb'),
    definition: definitionFile,
    models: migration.analytics.map((m) => m.name),
    batchSize: config.projector.batchSize * ANALYTICS_BATCH_FACTOR,
    pollIntervalMs: config.projector.pollIntervalMs,
    awaitInitialSnapshot: config.projector.awaitInitialSnapshot,
    onError: options.onError,
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  // The worker closes its store when it stops.
  return { runner: thread, handles: () => thread.handles(), close: async () => undefined };
}

/**
 * The embedded default in one process: change source (binlog or pgoutput, from legacy.url's
 * scheme) → the definition's capture rules → SQLite event store → projection runner → SQLite
 * read models. The source offset is stored with each transaction's events, and the projector
 * checkpoint with each batch's writes, so stop/start anywhere resumes exactly; that is also how
 * the supervisor restarts a failed source (a new one from the stored offset) or projector
 * (from its checkpoint) without stopping the process.
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
  let gaveUp: Error | null = null;
  const supervisor = new Supervisor({
    policy: { ...config.supervision, stableMs: STABLE_MS },
    logger,
    ...(options.registry ? { registry: options.registry } : {}),
    onGiveUp: (err) => {
      gaveUp = err;
      (options.onError ?? ((e: Error) => logger.error({ err: e }, 'pipeline component failed')))(err);
    },
  });
  const sourceComponent = supervisor.add({ name: 'source', restart: () => restartSource() });
  const projector = supervisor.add({ name: 'projector', restart: () => restartProjector() });
  // Only a definition with analytics models has the component (health lists it).
  const analyticsComponent =
    migration.analytics.length === 0
      ? null
      : supervisor.add({
          name: 'analytics',
          restart: async () => {
            await analytics?.runner.restart();
          },
        });

  const newSource = (): LegacyChangeSource => {
    const created: LegacyChangeSource = createChangeSource(config, {
      tables: migration.tables,
      logger,
      // Only the running source's failure counts: a replaced one has already been stopped.
      onError: (err) => {
        if (created === source) sourceComponent.failed(err);
      },
    });
    return created;
  };
  let source = newSource();
  await source.preflight();
  let progress: SourceProgress = source.openProgress();
  const eventStore = new SqliteEventStore(dataPath(config, 'events.db'), {
    logger,
    maskDeadLetter: deadLetterMask(migration.sensitiveColumns),
  });
  const writer = new AppendThread({
    path: dataPath(config, 'events.db'),
    sensitiveColumns: migration.sensitiveColumns,
    logger,
  });
  const readDb = openReadModelDb(dataPath(config, 'read-models.db'), logger);
  // Before the projector starts: afterwards its thread may hold the write lock for seconds.
  ensureVersionRegistry(readDb);
  const api = openApiReads(dataPath(config, 'read-models.db'));
  const versions = new VersionedReadModels(migration, api.db);
  const metrics = pipelineMetrics(options.registry);
  const definitionFile = options.definitionFile ?? definitionFileOf(migration);
  const { redisUrl } = config.cache;
  const cache =
    redisUrl === undefined
      ? null
      : new ReadModelCache({
          url: redisUrl,
          ttlSeconds: config.cache.ttlSeconds,
          prefix: config.cache.prefix,
          logger,
          ...(options.registry ? { registry: options.registry } : {}),
        });
  const runnerOptions = {
    batchSize: config.projector.batchSize,
    pollIntervalMs: config.projector.pollIntervalMs,
    deferMaxDocuments: config.projector.deferMaxDocuments,
    deferMaxMs: config.projector.deferMaxMs,
    minBatchIntervalMs: config.projector.minBatchIntervalMs,
    bulkInitialBuild: config.projector.bulkInitialBuild,
    awaitInitialSnapshot: config.projector.awaitInitialSnapshot,
    logger,
    onError: (err: Error) => projector.failed(err),
    ...(cache === null
      ? {}
      : {
          onCommitted: (position: number, touched: TouchedDocument[]) =>
            void cache.invalidate(position, touched),
        }),
  };
  const inThread =
    definitionFile === undefined
      ? new ProjectionRunner({
          ...runnerOptions,
          eventStore,
          db: readDb,
          projections: embeddedProjections(migration, readDb),
        })
      : null;
  const worker =
    definitionFile === undefined
      ? null
      : new ProjectionWorker({
          ...runnerOptions,
          eventsPath: dataPath(config, 'events.db'),
          readModelsPath: dataPath(config, 'read-models.db'),
          definition: definitionFile,
          composeThreads: config.projector.composeThreads,
          db: readDb,
        });
  const runner = (inThread ?? worker) as ProjectionRunner | ProjectionWorker;
  let stopping = false;
  // Replays run where the live batches do, between them.
  const replayHost: ReplayHost =
    worker ??
    inThreadReplayHost(
      {
        db: readDb,
        eventStore,
        migration,
        batchSize: config.projector.batchSize,
        logger,
        runner: inThread as ProjectionRunner,
      },
      () => stopping,
    );
  let analytics: PipelineAnalytics | null = null;
  try {
    analytics = await pipelineAnalytics(config, migration, definitionFile, {
      eventStore,
      logger,
      onError: (err) => analyticsComponent?.failed(err),
    });
  } catch (err) {
    await writer.close();
    await eventStore.close();
    // The writer closes last: the last connection's close checkpoints the WAL and removes it.
    api.db.close();
    readDb.close();
    await progress.close();
    throw err;
  }
  const closeAnalytics = async () => {
    await analytics?.runner.stop();
    await analytics?.close();
  };
  const sourceName = source.name;
  const open = eventStore.listSchemaChanges({ unresolvedBreaking: true });
  const guard = new CaptureGuard(migration.rules, sourceName, open, logger, options.registry);
  // One per start of a source: the snapshot's next chunk is read, mapped and encoded while the
  // writer thread appends the previous one (at most two in flight); appends stay in order.
  const newSink = () =>
    orderedSink(
      (tx) => {
        const { events, deadLetters, sweep, schemaChanges } = guard.map(tx);
        for (const d of deadLetters)
          logger.warn({ table: d.table, op: d.op, reason: d.reason }, 'row dead-lettered');
        return encodeBatch({
          sourceName,
          sourceTxId: tx.id,
          offset: tx.offset,
          events,
          deadLetters,
          ...(sweep === undefined ? {} : { sweep }),
          schemaChanges,
          ...(tx.fragment === undefined ? {} : { fragment: tx.fragment }),
        });
      },
      async (batch) => onStored([batch], [await writer.appendEncoded(batch)]),
      async (calls) => {
        const batches = calls.map((c) => c.prepared);
        onStored(batches, await writer.appendEncodedMany(batches));
      },
    );
  const onStored = (batches: readonly EncodedAppendBatch[], results: readonly AppendResult[]) => {
    let published = 0;
    for (const [i, batch] of batches.entries()) {
      metrics.events.inc(batch.events.length);
      metrics.deadLetters.inc(batch.deadLetters.length);
      // A staged fragment is not visible yet: the projector hears of its transaction once published.
      if (!results[i]?.staged && !movesOffsetOnly(batch)) published++;
    }
    if (published === 0) return;
    metrics.transactions.inc(published);
    runner.notify();
    analytics?.runner.notify();
  };
  // The sink stores in call order (orderedSink): streamed transactions that wait are appended as
  // one group, one event-store commit instead of one each (README, eventstore: the pipeline's CPU
  // per one-row transaction 453–503 → 210–270 µs).
  const delivery = { snapshotInFlight: 2, streamInFlight: STREAM_IN_FLIGHT };

  // A source never starts twice: the failed one is stopped (it closes itself on failing) and a
  // new one resumes from the offset stored with the last transaction the store accepted.
  async function restartSource(): Promise<void> {
    await source.stop();
    const previous = progress;
    source = newSource();
    progress = source.openProgress();
    await previous.close().catch(() => undefined);
    await source.start(await eventStore.loadOffset(sourceName), newSink(), delivery);
  }
  // One batch proves the read-model database takes writes again before the loop resumes.
  async function restartProjector(): Promise<void> {
    await runner.restart();
  }

  // Before the projector's first commit: a new epoch drops what an earlier process cached.
  void cache?.reset(runner.checkpoint());
  try {
    await writer.start();
    await runner.start();
    await analytics?.runner.start();
  } catch (err) {
    await runner.stop();
    await closeAnalytics();
    await writer.close();
    await eventStore.close();
    api.db.close();
    readDb.close();
    await progress.close();
    await cache?.close();
    throw err;
  }
  projector.up();
  analyticsComponent?.up();
  try {
    await source.start(await eventStore.loadOffset(sourceName), newSink(), delivery);
  } catch (err) {
    // Not supervised yet: a source that cannot start at all is the caller's to report.
    await runner.stop();
    await closeAnalytics();
    await writer.close();
    await eventStore.close();
    api.db.close();
    readDb.close();
    await progress.close();
    await cache?.close();
    throw err;
  }
  sourceComponent.up();

  const dropCache = async () => {
    await cache?.reset(runner.checkpoint());
  };

  // What the API can read (api.checkpoint), not what the projector has just committed.
  const projectedAll = () => {
    const head = eventStore.headPositionSync();
    return api.checkpoint() >= head && (analytics === null || analytics.runner.checkpoint() >= head);
  };
  const waitForCatchUp = async (timeoutMs: number) => {
    const end = await progress.legacyEnd();
    const deadline = Date.now() + timeoutMs;
    while (!(progress.reached(end) && projectedAll())) {
      if (Date.now() >= deadline || gaveUp !== null) return false;
      await new Promise((r) => setTimeout(r, 25));
    }
    return true;
  };

  const timeTravel = embeddedTimeTravel({
    eventStore,
    migration,
    dir: dataPath(config, 'time-travel'),
    maxEvents: config.timeTravel.maxEvents,
    cachedStates: config.timeTravel.cachedStates,
    batchSize: config.projector.batchSize,
    logger,
    ...(options.registry ? { registry: options.registry } : {}),
    ...(definitionFile === undefined
      ? {}
      : { offThread: { eventsPath: dataPath(config, 'events.db'), definition: definitionFile } }),
  });

  const tracker = new FreshnessTracker<LegacyEnd>(config.health.stallSeconds * 1000, Date.now());
  let measured = false;
  const measure = async () => {
    let end: LegacyEnd | null = null;
    try {
      end = await progress.legacyEnd();
    } catch (err) {
      logger.debug({ err }, 'legacy change-log end unknown; lag measured from the last known');
    }
    const checkpoint = runner.checkpoint();
    const applied = runner.appliedPosition();
    const head = eventStore.headPositionSync();
    const next = checkpoint < head ? eventStore.readAfterSync(checkpoint, 1)[0] : undefined;
    const state = tracker.observe({
      now: Date.now(),
      end,
      reached: (e) => progress.reached(e),
      checkpoint,
      head,
      applied,
      oldestUnprojectedCommitMs: next?.metadata.sourceTsMs ?? null,
    });
    metrics.lag.set(state.lagSeconds);
    measured = true;
  };
  let measuring: Promise<void> | null = null;
  // A legacy database that does not answer holds a measure for its connect timeout: skip ticks meanwhile.
  const tick = () => {
    measuring ??= measure()
      .catch((err: unknown) => logger.warn({ err }, 'lag measure failed'))
      .finally(() => {
        measuring = null;
      });
  };
  tick();
  const timer = setInterval(tick, MEASURE_INTERVAL_MS);
  timer.unref();

  return {
    get source() {
      return source;
    },
    eventStore,
    readDb,
    runner,
    readModels: cache === null ? versions.readModels : cache.wrap(versions.readModels, api.checkpoint),
    versions,
    readModelVersions: embeddedVersions({
      migration,
      readDb,
      eventsPath: dataPath(config, 'events.db'),
      versions,
      host: replayHost,
      dropCache: () => dropCache(),
      logger,
    }),
    analytics: analytics?.handles() ?? {},
    freshness: {
      isCaughtUp: async () => (await progress.reachedLegacyEnd()) && projectedAll(),
      waitForCatchUp,
      isStalled: () => tracker.current().stalled,
    },
    health: {
      components: () => supervisor.status(),
      lagSeconds: () => (measured ? tracker.current().lagSeconds : null),
      maxLagSeconds: config.health.maxLagSeconds,
      deadLetters: () => eventStore.countDeadLetters(),
    },
    waitForCatchUp,
    dropCache,
    timeTravel,
    async stop() {
      stopping = true;
      clearInterval(timer);
      await measuring;
      await supervisor.stop();
      await source.stop();
      await runner.stop();
      await closeAnalytics();
      await writer.close();
      timeTravel.close();
      await eventStore.close();
      api.db.close();
      readDb.close();
      await progress.close();
      await cache?.close();
      lock.release();
    },
  };
}
