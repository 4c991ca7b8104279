import { fileURLToPath } from 'node:url';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedPipeline, startEmbeddedPipeline } from '../../cli/pipeline.js';
import { SqliteEventStore } from '../../eventstore/sqlite.js';
import bank from '../../examples/bank/migration.js';
import { analyticsCustomerSpending, legacyCustomerSpending } from '../../examples/bank/spending.js';
import { dataPath } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { threadNames } from '../../lib/worker-thread.js';
import { AnalyticsThread } from '../../projectors/analytics-thread.js';
import { openSpendingBank, type SpendingBank } from './support/spending-bank.js';

/**
 * A pipeline started from a definition file runs its analytics (DuckDB) on a thread of its own,
 * as it runs its projector: the thread that maps the change stream and serves the API neither
 * decodes stored events for the columnar tables nor holds the store. Its queries are relayed
 * there and answer as the legacy GROUP BY; a query while the thread is down fails retriably, and
 * a restarted thread goes on from the store's checkpoint.
 */
const definition = fileURLToPath(new URL('../../examples/bank/migration.ts', import.meta.url));
let bankDb: SpendingBank;
let pipeline: EmbeddedPipeline | null = null;
let customers: number[] = [];

async function rows(sql: string, params: unknown[] = []): Promise<RowDataPacket[]> {
  return bankDb.rows(sql, params);
}

describe('analytics on a thread of its own', () => {
  beforeAll(async () => {
    bankDb = await openSpendingBank('an_thread', 23);
    customers = await bankDb.topSpenders(3);
    expect(customers.length).toBe(3);
    pipeline = await startEmbeddedPipeline({
      config: bankDb.config,
      migration: bank,
      definitionFile: definition,
      logger: silentLogger,
    });
    expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
  }, 120_000);

  afterAll(async () => {
    await pipeline?.stop();
    await bankDb?.close();
  });

  it('applies the change stream on its own thread and answers as the legacy GROUP BY', async () => {
    const running = pipeline as EmbeddedPipeline;
    expect([...threadNames().values()]).toContain('analytics-worker');
    const spending = async () => {
      for (const customerId of customers) {
        const query = { customerId, asOf: bankDb.asOf, months: 12 };
        expect(await analyticsCustomerSpending(running.analytics, query), `customer ${customerId}`).toEqual(
          await legacyCustomerSpending(bankDb.legacyDb, query),
        );
      }
    };
    await spending();
    const top = customers[0] as number;
    const before = await analyticsCustomerSpending(running.analytics, {
      customerId: top,
      asOf: bankDb.asOf,
      months: 12,
    });
    const [account] = await rows('SELECT id FROM accounts WHERE customer_id = ? ORDER BY id LIMIT 1', [top]);
    const [merchant] = await rows('SELECT id FROM merchants ORDER BY id LIMIT 1');
    await bankDb.pool.query(
      `INSERT INTO transactions (account_id, direction, amount, currency_code, balance_after, description, merchant_id, posted_at)
       VALUES (?, 'debit', '321.5000', 'EUR', '0.0000', 'analytics thread test', ?, ?)`,
      [account?.id, merchant?.id, `${bankDb.latestDay} 23:59:58.000000`],
    );
    // Caught up counts the analytics thread's reported checkpoint too.
    expect(await running.waitForCatchUp(30_000)).toBe(true);
    await spending();
    expect(
      await analyticsCustomerSpending(running.analytics, { customerId: top, asOf: bankDb.asOf, months: 12 }),
    ).not.toEqual(before);
    // The store's own error crosses the thread with its code.
    const model = running.analytics.spending;
    await expect(model?.query('no_such_query')).rejects.toMatchObject({ code: 'ANALYTICS_QUERY_UNKNOWN' });
  }, 60_000);

  it('fails queries retriably while stopped and resumes from the checkpoint when restarted', async () => {
    await pipeline?.stop();
    pipeline = null;
    const events = new SqliteEventStore(dataPath(bankDb.config, 'events.db'));
    const head = events.headPositionSync();
    await events.close();
    const errors: Error[] = [];
    const thread = new AnalyticsThread({
      eventsPath: dataPath(bankDb.config, 'events.db'),
      analyticsPath: dataPath(bankDb.config, 'analytics.duckdb'),
      definition,
      models: ['spending'],
      awaitInitialSnapshot: true,
      batchSize: 500,
      pollIntervalMs: 20,
      onError: (err) => errors.push(err),
    });
    const query = { customerId: customers[0] as number, asOf: bankDb.asOf, months: 12 };
    await expect(analyticsCustomerSpending(thread.handles(), query)).rejects.toMatchObject({
      code: 'ANALYTICS_UNAVAILABLE',
      retriable: true,
    });
    await thread.start();
    try {
      // The pipeline's thread committed everything before it stopped: nothing to replay.
      expect(thread.checkpoint()).toBe(head);
      expect(await analyticsCustomerSpending(thread.handles(), query)).toEqual(
        await legacyCustomerSpending(bankDb.legacyDb, query),
      );
      await thread.restart();
      expect(thread.checkpoint()).toBe(head);
      expect(await analyticsCustomerSpending(thread.handles(), query)).toEqual(
        await legacyCustomerSpending(bankDb.legacyDb, query),
      );
    } finally {
      await thread.stop();
    }
    expect(errors).toEqual([]);
  }, 60_000);
});
