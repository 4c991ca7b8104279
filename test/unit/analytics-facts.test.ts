import { describe, expect, it } from 'vitest';
import {
  type AnalyticsTarget,
  analyticsValues,
  defineAnalytics,
  foldAnalyticsWrites,
  targetsByTable,
} from '../../definition/analytics.js';
import { defineMigration } from '../../definition/migration.js';
import type { DomainEvent } from '../../definition/read-models.js';
import bank from '../../examples/bank/migration.js';
import { spendingAnalytics, spendingFrom } from '../../examples/bank/spending.js';
import { captureTable, z } from '../../index.js';

let position = 0;
function posting(type: string, state: Record<string, unknown>, removed = false): DomainEvent {
  position++;
  return {
    type,
    removed,
    streamId: 'account-1',
    streamType: 'account',
    data: { state, changes: {} },
    metadata: {
      op: removed ? 'd' : 'c',
      table: 'transactions',
      sourcePosition: `f:${position}:0`,
      sourceOrder: String(position).padStart(10, '0'),
      sourceTxId: `tx${position}`,
      sourceTsMs: 0,
      snapshot: false,
    },
  };
}

const state = (id: number, amount: string, merchantId: number | null = 5) => ({
  transactionId: id,
  accountId: 1,
  direction: 'debit',
  amount,
  currency: 'EUR',
  balanceAfter: '0.0000',
  description: 'x',
  merchantId,
  transferId: null,
  paymentId: null,
  postedAt: '2024-03-02 10:00:00.000000',
});

const targets = targetsByTable([spendingAnalytics]);
const keyOf = (table: string, s: Record<string, unknown>) => bank.ruleOf(table)?.rowKey(s) ?? '';
const postings = targets.get('transactions')?.[0] as AnalyticsTarget;

describe('analytics fact mapping', () => {
  it('maps each captured table to the analytics tables it feeds', () => {
    expect([...targets.keys()].sort()).toEqual(['accounts', 'categories', 'merchants', 'transactions']);
    expect(postings).toMatchObject({ model: 'spending', table: 'postings' });
  });

  it('keeps the last state of a row, keyed by the captured row key, and deletes on removal', () => {
    const writes = foldAnalyticsWrites(
      [
        posting('TransactionPosted', state(1, '10.0000')),
        posting('TransactionPosted', state(2, '5.0000')),
        posting('TransactionAmended', state(1, '12.5000')),
        posting('TransactionRemoved', state(2, '5.0000'), true),
      ],
      targets,
      keyOf,
    );
    const rows = writes.get('spending.postings')?.rows;
    expect(rows?.size).toBe(2);
    expect(rows?.get(keyOf('transactions', state(1, '')))).toEqual({
      account_id: 1,
      merchant_id: 5,
      direction: 'debit',
      amount: '12.5000',
      posted_at: '2024-03-02 10:00:00.000000',
    });
    expect(rows?.get(keyOf('transactions', state(2, '')))).toBeNull();
  });

  it('folds a re-delivered event into the same write (replay never adds a row)', () => {
    const event = posting('TransactionPosted', state(3, '1.0000'));
    const once = foldAnalyticsWrites([event], targets, keyOf);
    const twice = foldAnalyticsWrites([event, event], targets, keyOf);
    expect([...(twice.get('spending.postings')?.rows ?? [])]).toEqual([
      ...(once.get('spending.postings')?.rows ?? []),
    ]);
  });

  it('ignores tables no analytics model reads', () => {
    const other = {
      ...posting('CardIssued', { cardId: 1 }),
      metadata: { ...posting('x', {}).metadata, table: 'cards' },
    };
    expect(foldAnalyticsWrites([other], targets, keyOf).size).toBe(0);
  });

  it('refuses a row that does not match its declared columns', () => {
    const bad = (row: Record<string, unknown>): AnalyticsTarget => ({
      ...postings,
      spec: { ...postings.spec, row: () => row as never },
    });
    const ok = analyticsValues(postings, state(1, '1.0000')) as Record<string, unknown>;
    expect(() => analyticsValues(bad({ ...ok, extra: 1 }), {})).toThrow(/extra, not a declared column/);
    const { amount: _, ...missing } = ok;
    expect(() => analyticsValues(bad(missing), {})).toThrow(/left out column amount/);
    expect(() => analyticsValues(bad({ ...ok, account_id: '1' }), {})).toThrow(
      /account_id \(BIGINT\) got string/,
    );
    expect(() => analyticsValues(bad({ ...ok, account_id: 1.5 }), {})).toThrow(/not a whole number/);
    expect(analyticsValues(bad({ ...ok, merchant_id: null }), {})).toMatchObject({ merchant_id: null });
  });

  it('refuses a row key that is not a whole number into a BIGINT-keyed table', () => {
    expect(postings.spec.keyType).toBe('BIGINT');
    const event = posting('TransactionPosted', state(7, '1.0000'));
    expect(foldAnalyticsWrites([event], targets, keyOf).get('spending.postings')?.rows.has('7')).toBe(true);
    expect(() => foldAnalyticsWrites([event], targets, () => 'EUR')).toThrow(
      /spending\.postings: row key "EUR" is not a whole number \(keyType BIGINT\)/,
    );
    const text: AnalyticsTarget = { ...postings, spec: { ...postings.spec, keyType: 'VARCHAR' } };
    const writes = foldAnalyticsWrites([event], new Map([['transactions', [text]]]), () => 'EUR');
    expect([...(writes.get('spending.postings')?.rows.keys() ?? [])]).toEqual(['EUR']);
  });

  it('a null row keeps no fact (and deletes an earlier one)', () => {
    const none: AnalyticsTarget = { ...postings, spec: { ...postings.spec, row: () => null } };
    const writes = foldAnalyticsWrites(
      [posting('TransactionPosted', state(4, '1.0000'))],
      new Map([['transactions', [none]]]),
      keyOf,
    );
    expect([...(writes.get('spending.postings')?.rows.values() ?? [])]).toEqual([null]);
  });
});

