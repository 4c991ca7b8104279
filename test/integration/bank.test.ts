import { randomBytes } from 'node:crypto';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binlogHead } from '../../connectors/binlog/server-position.js';
import { type OpenedLegacyDb, openLegacyDb } from '../../connectors/legacy/index.js';
import {
  accountSummarySchema,
  type HistoryPage,
  historyPageSchema,
  historyQuerySchema,
  RECENT_TRANSACTIONS,
  type TransactionItem,
} from '../../examples/bank/contract.js';
import {
  createBankDatabase,
  dropDatabase,
  type MysqlConnOptions,
  openPool,
  parseMysqlUrl,
} from '../../examples/bank/db.js';
import {
  BANK_TABLES,
  type BankTable,
  bankInvariantViolations,
  type GenerateProgress,
  generateBank,
  SCALE_PRESETS,
} from '../../examples/bank/generate.js';
import { LegacyQueries } from '../../examples/bank/legacy-queries.js';
import { customerRow, transactionRow } from '../../examples/bank/rows.js';
import { OP_KINDS, runWorkload } from '../../examples/bank/workload.js';
import { AdapterError } from '../../lib/errors.js';
import { silentLogger } from '../../lib/logger.js';

const url = parseMysqlUrl(process.env.CQRS_TEST_MYSQL_URL ?? 'mysql://cqrs:cqrs@127.0.0.1:3307');
const conn: MysqlConnOptions = { host: url.host, port: url.port, user: url.user, password: url.password };
const suffix = randomBytes(4).toString('hex');
const dbA = `t_bank_${suffix}_a`;
const dbB = `t_bank_${suffix}_b`;
const dbC = `t_bank_${suffix}_c`;
const pools: Pool[] = [];
let poolA: Pool;
let legacyA: OpenedLegacyDb;
let poolB: Pool;

async function rows<T = RowDataPacket>(pool: Pool, sql: string, params: unknown[] = []): Promise<T[]> {
  const [result] = await pool.query<RowDataPacket[]>(sql, params);
  return result as T[];
}

async function checksums(pool: Pool): Promise<Record<string, string>> {
  const result = await rows<{ Table: string; Checksum: number | string }>(
    pool,
    `CHECKSUM TABLE ${BANK_TABLES.join(', ')}`,
  );
  return Object.fromEntries(result.map((r) => [r.Table.split('.').pop() as string, String(r.Checksum)]));
}

async function tableCounts(pool: Pool): Promise<Record<BankTable, number>> {
  const out = {} as Record<BankTable, number>;
  for (const t of BANK_TABLES) {
    const [r] = await rows<{ n: number }>(pool, `SELECT COUNT(*) AS n FROM ${t}`);
    out[t] = Number(r?.n);
  }
  return out;
}

beforeAll(async () => {
  for (const db of [dbA, dbB, dbC]) await createBankDatabase(conn, db, { dropExisting: true });
  poolA = openPool(conn, dbA);
  legacyA = openLegacyDb(`mysql://cqrs:cqrs@127.0.0.1:3307/${dbA}`);
  poolB = openPool(conn, dbB);
  pools.push(poolA, poolB);
});

afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await legacyA?.close();
  for (const db of [dbA, dbB, dbC]) await dropDatabase(conn, db);
});

describe('bank schema', () => {
  it('creates the 13 tables of schema.sql', async () => {
    const tables = await rows<{ name: string }>(
      poolA,
      'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name',
      [dbA],
    );
    expect(tables.map((t) => t.name)).toEqual([...BANK_TABLES].sort());
  });

  it('refuses to overwrite an existing database unless asked to', async () => {
    await expect(createBankDatabase(conn, dbC)).rejects.toMatchObject({ code: 'BANK_DB_CREATE_FAILED' });
    await expect(createBankDatabase(conn, 'bad-name')).rejects.toThrow();
  });
});

