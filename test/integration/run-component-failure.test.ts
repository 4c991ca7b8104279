import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embeddedReadModels } from '../../cli/pipeline.js';
import { openLegacyDb } from '../../connectors/legacy/index.js';
import { dropDatabase } from '../../examples/bank/db.js';
import bank from '../../examples/bank/migration.js';
import { waitFor } from './support/debezium-bank.js';
import { untilNoDrift } from './support/drift.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

/**
 * `run` heals itself when a pipeline component fails: the server ends its binlog connection
 * (KILL of the dump thread, as a restart or a failover would) while the database stays away for
 * a few seconds; the process stays up, /health/ready says which component is down meanwhile,
 * and the changes made after the kill reach the read models. A failure that outlasts the
 * budget still ends the process with the reason, so a supervisor restarts it.
 *
 * The child reaches MariaDB through a relay of this test, so the outage concerns this process
 * only (the server is shared) and its binlog dump thread is told apart from other readers'.
 */
const server = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const database = `t_runfail_${process.pid}`;
const directUrl = `mysql://cqrs:cqrs@127.0.0.1:3307/${database}`;
const dir = mkdtempSync(join(tmpdir(), 'cqrs-runfail-'));
const serverId = 8900 + (process.pid % 90);
let proxy: TcpProxy;

beforeAll(async () => {
  await bank.sample?.create({
    url: directUrl,
    scale: 'tiny',
    seed: 6,
    force: true,
    progress: () => undefined,
  });
  proxy = await startTcpProxy({ host: server.host, port: server.port });
});

afterAll(async () => {
  await proxy?.close();
  await dropDatabase(server, database).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

interface RunningChild {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exit: Promise<number | null>;
  url: () => string;
  /** The admin listener (/metrics). */
  adminUrl: () => string;
}

function startRun(dataDir: string, env: Record<string, string> = {}): RunningChild {
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'run'], {
    env: {
      ...process.env,
      CQRS_LEGACY_URL: `mysql://cqrs:cqrs@127.0.0.1:${proxy.port}/${database}`,
      CQRS_DATA_DIR: dataDir,
      CQRS_DEFINITION: 'examples/bank/migration.ts',
      CQRS_CDC_SERVER_ID: String(serverId),
      CQRS_API_PORT: '0',
      CQRS_ADMIN_PORT: '0',
      LOG_LEVEL: 'fatal',
      ...env,
    },
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    out: () => out,
    err: () => err,
    exit,
    url: () => /shadow API on (\S+)/.exec(out)?.[1] ?? '',
    adminUrl: () => /admin on (\S+)/.exec(out)?.[1] ?? '',
  };
}

async function readiness(baseUrl: string): Promise<{ status: number; body: { problems?: unknown[] } }> {
  const res = await fetch(`${baseUrl}/health/ready`);
  return { status: res.status, body: (await res.json()) as { problems?: unknown[] } };
}

/** The server's binlog dump threads that serve connections of this test's relay. */
async function dumpThreadsOfRelay(): Promise<number[]> {
  const c = await mysql.createConnection(server);
  try {
    const [rows] = await c.query(
      "SELECT ID AS id, HOST AS host FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'",
    );
    const ours = new Set(proxy.upstreamPorts());
    return (rows as Array<{ id: number; host: string }>)
      .filter((r) => ours.has(Number(r.host.split(':').pop())))
      .map((r) => Number(r.id));
  } finally {
    await c.end();
  }
}

// One `run` serves both cases (starting one costs most of this file's time): it heals an outage
// shorter than its budget, then exits on one that outlasts it.
const BUDGET_MS = 10_000;
let run: RunningChild;
let recoveredAt = 0;
/** A component that fails again sooner after a restart is flapping: its outage goes on (pipeline.ts). */
const STABLE_MS = 10_000;

describe('run when a pipeline component fails', () => {
  beforeAll(async () => {
    run = startRun(join(dir, 'data'), { CQRS_SUPERVISION_FAILURE_BUDGET_MS: String(BUDGET_MS) });
    await waitFor('run to serve', () => run.out().includes('shadow API on'), 120_000);
  });

  afterAll(async () => {
    if (run?.child.exitCode === null) run.child.kill('SIGKILL');
    await run?.exit;
  });

  it('restarts the binlog source itself: unready while it is down, ready again, no change lost', async () => {
    const legacy = openLegacyDb(directUrl);
    try {
      const ready = async () => (await readiness(run.url())).status === 200;
      await waitFor('ready', ready, 30_000);
      const threads = await dumpThreadsOfRelay();
      expect(threads).toHaveLength(1);

      // The server ends the binlog connection and stays away for a few seconds.
      const c = await mysql.createConnection(server);
      try {
        for (const id of threads) await c.query(`KILL ${Number(id)}`);
      } finally {
        await c.end();
      }
      proxy.outage();
      const writes = bank.sample?.load({ url: directUrl, ratePerSec: 40, durationMs: 3000, seed: 61 });
      let unready: { status: number; body: { problems?: unknown[] } } | null = null;
      await waitFor(
        'unready',
        async () => {
          const r = await readiness(run.url());
          if (r.status === 503) unready = r;
          return unready !== null;
        },
        10_000,
      );
      expect(unready).toMatchObject({
        status: 503,
        body: { problems: [{ component: 'source', reason: expect.stringMatching(/^restarting: /) }] },
      });
      await new Promise((r) => setTimeout(r, 2000));
      proxy.restore();
      const stats = await writes;
      expect(stats?.ops).toBeGreaterThan(20);
      await waitFor('ready again', ready, 60_000);
      recoveredAt = Date.now();

      // The same process (never exited), and every account equal to its legacy answer.
      expect(run.child.exitCode).toBeNull();
      const db = new Database(join(dir, 'data', 'read-models.db'), { readonly: true });
      try {
        const drift = await untilNoDrift(bank, legacy, embeddedReadModels(bank).readModels(db), 60_000);
        expect(drift).toEqual([]);
      } finally {
        db.close();
      }
      const metrics = await (await fetch(`${run.adminUrl()}/metrics`)).text();
      expect(metrics).toMatch(/cqrs_component_restarts_total\{component="source"\} [1-9]/);
      expect(metrics).toMatch(/cqrs_component_up\{component="source"\} 1/);
      expect(metrics).toMatch(/cqrs_read_model_lag_seconds \d/);
    } finally {
      proxy.restore();
      await legacy.close();
    }
  });

  it('exits 1 with the reason once the source has been failing for longer than the budget', async () => {
    expect(run.child.exitCode).toBeNull();
    // A new outage, not the end of the first one.
    await new Promise((r) => setTimeout(r, Math.max(0, recoveredAt + STABLE_MS + 500 - Date.now())));
    const started = Date.now();
    proxy.outage();
    try {
      const code = await Promise.race([
        run.exit,
        new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000)),
      ]);
      expect(code).toBe(1);
      // Not before the budget: the supervisor retried meanwhile.
      expect(Date.now() - started).toBeGreaterThanOrEqual(BUDGET_MS);
      expect(run.err()).toMatch(/error \[\w+\]: source has been failing for [\d.]+ s \(budget 10 s\): .+/);
      expect(run.err()).toMatch(/exiting so a supervisor restarts it/);
    } finally {
      proxy.restore();
    }
  });
});
