/**
 * Read throughput of `run` with api.workers=1 against api.workers=2, interleaved: both runs
 * stay up (idle pipelines) over the same legacy database, and each round loads one then the
 * other (the order alternating) with autocannon at 64 connections, per endpoint and mode.
 *
 *   npm run -s build
 *   node --import tsx bench/api-workers-reads.ts --url mysql://cqrs:cqrs@127.0.0.1:3307/<bank> \
 *     [--rounds 3] [--duration 10] [--warmup 2] [--connections 64] [--accounts 80] [--prefix bw_]
 *
 * The load generator runs in this process, on the same cores as MariaDB and the runs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from '@commander-js/extra-typings';
import autocannon from 'autocannon';
import { z } from 'zod';

const options = new Command('node --import tsx bench/api-workers-reads.ts')
  .description('Read throughput of `run` with api.workers=1 against api.workers=2, interleaved.')
  .requiredOption('--url <url>', 'mysql://… of a bank sample database')
  .option('--rounds <n>', 'rounds, each loading both runs', '3')
  .option('--duration <seconds>', 'measured seconds per load', '10')
  // Each worker's JIT warms on its share of the load only.
  .option('--warmup <seconds>', 'seconds of load before each measured one', '2')
  .option('--connections <n>', 'autocannon connections', '64')
  .option('--accounts <n>', 'accounts the requests spread over', '80')
  .option('--prefix <prefix>', 'prefix of the runs’ data directories and CDC names', 'bw_')
  .parse()
  .opts();
const count = z.coerce.number().int().positive();
const values = z
  .object({
    url: z.string().regex(/^mysql:\/\//, 'a mysql:// URL'),
    rounds: count,
    duration: count,
    warmup: z.coerce.number().int().nonnegative(),
    connections: count,
    accounts: count,
    prefix: z.string(),
  })
  .parse(options);
const legacyUrl = values.url;
const { rounds, duration, connections, accounts } = values;

interface Run {
  workers: number;
  /** The primary and its API workers: whose CPU time a load costs. */
  pids: number[];
  child: ChildProcess;
  api: string;
  admin: string;
  dir: string;
}

async function startRun(workers: number, index: number): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), `${values.prefix}bench-workers-${workers}-`));
  const child = spawn(
    process.execPath,
    ['dist/cli/main.js', 'run', '--definition', 'examples/bank/migration.ts'],
    {
      env: {
        ...process.env,
        CQRS_LEGACY_URL: legacyUrl,
        CQRS_DATA_DIR: dir,
        CQRS_CDC_NAME: `${values.prefix}benchw${workers}`,
        CQRS_CDC_SERVER_ID: String(9600 + index),
        CQRS_API_PORT: '0',
        CQRS_ADMIN_PORT: '0',
        CQRS_API_WORKERS: String(workers),
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const serving = /shadow API on (\S+) — admin on (\S+)/;
  for (let waited = 0; !serving.test(out); waited += 500) {
    if (child.exitCode !== null || waited > 300_000)
      throw new Error(`run (workers ${workers}) did not serve: ${out}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  const [, api = '', admin = ''] = serving.exec(out) ?? [];
  const workerPids = (/API workers ([\d, ]+)\)/.exec(out)?.[1] ?? '').split(', ').filter(Boolean).map(Number);
  while ((await fetch(`${api}/health/ready`)).status !== 200) await new Promise((r) => setTimeout(r, 500));
  return { workers, pids: [child.pid ?? 0, ...workerPids], child, api, admin, dir };
}

async function setMode(run: Run, mode: string): Promise<void> {
  const res = await fetch(`${run.admin}/admin/flags/accounts`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ mode }),
  });
  if (!res.ok) throw new Error(`flag change failed: ${res.status}`);
  await new Promise((r) => setTimeout(r, 500));
}

/** CPU seconds (user + system) the processes have used, from /proc (Linux). */
function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / 100;
}

const STRIDE = 7919;
function load(base: string, path: (id: number) => string, seconds: number) {
  let k = 0;
  return new Promise<autocannon.Result>((resolve, reject) =>
    autocannon(
      {
        url: base,
        connections,
        duration: seconds,
        requests: [
          { method: 'GET', setupRequest: (req) => ({ ...req, path: path(1 + ((k++ * STRIDE) % accounts)) }) },
        ],
      },
      (err: unknown, result: autocannon.Result) => (err ? reject(err) : resolve(result)),
    ),
  );
}

const CASES = [
  { name: 'summary, read model', mode: 'new', path: (id: number) => `/accounts/${id}/summary` },
  { name: 'history, read model', mode: 'new', path: (id: number) => `/accounts/${id}/transactions?limit=50` },
  { name: 'summary, legacy', mode: 'legacy', path: (id: number) => `/accounts/${id}/summary` },
  { name: 'history, legacy', mode: 'legacy', path: (id: number) => `/accounts/${id}/transactions?limit=50` },
];

const runs = [await startRun(1, 0), await startRun(2, 1)];
const results = new Map<string, { workers: number; rps: number; p99: number; cpuUsPerRequest: number }[]>();
try {
  for (let round = 0; round < rounds; round++) {
    for (const c of CASES) {
      const order = round % 2 === 0 ? runs : [...runs].reverse();
      for (const run of order) {
        await setMode(run, c.mode);
        await load(run.api, c.path, values.warmup);
        const cpuBefore = cpuSeconds(run.pids);
        const r = await load(run.api, c.path, duration);
        const cpu = cpuSeconds(run.pids) - cpuBefore;
        const rps = r['2xx'] / (r.duration || duration);
        const cpuUsPerRequest = (cpu * 1e6) / Math.max(1, r['2xx']);
        const list = results.get(c.name) ?? [];
        list.push({ workers: run.workers, rps, p99: r.latency.p99, cpuUsPerRequest });
        results.set(c.name, list);
        process.stdout.write(
          `round ${round + 1} ${c.name.padEnd(20)} workers=${run.workers} ${rps.toFixed(0).padStart(6)} req/s p99 ${r.latency.p99} ms, server CPU ${cpuUsPerRequest.toFixed(0)} µs/request (${(cpu / (r.duration || duration)).toFixed(2)} cores), non2xx ${r.non2xx} errors ${r.errors}\n`,
        );
      }
    }
  }
} finally {
  for (const run of runs) {
    run.child.kill('SIGTERM');
    await new Promise((r) => run.child.once('exit', r));
    rmSync(run.dir, { recursive: true, force: true });
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
process.stdout.write(
  '\ncase                  workers=1 req/s  workers=2 req/s  ratio   CPU µs/req 1 → 2 (medians of rounds)\n',
);
for (const [name, list] of results) {
  const one = median(list.filter((x) => x.workers === 1).map((x) => x.rps));
  const two = median(list.filter((x) => x.workers === 2).map((x) => x.rps));
  const cpuOne = median(list.filter((x) => x.workers === 1).map((x) => x.cpuUsPerRequest));
  const cpuTwo = median(list.filter((x) => x.workers === 2).map((x) => x.cpuUsPerRequest));
  process.stdout.write(
    `${name.padEnd(22)}${one.toFixed(0).padStart(15)}${two.toFixed(0).padStart(17)}${(two / one).toFixed(2).padStart(8)}   ${cpuOne.toFixed(0)} → ${cpuTwo.toFixed(0)}\n`,
  );
}
