import { parentPort, workerData } from 'node:worker_threads';
import { AnalyticsNotServedError } from '../definition/analytics.js';
import { loadDefinition } from '../definition/load.js';
import { SqliteEventStore } from '../eventstore/sqlite.js';
import { createLogger } from '../lib/logger.js';
import { osThreadId, transferError } from '../lib/worker-thread.js';
import { AnalyticsRunner } from './analytics-runner.js';
import {
  analyticsWorkerSettingsSchema,
  type FromAnalyticsWorker,
  type ToAnalyticsWorker,
} from './analytics-thread.js';
import { DuckDbAnalytics } from './stores/duckdb-analytics.js';

/**
 * The analytics loop and its DuckDB store on a thread of their own (see analytics-thread.ts):
 * reading and decoding every stored event for the columnar tables never holds the thread that
 * serves the API and maps the change stream. The store is open here only (DuckDB locks its
 * file for one writer), so the API's analytics queries are answered here too.
 */
const port = parentPort;
if (port === null) throw new Error('analytics-worker.ts runs as a worker thread');
const settings = analyticsWorkerSettingsSchema.parse(workerData);
const post = (message: FromAnalyticsWorker) => port.postMessage(message);
const logger = createLogger({ level: settings.logLevel });

let eventStore: SqliteEventStore | null = null;
let store: DuckDbAnalytics | null = null;
let runner: AnalyticsRunner | null = null;
let closing = false;

async function close(): Promise<void> {
  closing = true;
  await runner?.stop();
  await store?.close();
  await eventStore?.close();
}

/** Reported, then idle until the pipeline ends this thread: its message must arrive first. */
async function fail(err: unknown): Promise<void> {
  post({ type: 'failed', error: transferError(err) });
  await close();
}

function answer(message: Extract<ToAnalyticsWorker, { type: 'query' }>): void {
  const handle = store?.handles()[message.model];
  const rows =
    handle === undefined
      ? Promise.reject(new AnalyticsNotServedError(message.model))
      : handle.query(message.query, message.params);
  rows.then(
    (found) => post({ type: 'answer', id: message.id, rows: found }),
    (err: unknown) => post({ type: 'answer', id: message.id, error: transferError(err) }),
  );
}

port.on('message', (message: ToAnalyticsWorker) => {
  if (message.type === 'notify') runner?.notify();
  else if (message.type === 'query') answer(message);
  else void close().then(() => process.exit(0));
});

try {
  // Already type-checked by the process that started the pipeline.
  const migration = await loadDefinition(settings.definition, { typecheck: false });
  eventStore = new SqliteEventStore(settings.eventsPath, { logger });
  store = await DuckDbAnalytics.open(settings.analyticsPath, migration);
  runner = new AnalyticsRunner({
    eventStore,
    store,
    batchSize: settings.batchSize,
    pollIntervalMs: settings.pollIntervalMs,
    awaitInitialSnapshot: settings.awaitInitialSnapshot,
    logger,
    onError: (err) => void fail(err),
    onCommitted: (position) => post({ type: 'committed', position }),
  });
  await runner.init();
  post({ type: 'started', tid: osThreadId(), position: runner.checkpoint() });
  if (settings.stepFirst) {
    await runner.step();
    post({ type: 'stepped' });
  }
  if (!closing) await runner.start();
} catch (err) {
  await fail(err);
}