describe('generateBank', () => {
  const progress: GenerateProgress[] = [];

  beforeAll(async () => {
    await generateBank(poolA, { seed: 42, scale: 'tiny' }, (p) => progress.push(p));
    await generateBank(poolB, { seed: 42, scale: 'tiny', chunkRows: 333, connections: 1 });
  });

  it('produces byte-identical tables for the same seed, whatever the chunking', async () => {
    const a = await checksums(poolA);
    expect(Object.keys(a).sort()).toEqual([...BANK_TABLES].sort());
    expect(await checksums(poolB)).toEqual(a);
  });

  it('produces different data for another seed', async () => {
    const poolC = openPool(conn, dbC);
    pools.push(poolC);
    await generateBank(poolC, { seed: 43, scale: 'tiny' });
    const a = await checksums(poolA);
    const c = await checksums(poolC);
    expect(c.transactions).not.toBe(a.transactions);
    expect(c.customers).not.toBe(a.customers);
  });

  it('has the tiny shape and every table filled', async () => {
    const counts = await tableCounts(poolA);
    expect(counts.customers).toBe(SCALE_PRESETS.tiny.customers);
    expect(counts.accounts).toBe(80);
    expect(counts.balances).toBe(80);
    expect(counts.transactions).toBeGreaterThan(1_900);
    expect(counts.transactions).toBeLessThan(2_200);
    for (const t of BANK_TABLES) expect(counts[t], t).toBeGreaterThan(0);
  });

  it('satisfies the ledger invariants', async () => {
    expect(await bankInvariantViolations(poolA)).toEqual({
      balanceMismatches: 0,
      runningMismatches: 0,
      unorderedPostings: 0,
      negativeBalances: 0,
    });
  });

  it('has realistic variety: child categories, blocked/expired cards, repaid loans, failed transfers', async () => {
    const [v] = await rows<Record<string, number>>(
      poolA,
      `SELECT (SELECT COUNT(*) FROM categories WHERE parent_id IS NOT NULL) AS child_categories,
              (SELECT COUNT(*) FROM cards WHERE status = 'blocked') AS blocked_cards,
              (SELECT COUNT(*) FROM cards WHERE status = 'expired') AS expired_cards,
              (SELECT COUNT(*) FROM loans WHERE status = 'repaid') AS repaid_loans,
              (SELECT COUNT(*) FROM loans WHERE status = 'active') AS active_loans,
              (SELECT COUNT(*) FROM transfers WHERE status = 'failed') AS failed_transfers,
              (SELECT COUNT(DISTINCT currency_code) FROM accounts) AS currencies,
              (SELECT COUNT(DISTINCT kind) FROM products) AS product_kinds,
              (SELECT COUNT(*) FROM transactions WHERE MICROSECOND(posted_at) <> 0) AS micro_postings`,
    );
    expect(v).toBeDefined();
    for (const [key, value] of Object.entries(v ?? {})) expect(Number(value), key).toBeGreaterThan(0);
    expect(Number(v?.product_kinds)).toBe(3);
  });

  it('writes rows the CDC row schemas accept', async () => {
    for (const r of await rows(poolA, 'SELECT * FROM customers')) customerRow.parse(r);
    for (const r of await rows(poolA, 'SELECT * FROM transactions')) transactionRow.parse(r);
  });

  it('reports progress per table with rates', () => {
    const last = progress.at(-1);
    expect(last).toBeDefined();
    expect(new Set(progress.map((p) => p.table))).toEqual(new Set(BANK_TABLES));
    const tx = progress.filter((p) => p.table === 'transactions').at(-1);
    expect(tx?.rows).toBeGreaterThan(1_900);
    expect(progress.every((p) => p.rows <= p.total && p.rowsPerSec >= 0)).toBe(true);
  });

  it('refuses to generate into a bank that already has data', async () => {
    await expect(generateBank(poolB, { seed: 1, scale: 'tiny' })).rejects.toBeInstanceOf(AdapterError);
  });
});

