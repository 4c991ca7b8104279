import { z } from 'zod';
import { AdapterError } from '../lib/errors.js';
import { startWorker } from '../lib/worker-thread.js';
import { type TransferredError, WorkerError } from './worker-protocol.js';

/**
 * One past read-model state written on a worker thread (past-state-worker.ts): the replay, however
 * long, never holds the thread that serves. The worker opens its own connection to the event
 * store and loads the definition again (read models are code); the file it leaves is opened by
 * the caller (openPastState).
 */
export const pastStateJobSchema = z.strictObject({
  eventsPath: z.string().min(1),
  definition: z.string().min(1),
  models: z.array(z.string()),
  position: z.number().int().min(0),
  file: z.string().min(1),
  batchSize: z.number().int().min(1),
});
export type PastStateJob = z.infer<typeof pastStateJobSchema>;

export type FromPastStateWorker = { type: 'written' } | { type: 'failed'; error: TransferredError };

/** Resolves once the worker has written `job.file`; rejects with the worker's error. */
export function writePastStateOffThread(job: PastStateJob): Promise<void> {
  const worker = startWorker(import.meta.url, 'past-state-worker', job);
  // A replay in progress does not keep a stopping process alive; its file is removed at the next start.
  worker.unref();
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (err?: Error) => {
      if (settled) return;
      settled = true;
      if (err === undefined) resolve();
      else reject(err);
    };
    worker.on('message', (message: FromPastStateWorker) => {
      settle(message.type === 'written' ? undefined : new WorkerError(message.error));
    });
    worker.on('error', (err) => settle(err));
    worker.on('exit', (code) =>
      settle(
        new AdapterError(
          'PAST_STATE_WORKER_EXITED',
          `time-travel worker ended before its state (exit code ${code})`,
        ),
      ),
    );
  });
}
