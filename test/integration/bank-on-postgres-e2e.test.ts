import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPipeline } from '../../cli/pipeline.js';
import { reconcile } from '../../compare/reconcile.js';
import { SqliteComparisonRecorder } from '../../compare/recorder.js';
import { ShadowComparator } from '../../compare/shadow-compare.js';
import { openLegacyDb } from '../../connectors/legacy/index.js';
import bank from '../../examples/bank/migration.js';
import { nextDay } from '../../examples/bank/overview.js';
import { dropPgDatabase, pgConnSchema } from '../../examples/bank/postgres/db.js';
import { analyticsCustomerSpending, legacyCustomerSpending } from '../../examples/bank/spending.js';
import { loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { dropPgState, pgReachable } from './support/postgres.js';

/**
 * The bank's one definition, unchanged, on a PostgreSQL legacy database: the embedded pipeline
 * reads it with pgoutput, and both endpoints' legacy SQL runs there too, so every account's
 * summary and history page compare equal, before and after a write load; so does every
 * customer's spending report from the analytics model (its GROUP BY in PostgreSQL's dialect).
 */
const database = `t_bank_pg_e2e_${process.pid}`;
const url = `postgres://cqrs:cqrs@127.0.0.1:5433/${database}`;
const dir = mkdtempSync(join(tmpdir(), 'cqrs-bank-pg-'));
const cdcName = `bankpg${process.pid}`;

afterAll(async () => {
  await dropPgState(database, [`cqrs_${cdcName}`]).catch(() => undefined);
  await dropPgDatabase(pgConnSchema.parse({}), database).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe('the bank definition on PostgreSQL', () => {
  it('serves and compares every account equal to the legacy JOINs, after a write load', async (ctx) => {
    if (!(await pgReachable())) ctx.skip();
    const sample = bank.sample;
    if (sample === undefined) throw new Error('the bank has sample hooks');
    await sample.create({ url, scale: 'tiny', seed: 9, force: true, progress: () => undefined });
    const config = loadConfig({
      env: {},
      overrides: {
        legacy: { url },
        cdc: { name: cdcName },
        dataDir: join(dir, 'data'),
        projector: { pollIntervalMs: 20 },
      },
    });
    const errors: Error[] = [];
    const pipeline = await startEmbeddedPipeline({
      config,
      migration: bank,
      logger: silentLogger,
      onError: (e) => errors.push(e),
    });
    const legacy = openLegacyDb(url);
    const recorder = new SqliteComparisonRecorder({ path: ':memory:' });
    const comparator = new ShadowComparator({ recorder, freshness: pipeline.freshness, recheckDelayMs: 100 });
    try {
      expect(await pipeline.waitForCatchUp(120_000)).toBe(true);
      const first = await reconcile({ migration: bank, legacy, readModels: pipeline.readModels, comparator });
      expect(first.checked).toBeGreaterThan(100);
      expect(first.failures).toEqual([]);

      const writes = await sample.load({ url, ratePerSec: 60, durationMs: 4000, seed: 10 });
      expect(writes.ops).toBeGreaterThan(100);
      expect(await pipeline.waitForCatchUp(120_000)).toBe(true);
      const after = await reconcile({ migration: bank, legacy, readModels: pipeline.readModels, comparator });
      expect(after.failures).toEqual([]);
      expect(after.byOutcome.match).toBe(after.checked);
      // The analytics report: its legacy GROUP BY in PostgreSQL's dialect, equal for every customer.
      const [latest] = await legacy.query(
        "SELECT to_char(MAX(posted_at), 'YYYY-MM-DD') AS day FROM transactions",
      );
      const asOf = `${nextDay(String(latest?.day))} 00:00:00.000000`;
      let spendRows = 0;
      for (const { id } of await legacy.query('SELECT id FROM customers ORDER BY id')) {
        const query = { customerId: Number(id), asOf, months: 3 };
        const legacySpend = await legacyCustomerSpending(legacy, query);
        spendRows += legacySpend.byMonth.length;
        expect(await analyticsCustomerSpending(pipeline.analytics, query)).toEqual(legacySpend);
      }
      expect(spendRows).toBeGreaterThan(0);
      expect(await pipeline.eventStore.countDeadLetters()).toBe(0);
      expect(errors).toEqual([]);
    } finally {
      recorder.close();
      await pipeline.stop();
      await legacy.close();
    }
  });
});
