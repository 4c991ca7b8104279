import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Command } from '@commander-js/extra-typings';
import Database from 'better-sqlite3';
import Fastify, { type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { z } from 'zod';
import { type RunningApi, startApi } from '../cli/serve.js';
import { openLegacyDb } from '../connectors/legacy/index.js';
import { parseMysqlUrl } from '../examples/bank/db.js';
import { AdapterError, errorMessage } from '../lib/errors.js';
import { createLogger, type Logger } from '../lib/logger.js';
import { SqliteReadModels } from '../projectors/stores/sqlite-read-models.js';
import { BENCH_MIGRATION, benchConfig, startAdapter } from './adapter.js';
import { childModule, isEntry, runChild } from './child.js';
import { type CpuLoadInput, type CpuLoadOutput, cpuLoadOutputSchema } from './children/cpu-load.js';
import { invalidOptions, parseOptions } from './cli-options.js';
import { prepareFixture } from './fixture.js';
import { gitInfo, machineInfo } from './machine.js';
import { profiled } from './profile.js';
import {
  type CpuRun,
  type ProfileSummary,
  type ServeCpuResult,
  serveCpuResultSchema,
} from './results-schema.js';
import { overviewAsOf } from './scenarios/reads.js';
import { median } from './stats.js';

/**
 * Server CPU per request of the shadow API's read endpoints against Fastify's hello-world, in
 * the same process: `process.cpuUsage()` (every thread of this process) and the event loop's
 * active time (the serving thread only) over a load run, divided by the requests answered.
 * Per-request CPU does not depend on how much of the shared machine the load generator or
 * other jobs take, so runs on a busy machine stay comparable; throughput is printed too.
 *
 * The read side is the embedded SQLite read models, caught up once (no pipeline runs during
 * the measurements, so the read models do not change and freshness is "caught up").
 *
 *   node --import tsx bench/serve-cpu.ts [--database NAME] [--scale tiny|small] [--seconds 5]
 *     [--repeat 3] [--connections 16,64] [--only hello,summary,history,overview,rate]
 *     [--modes new,legacy,shadow] [--out FILE]
 *     [--no-catch-up] [--inject] [--profile] [--profiled-runs]
 */

const argsSchema = z.object({
  database: z.string().default('serve_cpu_bank'),
  scale: z.enum(['tiny', 'small', 'bench']).default('small'),
  legacyUrl: z.string().default('mysql://cqrs:cqrs@127.0.0.1:3307'),
  dataDir: z.string().optional(),
  seconds: z.coerce.number().positive().default(5),
  repeat: z.coerce.number().int().positive().default(3),
  connections: z
    .string()
    .default('16,64')
    .transform((s) => s.split(',').map(Number))
    .pipe(z.array(z.number().int().positive()).min(1)),
  only: z
    .string()
    .default('hello,summary,history,overview,rate')
    .transform((s) => new Set(s.split(','))),
  modes: z
    .string()
    .default('new,legacy,shadow')
    .transform((s) => s.split(','))
    .pipe(z.array(z.enum(['new', 'legacy', 'shadow'])).min(1)),
  out: z.string().default('bench/results/serve-cpu.json'),
  /** Skip the catch-up when the read models are known to be current (repeated runs). */
  catchUp: z.boolean().default(true),
  /** Sample the CPU of each measured run (in-process inspector) and print its hottest frames. */
  profile: z.boolean().default(false),
  /** After the measured runs, one profiled run per target in read-model mode, kept in the results. */
  profiledRuns: z.boolean().default(false),
  /** Inject requests in this process instead of loading them over TCP from autocannon. */
  inject: z.boolean().default(false),
  force: z.boolean().default(false),
});
type Args = z.infer<typeof argsSchema>;

type Mode = 'legacy' | 'new' | 'shadow';
const FLAG_KEYS = {
  summary: 'accounts.summary',
  history: 'accounts.history',
  overview: 'accounts.overview',
} as const;

/** Commander parses and documents the options (`--help`); zod checks their values. Null: help was printed. */
function parseCli(argv: string[]): Args | null {
  const command = new Command('node --import tsx bench/serve-cpu.ts')
    .description(
      "Server CPU per request of the shadow API's read endpoints against Fastify's hello-world, in the same process.",
    )
    .option('--database <name>', 'legacy database (default serve_cpu_bank)')
    .option('--scale <scale>', 'sample bank size: tiny, small or bench (default small)')
    .option('--legacy-url <url>', 'server of the legacy database (default mysql://cqrs:cqrs@127.0.0.1:3307)')
    .option('--data-dir <dir>', 'dataset record and adapter stores (default .data/serve-cpu/<scale>)')
    .option('--seconds <n>', 'seconds per measured run (default 5)')
    .option('--repeat <n>', 'runs per endpoint and connection count (default 3)')
    .option('--connections <list>', 'connection counts, comma-separated (default 16,64)')
    .option('--only <list>', 'what to measure: hello,summary,history,overview,rate (default all)')
    .option('--modes <list>', 'flag modes of each read endpoint: new,legacy,shadow (default all)')
    .option('--out <file>', 'results file (default bench/results/serve-cpu.json)')
    .option('--no-catch-up', 'skip the catch-up when the read models are known to be current')
    .option('--profile', 'sample the CPU of each measured run and print its hottest frames')
    .option(
      '--profiled-runs',
      'after the measured runs, profile one more run of hello and of each endpoint in read-model mode and keep its hottest frames in the results',
    )
    .option('--inject', 'inject requests in this process instead of loading them over TCP')
    .option('--force', 'drop and regenerate --database when --data-dir holds no record of generating it')
    .exitOverride()
    .configureOutput({ writeErr: () => {} });
  if (!parseOptions(command, argv)) return null;
  const values = command.opts();
  const parsed = argsSchema.safeParse({
    database: values.database,
    scale: values.scale,
    legacyUrl: values.legacyUrl,
    dataDir: values.dataDir,
    seconds: values.seconds,
    repeat: values.repeat,
    connections: values.connections,
    only: values.only,
    modes: values.modes,
    out: values.out,
    catchUp: values.catchUp,
    profile: values.profile,
    profiledRuns: values.profiledRuns,
    inject: values.inject,
    force: values.force,
  });
  if (!parsed.success) throw invalidOptions(parsed.error, command);
  return parsed.data;
}

function strideCoprimeWith(n: number): number {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  let stride = 7919;
  while (n > 1 && gcd(stride, n) !== 1) stride += 2;
  return stride;
}

function load(input: CpuLoadInput) {
  return runChild(childModule('cpu-load'), input, cpuLoadOutputSchema);
}

interface Served {
  url: string;
  app: FastifyInstance;
  queue?: RunningApi['queue'];
}

/**
 * The load without sockets: requests injected into the app, `connections` at a time, for
 * `durationSec`. What the API itself costs per request, without the kernel's loopback TCP
 * work, which a shared machine's contention inflates most.
 */
async function inject(app: FastifyInstance, input: CpuLoadInput): Promise<CpuLoadOutput> {
  const until = performance.now() + input.durationSec * 1000;
  let k = 0;
  let requests = 0;
  let non2xx = 0;
  const worker = async () => {
    while (performance.now() < until) {
      const response = await app.inject({
        method: 'GET',
        url: input.paths[k++ % input.paths.length] as string,
      });
      requests++;
      if (response.statusCode >= 300) non2xx++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: input.connections }, worker));
  const seconds = (performance.now() - started) / 1000;
  return { requests, requestsPerSec: requests / seconds, non2xx, errors: 0 };
}