describe('LegacyQueries on generated data', () => {
  let queries: LegacyQueries;
  beforeAll(() => {
    queries = new LegacyQueries(legacyA);
  });

  async function expectedPostings(accountId: number, from?: string, to?: string): Promise<number[]> {
    const where = ['account_id = ?'];
    const params: unknown[] = [accountId];
    if (from) {
      where.push('posted_at >= ?');
      params.push(from);
    }
    if (to) {
      where.push('posted_at < ?');
      params.push(to);
    }
    const r = await rows<{ id: number }>(
      poolA,
      `SELECT id FROM transactions WHERE ${where.join(' AND ')} ORDER BY posted_at DESC, id DESC`,
      params,
    );
    return r.map((x) => x.id);
  }

  async function pageThrough(
    query: Record<string, unknown>,
  ): Promise<{ items: TransactionItem[]; pages: HistoryPage[] }> {
    const pages: HistoryPage[] = [];
    let cursor: string | undefined;
    for (let i = 0; i < 1000; i++) {
      const page = await queries.transactionHistory(historyQuerySchema.parse({ ...query, cursor }));
      historyPageSchema.parse(page);
      pages.push(page);
      if (page.nextCursor === null) break;
      cursor = page.nextCursor;
    }
    return { items: pages.flatMap((p) => p.items), pages };
  }

  it('summarises every account in the contract shape, agreeing with single-table reads', async () => {
    const accounts = await rows<{ id: number }>(poolA, 'SELECT id FROM accounts ORDER BY id');
    for (const { id } of accounts) {
      const summary = await queries.accountSummary(id);
      expect(summary, `account ${id}`).not.toBeNull();
      const s = accountSummarySchema.parse(summary);
      const [bal] = await rows<{ available: string; ledger: string }>(
        poolA,
        'SELECT available, ledger FROM balances WHERE account_id = ?',
        [id],
      );
      expect(s.balance.available).toBe(bal?.available);
      expect(s.balance.ledger).toBe(bal?.ledger);
      const recentIds = (await expectedPostings(id)).slice(0, RECENT_TRANSACTIONS);
      expect(s.recentTransactions.map((t) => t.transactionId)).toEqual(recentIds);
      expect(s.recentTransactions[0]?.balanceAfter).toBe(bal?.ledger);
      const [c] = await rows<{ total: number; active: number; loans: number }>(
        poolA,
        `SELECT (SELECT COUNT(*) FROM cards WHERE account_id = ?) AS total,
                (SELECT COUNT(*) FROM cards WHERE account_id = ? AND status = 'active') AS active,
                (SELECT COUNT(*) FROM loans WHERE account_id = ? AND status = 'active') AS loans`,
        [id, id, id],
      );
      expect(s.cards).toEqual({ total: Number(c?.total), active: Number(c?.active) });
      expect(s.loans.active).toBe(Number(c?.loans));
    }
  });

  it('counts cards and sums loans correctly when both fan out', async () => {
    // Give one account several cards and several loans, so a naive JOIN would multiply them.
    const [acct] = await rows<{ id: number; customer_id: number }>(
      poolA,
      "SELECT id, customer_id FROM accounts WHERE status = 'active' ORDER BY id LIMIT 1",
    );
    if (!acct) throw new Error('no active account');
    const now = '2024-02-01 10:00:00.000000';
    for (const status of ['active', 'active', 'blocked']) {
      await poolA.query(
        "INSERT INTO cards (account_id, masked_pan, card_type, status, expires_on, issued_at, updated_at) VALUES (?, '4000 **** **** 0001', 'debit', ?, '2030-01-01', ?, ?)",
        [acct.id, status, now, now],
      );
    }
    for (const [outstanding, status] of [
      ['100.5000', 'active'],
      ['200.2500', 'active'],
      ['0.0000', 'repaid'],
    ]) {
      await poolA.query(
        "INSERT INTO loans (customer_id, account_id, principal, outstanding, interest_rate, status, opened_at, maturity_date, updated_at) VALUES (?, ?, '1000.0000', ?, '5.0000', ?, ?, '2026-01-01', ?)",
        [acct.customer_id, acct.id, outstanding, status, now, now],
      );
    }
    const [expected] = await rows<{
      cards: number;
      active_cards: string;
      loans: number;
      outstanding: string;
    }>(
      poolA,
      `SELECT (SELECT COUNT(*) FROM cards WHERE account_id = ?) AS cards,
              (SELECT COUNT(*) FROM cards WHERE account_id = ? AND status = 'active') AS active_cards,
              (SELECT COUNT(*) FROM loans WHERE account_id = ? AND status = 'active') AS loans,
              (SELECT CAST(SUM(outstanding) AS DECIMAL(19,4)) FROM loans WHERE account_id = ? AND status = 'active') AS outstanding`,
      [acct.id, acct.id, acct.id, acct.id],
    );
    const s = accountSummarySchema.parse(await queries.accountSummary(acct.id));
    expect(s.cards).toEqual({ total: Number(expected?.cards), active: Number(expected?.active_cards) });
    expect(Number(expected?.cards)).toBeGreaterThanOrEqual(3);
    expect(s.loans).toEqual({ active: Number(expected?.loans), outstanding: expected?.outstanding });
    expect(Number(expected?.loans)).toBeGreaterThanOrEqual(2);
  });

  it('reports no loans as zero with a 4-dp outstanding', async () => {
    const [acct] = await rows<{ id: number }>(
      poolA,
      "SELECT a.id FROM accounts a WHERE NOT EXISTS (SELECT 1 FROM loans l WHERE l.account_id = a.id AND l.status = 'active') ORDER BY a.id LIMIT 1",
    );
    const s = accountSummarySchema.parse(await queries.accountSummary(acct?.id ?? 0));
    expect(s.loans).toEqual({ active: 0, outstanding: '0.0000' });
  });

  it('names the owner, product, branch, merchant and category like the tables do', async () => {
    const [t] = await rows<{ account_id: number; id: number; merchant: string; category: string }>(
      poolA,
      `SELECT t.account_id, t.id, m.name AS merchant, c.name AS category
         FROM transactions t JOIN merchants m ON m.id = t.merchant_id JOIN categories c ON c.id = m.category_id
        ORDER BY t.id DESC LIMIT 1`,
    );
    if (!t) throw new Error('no merchant posting');
    const { items } = await pageThrough({ accountId: t.account_id, limit: 200 });
    const item = items.find((i) => i.transactionId === t.id);
    expect(item?.merchant?.name).toBe(t.merchant);
    expect(item?.category).toBe(t.category);
    expect(items.some((i) => i.merchant === null && i.category === null)).toBe(true);

    const [o] = await rows<{ name: string; email: string; code: string; branch: string }>(
      poolA,
      `SELECT CONCAT(c.first_name, ' ', c.last_name) AS name, c.email, p.code, b.code AS branch
         FROM accounts a JOIN customers c ON c.id = a.customer_id JOIN products p ON p.id = a.product_id
         JOIN branches b ON b.id = a.branch_id WHERE a.id = ?`,
      [t.account_id],
    );
    const s = accountSummarySchema.parse(await queries.accountSummary(t.account_id));
    expect(s.owner.name).toBe(o?.name);
    expect(s.owner.email).toBe(o?.email);
    expect(s.product.code).toBe(o?.code);
    expect(s.branch.code).toBe(o?.branch);
  });

  it('pages through the whole history in order without duplicates', async () => {
    const [busiest] = await rows<{ account_id: number }>(
      poolA,
      'SELECT account_id FROM transactions GROUP BY account_id ORDER BY COUNT(*) DESC, account_id LIMIT 1',
    );
    const accountId = busiest?.account_id ?? 0;
    const expected = await expectedPostings(accountId);
    expect(expected.length).toBeGreaterThan(20);
    const { items, pages } = await pageThrough({ accountId, limit: 7 });
    const ids = items.map((i) => i.transactionId);
    expect(ids).toEqual(expected);
    expect(new Set(ids).size).toBe(ids.length);
    expect(pages.length).toBeGreaterThan(2);
    expect(pages.slice(0, -1).every((p) => p.items.length === 7 && p.nextCursor !== null)).toBe(true);
  });

  it('respects from (inclusive) and to (exclusive)', async () => {
    const [busiest] = await rows<{ account_id: number }>(
      poolA,
      'SELECT account_id FROM transactions GROUP BY account_id ORDER BY COUNT(*) DESC, account_id LIMIT 1',
    );
    const accountId = busiest?.account_id ?? 0;
    const all = (await pageThrough({ accountId, limit: 200 })).items;
    const to = all[3]?.postedAt;
    const from = all[12]?.postedAt;
    if (!to || !from) throw new Error('history too short');
    const expected = await expectedPostings(accountId, from, to);
    const { items } = await pageThrough({ accountId, from, to, limit: 4 });
    expect(items.map((i) => i.transactionId)).toEqual(expected);
    expect(items.map((i) => i.transactionId)).toEqual(all.slice(4, 13).map((i) => i.transactionId));
    expect(items.at(-1)?.postedAt).toBe(from);
    expect(items.some((i) => i.postedAt === to)).toBe(false);
  });

  it('answers null and an empty page for an unknown account, and rejects a forged cursor', async () => {
    expect(await queries.accountSummary(9_999_999)).toBeNull();
    const page = await queries.transactionHistory(historyQuerySchema.parse({ accountId: 9_999_999 }));
    expect(page).toEqual({ accountId: 9_999_999, items: [], nextCursor: null });
    await expect(
      queries.transactionHistory({
        accountId: 1,
        limit: 5,
        cursor: Buffer.from('nonsense').toString('base64url'),
      }),
    ).rejects.toMatchObject({ code: 'INVALID_CURSOR' });
  });

  it('reports the binlog head, which moves after a write', async () => {
    const before = await binlogHead(poolA, 'mariadb');
    expect(before.file).toMatch(/\.\d{6}$/);
    expect(before.pos).toBeGreaterThan(0);
    expect(before.gtid).toMatch(/^\d+-\d+-\d+/);
    await poolA.query("UPDATE branches SET city = CONCAT(city, '') WHERE id = 1");
    await poolA.query("UPDATE customers SET updated_at = '2024-03-01 00:00:00.000001' WHERE id = 1");
    const after = await binlogHead(poolA, 'mariadb');
    expect(after.file > before.file || after.pos > before.pos).toBe(true);
  });
});

