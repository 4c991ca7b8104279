import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ChangeEvent, Op, Row, SourceTransaction } from '../../connectors/change-event.js';
import { changedFields, mapTransaction } from '../../connectors/mapping/mapper.js';
import { defineRuleSet } from '../../connectors/mapping/rule-set.js';
import { defineTableRule } from '../../connectors/mapping/rules.js';
import { bankEventNames } from '../../examples/bank/mapping.js';
import bank from '../../examples/bank/migration.js';
import { ConfigError } from '../../lib/errors.js';

let nextPos = 1000;

function change(table: string, op: Op, before: Row | null, after: Row | null, db = 'legacy'): ChangeEvent {
  nextPos += 100;
  return {
    before,
    after,
    op,
    ts_ms: 1_700_000_000_500,
    transaction: null,
    source: {
      version: 'test',
      connector: 'mariadb',
      name: 'legacy',
      ts_ms: 1_700_000_000_000,
      snapshot: op === 'r' ? 'true' : 'false',
      db,
      table,
      file: 'binlog.000003',
      pos: nextPos,
      row: 0,
    },
  };
}

function tx(events: ChangeEvent[], id = '0-1-42', snapshot = false): SourceTransaction {
  return { id, events, offset: { file: 'binlog.000003', pos: nextPos }, snapshot };
}

const account = (over: Row = {}): Row => ({
  id: 7,
  account_number: 'DE0001',
  customer_id: 3,
  product_id: 2,
  branch_id: 1,
  currency_code: 'EUR',
  status: 'active',
  opened_at: '2024-05-01 09:30:00.000001',
  closed_at: null,
  updated_at: '2024-05-01 09:30:00.000001',
  ...over,
});

const customer = (over: Row = {}): Row => ({
  id: 3,
  first_name: 'Ada',
  last_name: 'Lovelace',
  email: 'ada@example.com',
  phone: null,
  birth_date: '1990-12-10',
  branch_id: 1,
  kyc_status: 'pending',
  created_at: '2024-01-01 00:00:00.000000',
  updated_at: '2024-01-01 00:00:00.000000',
  ...over,
});

const loan = (over: Row = {}): Row => ({
  id: 11,
  customer_id: 3,
  account_id: 7,
  principal: '10000.0000',
  outstanding: '9000.0000',
  interest_rate: '3.2500',
  status: 'active',
  opened_at: '2024-02-01 10:00:00.000000',
  maturity_date: '2029-02-01',
  updated_at: '2024-02-01 10:00:00.000000',
  ...over,
});

const balance = (over: Row = {}): Row => ({
  account_id: 7,
  available: '100.0000',
  ledger: '100.0000',
  updated_at: '2024-05-01 09:30:00.000001',
  ...over,
});

const posting = (over: Row = {}): Row => ({
  id: 900,
  account_id: 7,
  direction: 'debit',
  amount: '12.3400',
  currency_code: 'EUR',
  balance_after: '87.6600',
  description: 'coffee',
  merchant_id: null,
  transfer_id: null,
  payment_id: null,
  posted_at: '2024-05-02 08:00:00.123456',
  ...over,
});

