import { z } from 'zod';
import { AdapterError } from '../lib/errors.js';
import type { ReplayJobSpec, ReplayReport } from './replay.js';

/**
 * What the pipeline's thread and the projection worker (projection-worker.ts) tell each other.
 * The worker opens its own connections from these paths: SQLite handles do not cross threads.
 */
export const workerSettingsSchema = z.strictObject({
  eventsPath: z.string().min(1),
  readModelsPath: z.string().min(1),
  /** The migration definition module; the worker loads it again (its projections are code). */
  definition: z.string().min(1),
  name: z.string().min(1),
  batchSize: z.number().int().min(1),
  pollIntervalMs: z.number().int().min(1),
  logLevel: z.string(),
  /** Report each committed batch's documents (`committed` messages). */
  reportCommits: z.boolean().default(false),
});
export type WorkerSettings = z.infer<typeof workerSettingsSchema>;

/** Main thread → worker. */
export type ToWorker =
  | { type: 'notify' }
  | { type: 'stop' }
  /** Build a read-model version beside the live batches (projectors/replay.ts runReplayJob). */
  | { type: 'replay'; spec: ReplayJobSpec }
  /** Stop applying a maintained version (before its tables are dropped); answered by `forgotten`. */
  | { type: 'forget'; id: number; name: string };

/** Worker → main thread: its read models are migrated; its first batch is applied; it failed. */
export type FromWorker =
  | { type: 'migrated' }
  | { type: 'stepped' }
  /** A batch committed (sent only when the pipeline asked for it: a cache to invalidate). */
  | { type: 'committed'; position: number; touched: [string, string][] }
  | { type: 'failed'; error: TransferredError }
  | { type: 'replay-report'; readModel: string; version: number; report: ReplayReport }
  | { type: 'forgotten'; id: number };

/**
 * An error as plain data: structured clone keeps only an Error's message and stack, while the
 * supervisor decides on `code`, `retriable` and the codes down the cause chain (SQLITE_BUSY).
 */
export interface TransferredError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
  hint?: string;
  retriable?: boolean;
  cause?: TransferredError;
}

export function transferError(err: unknown, depth = 0): TransferredError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const like = err as Error & { code?: unknown; hint?: unknown; retriable?: unknown };
  return {
    name: err.name,
    message: err.message,
    ...(err.stack === undefined ? {} : { stack: err.stack }),
    ...(typeof like.code === 'string' ? { code: like.code } : {}),
    ...(typeof like.hint === 'string' ? { hint: like.hint } : {}),
    ...(typeof like.retriable === 'boolean' ? { retriable: like.retriable } : {}),
    ...(err.cause === undefined || depth >= 8 ? {} : { cause: transferError(err.cause, depth + 1) }),
  };
}

/** The worker's error, rebuilt with its code, hint, retriable and cause chain. */
export class WorkerError extends AdapterError {
  readonly retriable: boolean | undefined;

  constructor(data: TransferredError) {
    super(data.code ?? 'PROJECTION_WORKER_FAILED', data.message, {
      ...(data.cause === undefined ? {} : { cause: new WorkerError(data.cause) }),
      ...(data.hint === undefined ? {} : { hint: data.hint }),
    });
    this.name = data.name;
    this.retriable = data.retriable;
    if (data.stack !== undefined) this.stack = data.stack;
  }
}
