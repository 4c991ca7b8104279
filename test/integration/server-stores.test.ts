import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@opensearch-project/opensearch';
import { MongoClient } from 'mongodb';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPipeline } from '../../cli/pipeline.js';
import { type OpenedLegacyDb, openLegacyDb } from '../../connectors/legacy/index.js';
import type { NewDomainEvent } from '../../eventstore/ports.js';
import type { AccountQueries, HistoryPage } from '../../examples/bank/contract.js';
import { createBankDatabase, dropDatabase, openPool } from '../../examples/bank/db.js';
import { generateBank } from '../../examples/bank/generate.js';
import { LegacyQueries, legacyAccountIds } from '../../examples/bank/legacy-queries.js';
import bank from '../../examples/bank/migration.js';
import { runWorkload } from '../../examples/bank/workload.js';
import { loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { MongoReadModel } from '../../projectors/stores/mongo-read-models.js';
import { OpenSearchReadModel } from '../../projectors/stores/opensearch-read-models.js';
import { bankEndpointQueries } from './support/bank-endpoints.js';

/**
 * The bank definition's read models on the server stores (account-summary in MongoDB,
 * transaction-history in OpenSearch, as the bank is usually placed), fed with the domain
 * events the embedded path derived from a real legacy database (snapshot, a write burst, and
 * hand-made renames and deletes), and read through the definition's endpoints: equal to the
 * legacy JOIN answers for every account; then the same events redelivered and replayed
 * backwards, which must change nothing.
 */
const conn = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const suffix = randomBytes(4).toString('hex');
const database = `t_srv_${suffix}`;
const stores = {
  mongoUrl: process.env.MONGO_URL ?? 'mongodb://127.0.0.1:27017',
  mongoDatabase: `t_srv_${suffix}`,
  opensearchUrl: process.env.OPENSEARCH_URL ?? 'http://127.0.0.1:9200',
  opensearchIndexPrefix: `t-srv-${suffix}`,
};
const BATCH = 250;
const PAGE = 7;

let dataDir: string;
let pool: Pool;
let legacyDb: OpenedLegacyDb;
let events: NewDomainEvent[];
let summaries: MongoReadModel;
let history: OpenSearchReadModel;
let queries: AccountQueries;
/** What the hand-made changes touched, picked from the generated data. */
let touched: { renamedMerchant: string; removedCard: number; removedTransaction: number; noBalance: number };

async function rows<T>(sql: string, params: unknown[] = []): Promise<T[]> {
  const [result] = await pool.query<RowDataPacket[]>(sql, params);
  return result as T[];
}

/** Renames, and removals the workload never makes, so tombstones and left/inner joins are exercised. */
async function handMadeChanges(): Promise<typeof touched> {
  const [used, other] = await rows<{ merchant_id: number }>(
    `SELECT merchant_id FROM transactions WHERE merchant_id IS NOT NULL
      GROUP BY merchant_id ORDER BY COUNT(*) DESC, merchant_id LIMIT 2`,
  );
  const [card] = await rows<{ id: number }>('SELECT id FROM cards ORDER BY id LIMIT 1');
  const [latest] = await rows<{ id: number }>(
    'SELECT id FROM transactions ORDER BY posted_at DESC, id DESC LIMIT 1',
  );
  const [balance] = await rows<{ account_id: number }>(
    'SELECT account_id FROM balances ORDER BY account_id DESC LIMIT 1',
  );
  if (!used || !other || !card || !latest || !balance)
    throw new Error('the sample bank lacks rows to change');
  const renamedMerchant = `Renamed ${suffix}`;
  await pool.query('UPDATE merchants SET name = ? WHERE id = ?', [renamedMerchant, used.merchant_id]);
  await pool.query(
    `UPDATE categories SET name = CONCAT(name, ' (renamed)') WHERE id = (SELECT category_id FROM merchants WHERE id = ?)`,
    [used.merchant_id],
  );
  await pool.query('DELETE FROM cards WHERE id = ?', [card.id]);
  await pool.query('DELETE FROM transactions WHERE id = ?', [latest.id]);
  await pool.query('DELETE FROM balances WHERE account_id = ?', [balance.account_id]);
  // Payments still reference the merchant: the legacy data is left dangling on purpose.
  const c = await pool.getConnection();
  try {
    await c.query('SET SESSION foreign_key_checks = 0');
    await c.query('DELETE FROM merchants WHERE id = ?', [other.merchant_id]);
  } finally {
    await c.query('SET SESSION foreign_key_checks = 1');
    c.release();
  }
  return {
    renamedMerchant,
    removedCard: card.id,
    removedTransaction: latest.id,
    noBalance: balance.account_id,
  };
}

async function captureEvents(): Promise<NewDomainEvent[]> {
  const config = loadConfig({
    env: {},
    file: undefined,
    overrides: {
      legacy: { url: `mysql://cqrs:cqrs@127.0.0.1:3307/${database}` },
      cdc: { serverId: 7000 + Math.floor(Math.random() * 1000), snapshotChunkRows: 500 },
      dataDir,
      projector: { batchSize: 256, pollIntervalMs: 20 },
    },
  });
  const errors: Error[] = [];
  const pipeline = await startEmbeddedPipeline({
    config,
    migration: bank,
    logger: silentLogger,
    onError: (e) => errors.push(e),
  });
  try {
    expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
    const stats = await runWorkload(pool, { seed: 23, ratePerSec: 200, maxOps: 300, concurrency: 4 });
    expect(stats.errors).toBe(0);
    touched = await handMadeChanges();
    expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
    expect(errors).toEqual([]);
    expect(await pipeline.eventStore.countDeadLetters()).toBe(0);
    return pipeline.eventStore.readAfterSync(0, 1_000_000);
  } finally {
    await pipeline.stop();
  }
}

function batches<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

async function applyAll(list: readonly NewDomainEvent[]): Promise<void> {
  for (const batch of batches(list, BATCH)) {
    await Promise.all([summaries.apply(batch), history.apply(batch)]);
  }
  await history.refresh();
}

interface Answers {
  summary: unknown;
  first: HistoryPage;
  next: HistoryPage | null;
  ranged: HistoryPage;
}

/** The summary, a first history page, the page after its cursor, and a from/to page inside it. */
async function answers(q: AccountQueries, accountId: number): Promise<Answers> {
  const summary = await q.accountSummary(accountId);
  const first = await q.transactionHistory({ accountId, limit: PAGE });
  const next = first.nextCursor
    ? await q.transactionHistory({ accountId, limit: PAGE, cursor: first.nextCursor })
    : null;
  const newest = first.items[0]?.postedAt;
  const oldest = first.items[first.items.length - 1]?.postedAt;
  const ranged = await q.transactionHistory({
    accountId,
    limit: PAGE,
    ...(oldest === undefined ? {} : { from: oldest }),
    ...(newest === undefined ? {} : { to: newest }),
  });
  return { summary, first, next, ranged };
}

async function answersForEveryAccount(q: AccountQueries): Promise<Map<number, Answers>> {
  const out = new Map<number, Answers>();
  for (const id of await legacyAccountIds(legacyDb)) out.set(id, await answers(q, id));
  return out;
}

function eventOf(type: string, key: string, id: number): NewDomainEvent {
  const found = events.find((e) => e.type === type && (e.data.state as Record<string, unknown>)[key] === id);
  if (!found) throw new Error(`no ${type} for ${key} ${id}`);
  return found;
}

describe('server read models (MongoDB summary, OpenSearch history)', () => {
  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'cqrs-srv-'));
    await createBankDatabase(conn, database, { dropExisting: true });
    pool = openPool(conn, database);
    await generateBank(pool, { seed: 5, scale: 'tiny' });
    legacyDb = openLegacyDb(`mysql://cqrs:cqrs@127.0.0.1:3307/${database}`);
    events = await captureEvents();
    summaries = new MongoReadModel({
      migration: bank,
      readModel: 'account-summary',
      url: stores.mongoUrl,
      database: stores.mongoDatabase,
      logger: silentLogger,
    });
    history = new OpenSearchReadModel({
      migration: bank,
      readModel: 'transaction-history',
      url: stores.opensearchUrl,
      indexPrefix: stores.opensearchIndexPrefix,
      logger: silentLogger,
    });
    await Promise.all([summaries.migrate(), history.migrate()]);
    // Twice: migrations must be no-ops on a store that has them.
    await Promise.all([summaries.migrate(), history.migrate()]);
    queries = bankEndpointQueries(bank, {
      'account-summary': summaries.handle(),
      'transaction-history': history.handle(),
    });
  });

  afterAll(async () => {
    await summaries?.close();
    await history?.close();
    const mongo = new MongoClient(stores.mongoUrl);
    await mongo.db(stores.mongoDatabase).dropDatabase();
    await mongo.close();
    const opensearch = new Client({ node: stores.opensearchUrl });
    await opensearch.indices.delete({ index: `${stores.opensearchIndexPrefix}-*` });
    await opensearch.close();
    await legacyDb?.close();
    await pool?.end();
    await dropDatabase(conn, database);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('answers every account exactly like the legacy JOIN queries', async () => {
    expect(events.some((e) => e.type === 'MerchantRemoved')).toBe(true);
    await applyAll(events);
    const legacy = await answersForEveryAccount(new LegacyQueries(legacyDb));
    const server = await answersForEveryAccount(queries);
    expect(legacy.size).toBeGreaterThan(50);
    expect(server).toEqual(legacy);

    // The comparison covered the cases the hand-made changes set up.
    const all = [...legacy.values()];
    expect(legacy.get(touched.noBalance)?.summary).toBeNull();
    expect(all.filter((a) => a.next !== null).length).toBeGreaterThan(30);
    const items = all.flatMap((a) => [...a.first.items, ...(a.next?.items ?? [])]);
    expect(items.some((i) => i.merchant?.name === touched.renamedMerchant)).toBe(true);
    expect(items.some((i) => i.merchant === null && i.description !== '')).toBe(true);
    expect(items.some((i) => i.transactionId === touched.removedTransaction)).toBe(false);
  });

  it('redelivered batches and every event replayed backwards change nothing', async () => {
    const before = await answersForEveryAccount(queries);
    await applyAll(events);
    await applyAll([...events].reverse());
    expect(await answersForEveryAccount(queries)).toEqual(before);
  });

  it('an older create arriving after the removal leaves the row removed', async () => {
    const card = eventOf('CardIssued', 'cardId', touched.removedCard);
    const accountId = (card.data.state as { accountId: number }).accountId;
    const posting = eventOf('TransactionPosted', 'transactionId', touched.removedTransaction);
    const postingAccount = (posting.data.state as { accountId: number }).accountId;
    const legacy = new LegacyQueries(legacyDb);

    await applyAll([eventOf('CardRemoved', 'cardId', touched.removedCard)]);
    await applyAll([eventOf('TransactionRemoved', 'transactionId', touched.removedTransaction)]);
    await applyAll([card, posting]);

    expect(await answers(queries, accountId)).toEqual(await answers(legacy, accountId));
    expect(await answers(queries, postingAccount)).toEqual(await answers(legacy, postingAccount));
    const page = await queries.transactionHistory({ accountId: postingAccount, limit: 200 });
    expect(page.items.map((i) => i.transactionId)).not.toContain(touched.removedTransaction);
  });
});
