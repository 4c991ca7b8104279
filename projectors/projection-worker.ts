import { parentPort, workerData } from 'node:worker_threads';
import { loadDefinition } from '../definition/load.js';
import type { Migration } from '../definition/migration.js';
import { SqliteEventStore } from '../eventstore/sqlite.js';
import { createLogger } from '../lib/logger.js';
import { osThreadId } from '../lib/worker-thread.js';
import { embeddedProjections, type ReplayJobSpec, type ReplayReport, runReplayJob } from './replay.js';
import { ProjectionRunner } from './runner.js';
import { openReadModelDb } from './stores/sqlite.js';
import { type FromWorker, type ToWorker, transferError, workerSettingsSchema } from './worker-protocol.js';

/**
 * The projection loop on a thread of its own (see worker-runner.ts): its batches, however long,
 * never hold the thread that serves the API and reads the change stream. It reports once its
 * read models are migrated, once its first batch is applied, and when it fails.
 */
const port = parentPort;
if (port === null) throw new Error('projection-worker.ts runs as a worker thread');
const settings = workerSettingsSchema.parse(workerData);
const post = (message: FromWorker) => port.postMessage(message);
const logger = createLogger({ level: settings.logLevel });

let eventStore: SqliteEventStore | null = null;
let db: ReturnType<typeof openReadModelDb> | null = null;
let runner: ProjectionRunner | null = null;
let migration: Migration | null = null;
let closing = false;

async function close(): Promise<void> {
  closing = true;
  await runner?.stop();
  await eventStore?.close();
  if (db?.open) db.close();
}

/** Reported, then idle until the pipeline ends this thread: its message must arrive first. */
async function fail(err: unknown): Promise<void> {
  post({ type: 'failed', error: transferError(err) });
  await close();
}

port.on('message', (message: ToWorker) => {
  if (message.type === 'notify') runner?.notify();
  else if (message.type === 'replay') replay(message.spec);
  else if (message.type === 'forget') {
    runner?.removeProjection(message.name);
    post({ type: 'forgotten', id: message.id });
  } else void close().then(() => process.exit(0));
});

/** A replay between the live batches, on this thread's connection; reported back per batch. */
function replay(spec: ReplayJobSpec): void {
  const report = (r: ReplayReport) =>
    post({ type: 'replay-report', readModel: spec.readModel, version: spec.version, report: r });
  if (runner === null || db === null || eventStore === null || migration === null) {
    report({ state: 'failed', done: 0, total: null, error: 'the projection worker is not running' });
    return;
  }
  void runReplayJob(
    { db, eventStore, migration, batchSize: settings.batchSize, logger, runner },
    spec,
    report,
    () => closing,
  );
}

try {
  // Already type-checked by the process that started the pipeline.
  migration = await loadDefinition(settings.definition, { typecheck: false });
  eventStore = new SqliteEventStore(settings.eventsPath, { logger });
  db = openReadModelDb(settings.readModelsPath, logger);
  runner = new ProjectionRunner({
    eventStore,
    db,
    projections: embeddedProjections(migration, db),
    name: settings.name,
    batchSize: settings.batchSize,
    pollIntervalMs: settings.pollIntervalMs,
    ...(settings.deferMaxDocuments === undefined ? {} : { deferMaxDocuments: settings.deferMaxDocuments }),
    ...(settings.deferMaxMs === undefined ? {} : { deferMaxMs: settings.deferMaxMs }),
    ...(settings.minBatchIntervalMs === undefined ? {} : { minBatchIntervalMs: settings.minBatchIntervalMs }),
    bulkInitialBuild: settings.bulkInitialBuild,
    awaitInitialSnapshot: settings.awaitInitialSnapshot,
    ...(settings.composeThreads > 0
      ? { compose: { definition: settings.definition, threads: settings.composeThreads } }
      : {}),
    logger,
    onError: (err) => void fail(err),
    ...(settings.reportCommits
      ? {
          onCommitted: (position: number, touched: [string, string][]) =>
            post({ type: 'committed', position, touched }),
        }
      : {}),
  });
  post({ type: 'migrated', tid: osThreadId() });
  await runner.step();
  post({ type: 'stepped' });
  if (!closing) await runner.start();
} catch (err) {
  await fail(err);
}
