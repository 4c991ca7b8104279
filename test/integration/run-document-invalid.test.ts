import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropDatabase } from '../../examples/bank/db.js';
import bank from '../../examples/bank/migration.js';
import { waitFor } from './support/debezium-bank.js';

/**
 * A document its read model's schema refuses stops `run` at once (README › Operations): the
 * embedded store refuses the batch at the write, and the supervisor does not retry it for its
 * failure budget, since a restart would compose the same document. The refused document is
 * never committed, so it is never served.
 */
const server = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const database = `t_docinv_${process.pid}`;
const url = `mysql://cqrs:cqrs@127.0.0.1:3307/${database}`;
const dir = mkdtempSync(join(tmpdir(), 'cqrs-docinv-'));
const BUDGET_MS = 120_000;

beforeAll(async () => {
  await bank.sample?.create({ url, scale: 'tiny', seed: 8, force: true, progress: () => undefined });
});

afterAll(async () => {
  await dropDatabase(server, database).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe('run on a document its schema refuses', () => {
  let child: ChildProcess | undefined;

  afterAll(() => {
    if (child?.exitCode === null) child.kill('SIGKILL');
  });

  it('exits 1 with STORE_DOCUMENT_INVALID long before its failure budget, serving nothing refused', async () => {
    const proc = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'run'], {
      env: {
        ...process.env,
        CQRS_LEGACY_URL: url,
        CQRS_DATA_DIR: join(dir, 'data'),
        CQRS_DEFINITION: 'test/fixtures/bank-strict-summary.ts',
        CQRS_CDC_SERVER_ID: String(8700 + (process.pid % 90)),
        CQRS_API_PORT: '0',
        CQRS_ADMIN_PORT: '0',
        CQRS_SUPERVISION_FAILURE_BUDGET_MS: String(BUDGET_MS),
        LOG_LEVEL: 'fatal',
      },
    });
    child = proc;
    let out = '';
    let err = '';
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    proc.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const exit = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    await waitFor('run to serve', () => out.includes('shadow API on') || proc.exitCode !== null, 120_000);
    expect(proc.exitCode, err).toBeNull();
    const api = /shadow API on (\S+)/.exec(out)?.[1] ?? '';
    await waitFor('ready', async () => (await fetch(`${api}/health/ready`)).status === 200, 60_000);

    const c = await mysql.createConnection({ ...server, database });
    let ownerBefore: string;
    try {
      const [rows] = await c.query(
        `SELECT c.id, CONCAT(c.first_name, ' ', c.last_name) AS name
           FROM accounts a JOIN customers c ON c.id = a.customer_id ORDER BY a.id LIMIT 1`,
      );
      const first = (rows as Array<{ id: number; name: string }>)[0];
      if (first === undefined) throw new Error('no account');
      ownerBefore = first.name;
      const started = Date.now();
      await c.query("UPDATE customers SET first_name = 'Refused', last_name = 'Owner' WHERE id = ?", [
        first.id,
      ]);
      const code = await Promise.race([
        exit,
        new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000)),
      ]);
      expect(code, err).toBe(1);
      // Not retried for the budget: a restart composes the same document.
      expect(Date.now() - started).toBeLessThan(BUDGET_MS / 2);
    } finally {
      await c.end();
    }
    expect(err).toMatch(/STORE_DOCUMENT_INVALID/);
    expect(err).toMatch(/account-summary/);

    // The batch was refused whole: the stored summary still names the owner as before.
    const db = new Database(join(dir, 'data', 'read-models.db'), { readonly: true });
    try {
      const tables = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'rm_doc%'")
        .pluck()
        .all() as string[];
      const texts = tables.flatMap((t) => db.prepare(`SELECT * FROM "${t}"`).raw().all() as unknown[][]);
      const stored = JSON.stringify(texts);
      expect(stored).toContain(ownerBefore);
      expect(stored).not.toContain('Refused Owner');
    } finally {
      db.close();
    }
  }, 240_000);
});