/** One measured load run: CPU and serving-thread time from its start until its comparisons drained. */
async function measure(
  served: Served,
  what: { target: string; mode: Mode | 'hello'; paths: string[]; connections: number; rate?: number },
  seconds: number,
  profile: boolean,
  injected: boolean,
): Promise<CpuRun> {
  const input: CpuLoadInput = {
    baseUrl: served.url,
    paths: what.paths,
    connections: what.connections,
    durationSec: seconds,
    ...(what.rate === undefined ? {} : { rate: what.rate }),
  };
  // A fixed rate needs autocannon's pacing.
  const load_ = (i: CpuLoadInput) => (injected && what.rate === undefined ? inject(served.app, i) : load(i));
  await load_({ ...input, durationSec: 1 });
  await served.queue?.onIdle();
  const queueBefore = served.queue?.stats();
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const run = async () => {
    const output = await load_(input);
    await served.queue?.onIdle();
    return output;
  };
  let output: CpuLoadOutput;
  if (profile) {
    const profiled_ = await profiled(run, 1000);
    output = profiled_.value;
    process.stderr.write(
      `profile ${what.target}/${what.mode}: idle ${profiled_.profile.idlePct}%\n${profiled_.profile.topFrames.map((f) => `  ${f.selfPct}% ${f.frame}`).join('\n')}\n`,
    );
  } else output = await run();
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  const queueAfter = served.queue?.stats();
  const per = (us: number) => Math.round((output.requests === 0 ? 0 : us / output.requests) * 10) / 10;
  return {
    target: what.target,
    mode: what.mode,
    connections: what.connections,
    rate: what.rate ?? null,
    requests: output.requests,
    requestsPerSec: Math.round(output.requestsPerSec),
    non2xx: output.non2xx,
    processCpuUsPerRequest: per(cpu.user + cpu.system),
    serveThreadUsPerRequest: per(elu.active * 1000),
    comparisons:
      queueBefore === undefined || queueAfter === undefined || what.mode !== 'shadow'
        ? null
        : {
            recorded: queueAfter.completed - queueBefore.completed,
            dropped: queueAfter.dropped - queueBefore.dropped,
          },
  };
}

