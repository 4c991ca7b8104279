import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Pool } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedPipeline, startEmbeddedPipeline } from '../../cli/pipeline.js';
import { diffJson } from '../../compare/diff.js';
import { openLegacyDb } from '../../connectors/legacy/index.js';
import type { AccountQueries, HistoryPage } from '../../examples/bank/contract.js';
import { createBankDatabase, dropDatabase, openPool } from '../../examples/bank/db.js';
import { generateBank } from '../../examples/bank/generate.js';
import { LegacyQueries } from '../../examples/bank/legacy-queries.js';
import bank, { ReadModelQueries } from '../../examples/bank/migration.js';
import { nextDay } from '../../examples/bank/overview.js';
import { analyticsCustomerSpending, legacyCustomerSpending } from '../../examples/bank/spending.js';
import { runWorkload } from '../../examples/bank/workload.js';
import { loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';

const conn = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const database = `t_e2e_${Math.random().toString(36).slice(2, 8)}`;
let dataDir: string;
let pool: Pool;

function configFor() {
  return loadConfig({
    env: {},
    file: undefined,
    overrides: {
      legacy: { url: `mysql://cqrs:cqrs@127.0.0.1:3307/${database}` },
      cdc: { serverId: 6000 + Math.floor(Math.random() * 1000), snapshotChunkRows: 500 },
      dataDir,
      projector: { batchSize: 64, pollIntervalMs: 20 },
    },
  });
}

async function allHistory(q: AccountQueries, accountId: number): Promise<HistoryPage['items']> {
  const items: HistoryPage['items'] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await q.transactionHistory({ accountId, limit: 50, ...(cursor ? { cursor } : {}) });
    items.push(...page.items);
    if (!page.nextCursor) return items;
    cursor = page.nextCursor;
  }
}

describe('embedded pipeline end to end', () => {
  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'cqrs-e2e-'));
    await createBankDatabase(conn, database, { dropExisting: true });
    pool = openPool(conn, database);
    await generateBank(pool, { seed: 7, scale: 'tiny' });
  });

  afterAll(async () => {
    await pool?.end();
    await dropDatabase(conn, database);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('read models equal the legacy JOIN answers for every account after a burst, across a restart mid-burst', async () => {
    const errors: Error[] = [];
    let pipeline: EmbeddedPipeline = await startEmbeddedPipeline({
      config: configFor(),
      migration: bank,
      logger: silentLogger,
      onError: (e) => errors.push(e),
    });
    expect(await pipeline.waitForCatchUp(60_000)).toBe(true);

    const burst = runWorkload(pool, { seed: 11, ratePerSec: 150, maxOps: 450, concurrency: 4 });
    // Restart the whole pipeline while the burst is running.
    await new Promise((r) => setTimeout(r, 1200));
    await pipeline.stop();
    // Read once stopped: stop() lets deliveries in flight finish and be projected.
    const stored = new Database(join(dataDir, 'read-models.db'), { readonly: true });
    const before = stored.prepare('SELECT position FROM projector_checkpoints').pluck().get() as number;
    stored.close();
    expect(before).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 500));
    pipeline = await startEmbeddedPipeline({
      config: configFor(),
      migration: bank,
      logger: silentLogger,
      onError: (e) => errors.push(e),
    });
    // The new runner may already have projected more by now; it never starts over.
    expect(pipeline.runner.checkpoint()).toBeGreaterThanOrEqual(before);
    const stats = await burst;
    expect(stats.errors).toBe(0);
    expect(stats.ops).toBeGreaterThanOrEqual(400);
    expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
    expect(errors).toEqual([]);

    const legacyDb = openLegacyDb(`mysql://cqrs:cqrs@127.0.0.1:3307/${database}`);
    const legacy = new LegacyQueries(legacyDb);
    const readModels = new ReadModelQueries(pipeline.readModels);
    const [ids] = await pool.query('SELECT id FROM accounts ORDER BY id');
    const accountIds = (ids as Array<{ id: number }>).map((r) => r.id);
    expect(accountIds.length).toBeGreaterThan(50);
    const differences: Array<{ accountId: number; what: string; diff: unknown }> = [];
    let postings = 0;
    for (const accountId of accountIds) {
      const legacySummary = await legacy.accountSummary(accountId);
      expect(legacySummary).not.toBeNull();
      postings += legacySummary?.recentTransactions.length ?? 0;
      const s = diffJson(legacySummary, await readModels.accountSummary(accountId));
      if (s.length > 0) differences.push({ accountId, what: 'summary', diff: s.slice(0, 3) });
      const h = diffJson(await allHistory(legacy, accountId), await allHistory(readModels, accountId));
      if (h.length > 0) differences.push({ accountId, what: 'history', diff: h.slice(0, 3) });
    }
    // The analytics model (its own runner and checkpoint) resumed across the restart too.
    const [latest] = await pool.query(
      'SELECT DATE_FORMAT(MAX(posted_at), "%Y-%m-%d") AS day FROM transactions',
    );
    const asOf = `${nextDay(String((latest as Array<{ day: string }>)[0]?.day))} 00:00:00.000000`;
    const [customers] = await pool.query('SELECT id FROM customers ORDER BY id');
    let spendRows = 0;
    for (const { id } of customers as Array<{ id: number }>) {
      const query = { customerId: id, asOf, months: 3 };
      const legacySpend = await legacyCustomerSpending(legacyDb, query);
      spendRows += legacySpend.byMonth.length;
      const d = diffJson(legacySpend, await analyticsCustomerSpending(pipeline.analytics, query));
      if (d.length > 0) differences.push({ accountId: id, what: 'customer spending', diff: d.slice(0, 3) });
    }
    expect(differences).toEqual([]);
    expect(spendRows).toBeGreaterThan(0);
    expect(postings).toBeGreaterThan(accountIds.length * 5);
    // Nothing was applied twice: every stored source transaction id of the stream is unique.
    const dup = pipeline.eventStore
      .readAfterSync(0, 1_000_000)
      .filter((e) => !e.metadata.snapshot)
      .map((e) => `${e.metadata.sourcePosition}|${e.type}`);
    expect(new Set(dup).size).toBe(dup.length);
    expect(await pipeline.eventStore.countDeadLetters()).toBe(0);
    await pipeline.stop();
    await legacyDb.close();
  });
});
