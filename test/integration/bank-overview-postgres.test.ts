import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createPgBankDatabase,
  dropPgDatabase,
  loadPgBank,
  pgConnSchema,
} from '../../examples/bank/postgres/db.js';
import { runPgWorkload } from '../../examples/bank/postgres/workload.js';
import { expectOverviewsEqualAfterWrites } from './support/overview-checks.js';
import { dropPgState, pgReachable } from './support/postgres.js';

/** The overview's SQL, both variants, and its read model on a skewed PostgreSQL bank. */
const database = `t_overview_pg_${process.pid}`;
const url = `postgres://cqrs:cqrs@127.0.0.1:5433/${database}`;
const dir = mkdtempSync(join(tmpdir(), 'cqrs-overview-pg-'));
const cdcName = `ovpg${process.pid}`;
const conn = pgConnSchema.parse({});

afterAll(async () => {
  await dropPgState(database, [`cqrs_${cdcName}`]).catch(() => undefined);
  await dropPgDatabase(conn, database).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe('account overview on a skewed bank (PostgreSQL, embedded pipeline)', () => {
  it('the read model answers the overview exactly as both legacy variants, for every account, after writes', async (ctx) => {
    if (!(await pgReachable())) ctx.skip();
    await createPgBankDatabase(conn, database, { dropExisting: true });
    await loadPgBank(conn, database, {
      seed: 6,
      scale: 'tiny',
      history: 'skewed',
      skew: { heavyPostings: { min: 1_500, max: 3_000 }, veterans: 1, veteranYears: 2 },
    });
    await expectOverviewsEqualAfterWrites({
      url,
      dataDir: join(dir, 'data'),
      cdc: { name: cdcName },
      writes: async () => {
        const writes = await runPgWorkload(conn, database, { seed: 'ov', ops: 200 });
        expect(writes.ops).toBeGreaterThan(100);
      },
      instants: async (legacy) => {
        const [latest] = await legacy.query(
          "SELECT CAST(MAX(posted_at) AS TEXT) AS v FROM transactions WHERE posted_at < '2024-01-01'",
        );
        const [now] = await legacy.query(
          "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS v",
        );
        return { lastActivity: String(latest?.v), now: String(now?.v) };
      },
      expectPendingOut: false,
    });
  });
});
