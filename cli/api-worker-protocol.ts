import { z } from 'zod';

/**
 * The messages between the primary process and its API workers (api.workers > 1) over the
 * cluster's IPC channel. Both sides parse what they receive: a message that does not parse
 * (another library's, e.g.) is ignored.
 */

const scalarSchema = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const rowSchema = z.record(z.string(), scalarSchema);

const componentSchema = z.object({
  name: z.string(),
  state: z.enum(['starting', 'up', 'restarting', 'down']),
  since: z.number(),
  reason: z.string().nullable(),
  restarts: z.number(),
});

/** What the primary's pipeline says about itself, as /health/ready on a worker needs it. */
export const healthSnapshotSchema = z.object({
  components: z.array(componentSchema),
  lagSeconds: z.number().nullable(),
  maxLagSeconds: z.number(),
  deadLetters: z.number().nullable(),
});
export type HealthSnapshot = z.infer<typeof healthSnapshotSchema>;

const errorSchema = z.object({ code: z.string(), message: z.string() });

/** Primary → worker. */
export const primaryMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('cqrs:health'), snapshot: healthSnapshotSchema }),
  /** The flags changed (the admin API, the rollout): re-read them now, not at the next poll. */
  z.object({ type: z.literal('cqrs:flags-changed') }),
  z.object({ type: z.literal('cqrs:metrics-request'), id: z.number() }),
  z.object({
    type: z.literal('cqrs:analytics-answer'),
    id: z.number(),
    rows: z.array(rowSchema).optional(),
    error: errorSchema.optional(),
  }),
]);
export type PrimaryMessage = z.infer<typeof primaryMessageSchema>;

/** Worker → primary. */
export const workerMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('cqrs:listening'), url: z.string() }),
  /** The worker's registry as prom-client's getMetricsAsJSON() gives it. */
  z.object({ type: z.literal('cqrs:metrics'), id: z.number(), metrics: z.array(z.unknown()) }),
  /** An endpoint's analytics query: the DuckDB file is open in the primary only. */
  z.object({
    type: z.literal('cqrs:analytics-query'),
    id: z.number(),
    model: z.string(),
    query: z.string(),
    params: rowSchema,
  }),
]);
export type WorkerMessage = z.infer<typeof workerMessageSchema>;
