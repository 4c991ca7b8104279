import { type ChildProcess, execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropDatabase } from '../../examples/bank/db.js';
import bank from '../../examples/bank/migration.js';
import type { VersionRecord } from '../../projectors/stores/read-model-versions.js';
import { waitFor } from './support/debezium-bank.js';
import { startRun } from './support/live-run.js';

/**
 * Blue/green replay beside a live `run`: the CLI asks the running process (admin API), whose
 * projection worker builds version 2 of account-summary between its live batches while the API
 * keeps answering from version 1; the verified switch makes the API answer from version 2
 * without a restart, the same answers; version 2 is then maintained by the live projector (a
 * legacy change reaches it), rollback returns to version 1 (maintained too), and drop removes
 * version 2 while the projector keeps running.
 */
const TOKEN = `h1-${process.pid}-0123456789abcdef`;
const server = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const database = `h1_rpll_${process.pid}`;
const url = `mysql://cqrs:cqrs@127.0.0.1:3307/${database}`;
const dir = mkdtempSync(join(tmpdir(), 'cqrs-h1-rpll-'));
const dataDir = join(dir, 'data');
const env = {
  ...process.env,
  CQRS_LEGACY_URL: url,
  CQRS_DATA_DIR: dataDir,
  CQRS_DEFINITION: 'examples/bank/migration.ts',
  CQRS_CDC_SERVER_ID: String(8100 + (process.pid % 800)),
  CQRS_API_PORT: '0',
  // One URL for reads and the admin routes the CLI calls.
  CQRS_ADMIN_PORT: 'public',
  LOG_LEVEL: 'warn',
  // The CLI reads the same variable: its admin calls carry the token, anonymous ones get 401.
  CQRS_ADMIN_TOKEN: `h1ops:${TOKEN}`,
};
const RM = 'account-summary';
const authorization = `Bearer ${TOKEN}`;

/** A balance changed on the legacy bank is served by the read model (the endpoint set to `new`). */
async function balanceServed(api: string, conn: mysql.Connection, accountId: number, available: string) {
  const flag = await fetch(`${api}/admin/flags/accounts.summary`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json', authorization },
    body: JSON.stringify({ mode: 'new' }),
  });
  expect(flag.status).toBe(200);
  await conn.query('UPDATE balances SET available = ? WHERE account_id = ?', [available, accountId]);
  await waitFor(
    `balance ${available} served by the read model`,
    async () => {
      const res = await fetch(`${api}/accounts/${accountId}/summary`);
      return (
        res.ok &&
        res.headers.get('x-served-by') === 'read-model' &&
        ((await res.json()) as { balance: { available: string } }).balance.available === available
      );
    },
    30_000,
  );
}
const started: ChildProcess[] = [];
let runner: ChildProcess | undefined;

const cli = (args: string[], onStdout?: (soFar: string) => void) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', 'cli/main.ts', ...args],
      { env: { ...env, LOG_LEVEL: 'error' }, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    let soFar = '';
    child.stdout?.on('data', (d: Buffer) => {
      soFar += d.toString();
      onStdout?.(soFar);
    });
    started.push(child);
  });

beforeAll(async () => {
  await bank.sample?.create({ url, scale: 'tiny', seed: 21, force: true, progress: () => undefined });
}, 120_000);

