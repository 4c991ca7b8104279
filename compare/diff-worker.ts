import { parentPort } from 'node:worker_threads';
import { type DiffRequest, type DiffResult, diffTexts } from './diff-texts.js';

/**
 * The comparison's CPU work off the serving thread: both answers arrive as the JSON text the
 * client got (or would get), are parsed here and diffed. Requests come in batches, one message
 * per batch, so the serving thread pays one message per turn of its event loop, not per request.
 */
parentPort?.on('message', (batch: DiffRequest[]) => {
  const results: DiffResult[] = batch.map((request) => diffTexts(request));
  parentPort?.postMessage(results);
});
