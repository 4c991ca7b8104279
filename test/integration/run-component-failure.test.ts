import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropDatabase } from '../../examples/bank/db.js';
import bank from '../../examples/bank/migration.js';
import { waitFor } from './support/debezium-bank.js';

/**
 * `run` never serves on looking healthy while its read models go stale: when the change source
 * stops on an error (here the server ends its binlog connection), the process says why and
 * exits non-zero, so a supervisor restarts it from the stored offset.
 */
const server = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const database = `t_runfail_${process.pid}`;
const url = `mysql://cqrs:cqrs@127.0.0.1:3307/${database}`;
const dir = mkdtempSync(join(tmpdir(), 'cqrs-runfail-'));
const serverId = 8900 + (process.pid % 90);

beforeAll(async () => {
  await bank.sample?.create({ url, scale: 'tiny', seed: 6, force: true, progress: () => undefined });
});

afterAll(async () => {
  await dropDatabase(server, database).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe('run when a pipeline component fails', () => {
  it('exits 1 with the reason instead of serving stale read models', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'run'], {
      env: {
        ...process.env,
        CQRS_LEGACY_URL: url,
        CQRS_DATA_DIR: join(dir, 'data'),
        CQRS_DEFINITION: 'examples/bank/migration.ts',
        CQRS_CDC_SERVER_ID: String(serverId),
        CQRS_API_PORT: '0',
        LOG_LEVEL: 'fatal',
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
    try {
      await waitFor('run to serve', () => out.includes('shadow API on'), 120_000);
      // The server ends the pipeline's binlog connection, as a restart or a failover would.
      const c = await mysql.createConnection(server);
      try {
        const [threads] = await c.query(
          "SELECT ID AS id FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'",
        );
        const ids = (threads as Array<{ id: number }>).map((t) => t.id);
        expect(ids.length).toBeGreaterThan(0);
        for (const id of ids) await c.query(`KILL ${Number(id)}`);
      } finally {
        await c.end();
      }
      const code = await Promise.race([
        exit,
        new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000)),
      ]);
      expect(code).toBe(1);
      expect(err).toMatch(/error \[\w+\]: .+/);
      expect(err).toMatch(/exiting so a supervisor restarts it/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
