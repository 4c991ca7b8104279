import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, describe, expect, it } from 'vitest';
import { prepareFixture } from '../../bench/fixture.js';
import { dropDatabase } from '../../examples/bank/db.js';
import { silentLogger } from '../../lib/logger.js';
import { createForeignDatabase, foreignRows } from '../support/foreign-database.js';

const conn = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const database = `t_guard_${Math.random().toString(36).slice(2, 8)}`;
const dir = mkdtempSync(join(tmpdir(), 'bench-guard-'));

afterAll(async () => {
  await dropDatabase(conn, database);
  rmSync(dir, { recursive: true, force: true });
});

/**
 * The harness drops and regenerates its bank only when its data dir records generating that
 * database: any other existing database (another run's bank, or not a bank at all) needs --force.
 */
describe('bench fixture', () => {
  it('refuses to drop a database its data dir has no record of, and leaves it as it was', async () => {
    const admin = await mysql.createConnection(conn);
    try {
      await createForeignDatabase(admin, database);
      const prepared = prepareFixture({
        server: conn,
        database,
        scale: 'tiny',
        seed: 42,
        dataDir: join(dir, 'data'),
        logger: silentLogger,
      });
      await expect(prepared).rejects.toMatchObject({
        code: 'BENCH_DATABASE_EXISTS',
        hint: expect.stringContaining('--force'),
      });
      expect(await foreignRows(admin, database)).toEqual([{ id: 1 }]);
    } finally {
      await admin.end();
    }
  });
});
