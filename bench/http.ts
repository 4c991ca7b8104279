import type { RunningApi } from '../cli/serve.js';
import { BENCH_MIGRATION } from './adapter.js';
import { childModule, runChild } from './child.js';
import { httpLoadOutputSchema } from './children/http-load.js';
import type { ScenarioContext } from './context.js';
import { legacyServerPid } from './legacy-cpu.js';
import type { BenchEndpoint, HttpRun, ServedMode } from './results-schema.js';

export interface AccountRange {
  min: number;
  max: number;
}

/** The flag key (`<domain>.<endpoint>`) of a bench endpoint in the bank definition. */
function flagKeyOf(endpoint: BenchEndpoint): string {
  const entry = BENCH_MIGRATION.endpoints.find((e) => e.name === endpoint);
  if (entry === undefined) throw new Error(`the bench migration has no endpoint "${endpoint}"`);
  return entry.key;
}

const pids = new WeakMap<ScenarioContext, Promise<number | null>>();

/** The legacy server's pid, looked up once per scenario. */
function legacyPidOf(ctx: ScenarioContext): Promise<number | null> {
  let pid = pids.get(ctx);
  if (pid === undefined) {
    pid = legacyServerPid(ctx.fixture.pool, ctx.server.host);
    pids.set(ctx, pid);
  }
  return pid;
}

/** Sets the endpoint's flag on the running API, then loads it from a separate autocannon process. */
export async function measureEndpoint(
  ctx: ScenarioContext,
  api: RunningApi,
  run: {
    endpoint: BenchEndpoint;
    mode: ServedMode;
    connections: number;
    accounts: AccountRange;
    /** Reference instant for the overview endpoints. */
    asOf?: string;
  },
): Promise<HttpRun> {
  await api.flags.patch(flagKeyOf(run.endpoint), { mode: run.mode });
  const { httpSec, warmupSec } = ctx.settings;
  const legacyPid = await legacyPidOf(ctx);
  const cpuBefore = process.cpuUsage();
  const output = await runChild(
    childModule('http-load'),
    {
      baseUrl: api.url,
      endpoint: run.endpoint,
      accountIds: run.accounts,
      connections: run.connections,
      durationSec: httpSec,
      warmupSec,
      ...(run.asOf === undefined ? {} : { asOf: run.asOf }),
      ...(legacyPid === null ? {} : { legacyPid }),
    },
    httpLoadOutputSchema,
  );
  // The run's comparisons are part of its cost, and must not land in the next run's window.
  await api.queue.onIdle();
  const cpu = process.cpuUsage(cpuBefore);
  const adapterCpuMs = (cpu.user + cpu.system) / 1000;
  const served = Object.values(output.servedBy).reduce((a, b) => a + b, 0);
  ctx.logger.info(
    {
      endpoint: run.endpoint,
      mode: run.mode,
      connections: run.connections,
      rps: Math.round(output.requestsPerSec),
      p99: output.latency.p99Ms,
    },
    'http run',
  );
  const { legacyCpuMs, ...load } = output;
  return {
    endpoint: run.endpoint,
    mode: run.mode,
    connections: run.connections,
    durationSec: httpSec,
    ...load,
    counted: '2xx',
    legacyDbCpu:
      legacyCpuMs === null
        ? null
        : { cpuMs: legacyCpuMs, usPerRequest: load.requests > 0 ? (legacyCpuMs * 1000) / load.requests : 0 },
    adapterCpu: { cpuMs: adapterCpuMs, usPerRequest: served > 0 ? (adapterCpuMs * 1000) / served : 0 },
  };
}