describe('runWorkload', () => {
  it('runs every kind of operation at the requested rate and keeps the books balanced', async () => {
    const before = await tableCounts(poolA);
    const stats = await runWorkload(poolA, {
      seed: 7,
      ratePerSec: 120,
      durationMs: 3_000,
      concurrency: 4,
      logger: silentLogger,
    });
    expect(stats.errors).toBe(0);
    for (const kind of OP_KINDS) expect(stats.byKind[kind], kind).toBeGreaterThan(0);
    const attempted = stats.ops + Object.values(stats.skipped).reduce((a, b) => a + b, 0) + stats.errors;
    // 3 s at 120/s schedules 360 operations; all of them run.
    expect(attempted).toBe(360);
    expect(stats.elapsedMs).toBeGreaterThanOrEqual(2_900);
    expect(stats.rowChanges).toBeGreaterThan(stats.ops);

    const after = await tableCounts(poolA);
    expect(after.transfers - before.transfers).toBe(stats.byKind.transfer);
    expect(after.payments - before.payments).toBe(stats.byKind.card_payment);
    expect(after.accounts - before.accounts).toBe(stats.byKind.open_account);
    expect(after.balances - before.balances).toBe(stats.byKind.open_account);
    expect(after.cards - before.cards).toBe(stats.byKind.issue_card);
    expect(after.loans - before.loans).toBe(stats.byKind.open_loan);

    expect(await bankInvariantViolations(poolA)).toEqual({
      balanceMismatches: 0,
      runningMismatches: 0,
      unorderedPostings: 0,
      negativeBalances: 0,
    });
    const [completed] = await rows<{ n: number }>(
      poolA,
      "SELECT COUNT(*) AS n FROM transfers WHERE status = 'completed' AND created_at > '2025-01-01'",
    );
    expect(Number(completed?.n)).toBe(stats.byKind.transfer - stats.failedTransfers);
  });

  it('stops on maxOps and on abort', async () => {
    const byMax = await runWorkload(poolA, { seed: 8, ratePerSec: 500, maxOps: 25, logger: silentLogger });
    expect(byMax.ops + Object.values(byMax.skipped).reduce((a, b) => a + b, 0) + byMax.errors).toBe(25);

    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const started = Date.now();
    const byAbort = await runWorkload(
      poolA,
      { seed: 9, ratePerSec: 50, logger: silentLogger },
      controller.signal,
    );
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(byAbort.ops).toBeGreaterThan(0);
    expect(await bankInvariantViolations(poolA)).toMatchObject({
      balanceMismatches: 0,
      runningMismatches: 0,
    });
  });

  it('draws the rows it works on uniformly, whatever gaps their ids have', async () => {
    const only = (kind: (typeof OP_KINDS)[number]) => ({
      ...Object.fromEntries(OP_KINDS.map((k) => [k, 0])),
      [kind]: 1,
    });
    // Ids skip 1,000 (as rolled-back inserts leave them) before one new account.
    const [top] = await rows<{ max: number }>(poolA, 'SELECT MAX(id) AS max FROM accounts');
    const afterGap = Number(top?.max) + 1000;
    await poolA.query(`ALTER TABLE accounts AUTO_INCREMENT = ${afterGap}`);
    await runWorkload(poolA, {
      seed: 21,
      ratePerSec: 500,
      maxOps: 1,
      mix: only('open_account'),
      logger: silentLogger,
    });
    const [opened] = await rows<{ n: number }>(poolA, 'SELECT COUNT(*) AS n FROM accounts WHERE id = ?', [
      afterGap,
    ]);
    expect(Number(opened?.n)).toBe(1);
    const [accounts] = await rows<{ n: number }>(
      poolA,
      "SELECT COUNT(*) AS n FROM accounts WHERE status = 'active'",
    );

    const stats = await runWorkload(poolA, {
      seed: 22,
      ratePerSec: 500,
      maxOps: 200,
      mix: only('issue_card'),
      logger: silentLogger,
    });
    expect(stats.byKind.issue_card).toBeGreaterThan(150);
    const [cards] = await rows<{ n: number }>(poolA, 'SELECT COUNT(*) AS n FROM cards WHERE account_id = ?', [
      afterGap,
    ]);
    // About 200 / (active accounts) each, 3 or 4 here; a draw between 1 and the highest id gave
    // the account after the gap every draw in it, most of the 200.
    expect(Number(accounts?.n)).toBeGreaterThan(50);
    expect(Number(cards?.n)).toBeLessThan(15);
  });

  it('refuses to run without a way to stop', async () => {
    await expect(runWorkload(poolA, { seed: 1, ratePerSec: 10 })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
  });
});

describe('history paging with equal timestamps', () => {
  it('orders ties by id and pages across them without loss', async () => {
    const queries = new LegacyQueries(legacyA);
    const [acct] = await rows<{ account_id: number; ledger: string; currency_code: string }>(
      poolA,
      "SELECT b.account_id, b.ledger, a.currency_code FROM balances b JOIN accounts a ON a.id = b.account_id WHERE a.status = 'active' ORDER BY b.account_id LIMIT 1",
    );
    if (!acct) throw new Error('no account');
    // Zero-amount postings at one instant keep the balance while creating ties on posted_at.
    const tie = '2030-01-01 00:00:00.500000';
    for (let i = 0; i < 5; i++) {
      await poolA.query(
        "INSERT INTO transactions (account_id, direction, amount, currency_code, balance_after, description, posted_at) VALUES (?, 'credit', '0.0000', ?, ?, 'Tie', ?)",
        [acct.account_id, acct.currency_code, acct.ledger, tie],
      );
    }
    const expected = await rows<{ id: number }>(
      poolA,
      'SELECT id FROM transactions WHERE account_id = ? ORDER BY posted_at DESC, id DESC',
      [acct.account_id],
    );
    const collected: number[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await queries.transactionHistory(
        historyQuerySchema.parse({ accountId: acct.account_id, limit: 2, cursor }),
      );
      collected.push(...page.items.map((i) => i.transactionId));
      if (page.nextCursor === null) break;
      cursor = page.nextCursor;
    }
    expect(collected).toEqual(expected.map((e) => e.id));
    expect(collected.slice(0, 5)).toEqual([...collected.slice(0, 5)].sort((a, b) => b - a));
  });
});