/** A load run under the sampler, apart from the measured ones: what a target's CPU goes to. */
async function profileRun(
  served: Served,
  paths: string[],
  connections: number,
  seconds: number,
): Promise<ProfileSummary> {
  const { profile } = await profiled(async () => {
    await load({ baseUrl: served.url, paths, connections, durationSec: seconds });
    await served.queue?.onIdle();
  }, 1000);
  return profile;
}

async function startHello(): Promise<{ url: string; app: FastifyInstance; close(): Promise<void> }> {
  const app = Fastify();
  app.get('/hello', async () => ({ hello: 'world' }));
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { url, app, close: () => app.close() };
}

/** The read models of `adapterDir`, brought up to date with the legacy database once. */
async function catchUp(args: Args, adapterDir: string, logger: Logger): Promise<void> {
  const adapter = await startAdapter(
    { server: parseMysqlUrl(args.legacyUrl), database: args.database, dataDir: adapterDir },
    logger,
    { catchUpTimeoutMs: 3_600_000 },
  );
  await adapter.stop();
}

function table(runs: CpuRun[]): string {
  const groups = new Map<string, CpuRun[]>();
  for (const run of runs) {
    const key = `${run.target}|${run.mode}|${run.connections}|${run.rate ?? ''}`;
    groups.set(key, [...(groups.get(key) ?? []), run]);
  }
  const lines = [
    '| target | mode | connections | rate | process CPU µs/req (median) | serving thread µs/req (median) | req/s (median) | comparisons recorded / dropped |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const group of groups.values()) {
    const first = group[0] as CpuRun;
    const compared = group.every((r) => r.comparisons === null)
      ? ''
      : `${group.reduce((n, r) => n + (r.comparisons?.recorded ?? 0), 0)} / ${group.reduce((n, r) => n + (r.comparisons?.dropped ?? 0), 0)}`;
    lines.push(
      `| ${first.target} | ${first.mode} | ${first.connections} | ${first.rate ?? 'max'} | ${median(group.map((r) => r.processCpuUsPerRequest)) ?? 0} | ${median(group.map((r) => r.serveThreadUsPerRequest)) ?? 0} | ${median(group.map((r) => r.requestsPerSec)) ?? 0} | ${compared} |`,
    );
  }
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<void> {
  const args = parseCli(argv);
  if (!args) return;
  const logger = createLogger({ name: 'serve-cpu', level: 'warn' });
  const server = parseMysqlUrl(args.legacyUrl);
  const fixture = await prepareFixture({
    server,
    database: args.database,
    scale: args.scale,
    seed: 42,
    dataDir: args.dataDir ?? join('.data/serve-cpu', args.scale),
    force: args.force,
    logger,
  });
  // Only ids that exist: rolled-back inserts of earlier write loads leave gaps, whose 404s would
  // be measured as if they were reads.
  const [idRows] = await fixture.pool.query('SELECT id FROM accounts ORDER BY id');
  const existing = z
    .array(z.object({ id: z.number().int() }))
    .parse(idRows)
    .map((r) => r.id);
  // The reads scenario's reference instant: windows over the ledger's busiest stretch.
  const asOf = encodeURIComponent(await overviewAsOf({ fixture } as Parameters<typeof overviewAsOf>[0]));
  await fixture.pool.end();
  if (args.catchUp) await catchUp(args, fixture.adapterDir, logger);

  const config = benchConfig({ server, database: args.database, dataDir: fixture.adapterDir });
  const readDb = new Database(join(fixture.adapterDir, 'read-models.db'), { readonly: true });
  const readModels = new SqliteReadModels(BENCH_MIGRATION).readModels(readDb);
  const legacy = openLegacyDb(config.legacy.url, { poolSize: config.legacy.poolSize, logger });
  const api = await startApi(
    config,
    BENCH_MIGRATION,
    { readModels, freshness: { isCaughtUp: async () => true } },
    legacy,
    logger,
    new Registry(),
  );
  const hello = await startHello();
  // A stride coprime with the count: consecutive requests hit unrelated accounts.
  const stride = strideCoprimeWith(existing.length);
  const ids = Array.from(
    { length: Math.min(existing.length, 5000) },
    (_, i) => existing[(i * stride) % existing.length] as number,
  );
  const pathsOf = {
    summary: ids.map((id) => `/accounts/${id}/summary`),
    history: ids.map((id) => `/accounts/${id}/transactions?limit=50`),
    overview: ids.map((id) => `/accounts/${id}/overview?asOf=${asOf}`),
  };
  const runs: CpuRun[] = [];
  const profiles: Record<string, ProfileSummary> = {};
  const record = (run: CpuRun) => {
    runs.push(run);
    process.stderr.write(`${JSON.stringify(run)}\n`);
  };
  try {
    for (let r = 0; r < args.repeat; r++) {
      for (const connections of args.connections) {
        if (args.only.has('hello'))
          record(
            await measure(
              { url: hello.url, app: hello.app },
              { target: 'hello', mode: 'hello', paths: ['/hello'], connections },
              args.seconds,
              args.profile,
              args.inject,
            ),
          );
        for (const target of ['summary', 'history', 'overview'] as const) {
          if (!args.only.has(target)) continue;
          for (const mode of args.modes) {
            await api.flags.patch(FLAG_KEYS[target], { mode });
            record(
              await measure(
                { url: api.url, app: api.app, queue: api.queue },
                { target, mode, paths: pathsOf[target], connections },
                args.seconds,
                args.profile,
                args.inject,
              ),
            );
          }
        }
      }
      if (args.only.has('rate')) {
        // The shadow target: no comparison dropped at 500 req/s.
        for (const target of ['summary', 'history'] as const) {
          await api.flags.patch(FLAG_KEYS[target], { mode: 'shadow' });
          record(
            await measure(
              { url: api.url, app: api.app, queue: api.queue },
              { target, mode: 'shadow', paths: pathsOf[target], connections: 16, rate: 500 },
              args.seconds,
              args.profile,
              args.inject,
            ),
          );
        }
      }
    }
    if (args.profiledRuns) {
      const connections = Math.max(...args.connections);
      if (args.only.has('hello'))
        profiles.hello = await profileRun(
          { url: hello.url, app: hello.app },
          ['/hello'],
          connections,
          args.seconds,
        );
      for (const target of ['summary', 'history', 'overview'] as const) {
        if (!args.only.has(target)) continue;
        await api.flags.patch(FLAG_KEYS[target], { mode: 'new' });
        profiles[target] = await profileRun(
          { url: api.url, app: api.app, queue: api.queue },
          pathsOf[target],
          connections,
          args.seconds,
        );
      }
    }
  } finally {
    await hello.close();
    await api.close();
    await legacy.close();
    readDb.close();
  }
  const result: ServeCpuResult = serveCpuResultSchema.parse({
    startedAt: new Date().toISOString(),
    machine: machineInfo(),
    git: gitInfo(),
    node: process.version,
    scale: args.scale,
    seconds: args.seconds,
    runs,
    ...(args.profiledRuns ? { profiles } : {}),
  });
  mkdirSync(join(args.out, '..'), { recursive: true });
  writeFileSync(args.out, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${table(runs)}\n\nresults in ${args.out}\n`);
}

if (isEntry(import.meta.url)) {
  try {
    await main(process.argv.slice(2));
  } catch (err) {
    const hint = err instanceof AdapterError && err.hint ? `\nfix: ${err.hint}` : '';
    process.stderr.write(`serve-cpu failed: ${errorMessage(err)}${hint}\n`);
    if (!(err instanceof AdapterError)) process.stderr.write(`${err instanceof Error ? err.stack : ''}\n`);
    process.exitCode = 1;
  }
}
