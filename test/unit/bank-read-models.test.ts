import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { beforeEach, describe, expect, it } from 'vitest';
import { readModelReply } from '../../definition/endpoint-calls.js';
import { JsonText } from '../../definition/json-text.js';
import type { ReadModels } from '../../definition/read-models.js';
import type { StoredEvent } from '../../eventstore/ports.js';
import { accountSummarySchema } from '../../examples/bank/contract.js';
import bank, { ReadModelQueries } from '../../examples/bank/migration.js';
import type { IndexBuild } from '../../projectors/ports.js';
import { SqliteReadModels } from '../../projectors/stores/sqlite-read-models.js';
import { applyBatch, storedCreate as ev } from '../support/stored-events.js';

const T = (s: string) => `2024-01-0${s}.000000`;
const customer = (id: number, first: string, email = `c${id}@x.io`) =>
  ev('CustomerRegistered', 'customers', {
    customerId: id,
    firstName: first,
    lastName: 'Doe',
    email,
    phone: null,
    birthDate: '1990-01-01',
    branchId: 1,
    kycStatus: 'verified',
    createdAt: T('1 00:00:00'),
    updatedAt: T('1 00:00:00'),
  });
const account = (id: number, customerId: number, status = 'active') =>
  ev('AccountOpened', 'accounts', {
    accountId: id,
    accountNumber: `AC${id}`,
    customerId,
    productId: 1,
    branchId: 1,
    currency: 'EUR',
    status,
    openedAt: T('1 00:00:00'),
    closedAt: null,
    updatedAt: T('1 00:00:00'),
  });
const balance = (id: number, amount: string) =>
  ev('BalanceChanged', 'balances', {
    accountId: id,
    available: amount,
    ledger: amount,
    updatedAt: T('2 00:00:00'),
  });
const card = (id: number, accountId: number, status: string) =>
  ev('CardIssued', 'cards', {
    cardId: id,
    accountId,
    maskedPan: '****',
    cardType: 'debit',
    status,
    expiresOn: '2030-01-01',
    issuedAt: T('1 00:00:00'),
    updatedAt: T('1 00:00:00'),
  });
const loan = (id: number, accountId: number, outstanding: string, status = 'active') =>
  ev('LoanOpened', 'loans', {
    loanId: id,
    customerId: 1,
    accountId,
    principal: '1000.0000',
    outstanding,
    interestRate: '5.0000',
    status,
    openedAt: T('1 00:00:00'),
    maturityDate: '2030-01-01',
    updatedAt: T('1 00:00:00'),
  });
const posting = (id: number, accountId: number, at: string, merchantId: number | null = null) =>
  ev('TransactionPosted', 'transactions', {
    transactionId: id,
    accountId,
    direction: 'debit',
    amount: '1.0000',
    currency: 'EUR',
    balanceAfter: '9.0000',
    description: `t${id}`,
    merchantId,
    transferId: null,
    paymentId: null,
    postedAt: at,
  });
const reference = [
  ev('ProductUpserted', 'products', {
    productId: 1,
    code: 'CHK',
    name: 'Checking',
    kind: 'checking',
    interestRate: '0.0000',
    currency: 'EUR',
  }),
  ev('BranchUpserted', 'branches', {
    branchId: 1,
    code: 'B1',
    name: 'Main',
    city: 'X',
    openedOn: '2000-01-01',
  }),
  ev('CategoryUpserted', 'categories', { categoryId: 1, code: 'food', name: 'Food', parentId: null }),
  ev('MerchantUpserted', 'merchants', {
    merchantId: 1,
    name: 'Cafe',
    categoryId: 1,
    mcc: '5812',
    city: 'X',
    country: 'DE',
  }),
];

