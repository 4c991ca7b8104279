import { parentPort, workerData } from 'node:worker_threads';
import { loadDefinition } from '../definition/load.js';
import { SqliteEventStore } from '../eventstore/sqlite.js';
import { type FromPastStateWorker, pastStateJobSchema } from './past-state-thread.js';
import { writePastState } from './past-states.js';
import { transferError } from './worker-protocol.js';

/** Writes one past read-model state (see past-state-thread.ts), reports, and ends. */
const port = parentPort;
if (port === null) throw new Error('past-state-worker.ts runs as a worker thread');
const post = (message: FromPastStateWorker) => port.postMessage(message);

try {
  const job = pastStateJobSchema.parse(workerData);
  // Already type-checked by the process that serves.
  const migration = await loadDefinition(job.definition, { typecheck: false });
  const events = new SqliteEventStore(job.eventsPath);
  try {
    await writePastState({
      events,
      migration,
      models: new Set(job.models),
      position: job.position,
      file: job.file,
      batchSize: job.batchSize,
    });
  } finally {
    events.closeSync();
  }
  post({ type: 'written' });
} catch (err) {
  post({ type: 'failed', error: transferError(err) });
}
