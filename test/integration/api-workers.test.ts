import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropDatabase } from '../../examples/bank/db.js';
import bank from '../../examples/bank/migration.js';
import { waitFor } from './support/debezium-bank.js';
import { startRun } from './support/live-run.js';

/**
 * `run` with api.workers=2 on the tiny bank: two cluster workers answer the public port over the
 * stored read models while the primary keeps the pipeline, the admin listener and the data-dir
 * lock. Each worker's answers equal those of a `run` serving from one process.
 */
const server = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const database = `h3_workers_${process.pid}`;
const url = `mysql://cqrs:cqrs@127.0.0.1:3307/${database}`;
const dir = mkdtempSync(join(tmpdir(), 'h3-workers-'));
const children: ChildProcess[] = [];
const REDIS = 'redis://127.0.0.1:6379';
const statePrefix = `h3_workers_${process.pid}`;

const envOf = (workers: number): NodeJS.ProcessEnv => ({
  ...process.env,
  CQRS_LEGACY_URL: url,
  CQRS_DATA_DIR: dir,
  CQRS_DEFINITION: 'examples/bank/migration.ts',
  CQRS_CDC_NAME: `h3w${process.pid}`,
  CQRS_CDC_SERVER_ID: String(9400 + (process.pid % 90)),
  CQRS_API_PORT: '0',
  CQRS_ADMIN_PORT: '0',
  CQRS_API_WORKERS: String(workers),
  CQRS_FLAGS_DEFAULT_MODE: 'shadow',
  LOG_LEVEL: 'warn',
});

beforeAll(async () => {
  await bank.sample?.create({ url, scale: 'tiny', seed: 11, force: true, progress: () => undefined });
});

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
  }
  await dropDatabase(server, database).catch(() => undefined);
  const redis = new Redis(REDIS);
  const keys = await redis.keys(`${statePrefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
  rmSync(dir, { recursive: true, force: true });
});

/** Reads of every endpoint kind: documents, a list, a composed overview, an analytics query. */
const READS = [
  '/accounts/1/summary',
  '/accounts/2/summary',
  '/accounts/3/transactions',
  '/accounts/4/overview?asOf=2024-01-03%2000:00:00.000000',
  '/customers/1/spending?asOf=2024-01-03%2000:00:00.000000&months=12',
];

interface Answer {
  status: number;
  body: string;
  worker: string | null;
  servedBy: string | null;
  flagMode: string | null;
}

/**
 * One GET on a connection of its own: a kept-alive connection stays with the worker that
 * accepted it, and the workers take turns accepting connections.
 */
function get(base: string, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => {
        const header = (name: string) => {
          const value = res.headers[name];
          return typeof value === 'string' ? value : null;
        };
        resolve({
          status: res.statusCode ?? 0,
          body,
          worker: header('x-cqrs-worker'),
          servedBy: header('x-served-by'),
          flagMode: header('x-flag-mode'),
        });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function patchFlag(admin: string, key: string, mode: string): Promise<void> {
  const res = await fetch(`${admin}/admin/flags/${key}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ mode }),
  });
  expect(res.status).toBe(200);
}