describe('mapTransaction with the bank rules', () => {
  it('maps an insert to the create event with parsed state and source metadata', () => {
    const c = change('accounts', 'c', null, account());
    const { events, deadLetters } = mapTransaction(tx([c], 'gtid-1'), bank.rules);
    expect(deadLetters).toEqual([]);
    expect(events).toEqual([
      {
        streamType: 'account',
        streamId: 'account-7',
        type: 'AccountOpened',
        data: {
          state: {
            accountId: 7,
            accountNumber: 'DE0001',
            customerId: 3,
            productId: 2,
            branchId: 1,
            currency: 'EUR',
            status: 'active',
            openedAt: '2024-05-01 09:30:00.000001',
            closedAt: null,
            updatedAt: '2024-05-01 09:30:00.000001',
          },
          changes: {},
        },
        metadata: {
          op: 'c',
          table: 'accounts',
          sourcePosition: `binlog.000003:${c.source.pos}:0`,
          sourceOrder: `b:0000000003:${String(c.source.pos).padStart(12, '0')}:0000000000:000000:1`,
          sourceTxId: 'gtid-1',
          sourceTsMs: 1_700_000_000_000,
          snapshot: false,
        },
      },
    ]);
  });

  it('maps snapshot reads to the create event and flags them as snapshot', () => {
    const { events } = mapTransaction(
      tx(
        [change('customers', 'r', null, customer()), change('balances', 'r', null, balance())],
        'snapshot:x:1',
        true,
      ),
      bank.rules,
    );
    expect(events.map((e) => [e.type, e.streamId, e.metadata.op, e.metadata.snapshot])).toEqual([
      ['CustomerRegistered', 'customer-3', 'r', true],
      ['BalanceInitialized', 'account-7', 'r', true],
    ]);
  });

  it('emits the clause event when a listed field changed, with every changed field', () => {
    const before = account();
    const after = account({ status: 'frozen', updated_at: '2024-06-01 00:00:00.000000' });
    const { events } = mapTransaction(tx([change('accounts', 'u', before, after)]), bank.rules);
    expect(events).toHaveLength(1);
    expect(events[0]?.type).toBe('AccountStatusChanged');
    expect(events[0]?.data).toMatchObject({ state: { accountId: 7, status: 'frozen' } });
    expect(events[0]?.data.changes).toEqual({
      status: { from: 'active', to: 'frozen' },
      updatedAt: { from: '2024-05-01 09:30:00.000001', to: '2024-06-01 00:00:00.000000' },
    });
  });

  it('emits the otherwise event when no clause matches', () => {
    const after = account({ closed_at: '2024-07-01 00:00:00.000000' });
    const { events } = mapTransaction(tx([change('accounts', 'u', account(), after)]), bank.rules);
    expect(events.map((e) => e.type)).toEqual(['AccountUpdated']);
    expect(events[0]?.data).toMatchObject({
      changes: { closedAt: { from: null, to: '2024-07-01 00:00:00.000000' } },
    });
  });

  it('emits one event per matching clause, in rule order', () => {
    const customerUpdate = change(
      'customers',
      'u',
      customer(),
      customer({ email: 'ada@lovelace.org', kyc_status: 'verified' }),
    );
    const loanUpdate = change('loans', 'u', loan(), loan({ outstanding: '0.0000', status: 'repaid' }));
    const { events } = mapTransaction(tx([customerUpdate, loanUpdate]), bank.rules);
    expect(events.map((e) => [e.type, e.streamId])).toEqual([
      ['CustomerProfileChanged', 'customer-3'],
      ['CustomerKycStatusChanged', 'customer-3'],
      ['LoanBalanceChanged', 'loan-11'],
      ['LoanStatusChanged', 'loan-11'],
    ]);
    // Both events of a row describe the whole change.
    expect(events[0]?.data).toEqual(events[1]?.data);
  });

  it('emits nothing for an update that leaves the domain state equal', () => {
    const identical = change('accounts', 'u', account(), account());
    // A column the schema does not know changed: the domain state is still the same.
    const unmapped = change('balances', 'u', balance({ legacy_flag: 1 }), balance({ legacy_flag: 2 }));
    expect(mapTransaction(tx([identical, unmapped]), bank.rules)).toEqual({ events: [], deadLetters: [] });
  });

  it('maps a delete to the removal event carrying the before state', () => {
    const { events } = mapTransaction(tx([change('transactions', 'd', posting(), null)]), bank.rules);
    expect(events.map((e) => [e.type, e.streamId, e.metadata.op])).toEqual([
      ['TransactionRemoved', 'account-7', 'd'],
    ]);
    expect(events[0]?.data).toMatchObject({ state: { transactionId: 900, amount: '12.3400' }, changes: {} });
  });

  it('puts balances and ledger postings in the account stream', () => {
    const { events } = mapTransaction(
      tx([
        change('balances', 'u', balance(), balance({ available: '87.6600', ledger: '87.6600' })),
        change('transactions', 'c', null, posting()),
        change('transactions', 'u', posting(), posting({ description: 'coffee & cake' })),
      ]),
      bank.rules,
    );
    expect(events.map((e) => [e.type, e.streamType, e.streamId])).toEqual([
      ['BalanceChanged', 'account', 'account-7'],
      ['TransactionPosted', 'account', 'account-7'],
      ['TransactionAmended', 'account', 'account-7'],
    ]);
  });

  it('upserts and removes reference data', () => {
    const cur = { code: 'EUR', name: 'Euro', minor_units: 2 };
    const { events } = mapTransaction(
      tx([
        change('currencies', 'c', null, cur),
        change('currencies', 'u', cur, { ...cur, name: 'Euro (EU)' }),
        change('currencies', 'd', cur, null),
        change('merchants', 'r', null, {
          id: 5,
          name: 'Cafe',
          category_id: 2,
          mcc: '5814',
          city: 'Berlin',
          country: 'DE',
        }),
      ]),
      bank.rules,
    );
    expect(events.map((e) => [e.type, e.streamId])).toEqual([
      ['CurrencyUpserted', 'currency-EUR'],
      ['CurrencyUpserted', 'currency-EUR'],
      ['CurrencyRemoved', 'currency-EUR'],
      ['MerchantUpserted', 'merchant-5'],
    ]);
  });

  it('dead-letters a row its schema rejects while the other rows of the transaction still map', () => {
    const bad = change(
      'balances',
      'c',
      null,
      balance({ available: '12.5', updated_at: '2024-05-01 09:30:00' }),
    );
    const { events, deadLetters } = mapTransaction(
      tx(
        [change('accounts', 'c', null, account()), bad, change('transactions', 'c', null, posting())],
        'gtid-9',
      ),
      bank.rules,
    );
    expect(events.map((e) => e.type)).toEqual(['AccountOpened', 'TransactionPosted']);
    expect(deadLetters).toHaveLength(1);
    const letter = deadLetters[0]!;
    expect(letter).toMatchObject({
      table: 'balances',
      op: 'c',
      sourceTxId: 'gtid-9',
      sourcePosition: `binlog.000003:${bad.source.pos}:0`,
    });
    expect(letter.change).toBe(bad);
    expect(letter.reason).toContain('legacy.balances op c');
    expect(letter.reason).toContain('available: expected a DECIMAL(19,4) string');
    expect(letter.reason).toContain('updated_at: expected DATETIME(6)');
  });

  it('dead-letters rows of a table without a rule', () => {
    const { events, deadLetters } = mapTransaction(
      tx([change('audit_log', 'c', null, { id: 1 }), change('accounts', 'c', null, account())]),
      bank.rules,
    );
    expect(events.map((e) => e.type)).toEqual(['AccountOpened']);
    expect(deadLetters.map((d) => d.reason)).toEqual(['no mapping rule for table legacy.audit_log']);
  });

  it('dead-letters changes that lack the row image their op needs', () => {
    const { deadLetters } = mapTransaction(
      tx([change('accounts', 'u', account(), null), change('accounts', 'd', null, null)]),
      bank.rules,
    );
    expect(deadLetters.map((d) => d.reason)).toEqual([
      'legacy.accounts op u: no after row',
      'legacy.accounts op d: no before row',
    ]);
  });

  it('keeps DECIMAL and DATETIME(6) strings exactly as captured', () => {
    const big = balance({
      available: '123456789012345.6789',
      ledger: '-0.0001',
      updated_at: '2024-12-31 23:59:59.000010',
    });
    const { events } = mapTransaction(tx([change('balances', 'c', null, big)]), bank.rules);
    expect(events[0]?.data).toEqual({
      state: {
        accountId: 7,
        available: '123456789012345.6789',
        ledger: '-0.0001',
        updatedAt: '2024-12-31 23:59:59.000010',
      },
      changes: {},
    });
    // Trailing zeros are part of the value: '1.5000' -> '1.5000' is no change, '1.5000' -> '1.5001' is.
    const same = mapTransaction(
      tx([change('loans', 'u', loan({ outstanding: '1.5000' }), loan({ outstanding: '1.5000' }))]),
      bank.rules,
    );
    expect(same.events).toEqual([]);
  });

  it('turns a key change into removal of the old stream and creation of the new one', () => {
    const { events } = mapTransaction(
      tx([change('accounts', 'u', account(), account({ id: 8 }))]),
      bank.rules,
    );
    expect(events.map((e) => [e.type, e.streamId])).toEqual([
      ['AccountRemoved', 'account-7'],
      ['AccountOpened', 'account-8'],
    ]);
  });

  it('still emits the new state when the before image fails its schema', () => {
    const { events, deadLetters } = mapTransaction(
      tx([
        change('customers', 'u', customer({ email: 'not-an-email' }), customer({ email: 'ada@example.com' })),
      ]),
      bank.rules,
    );
    expect(deadLetters).toEqual([]);
    expect(events.map((e) => e.type)).toEqual(['CustomerUpdated']);
    expect(events[0]?.data).toMatchObject({ changes: { email: { from: null, to: 'ada@example.com' } } });
  });
});

