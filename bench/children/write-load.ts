import { z } from 'zod';
import { openPool } from '../../examples/bank/db.js';
import { runWorkload } from '../../examples/bank/workload.js';
import { childMain, isEntry } from '../child.js';

export const writeLoadInputSchema = z.object({
  server: z.object({
    host: z.string(),
    port: z.number().int(),
    user: z.string(),
    password: z.string(),
  }),
  database: z.string(),
  seed: z.number().int(),
  opsPerSec: z.number().positive(),
  durationMs: z.number().int().positive().optional(),
  maxOps: z.number().int().positive().optional(),
  concurrency: z.number().int().min(1).max(64),
});
export type WriteLoadInput = z.infer<typeof writeLoadInputSchema>;

export const writeLoadOutputSchema = z.object({
  ops: z.number().int().nonnegative(),
  errors: z.number().int().nonnegative(),
  rowChanges: z.number().int().nonnegative(),
  elapsedMs: z.number().int().nonnegative(),
  /** This process's CPU time (user + system) over the load: what producing the writes cost the client side. */
  cpuMs: z.number().nonnegative(),
});
export type WriteLoadOutput = z.infer<typeof writeLoadOutputSchema>;

/** The sample bank's own write workload, in a process of its own so it does not share the adapter's CPU time. */
async function run(input: WriteLoadInput): Promise<WriteLoadOutput> {
  // No per-query stack capture: it was an eighth of this process's CPU, which shares the cores
  // with the pipeline under test.
  const pool = openPool(input.server, input.database, { connectionLimit: input.concurrency, trace: false });
  const cpuBefore = process.cpuUsage();
  try {
    const stats = await runWorkload(pool, {
      seed: input.seed,
      ratePerSec: input.opsPerSec,
      concurrency: input.concurrency,
      ...(input.durationMs !== undefined ? { durationMs: input.durationMs } : {}),
      ...(input.maxOps !== undefined ? { maxOps: input.maxOps } : {}),
    });
    const cpu = process.cpuUsage(cpuBefore);
    return {
      ops: stats.ops,
      errors: stats.errors,
      rowChanges: stats.rowChanges,
      elapsedMs: stats.elapsedMs,
      cpuMs: (cpu.user + cpu.system) / 1000,
    };
  } finally {
    await pool.end();
  }
}

if (isEntry(import.meta.url)) await childMain(writeLoadInputSchema, run);
