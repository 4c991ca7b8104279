import autocannon from 'autocannon';
import { z } from 'zod';
import { childMain, isEntry } from '../child.js';
import { processCpuMs } from '../legacy-cpu.js';
import { endpointSchema, latencySchema } from '../results-schema.js';
import { latencyOf } from '../stats.js';

export const httpLoadInputSchema = z.object({
  baseUrl: z.url(),
  endpoint: endpointSchema,
  /** Account ids to spread requests over, visited in a fixed stride so every mode sees the same order. */
  accountIds: z.object({ min: z.number().int().positive(), max: z.number().int().positive() }),
  connections: z.number().int().positive(),
  durationSec: z.number().positive(),
  warmupSec: z.number().nonnegative(),
  /** Reference instant of the overview endpoints (DATETIME(6) text). */
  asOf: z.string().optional(),
  /** The legacy database server's pid: its CPU time over the measured window is reported. */
  legacyPid: z.number().int().positive().optional(),
});
export type HttpLoadInput = z.infer<typeof httpLoadInputSchema>;

export const httpLoadOutputSchema = z.object({
  /** 2xx responses only. */
  requests: z.number().int().nonnegative(),
  requestsPerSec: z.number().nonnegative(),
  latency: latencySchema,
  non2xx: z.number().int().nonnegative(),
  errors: z.number().int().nonnegative(),
  servedBy: z.record(z.string(), z.number().int().nonnegative()),
  /** CPU milliseconds the legacy database server used in the measured window (null: not measurable). */
  legacyCpuMs: z.number().nonnegative().nullable(),
});
export type HttpLoadOutput = z.infer<typeof httpLoadOutputSchema>;

// A stride coprime with any realistic id range: consecutive requests hit unrelated accounts.
const STRIDE = 7919;

function pathFor(input: HttpLoadInput, id: number): string {
  const asOf = `asOf=${encodeURIComponent(input.asOf ?? '')}`;
  switch (input.endpoint) {
    case 'summary':
      return `/accounts/${id}/summary`;
    case 'history':
      return `/accounts/${id}/transactions?limit=50`;
    case 'overview':
      return `/accounts/${id}/overview?${asOf}`;
    case 'overviewWide':
      return `/accounts/${id}/overview-wide?${asOf}`;
  }
}

function load(options: autocannon.Options, onLatency?: (ms: number) => void): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(options, (err: unknown, result: autocannon.Result) =>
      err ? reject(err) : resolve(result),
    );
    if (onLatency)
      instance.on('response', (_client, status, _bytes, responseTime) => {
        if (status >= 200 && status < 300) onLatency(responseTime);
      });
  });
}

async function run(input: HttpLoadInput): Promise<HttpLoadOutput> {
  const { min, max } = input.accountIds;
  const span = max - min + 1;
  let k = 0;
  const servedBy: Record<string, number> = {};
  const options = (durationSec: number): autocannon.Options => ({
    url: input.baseUrl,
    connections: input.connections,
    duration: durationSec,
    requests: [
      {
        method: 'GET',
        setupRequest: (req) => ({ ...req, path: pathFor(input, min + ((k++ * STRIDE) % span)) }),
        onResponse: (_status, _body, _context, headers) => {
          const side = String(headers?.['x-served-by'] ?? 'none');
          servedBy[side] = (servedBy[side] ?? 0) + 1;
        },
      },
    ],
  });
  if (input.warmupSec > 0) await load(options(input.warmupSec));
  // autocannon's own histogram has 1 ms resolution; a read-model answer takes less.
  const latencies: number[] = [];
  const cpuBefore = input.legacyPid === undefined ? null : processCpuMs(input.legacyPid);
  const result = await load(options(input.durationSec), (ms) => latencies.push(ms));
  const cpuAfter = input.legacyPid === undefined ? null : processCpuMs(input.legacyPid);
  // Only 2xx answers count as served: an error page is cheap and would inflate throughput.
  const ok = result['2xx'];
  return {
    requests: ok,
    requestsPerSec: result.duration > 0 ? ok / result.duration : 0,
    latency: latencyOf(latencies),
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    servedBy,
    legacyCpuMs: cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore,
  };
}

if (isEntry(import.meta.url)) await childMain(httpLoadInputSchema, run);
