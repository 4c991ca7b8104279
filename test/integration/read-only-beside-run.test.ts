import { type ChildProcess, execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReconcileResult } from '../../compare/reconcile.js';
import type { Report } from '../../compare/report.js';
import { dropDatabase } from '../../examples/bank/db.js';
import bank from '../../examples/bank/migration.js';
import { waitFor } from './support/debezium-bank.js';
import { expectBalanceInReadModel, startRun } from './support/live-run.js';

/**
 * `reconcile` and `report` only read: beside a real `run` under write load they succeed as
 * separate processes, open no binlog dump of their own (SHOW PROCESSLIST: the reconcile
 * process's connections are plain queries, the run's the one dump), the run keeps streaming,
 * and reconcile settles every account as equal or lag. Without a live run reconcile still
 * answers from what is stored and says how far behind that may be.
 */
const server = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const database = `h4_ro_${process.pid}`;
const url = `mysql://cqrs:cqrs@127.0.0.1:3307/${database}`;
const dir = mkdtempSync(join(tmpdir(), 'cqrs-h4-ro-'));
const env = {
  ...process.env,
  CQRS_LEGACY_URL: url,
  CQRS_DATA_DIR: join(dir, 'data'),
  CQRS_DEFINITION: 'examples/bank/migration.ts',
  CQRS_CDC_SERVER_ID: String(6100 + (process.pid % 800)),
  CQRS_API_PORT: '0',
  CQRS_ADMIN_PORT: '0',
  LOG_LEVEL: 'warn',
};
const cli = (args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string; pid: number }>((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', 'cli/main.ts', ...args],
      // Warnings (a mismatch is one) are log lines on stdout: keep stdout the command's JSON.
      { env: { ...env, LOG_LEVEL: 'error' }, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr, pid }),
    );
    const pid = child.pid as number;
    started.push(child);
  });
const started: ChildProcess[] = [];
let runner: ChildProcess | undefined;

/** Local TCP ports of a process's sockets (/proc), to find its connections in SHOW PROCESSLIST. */
function localPortsOf(pid: number): Set<number> {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      const link = (() => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`);
        } catch {
          return '';
        }
      })();
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m) inodes.add(m[1] as string);
    }
  } catch {
    return new Set();
  }
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && inodes.has(cols[9] as string)) {
        ports.add(Number.parseInt((cols[1] as string).split(':')[1] as string, 16));
      }
    }
  }
  return ports;
}

interface ProcessRow {
  Id: number;
  Host: string;
  Command: string;
}

/** The server's threads whose client is `pid`. */
async function threadsOf(conn: mysql.Connection, pid: number): Promise<ProcessRow[]> {
  const ports = localPortsOf(pid);
  const [rows] = await conn.query('SHOW PROCESSLIST');
  return (rows as ProcessRow[]).filter((r) => ports.has(Number(r.Host.split(':')[1])));
}

beforeAll(async () => {
  await bank.sample?.create({ url, scale: 'tiny', seed: 9, force: true, progress: () => undefined });
}, 120_000);

afterAll(async () => {
  runner?.kill('SIGTERM');
  for (const c of started) c.kill('SIGTERM');
  await dropDatabase(server, database).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe('reconcile and report beside a live run', () => {
  it('read what run stores without a change stream of their own, while run keeps streaming', async () => {
    const { child: live, ...urls } = await startRun(env);
    const { api } = urls;
    runner = live;
    await waitFor(
      'the snapshot in the read models',
      async () => ((await fetch(`${api}/health/ready`)).status === 200) as boolean,
      120_000,
    );
    const conn = await mysql.createConnection({ ...server, database });
    try {
      const load = bank.sample?.load({ url, seed: 10, ratePerSec: 20, durationMs: 25_000 });
      await sleep(2000);

      // reconcile as its own process, its connections watched while it runs.
      const reconciling = cli(['reconcile']);
      const reconcilePid = (started[started.length - 1] as ChildProcess).pid as number;
      let done = false;
      void reconciling.then(() => {
        done = true;
      });
      let seenReconcileThreads = 0;
      const reconcileDumps: ProcessRow[] = [];
      let runDumpsMax = 0;
      while (!done) {
        const mine = await threadsOf(conn, reconcilePid);
        seenReconcileThreads = Math.max(seenReconcileThreads, mine.length);
        reconcileDumps.push(...mine.filter((r) => r.Command.startsWith('Binlog Dump')));
        const runs = (await threadsOf(conn, live.pid as number)).filter((r) =>
          r.Command.startsWith('Binlog Dump'),
        );
        runDumpsMax = Math.max(runDumpsMax, runs.length);
        await sleep(50);
      }
      const reconciled = await reconciling;
      expect(reconciled.stderr).not.toMatch(/DATA_DIR_LOCKED/);
      expect(reconciled.code).toBe(0);
      // The watch saw reconcile's own connections, and none of them was a binlog dump.
      expect(seenReconcileThreads).toBeGreaterThan(0);
      expect(reconcileDumps).toEqual([]);
      expect(runDumpsMax).toBe(1);

      const result = JSON.parse(reconciled.stdout) as ReconcileResult & {
        readSide: { liveRun: boolean; lagSeconds: number };
      };
      expect(result.readSide.liveRun).toBe(true);
      expect(result.checked).toBeGreaterThan(0);
      // Under write load an account may be behind, never wrong.
      expect(result.byOutcome.mismatch).toBe(0);
      expect(result.byOutcome.missing).toBe(0);
      expect(result.byOutcome.error).toBe(0);
      expect(result.byOutcome.match + result.byOutcome.lag).toBe(result.checked);
      console.log(
        `reconcile beside run: ${result.byOutcome.match} match, ${result.byOutcome.lag} lag of ${result.checked}; lag ${result.readSide.lagSeconds.toFixed(1)} s`,
      );

      const reported = await cli(['report', '--json']);
      expect(reported.code).toBe(0);
      const report = JSON.parse(reported.stdout) as Report;
      expect(report.endpoints.map((e) => e.endpoint)).toContain('reconcile.accounts.summary');
      expect(report.totals.byOutcome.mismatch).toBe(0);

      await load;
      // The live run still streams: a change after reconcile reaches its read model.
      await expectBalanceInReadModel(urls, { ...server, database }, 1, '4343.4300');
      expect(live.exitCode).toBeNull();
    } finally {
      await conn.end();
    }
    live.kill('SIGTERM');
    await new Promise((resolve) => live.once('exit', resolve));
    runner = undefined;
  }, 400_000);

  it('without a live run, compares what is stored and says it may be behind', async () => {
    expect(runner).toBeUndefined();
    const c = await mysql.createConnection({ ...server, database });
    try {
      await c.query("UPDATE balances SET available = '5454.5400' WHERE account_id = 2");
    } finally {
      await c.end();
    }
    const reconciled = await cli(['reconcile']);
    expect(reconciled.code).toBe(0);
    const result = JSON.parse(reconciled.stdout) as ReconcileResult & {
      readSide: { liveRun: boolean; caughtUp: boolean };
    };
    expect(result.readSide.liveRun).toBe(false);
    expect(result.readSide.caughtUp).toBe(false);
    expect(reconciled.stderr).toMatch(/warning: no `run` is live on .*: compared the read models as stored/);
    // The change nobody captured is a difference on account 2's screens, and only there.
    expect(result.failures.length).toBeGreaterThan(0);
    for (const f of result.failures) {
      expect(f.requestKey).toMatch(/accountId=2\b/);
      expect(f.outcome).toBe('mismatch');
    }
  }, 120_000);
});
