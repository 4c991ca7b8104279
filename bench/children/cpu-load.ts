import autocannon from 'autocannon';
import { z } from 'zod';
import { childMain, isEntry } from '../child.js';

/** Load for the serving-CPU micro-benchmark: a fixed list of paths, cycled, optionally at a fixed rate. */
export const cpuLoadInputSchema = z.object({
  baseUrl: z.url(),
  paths: z.array(z.string().startsWith('/')).min(1),
  connections: z.number().int().positive(),
  durationSec: z.number().positive(),
  /** Requests per second over all connections; absent: as fast as the server answers. */
  rate: z.number().positive().optional(),
});
export type CpuLoadInput = z.infer<typeof cpuLoadInputSchema>;

export const cpuLoadOutputSchema = z.object({
  /** Every answer, whatever its status: the server spent its CPU on each. */
  requests: z.number().int().nonnegative(),
  requestsPerSec: z.number().nonnegative(),
  non2xx: z.number().int().nonnegative(),
  errors: z.number().int().nonnegative(),
});
export type CpuLoadOutput = z.infer<typeof cpuLoadOutputSchema>;

function run(input: CpuLoadInput): Promise<CpuLoadOutput> {
  let k = 0;
  const options: autocannon.Options = {
    url: input.baseUrl,
    connections: input.connections,
    duration: input.durationSec,
    ...(input.rate === undefined ? {} : { overallRate: input.rate }),
    requests: [
      {
        method: 'GET',
        setupRequest: (req) => ({ ...req, path: input.paths[k++ % input.paths.length] as string }),
      },
    ],
  };
  return new Promise((resolve, reject) => {
    autocannon(options, (err: unknown, result: autocannon.Result) => {
      if (err) return reject(err);
      const requests = result['2xx'] + result.non2xx;
      resolve({
        requests,
        requestsPerSec: result.duration > 0 ? requests / result.duration : 0,
        non2xx: result.non2xx,
        errors: result.errors + result.timeouts,
      });
    });
  });
}

if (isEntry(import.meta.url)) await childMain(cpuLoadInputSchema, run);