describe('rule definitions', () => {
  const thing = z
    .object({ id: z.number(), name: z.string() })
    .transform((r) => ({ thingId: r.id, label: r.name }));
  const thingRule = (over: { table?: string; db?: string; onCreate?: string } = {}) =>
    defineTableRule({
      table: over.table ?? 'things',
      ...(over.db === undefined ? {} : { db: over.db }),
      row: thing,
      key: 'thingId',
      stream: { type: 'thing', id: (s) => `thing-${s.thingId}` },
      onCreate: over.onCreate ?? 'ThingAdded',
      onSnapshot: 'ThingLoaded',
      onUpdate: [{ when: ['label'], emit: 'ThingRenamed' }],
      otherwise: 'ThingChanged',
      onDelete: 'ThingDropped',
    });

  it('uses onSnapshot for snapshot reads when given', () => {
    const rules = defineRuleSet([thingRule()]);
    const { events } = mapTransaction(
      tx([
        change('things', 'r', null, { id: 1, name: 'a' }),
        change('things', 'c', null, { id: 2, name: 'b' }),
      ]),
      rules,
    );
    expect(events.map((e) => e.type)).toEqual(['ThingLoaded', 'ThingAdded']);
  });

  it('prefers a rule for the exact database over one for any database', () => {
    const rules = defineRuleSet([thingRule(), thingRule({ db: 'other', onCreate: 'OtherThingAdded' })]);
    const { events } = mapTransaction(
      tx([
        change('things', 'c', null, { id: 1, name: 'a' }, 'legacy'),
        change('things', 'c', null, { id: 2, name: 'b' }, 'other'),
      ]),
      rules,
    );
    expect(events.map((e) => e.type)).toEqual(['ThingAdded', 'OtherThingAdded']);
  });

  it('rejects duplicate tables at load with a ConfigError', () => {
    expect(() => defineRuleSet([thingRule(), thingRule()])).toThrow(ConfigError);
    expect(() => defineRuleSet([thingRule(), thingRule()])).toThrow(/duplicate rule for table \*\.things/);
  });

  it('rejects event names outside the catalog at load with a ConfigError', () => {
    const load = () => defineRuleSet([thingRule()], { knownEvents: ['ThingAdded', 'ThingChanged'] });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/onSnapshot: unknown event name "ThingLoaded"/);
  });

  it('reports changed fields with from/to, reading a missing field as null', () => {
    expect(changedFields({ a: 1, b: 'x', c: null, e: 3 }, { a: 1, b: 'y', d: 2 })).toEqual({
      b: { from: 'x', to: 'y' },
      d: { from: null, to: 2 },
      e: { from: 3, to: null },
    });
  });
});

describe('bank.rules', () => {
  it('has a rule for every table of the bank schema', () => {
    const schema = readFileSync(new URL('../../examples/bank/schema.sql', import.meta.url), 'utf8');
    const tables = [...schema.matchAll(/CREATE TABLE (\w+)/g)].map((m) => m[1]);
    expect(tables).toHaveLength(13);
    for (const table of tables) expect(bank.rules.ruleFor('legacy', table ?? ''), table).toBeDefined();
    expect(bank.rules.rules).toHaveLength(13);
  });

  it('emits every event of the catalog and nothing else', () => {
    const emitted = new Set(
      bank.rules.rules.flatMap((r) => [
        r.onCreate,
        r.onSnapshot,
        r.otherwise,
        r.onDelete,
        ...r.onUpdate.map((c) => c.emit),
      ]),
    );
    expect([...emitted].sort()).toEqual([...bankEventNames].sort());
  });
});