/** Sum of a counter over all its label sets in a Prometheus text exposition. */
function counterTotal(text: string, name: string): number {
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

function exited(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** Process ids whose parent is `pid` (Linux /proc): a primary's API workers. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(entry));
    } catch {
      // The process ended while listed.
    }
  }
  return out;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('run with api.workers=2', () => {
  it('serves reads from two workers, as one process would', async () => {
    const started = performance.now();
    const run = await startRun(envOf(2));
    children.push(run.child);
    const { api, admin } = run;
    let requests = 0;
    const read = async (path: string) => {
      requests += 1;
      return get(api, path);
    };

    // Ready once the primary's relayed health says the snapshot is projected.
    await waitFor('ready workers', async () => (await get(api, '/health/ready')).status === 200, 60_000);
    const pids = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const a = await read('/accounts/1/summary');
      expect(a.status).toBe(200);
      if (a.worker !== null) pids.add(a.worker);
    }
    expect(pids.size).toBe(2);
    expect([...pids].every((pid) => Number(pid) !== run.child.pid)).toBe(true);

    // A flag changed on the admin listener reaches both workers quickly.
    const patched = performance.now();
    await Promise.all([patchFlag(admin, 'accounts', 'new'), patchFlag(admin, 'customers', 'new')]);
    const switched = new Set<string>();
    await waitFor(
      'both workers serving the read model',
      async () => {
        const a = await read('/accounts/1/summary');
        if (a.servedBy === 'read-model' && a.worker !== null) switched.add(a.worker);
        return switched.size === 2;
      },
      5000,
    );
    const flagMs = performance.now() - patched;
    expect(flagMs).toBeLessThan(2000);
    const fromWorkers = new Map<string, string>();
    for (const path of READS) {
      const a = await read(path);
      expect(a.status, path).toBe(200);
      expect(a.servedBy, path).toBe('read-model');
      fromWorkers.set(path, a.body);
    }

    // Shadow reads on both workers: every comparison lands in the one report.
    await patchFlag(admin, 'accounts', 'shadow');
    await patchFlag(admin, 'customers', 'shadow');
    const shadowWorkers = new Set<string>();
    let shadowed = 0;
    await waitFor(
      'shadow reads on both workers',
      async () => {
        for (const path of READS) {
          const a = await read(path);
          if (a.servedBy === 'legacy' && a.worker !== null) {
            shadowWorkers.add(a.worker);
            shadowed += 1;
          }
        }
        return shadowWorkers.size === 2;
      },
      5000,
    );
    type Report = { totals: { total: number; byOutcome: Record<string, number> } };
    let report: Report = { totals: { total: 0, byOutcome: {} } };
    await waitFor(
      'the comparisons recorded',
      async () => {
        report = (await (await fetch(`${admin}/admin/report`)).json()) as Report;
        return report.totals.total >= shadowed + 8;
      },
      10_000,
    );
    expect(report.totals.byOutcome.error).toBe(0);
    expect(report.totals.byOutcome.mismatch).toBe(0);

    // /metrics on the admin listener sums the workers' counters: every read, whichever answered.
    const metrics = await (await fetch(`${admin}/metrics`)).text();
    expect(counterTotal(metrics, 'cqrs_shadow_requests_total')).toBe(requests);

    // Time travel is the primary's: a worker refuses it, naming the setting.
    const past = await get(api, '/accounts/1/summary?_asOf=2020-01-01T00:00:00Z');
    expect(past.status).toBe(501);
    expect(past.body).toContain('api.workers');

    // A killed worker is replaced, and reads go on meanwhile.
    const [victim] = [...pids].map(Number);
    process.kill(victim as number, 'SIGKILL');
    const seen = new Set<string>();
    await waitFor(
      'a replacement worker answering',
      async () => {
        const a = await get(api, '/accounts/1/summary');
        expect(a.status).toBe(200);
        if (a.worker !== null) seen.add(a.worker);
        return [...seen].some((pid) => !pids.has(pid));
      },
      60_000,
    );

    // The primary still owns the data directory.
    const second = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'run'], { env: envOf(1) });
    children.push(second);
    let secondErr = '';
    second.stderr?.on('data', (d: Buffer) => {
      secondErr += d.toString();
    });
    expect(await exited(second, 60_000)).not.toBe(0);
    expect(secondErr).toContain('DATA_DIR_LOCKED');

    // SIGTERM stops the workers and the primary cleanly.
    const workerPids = [...seen, ...pids].map(Number);
    run.child.kill('SIGTERM');
    expect(await exited(run.child, 30_000)).toBe(0);
    expect(workerPids.filter(alive)).toEqual([]);

    // One process serving the same stored read models answers alike.
    const single = await startRun(envOf(1));
    children.push(single.child);
    await patchFlag(single.admin, 'accounts', 'new');
    await patchFlag(single.admin, 'customers', 'new');
    for (const path of READS) {
      const a = await get(single.api, path);
      expect(a.worker, path).toBeNull();
      expect(a.servedBy, path).toBe('read-model');
      expect(JSON.parse(a.body), path).toEqual(JSON.parse(fromWorkers.get(path) ?? 'null'));
    }
    single.child.kill('SIGTERM');
    expect(await exited(single.child, 30_000)).toBe(0);
    process.stdout.write(
      `[h3] api.workers=2: flag change reached both workers in ${Math.round(flagMs)} ms; ` +
        `${report.totals.total} comparisons from both; whole test ${Math.round((performance.now() - started) / 1000)} s\n`,
    );
  }, 240_000);

  it('takes flag changes from a shared Redis state store on every worker; exits 1 when workers keep dying', async () => {
    const run = await startRun({ ...envOf(2), CQRS_STATE_REDIS_URL: REDIS, CQRS_STATE_PREFIX: statePrefix });
    let stderr = '';
    run.child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    children.push(run.child);
    await waitFor('ready workers', async () => (await get(run.api, '/health/ready')).status === 200, 60_000);
    const patched = performance.now();
    await patchFlag(run.admin, 'accounts.summary', 'legacy');
    const switched = new Set<string>();
    await waitFor(
      'both workers on the new flags',
      async () => {
        const a = await get(run.api, '/accounts/1/summary');
        if (a.flagMode === 'legacy' && a.worker !== null) switched.add(a.worker);
        return switched.size === 2;
      },
      5000,
    );
    expect(performance.now() - patched).toBeLessThan(2000);

    // Five worker deaths within a minute: the primary gives up rather than look healthy.
    const primary = run.child.pid ?? 0;
    const killed = new Set<number>();
    for (let i = 0; i < 5; i++) {
      let victim: number | undefined;
      await waitFor(
        'a live worker',
        () => {
          victim = childrenOf(primary).find((pid) => !killed.has(pid));
          return victim !== undefined || run.child.exitCode !== null;
        },
        20_000,
      );
      if (victim === undefined) break;
      killed.add(victim);
      process.kill(victim, 'SIGKILL');
    }
    expect(killed.size).toBe(5);
    expect(await exited(run.child, 30_000)).toBe(1);
    expect(stderr).toContain('API_WORKERS_FAILING');
    expect(childrenOf(primary)).toEqual([]);
  }, 120_000);
});