afterAll(async () => {
  runner?.kill('SIGTERM');
  for (const c of started) c.kill('SIGTERM');
  await dropDatabase(server, database).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

async function summary(
  api: string,
  id: number,
): Promise<{ status: number; servedBy: string | null; body: unknown }> {
  const res = await fetch(`${api}/accounts/${id}/summary`);
  return { status: res.status, servedBy: res.headers.get('x-served-by'), body: await res.json() };
}

describe('replay beside a live run', () => {
  it('builds, switches, maintains, rolls back and drops a version while the API serves', async () => {
    const { child, api } = await startRun(env);
    runner = child;
    await waitFor(
      'the snapshot in the read models',
      async () => (await fetch(`${api}/health/ready`)).status === 200,
      120_000,
    );
    const conn = await mysql.createConnection({ ...server, database });
    try {
      const [rows] = await conn.query('SELECT id FROM accounts ORDER BY id');
      const ids = (rows as Array<{ id: number }>).map((r) => Number(r.id));
      const first = ids[0] as number;
      // Served by the read model from here on.
      await balanceServed(api, conn, first, '1111.0000');
      // Behind the admin auth like every /admin route.
      const versionsUrl = `${api}/admin/read-models/${RM}/versions`;
      expect((await fetch(versionsUrl)).status).toBe(401);
      expect((await fetch(`${api}/admin/read-models/${RM}/replay`, { method: 'POST' })).status).toBe(401);
      expect((await fetch(versionsUrl, { headers: { authorization } })).status).toBe(200);
      const before = new Map<number, unknown>();
      for (const id of ids.slice(0, 10)) before.set(id, (await summary(api, id)).body);

      let replaying = true;
      let reads = 0;
      const bad: string[] = [];
      const reader = (async () => {
        while (replaying) {
          for (const id of ids.slice(0, 10)) {
            const got = await summary(api, id);
            if (got.status !== 200 || got.servedBy !== 'read-model')
              bad.push(`${id}: ${got.status} ${got.servedBy}`);
            else if (JSON.stringify(got.body) !== JSON.stringify(before.get(id))) bad.push(`${id}: differs`);
            else reads++;
          }
        }
      })();
      // Legacy writes to other accounts while version 2 is built: the live checkpoint moves
      // under the build, up to the moment the version joins the live projector.
      let built = false;
      let writes = 0;
      const writer = (async () => {
        while (!built) {
          const id = ids[20 + (writes % 10)] as number;
          await conn.query('UPDATE balances SET available = available + 1 WHERE account_id = ?', [id]);
          writes++;
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
      const replay = await cli(['replay', RM, '--url', api], (out) => {
        if (out.includes('built account-summary version 2')) built = true;
      });
      built = true;
      await writer;
      replaying = false;
      await reader;
      expect(writes).toBeGreaterThan(0);
      expect(replay.stderr).toMatch(/replay account-summary v2: \d+\/\d+ events \(100%\), \d+ events\/s/);
      expect(replay.code).toBe(0);
      expect(replay.stdout).toContain('built account-summary version 2 in the running process');
      expect(replay.stdout).toContain('documents differing from live version 1: 0');
      expect(replay.stdout).toContain('switched account-summary from version 1 to 2');
      expect(bad).toEqual([]);
      expect(reads).toBeGreaterThan(0);
      // Nothing written during the build or the hand-over is missing from version 2.
      const identical = () => {
        const db = new Database(join(dataDir, 'read-models.db'), { readonly: true });
        try {
          const differ = (a: string, b: string) =>
            db
              .prepare(
                `SELECT COUNT(*) FROM (SELECT key, doc FROM "${a}" EXCEPT SELECT key, doc FROM "${b}")`,
              )
              .pluck()
              .get();
          return (
            differ('rm_doc__account-summary', 'rm_doc__account-summary__v2') === 0 &&
            differ('rm_doc__account-summary__v2', 'rm_doc__account-summary') === 0
          );
        } finally {
          db.close();
        }
      };
      await waitFor('version 2 equal to version 1', async () => identical(), 30_000);

      const listed = await cli(['read-model', 'versions', RM, '--json', '--url', api]);
      const versions = JSON.parse(listed.stdout) as VersionRecord[];
      expect(versions.find((v) => v.state === 'live')?.version).toBe(2);
      // The API answers from version 2 now, the same answers.
      for (const [id, body] of before) expect((await summary(api, id)).body).toEqual(body);

      // Version 2 is maintained by the live projector: a legacy change reaches it (and version 1).
      await balanceServed(api, conn, first, '2222.0000');
      const db = new Database(join(dataDir, 'read-models.db'), { readonly: true });
      const balance = (table: string) =>
        db
          .prepare(`SELECT json_extract(doc, '$.balance.available') FROM "${table}" WHERE key = ?`)
          .pluck()
          .get(String(first));
      try {
        expect(balance('rm_doc__account-summary__v2')).toBe('2222.0000');
        await waitFor(
          'version 1 maintained too',
          async () => balance('rm_doc__account-summary') === '2222.0000',
          30_000,
        );
      } finally {
        db.close();
      }

      const back = await cli(['read-model', 'rollback', RM, '--url', api]);
      expect(back.stdout).toContain('rolled account-summary back from version 2 to 1');
      await balanceServed(api, conn, first, '3333.0000');

      const dropped = await cli(['read-model', 'drop', RM, '2', '--force', '--url', api]);
      expect(dropped.stderr).toBe('');
      expect(dropped.stdout).toContain('dropped account-summary version 2');
      // The projector goes on without the dropped version's tables.
      await balanceServed(api, conn, first, '4444.0000');
      expect((await fetch(`${api}/health/ready`)).status).toBe(200);
    } finally {
      await conn.end();
    }
  }, 600_000);
});
