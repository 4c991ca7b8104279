import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { RowDataPacket } from 'mysql2/promise';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedPipeline, embeddedAnalytics, startEmbeddedPipeline } from '../../cli/pipeline.js';
import { startApi } from '../../cli/serve.js';
import type { Analytics } from '../../definition/analytics.js';
import { SqliteEventStore } from '../../eventstore/sqlite.js';
import bank from '../../examples/bank/migration.js';
import {
  analyticsCustomerSpending,
  type CustomerSpending,
  legacyCustomerSpending,
  type SpendingQuery,
} from '../../examples/bank/spending.js';
import { dataPath } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { openSpendingBank, type SpendingBank } from './support/spending-bank.js';

/**
 * The bank's analytics read model (DuckDB) against the legacy GROUP BY: monthly spend by
 * category per customer equals the monolith's answer for several customers after the initial
 * snapshot, after inserts, updates (a posting's amount, a merchant's category, an account's
 * owner) and a delete, through the shadow API (compared, all matches), after a re-delivered
 * batch, and after `rebuild`.
 */
let bankDb: SpendingBank;
let pipeline: EmbeddedPipeline | null = null;
let customers: number[] = [];

async function rows(sql: string, params: unknown[] = []): Promise<RowDataPacket[]> {
  return bankDb.rows(sql, params);
}

/** Both answers for every customer and window; asserts they are equal and returns them. */
async function compareAll(analytics: Analytics): Promise<Map<string, CustomerSpending>> {
  const answers = new Map<string, CustomerSpending>();
  for (const customerId of customers) {
    for (const months of [1, 3, 12]) {
      const query: SpendingQuery = { customerId, asOf: bankDb.asOf, months };
      const legacy = await legacyCustomerSpending(bankDb.legacyDb, query);
      const analytic = await analyticsCustomerSpending(analytics, query);
      expect(analytic, `customer ${customerId}, ${months} months`).toEqual(legacy);
      answers.set(`${customerId}:${months}`, legacy);
    }
  }
  return answers;
}