describe('bank spending window', () => {
  it('starts at midnight on the first day of the earliest month', () => {
    expect(spendingFrom('2024-05-17 10:00:00.000000', 1)).toBe('2024-05-01 00:00:00.000000');
    expect(spendingFrom('2024-05-17 10:00:00.000000', 3)).toBe('2024-03-01 00:00:00.000000');
    expect(spendingFrom('2024-02-01 00:00:00.000000', 3)).toBe('2023-12-01 00:00:00.000000');
    expect(spendingFrom('2024-01-31 23:59:59.999999', 24)).toBe('2022-02-01 00:00:00.000000');
  });
});

describe('analytics definitions', () => {
  it('the bank declares the spending model and its endpoint', () => {
    expect(bank.analytics.map((a) => a.name)).toEqual(['spending']);
    expect(bank.endpoints.map((e) => e.key)).toContain('customers.spending');
  });
});

describe('analytics definition checks', () => {
  const spec = (analytics: unknown) => ({
    name: 'check',
    capture: { tables: bank.rules.rules },
    readModels: [],
    analytics: analytics as never,
    domains: { a: { endpoints: { s: bank.endpoints[0]?.definition as never } } },
  });

  it('refuses a table fed by an uncaptured table, a bad column name and a model without queries', () => {
    const model = defineAnalytics({
      name: 'bad',
      tables: { facts: { from: 'nowhere', columns: { 'Bad-Name': 'BIGINT' }, row: () => null } },
      queries: {},
    });
    expect(() => defineMigration(spec([model]))).toThrow(
      /nowhere is not a captured table[\s\S]*Bad-Name: use lower-case[\s\S]*declare at least one query/,
    );
  });

  it('refuses an unknown key type, and a BIGINT key over a compound capture key', () => {
    const pairs = captureTable({
      table: 'pairs',
      row: z.object({ a: z.number(), b: z.number() }),
      key: ['a', 'b'],
      stream: { type: 'pair', id: (s) => `${s.a}-${s.b}` },
      onCreate: 'PairAdded',
      otherwise: 'PairChanged',
      onDelete: 'PairRemoved',
    });
    const model = defineAnalytics({
      name: 'keys',
      tables: {
        odd: { from: 'transactions', keyType: 'INT' as never, columns: { n: 'BIGINT' }, row: () => null },
        pair: { from: 'pairs', keyType: 'BIGINT', columns: { n: 'BIGINT' }, row: () => null },
        text: { from: 'pairs', keyType: 'VARCHAR', columns: { n: 'BIGINT' }, row: () => null },
      },
      queries: { q: 'SELECT 1' },
    });
    const withPairs = { ...spec([model]), capture: { tables: [...bank.rules.rules, pairs] } };
    expect(() => defineMigration(withPairs)).toThrow(
      /odd\.keyType: "INT" is not BIGINT or VARCHAR[\s\S]*pair\.keyType: BIGINT needs a capture key of one column; pairs's is a, b/,
    );
    expect(() => defineMigration(withPairs)).not.toThrow(/text\.keyType/);
  });

  it('accepts the bank model', () => {
    expect(defineMigration(spec([spendingAnalytics])).analytics).toHaveLength(1);
  });
});
