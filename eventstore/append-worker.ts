import { parentPort, workerData } from 'node:worker_threads';
import { z } from 'zod';
import { createLogger } from '../lib/logger.js';
import { osThreadId, transferError } from '../lib/worker-thread.js';
import type { AppendReply, AppendRequest } from './append-thread.js';
import { deadLetterMask } from './dead-letter-mask.js';
import { SqliteEventStore } from './sqlite.js';

/**
 * The event store's writer on a thread of its own (see append-thread.ts): appending a source
 * transaction (a published 200k-row one is one SQLite write transaction) never holds the thread
 * that serves the API and reads the change stream.
 */
export const appendWorkerSettingsSchema = z.strictObject({
  path: z.string().min(1),
  logLevel: z.string(),
  /** Sensitive columns by table, masked in dead letters (Migration.sensitiveColumns). */
  sensitiveColumns: z.map(z.string(), z.array(z.string())),
});

const port = parentPort;
if (port === null) throw new Error('append-worker.ts runs as a worker thread');
const settings = appendWorkerSettingsSchema.parse(workerData);
const store = new SqliteEventStore(settings.path, {
  logger: createLogger({ level: settings.logLevel }),
  maskDeadLetter: deadLetterMask(settings.sensitiveColumns),
});

port.on('message', (message: AppendRequest | { type: 'close' }) => {
  if (message.type === 'close') {
    store.closeSync();
    process.exit(0);
  }
  let reply: AppendReply;
  try {
    // Built and encoded by this process's own sink (AppendThread.append).
    reply =
      message.type === 'append'
        ? { id: message.id, results: [store.appendEncodedSync(message.batch)] }
        : { id: message.id, results: store.appendEncodedManySync(message.batches) };
  } catch (err) {
    reply = { id: message.id, error: transferError(err) };
  }
  port.postMessage(reply);
});
port.postMessage({ id: 0, ready: true, tid: osThreadId() } satisfies AppendReply);
