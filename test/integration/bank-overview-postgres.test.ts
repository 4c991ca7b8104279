import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPipeline } from '../../cli/pipeline.js';
import { openLegacyDb } from '../../connectors/legacy/index.js';
import bank from '../../examples/bank/migration.js';
import {
  createPgBankDatabase,
  dropPgDatabase,
  loadPgBank,
  pgConnSchema,
} from '../../examples/bank/postgres/db.js';
import { runPgWorkload } from '../../examples/bank/postgres/workload.js';
import { loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { compareOverviews, referenceInstants } from './support/overview-checks.js';
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
    const errors: Error[] = [];
    const pipeline = await startEmbeddedPipeline({
      config: loadConfig({
        env: {},
        overrides: {
          legacy: { url },
          cdc: { name: cdcName },
          dataDir: join(dir, 'data'),
          projector: { batchSize: 256, pollIntervalMs: 20 },
        },
      }),
      migration: bank,
      logger: silentLogger,
      onError: (e) => errors.push(e),
    });
    const legacy = openLegacyDb(url);
    try {
      expect(await pipeline.waitForCatchUp(120_000)).toBe(true);
      const writes = await runPgWorkload(conn, database, { seed: 'ov', ops: 200 });
      expect(writes.ops).toBeGreaterThan(100);
      expect(await pipeline.waitForCatchUp(120_000)).toBe(true);
      expect(errors).toEqual([]);

      const [latest] = await legacy.query(
        "SELECT CAST(MAX(posted_at) AS TEXT) AS v FROM transactions WHERE posted_at < '2024-01-01'",
      );
      const [now] = await legacy.query(
        "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS v",
      );
      const asOfs = referenceInstants(String(latest?.v), String(now?.v));
      const accountIds = (await legacy.query('SELECT id FROM accounts ORDER BY id')).map((r) => Number(r.id));
      expect(accountIds.length).toBeGreaterThan(50);
      const { differences, seen } = await compareOverviews(legacy, pipeline.readModels, accountIds, asOfs);
      expect(differences).toEqual([]);
      expect(seen.answers).toBe(accountIds.length * asOfs.length);
      expect(seen.mtd).toBeGreaterThan(accountIds.length);
      expect(seen.categories).toBeGreaterThan(accountIds.length / 2);
      expect(seen.holds).toBeGreaterThan(5);
      expect(await pipeline.eventStore.countDeadLetters()).toBe(0);
    } finally {
      await pipeline.stop();
      await legacy.close();
    }
  });
});