/** The bank's two views, maintained by the embedded store exactly as the projection runner drives it. */
describe('bank read models on the embedded store', () => {
  let db: Database.Database;
  let store: SqliteReadModels;
  let q: ReadModelQueries;
  const apply = (events: StoredEvent[]) => applyBatch(store, db, events);

  beforeEach(() => {
    db = new Database(':memory:');
    store = new SqliteReadModels(bank);
    store.migrate(db);
    q = new ReadModelQueries(store.readModels(db));
    apply(reference);
  });

  it('has no summary until account, owner and balance are all known (legacy inner joins)', async () => {
    apply([account(1, 1)]);
    expect(await q.accountSummary(1)).toBeNull();
    apply([customer(1, 'Ann')]);
    expect(await q.accountSummary(1)).toBeNull();
    apply([balance(1, '10.0000')]);
    const s = await q.accountSummary(1);
    expect(accountSummarySchema.parse(s).owner).toEqual({ customerId: 1, name: 'Ann Doe', email: 'c1@x.io' });
  });

  it('a customer rename updates every account of that customer', async () => {
    apply([
      customer(1, 'Ann'),
      account(1, 1),
      account(2, 1),
      account(3, 2),
      customer(2, 'Bob'),
      balance(1, '1.0000'),
      balance(2, '2.0000'),
      balance(3, '3.0000'),
    ]);
    apply([customer(1, 'Anna', 'anna@x.io')]);
    expect((await q.accountSummary(1))?.owner.name).toBe('Anna Doe');
    expect((await q.accountSummary(2))?.owner.email).toBe('anna@x.io');
    expect((await q.accountSummary(3))?.owner.name).toBe('Bob Doe');
  });

  it('counts cards by status and sums active loans exactly, even when they arrive before the account', async () => {
    apply([
      card(1, 1, 'active'),
      card(2, 1, 'blocked'),
      loan(1, 1, '0.1000'),
      loan(2, 1, '0.2000'),
      loan(3, 1, '9.0000', 'repaid'),
    ]);
    apply([customer(1, 'Ann'), account(1, 1), balance(1, '5.0000')]);
    let s = await q.accountSummary(1);
    expect(s?.cards).toEqual({ active: 1, total: 2 });
    expect(s?.loans).toEqual({ active: 2, outstanding: '0.3000' });
    apply([card(2, 1, 'active'), loan(1, 1, '0.0000', 'repaid')]);
    s = await q.accountSummary(1);
    expect(s?.cards).toEqual({ active: 2, total: 2 });
    expect(s?.loans).toEqual({ active: 1, outstanding: '0.2000' });
  });

  it('keeps the 10 most recent postings, newest first, ties broken by id', async () => {
    apply([customer(1, 'Ann'), account(1, 1), balance(1, '5.0000')]);
    apply(
      Array.from({ length: 14 }, (_, i) =>
        posting(
          100 + i,
          1,
          i < 4 ? T('3 10:00:00') : `2024-01-02 10:00:${String(i).padStart(2, '0')}.000001`,
        ),
      ),
    );
    const ids = (await q.accountSummary(1))?.recentTransactions.map((t) => t.transactionId);
    expect(ids).toEqual([103, 102, 101, 100, 113, 112, 111, 110, 109, 108]);
  });

  it('is idempotent: applying everything twice gives identical documents', async () => {
    const events = [
      customer(1, 'Ann'),
      account(1, 1),
      balance(1, '5.0000'),
      card(1, 1, 'active'),
      posting(1, 1, T('2 00:00:00'), 1),
    ];
    apply(events);
    const once = await q.accountSummary(1);
    apply(events);
    expect(await q.accountSummary(1)).toEqual(once);
  });

  it('pages history with from/to and keyset cursors, and renames merchants in place', async () => {
    apply(Array.from({ length: 7 }, (_, i) => posting(i + 1, 1, `2024-02-0${i + 1} 00:00:00.000000`, 1)));
    const p1 = await q.transactionHistory({ accountId: 1, limit: 3 });
    expect(p1.items.map((i) => i.transactionId)).toEqual([7, 6, 5]);
    const p2 = await q.transactionHistory({ accountId: 1, limit: 3, cursor: p1.nextCursor ?? undefined });
    expect(p2.items.map((i) => i.transactionId)).toEqual([4, 3, 2]);
    const ranged = await q.transactionHistory({
      accountId: 1,
      limit: 50,
      from: '2024-02-02 00:00:00.000000',
      to: '2024-02-04 00:00:00.000000',
    });
    expect(ranged.items.map((i) => i.transactionId)).toEqual([3, 2]);
    expect(ranged.nextCursor).toBeNull();
    apply([
      ev('MerchantUpserted', 'merchants', {
        merchantId: 1,
        name: 'Bistro',
        categoryId: 1,
        mcc: '5812',
        city: 'X',
        country: 'DE',
      }),
    ]);
    const after = await q.transactionHistory({ accountId: 1, limit: 1 });
    expect(after.items[0]?.merchant).toEqual({ merchantId: 1, name: 'Bistro' });
    expect(after.items[0]?.category).toBe('Food');
    expect((await q.transactionHistory({ accountId: 99, limit: 5 })).items).toEqual([]);
  });

  it('walks every page of a busy account newest first, ties by id, each posting once, from an index walk with no sort', async () => {
    // Account 1's postings share timestamps in groups of three; account 2's interleave with them.
    const at = (i: number) => `2024-03-${String(10 + Math.floor(i / 3)).padStart(2, '0')} 08:00:00.000000`;
    apply([
      ...Array.from({ length: 40 }, (_, i) => posting(1000 + i, 1, at(i), i % 2 === 0 ? 1 : null)),
      ...Array.from({ length: 10 }, (_, i) => posting(2000 + i, 2, at(i * 4))),
    ]);
    const expected = Array.from({ length: 40 }, (_, i) => ({ id: 1000 + i, at: at(i) }))
      .sort((a, b) => (a.at === b.at ? b.id - a.id : a.at < b.at ? 1 : -1))
      .map((p) => p.id);
    for (const limit of [1, 3, 7, 40]) {
      const walked: number[] = [];
      let cursor: string | undefined;
      for (let pages = 0; pages < 50; pages++) {
        const reply = JSON.parse(
          sent(await q.transactionHistoryReply({ accountId: 1, limit, ...(cursor ? { cursor } : {}) })),
        ) as { items: Array<{ transactionId: number }>; nextCursor: string | null };
        walked.push(...reply.items.map((t) => t.transactionId));
        if (reply.nextCursor === null) break;
        cursor = reply.nextCursor;
      }
      expect(walked, `limit ${limit}`).toEqual(expected);
    }
    const within = await q.transactionHistory({
      accountId: 1,
      limit: 4,
      from: at(3),
      to: at(9),
    });
    expect(within.items.map((t) => t.transactionId)).toEqual([1008, 1007, 1006, 1005]);

    // Equal sort values come back by key ascending in either direction.
    const history = store.readModels(db)['transaction-history'];
    if (history === undefined) throw new Error('no transaction-history read model');
    const tied = async (direction: 'asc' | 'desc') =>
      (
        (await history.find({
          where: { accountId: 1 },
          orderBy: [{ field: 'postedAt', direction }],
          limit: 6,
        })) as Array<{ transactionId: number }>
      ).map((t) => t.transactionId);
    expect(await tied('desc')).toEqual([1039, 1036, 1037, 1038, 1033, 1034]);
    expect(await tied('asc')).toEqual([1000, 1001, 1002, 1003, 1004, 1005]);

    // The page query the endpoint sends is answered by walking the index: no sort of an account's postings.
    const plan = db
      .prepare(
        `EXPLAIN QUERY PLAN SELECT doc FROM "rm_doc__transaction-history" WHERE json_extract(row, '$."accountId"') = ? ORDER BY json_extract(row, '$."postedAt"') DESC, json_extract(row, '$."transactionId"') DESC, key ASC LIMIT ?`,
      )
      .all(1, 50) as Array<{ detail: string }>;
    expect(plan.map((p) => p.detail).join('\n')).toMatch(/USING COVERING INDEX/);
    expect(plan.map((p) => p.detail).join('\n')).not.toMatch(/TEMP B-TREE/);
    // A cursor's page seeks to the cursor's postedAt (the first field's bound before the
    // continuation's OR), instead of walking the account's newer postings.
    const cursorPlan = db
      .prepare(
        `EXPLAIN QUERY PLAN SELECT doc FROM "rm_doc__transaction-history" WHERE json_extract(row, '$."accountId"') = ? AND (json_extract(row, '$."postedAt"') <= ? AND ((json_extract(row, '$."postedAt"') < ?) OR (json_extract(row, '$."postedAt"') = ? AND json_extract(row, '$."transactionId"') < ?))) ORDER BY json_extract(row, '$."postedAt"') DESC, json_extract(row, '$."transactionId"') DESC, key ASC LIMIT ?`,
      )
      .all(1, 'x', 'x', 'x', 1, 50) as Array<{ detail: string }>;
    expect(cursorPlan.map((p) => p.detail).join('\n')).toMatch(
      /COVERING INDEX \S+ \(<expr>=\? AND <expr><\?\)/,
    );
  });

  it('moves a database built with the declared-fields index to the page index without a replay', async () => {
    apply([customer(1, 'Ann'), account(1, 1), balance(1, '5.0000')]);
    apply(Array.from({ length: 5 }, (_, i) => posting(i + 1, 1, `2024-02-0${i + 1} 00:00:00.000000`)));
    const indexes = () =>
      db
        .prepare(
          "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'rm_doc__transaction-history' AND sql IS NOT NULL",
        )
        .pluck()
        .all() as string[];
    const [page] = indexes();
    // The index as stores before the page index created it: the declared fields only.
    const digest = createHash('sha1').update('accountId\u0000postedAt\u0000transactionId').digest('hex');
    const old = `ix__doc__transaction-history__${digest.slice(0, 10)}`;
    db.exec(`DROP INDEX "${page}"`);
    db.exec(
      `CREATE INDEX "${old}" ON "rm_doc__transaction-history" (json_extract(row, '$."accountId"'), json_extract(row, '$."postedAt"'), json_extract(row, '$."transactionId"'))`,
    );
    expect(new SqliteReadModels(bank).migrate(db)).toEqual([]);
    expect(indexes()).toEqual([page]);
    expect(
      (await q.transactionHistory({ accountId: 1, limit: 3 })).items.map((t) => t.transactionId),
    ).toEqual([5, 4, 3]);
  });

  /** The indexes on a table's mirrored rows, by name. */
  const rowIndexes = (table: string) =>
    db
      .prepare(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name",
      )
      .pluck()
      .all(`rm_row__${table}`) as string[];

  it('drops a row index the plans no longer seek by and finds pending transfers by account and status', () => {
    const indexes = () => rowIndexes('transfers');
    const wanted = indexes();
    // The index as the engine made it before it sought a join's where: the by field only.
    const digest = createHash('sha1').update('fromAccountId').digest('hex');
    db.exec(
      `CREATE INDEX "ix__row__transfers__${digest.slice(0, 10)}" ON rm_row__transfers (json_extract(state, '$."fromAccountId"'))`,
    );
    db.exec(`CREATE INDEX "someone_elses" ON rm_row__transfers (key, state)`);
    expect(new SqliteReadModels(bank).migrate(db)).toEqual([]);
    expect(indexes()).toEqual([...wanted, 'someone_elses'].sort());
    const plan = db
      .prepare(
        `EXPLAIN QUERY PLAN SELECT json_extract(state, '$."amount"') FROM rm_row__transfers WHERE json_extract(state, '$."fromAccountId"') = ? AND json_extract(state, '$."status"') = ?`,
      )
      .all(1, 'pending') as Array<{ detail: string }>;
    expect(plan.map((p) => p.detail).join('\n')).toMatch(/USING INDEX \S+ \(<expr>=\? AND <expr>=\?\)/);
  });

  it("reads an account's latest postings from a covering index that replaced the engine's earlier one", () => {
    const indexes = () => rowIndexes('transactions');
    apply(Array.from({ length: 5 }, (_, i) => posting(i + 1, 1, `2024-02-0${i + 1} 00:00:00.000000`)));
    const wanted = indexes();
    // The index as the engine made it before it kept the rows in it: the fields only.
    const digest = createHash('sha1').update('accountId\u0000postedAt\u0000transactionId').digest('hex');
    const old = `ix__row__transactions__${digest.slice(0, 10)}`;
    expect(wanted).not.toContain(old);
    const covering = wanted.filter((name) =>
      String(
        db.prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?").pluck().get(name),
      ).endsWith(', key, state)'),
    );
    expect(covering).toHaveLength(1);
    db.exec(`DROP INDEX "${covering[0]}"`);
    db.exec(
      `CREATE INDEX "${old}" ON rm_row__transactions (json_extract(state, '$."accountId"'), json_extract(state, '$."postedAt"'), json_extract(state, '$."transactionId"'))`,
    );
    // A table with rows gets its index announced (an upgrade builds it at start, for minutes at scale).
    const builds: IndexBuild[] = [];
    expect(new SqliteReadModels(bank).migrate(db, (build) => builds.push(build))).toEqual([]);
    expect(indexes()).toEqual(wanted);
    expect(builds).toEqual([
      { table: 'rm_row__transactions', index: covering[0] },
      { table: 'rm_row__transactions', index: covering[0], ms: expect.any(Number) },
    ]);
    // The summary's recent-postings join, as the store's row reader asks it.
    const plan = db
      .prepare(
        `EXPLAIN QUERY PLAN SELECT state FROM rm_row__transactions WHERE json_extract(state, '$."accountId"') = ? ORDER BY json_extract(state, '$."postedAt"') DESC, json_extract(state, '$."transactionId"') DESC, key ASC LIMIT +?`,
      )
      .all(1, 20) as Array<{ detail: string }>;
    expect(plan.map((p) => p.detail).join('\n')).toMatch(/USING COVERING INDEX \S+ \(<expr>=\?\)/);
  });

  /** The same handles without the JSON-text methods: every endpoint takes its object path. */
  const objectsOnly = (readModels: ReadModels): ReadModels =>
    Object.fromEntries(
      Object.entries(readModels).map(([name, h]) => [name, { get: h.get.bind(h), find: h.find.bind(h) }]),
    );
  const sent = (answer: unknown) => (answer instanceof JsonText ? answer.json : JSON.stringify(answer));

  it('answers every bank endpoint with JSON equal to the object path (stored text sent as is)', async () => {
    apply([
      customer(1, 'Ann'),
      account(1, 1),
      account(2, 1, 'frozen'),
      balance(1, '10.0000'),
      balance(2, '0.0000'),
      card(1, 1, 'active'),
      loan(1, 1, '500.0000'),
      ...Array.from({ length: 7 }, (_, i) => posting(i + 1, 1, `2024-02-0${i + 1} 00:00:00.000000`, 1)),
    ]);
    const fast = store.readModels(db);
    const slow = objectsOnly(fast);
    const first = await q.transactionHistory({ accountId: 1, limit: 3 });
    const requests: Record<string, Array<Record<string, unknown>>> = {
      'accounts.summary': [{ accountId: 1 }, { accountId: 2 }, { accountId: 99 }],
      'accounts.history': [
        // One item: the page's envelope is joined in before and after the same item.
        { accountId: 1, limit: 1 },
        { accountId: 1, limit: 3 },
        { accountId: 1, limit: 7 },
        { accountId: 1, limit: 50 },
        { accountId: 1, limit: 3, cursor: first.nextCursor ?? undefined },
        { accountId: 1, limit: 50, from: '2024-02-02 00:00:00.000000', to: '2024-02-04 00:00:00.000000' },
        { accountId: 99, limit: 5 },
      ],
      'accounts.overview': [
        { accountId: 1, asOf: '2024-02-08 00:00:00.000000' },
        { accountId: 99, asOf: '2024-02-08 00:00:00.000000' },
      ],
      'accounts.overviewWide': [{ accountId: 1, asOf: '2024-02-08 00:00:00.000000' }],
    };
    // Every endpoint over the document read models; customers.spending reads the analytics
    // store (test/integration/bank-spending-analytics.test.ts).
    const documentEndpoints = bank.endpoints.filter((e) => e.domain === 'accounts');
    expect(Object.keys(requests).sort()).toEqual(documentEndpoints.map((e) => e.key).sort());
    let textAnswers = 0;
    for (const { key, definition } of documentEndpoints) {
      for (const params of requests[key] ?? []) {
        const parsed = definition.params.parse(params) as Record<string, unknown>;
        const fastAnswer = await readModelReply(definition, parsed, fast);
        const slowAnswer = await readModelReply(definition, parsed, slow);
        expect(slowAnswer instanceof JsonText).toBe(false);
        if (fastAnswer instanceof JsonText) textAnswers++;
        if (slowAnswer === null) expect(fastAnswer, `${key} ${JSON.stringify(params)}`).toBeNull();
        else
          expect(JSON.parse(sent(fastAnswer)), `${key} ${JSON.stringify(params)}`).toEqual(
            JSON.parse(sent(slowAnswer)),
          );
      }
    }
    // Summary (two found), the seven history pages and the two overviews found took the text path.
    expect(textAnswers).toBe(11);
  });
});
