import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pool } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBankDatabase, dropDatabase, openPool } from '../../examples/bank/db.js';
import { generateBank } from '../../examples/bank/generate.js';
import { runWorkload } from '../../examples/bank/workload.js';
import { expectOverviewsEqualAfterWrites } from './support/overview-checks.js';

const conn = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const database = `t_overview_${Math.random().toString(36).slice(2, 8)}`;
const url = `mysql://cqrs:cqrs@127.0.0.1:3307/${database}`;
let dataDir: string;
let pool: Pool;

async function scalar(sql: string): Promise<string> {
  const [rows] = await pool.query(sql);
  return String(Object.values((rows as Array<Record<string, unknown>>)[0] ?? {})[0]);
}

describe('account overview on a skewed bank (MariaDB, embedded pipeline)', () => {
  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'cqrs-overview-'));
    await createBankDatabase(conn, database, { dropExisting: true });
    pool = openPool(conn, database);
    await generateBank(pool, {
      seed: 5,
      scale: 'tiny',
      history: 'skewed',
      // One heavy veteran small enough for a bounded test; the bench uses the real sizes.
      skew: { heavyPostings: { min: 1_500, max: 3_000 }, veterans: 1, veteranYears: 2 },
    });
  });

  afterAll(async () => {
    await pool?.end();
    await dropDatabase(conn, database);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('the read model answers the overview exactly as both legacy variants, for every account and five reference instants, after a write burst', async () => {
    await expectOverviewsEqualAfterWrites({
      url,
      dataDir,
      cdc: { serverId: 7000 + Math.floor(Math.random() * 1000), snapshotChunkRows: 2_000 },
      writes: async () => {
        const stats = await runWorkload(pool, { seed: 3, ratePerSec: 200, maxOps: 300, concurrency: 4 });
        expect(stats.errors).toBe(0);
      },
      instants: async () => ({
        lastActivity: await scalar("SELECT MAX(posted_at) FROM transactions WHERE posted_at < '2024-01-01'"),
        now: await scalar('SELECT UTC_TIMESTAMP(6)'),
      }),
      expectPendingOut: true,
    });
  });
});
