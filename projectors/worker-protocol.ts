import { z } from 'zod';
import type { TransferredError } from '../lib/worker-thread.js';
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
  /** RunnerOptions.deferMaxDocuments / deferMaxMs (projector.* config); absent: the runner's defaults. */
  deferMaxDocuments: z.number().int().min(0).optional(),
  deferMaxMs: z.number().int().min(0).optional(),
  /** RunnerOptions.minBatchIntervalMs (projector.minBatchIntervalMs); absent: 0. */
  minBatchIntervalMs: z.number().int().min(0).optional(),
  /** RunnerOptions.bulkInitialBuild (projector.bulkInitialBuild). */
  bulkInitialBuild: z.boolean().default(false),
  /** RunnerOptions.awaitInitialSnapshot (projector.awaitInitialSnapshot). */
  awaitInitialSnapshot: z.boolean().default(false),
  /** projector.composeThreads: threads composing a bulk build's views, each loading `definition` too (0: none). */
  composeThreads: z.number().int().min(0).default(0),
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
  /** `tid`: the worker's operating-system thread id (osThreadId), for CPU by thread. */
  | { type: 'migrated'; tid: number | null }
  | { type: 'stepped' }
  /** A batch committed (sent only when the pipeline asked for it: a cache to invalidate). */
  | { type: 'committed'; position: number; touched: [string, string][] }
  | { type: 'failed'; error: TransferredError }
  | { type: 'replay-report'; readModel: string; version: number; report: ReplayReport }
  | { type: 'forgotten'; id: number };

export { type TransferredError, transferError, WorkerError } from '../lib/worker-thread.js';