describe('bank spending analytics (DuckDB) against the legacy GROUP BY', () => {
  beforeAll(async () => {
    bankDb = await openSpendingBank('h5_spend', 11, { defaultMode: 'shadow' });
    // The customers who spent at merchants the most, and one who spent nothing there.
    const spenders = await bankDb.topSpenders(4);
    const idle = await rows(
      `SELECT c.id FROM customers c WHERE NOT EXISTS (SELECT 1 FROM accounts a JOIN transactions t ON t.account_id = a.id
        WHERE a.customer_id = c.id AND t.merchant_id IS NOT NULL) ORDER BY c.id LIMIT 1`,
    );
    customers = [...spenders, ...idle.map((r) => Number(r.id))];
    expect(spenders.length).toBe(4);
    pipeline = await startEmbeddedPipeline({ config: bankDb.config, migration: bank, logger: silentLogger });
    expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
  }, 120_000);

  afterAll(async () => {
    await pipeline?.stop();
    await bankDb?.close();
  });

  it('answers as the legacy GROUP BY after the snapshot, and after inserts, updates and a delete', async () => {
    const running = pipeline as EmbeddedPipeline;
    const before = await compareAll(running.analytics);
    const top = customers[0] as number;
    expect(before.get(`${top}:12`)?.byMonth.length).toBeGreaterThan(0);

    // Changes the figures of the top customers: a new posting, an amended one, a removed one,
    // a merchant moved to another category, an account given to another customer.
    const [account] = await rows('SELECT id FROM accounts WHERE customer_id = ? ORDER BY id LIMIT 1', [top]);
    const [merchant] = await rows('SELECT id, category_id FROM merchants ORDER BY id LIMIT 1');
    await bankDb.pool.query(
      `INSERT INTO transactions (account_id, direction, amount, currency_code, balance_after, description, merchant_id, posted_at)
       VALUES (?, 'debit', '123.4567', 'EUR', '0.0000', 'analytics test', ?, ?)`,
      [account?.id, merchant?.id, `${bankDb.latestDay} 23:59:59.000000`],
    );
    const owned = await rows(
      `SELECT t.id FROM transactions t JOIN accounts a ON a.id = t.account_id
        WHERE a.customer_id = ? AND t.merchant_id IS NOT NULL AND t.direction = 'debit' ORDER BY t.posted_at DESC, t.id DESC LIMIT 2`,
      [top],
    );
    await bankDb.pool.query('UPDATE transactions SET amount = amount + 1000 WHERE id = ?', [owned[0]?.id]);
    await bankDb.pool.query('DELETE FROM transactions WHERE id = ?', [owned[1]?.id]);
    const [other] = await rows('SELECT id FROM categories WHERE id <> ? ORDER BY id LIMIT 1', [
      merchant?.category_id,
    ]);
    await bankDb.pool.query('UPDATE merchants SET category_id = ? WHERE id = ?', [other?.id, merchant?.id]);
    const second = customers[1] as number;
    const [moved] = await rows('SELECT id FROM accounts WHERE customer_id = ? ORDER BY id DESC LIMIT 1', [
      second,
    ]);
    await bankDb.pool.query('UPDATE accounts SET customer_id = ? WHERE id = ?', [customers[2], moved?.id]);

    expect(await running.waitForCatchUp(30_000)).toBe(true);
    const after = await compareAll(running.analytics);
    expect(after.get(`${top}:12`)).not.toEqual(before.get(`${top}:12`));
    expect(after.get(`${customers[2]}:12`)).not.toEqual(before.get(`${customers[2]}:12`));
  }, 120_000);

  it('is shadow-compared by the API like the other endpoints', async () => {
    const api = await startApi(
      bankDb.config,
      bank,
      pipeline as EmbeddedPipeline,
      bankDb.legacyDb,
      silentLogger,
      new Registry(),
    );
    try {
      for (const id of customers) {
        const res = await fetch(
          `${api.url}/customers/${id}/spending?asOf=${encodeURIComponent(bankDb.asOf)}&months=12`,
        );
        expect(res.status).toBe(200);
        // Served from legacy in shadow mode: the GROUP BY's answer.
        expect(await res.json()).toEqual(
          await legacyCustomerSpending(bankDb.legacyDb, { customerId: id, asOf: bankDb.asOf, months: 12 }),
        );
      }
      const bad = await fetch(`${api.url}/customers/${customers[0]}/spending?asOf=yesterday`);
      expect(bad.status).toBe(400);
      await api.queue.onIdle();
      const stats = api.recorder.stats().endpoints.find((e) => e.endpoint === 'customers.spending');
      expect(stats?.total).toBe(customers.length);
      expect(stats?.byOutcome.match).toBe(customers.length);
    } finally {
      await api.close();
    }
  }, 60_000);

  it('counts a re-delivered batch once and is rebuilt by `rebuild`', async () => {
    await pipeline?.stop();
    pipeline = null;
    const events = new SqliteEventStore(dataPath(bankDb.config, 'events.db'));
    const opened = await embeddedAnalytics(bankDb.config, bank, { eventStore: events, logger: silentLogger });
    if (opened === null) throw new Error('the bank has an analytics model');
    try {
      await opened.runner.init();
      const head = opened.runner.checkpoint();
      expect(head).toBe(events.headPositionSync());
      const expected = await compareAll(opened.store.handles());
      // The last 500 events again, as a broker would redeliver them after a crash.
      const again = events.readAfterSync(Math.max(0, head - 500), 500);
      // First, a batch rolled back after staging its rows: the first write on this connection,
      // so the staging tables it created go with it, and the next batch still finds its own.
      const aborted = opened.store.write('analytics', async (tx) => {
        await tx.apply(again);
        throw new Error('aborted after staging');
      });
      await expect(aborted).rejects.toThrow('aborted after staging');
      await opened.store.write('analytics', async (tx) => {
        await tx.apply(again);
        await tx.commit({ position: head, sourceTxId: again[again.length - 1]?.metadata.sourceTxId ?? '' });
      });
      expect(await compareAll(opened.store.handles())).toEqual(expected);
      // Emptied and replayed from the first event: the same answers.
      expect(await opened.runner.rebuild()).toBe(head);
      expect(await compareAll(opened.store.handles())).toEqual(expected);
    } finally {
      await opened.store.close();
      await events.close();
    }

    const cli = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'cli/main.ts', 'rebuild', '--definition', 'examples/bank/migration.ts'],
      { env: { ...process.env, CQRS_LEGACY_URL: bankDb.config.legacy.url, CQRS_DATA_DIR: bankDb.dataDir } },
    );
    const reopened = new SqliteEventStore(dataPath(bankDb.config, 'events.db'));
    expect(cli.stdout).toContain(`rebuilt analytics from ${reopened.headPositionSync()} events`);
    const rebuilt = await embeddedAnalytics(bankDb.config, bank, {
      eventStore: reopened,
      logger: silentLogger,
    });
    try {
      // The CLI loads the definition through tsx, this test through vite: the row functions'
      // texts differ, so the store sees another definition and replays (as after an edit).
      await rebuilt?.runner.catchUp();
      expect(rebuilt?.runner.checkpoint()).toBe(reopened.headPositionSync());
      await compareAll(rebuilt?.store.handles() ?? {});
    } finally {
      await rebuilt?.store.close();
      await reopened.close();
    }
  }, 180_000);
});
