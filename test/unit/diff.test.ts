import { describe, expect, it } from 'vitest';
import { diffJson, pathPattern } from '../../compare/diff.js';
import { applyCompareRules, compileCompareRules } from '../../lib/compare-rules.js';

const tx = (id: number, amount: string) => ({
  transactionId: id,
  amount,
  merchant: { merchantId: 1, name: 'Shop' },
});

describe('diffJson', () => {
  it('finds nothing in equal values, whatever the key order', () => {
    const a = {
      accountId: 1,
      balance: { available: '10.0000', ledger: '10.0000' },
      recent: [tx(1, '1.0000')],
    };
    const b = {
      recent: [tx(1, '1.0000')],
      balance: { ledger: '10.0000', available: '10.0000' },
      accountId: 1,
    };
    expect(diffJson(a, b)).toEqual([]);
    expect(diffJson(null, null)).toEqual([]);
    expect(diffJson([], [])).toEqual([]);
  });

  it('reports a changed leaf deep inside arrays and objects with its path', () => {
    const legacy = {
      recentTransactions: [tx(1, '1.0000'), tx(2, '2.0000'), tx(3, '3.0000'), tx(4, '4.0000')],
    };
    const readModel = structuredClone(legacy);
    readModel.recentTransactions[3]!.amount = '4.5000';
    readModel.recentTransactions[0]!.merchant.name = 'Shop Ltd';
    expect(diffJson(legacy, readModel)).toEqual([
      { path: 'recentTransactions[0].merchant.name', kind: 'changed', legacy: 'Shop', readModel: 'Shop Ltd' },
      { path: 'recentTransactions[3].amount', kind: 'changed', legacy: '4.0000', readModel: '4.5000' },
    ]);
  });

  it('compares money strings exactly: equal numbers in another format still differ', () => {
    expect(diffJson({ amount: '12.3400' }, { amount: '12.34' })).toEqual([
      { path: 'amount', kind: 'changed', legacy: '12.3400', readModel: '12.34' },
    ]);
  });

  it('reports surplus elements of the longer array as missing or extra', () => {
    expect(diffJson({ items: [1, 2, 3] }, { items: [1] })).toEqual([
      { path: 'items[1]', kind: 'missing', legacy: 2 },
      { path: 'items[2]', kind: 'missing', legacy: 3 },
    ]);
    expect(diffJson([1], [1, { a: 1 }])).toEqual([{ path: '[1]', kind: 'extra', readModel: { a: 1 } }]);
  });

  it('reports keys only one side has', () => {
    expect(diffJson({ a: 1, b: 2 }, { a: 1, c: 3 })).toEqual([
      { path: 'b', kind: 'missing', legacy: 2 },
      { path: 'c', kind: 'extra', readModel: 3 },
    ]);
  });

  it('treats an undefined property as absent, as JSON does', () => {
    expect(diffJson({ a: 1, b: undefined }, { a: 1 })).toEqual([]);
  });

  it('does not mistake prototype members for keys', () => {
    expect(diffJson({ constructor: 'x' }, {})).toEqual([
      { path: 'constructor', kind: 'missing', legacy: 'x' },
    ]);
  });

  it('reports type changes once, without descending', () => {
    expect(
      diffJson({ merchant: null, amount: '1.0000', n: 1 }, { merchant: { id: 1 }, amount: 1, n: '1' }),
    ).toEqual([
      { path: 'merchant', kind: 'type', legacy: null, readModel: { id: 1 } },
      { path: 'amount', kind: 'type', legacy: '1.0000', readModel: 1 },
      { path: 'n', kind: 'type', legacy: 1, readModel: '1' },
    ]);
    expect(diffJson([1], { 0: 1 })).toEqual([{ path: '$', kind: 'type', legacy: [1], readModel: { 0: 1 } }]);
  });

  it('names the root "$" and quotes keys that are not identifiers', () => {
    expect(diffJson(1, 2)).toEqual([{ path: '$', kind: 'changed', legacy: 1, readModel: 2 }]);
    expect(diffJson({ 'a b': { c: true } }, { 'a b': { c: false } })).toEqual([
      { path: '["a b"].c', kind: 'changed', legacy: true, readModel: false },
    ]);
  });

  it('generalises indices in path patterns', () => {
    expect(pathPattern('recentTransactions[3].amount')).toBe('recentTransactions[*].amount');
    expect(pathPattern('[0][12].x')).toBe('[*][*].x');
  });
});

describe('compare rules (ignored paths and numeric tolerances)', () => {
  const rules = compileCompareRules({
    ignore: ['items.*.updatedAt', 'meta', '["odd key"]'],
    tolerance: { 'balance.available': 0.005, 'items[*].amount': 0.01 },
  });
  const legacy = {
    balance: { available: '10.0000', ledger: '10.0000' },
    meta: { servedAt: '2024-05-01 10:00:00', node: 'a' },
    'odd key': 1,
    items: [
      { id: 1, amount: '5.00', updatedAt: '2024-05-01 10:00:00' },
      { id: 2, amount: 7.5, updatedAt: '2024-05-01 11:00:00' },
    ],
  };

  it('ignores differences at or below a pattern, "*" standing for any one key or index', () => {
    const readModel = structuredClone(legacy);
    readModel.items[0]!.updatedAt = '2024-05-01 10:00:01';
    readModel.items[1]!.updatedAt = '2024-05-01 11:00:09';
    readModel.meta = { servedAt: 'later', node: 'b' };
    readModel['odd key'] = 2;
    readModel.items[1]!.id = 3;
    const ruled = applyCompareRules(diffJson(legacy, readModel), rules);
    expect(ruled).toEqual({
      differences: [{ path: 'items[1].id', kind: 'changed', legacy: 2, readModel: 3 }],
      ignored: 5,
      tolerated: 0,
    });
  });

  it('tolerates changed numbers and decimal texts within the tolerance, exactly, and nothing else', () => {
    const within = structuredClone(legacy);
    within.balance.available = '10.0050'; // exactly at the tolerance, as a decimal (no float error)
    within.items[0]!.amount = '4.99';
    within.items[1]!.amount = 7.51;
    const ruled = applyCompareRules(diffJson(legacy, within), rules);
    expect(ruled).toEqual({ differences: [], ignored: 0, tolerated: 3 });

    const beyond = structuredClone(legacy);
    beyond.balance.available = '10.0051';
    beyond.balance.ledger = '10.0001'; // no tolerance at this path
    (beyond.items[0] as Record<string, unknown>).amount = 'five'; // not a number
    (beyond.items[1] as Record<string, unknown>).amount = '7.5'; // a type difference, never tolerated
    expect(
      applyCompareRules(diffJson(legacy, beyond), rules).differences.map((d) => [d.path, d.kind]),
    ).toEqual([
      ['balance.available', 'changed'],
      ['balance.ledger', 'changed'],
      ['items[0].amount', 'changed'],
      ['items[1].amount', 'type'],
    ]);
  });

  it('does not stretch a pattern: a whole missing item is not an ignored field of it', () => {
    const shorter = structuredClone(legacy);
    shorter.items.pop();
    expect(applyCompareRules(diffJson(legacy, shorter), rules)).toMatchObject({
      differences: [{ path: 'items[1]', kind: 'missing' }],
      ignored: 0,
    });
    // A tolerance names a leaf: it covers no path below or above it.
    const nested = compileCompareRules({ tolerance: { balance: 1 } });
    const moved = { ...structuredClone(legacy), balance: { available: '10.5000', ledger: '10.0000' } };
    expect(applyCompareRules(diffJson(legacy, moved), nested).tolerated).toBe(0);
  });

  it('refuses an empty path segment or a negative, non-finite tolerance', () => {
    expect(() => compileCompareRules({ ignore: ['items..updatedAt'] })).toThrow(/not a path pattern/);
    expect(() => compileCompareRules({ tolerance: { balance: -1 } })).toThrow(/must be a number ≥ 0/);
    expect(() => compileCompareRules({ tolerance: { balance: Number.NaN } })).toThrow(/must be a number ≥ 0/);
    expect(compileCompareRules({})).toEqual({ ignore: [], tolerance: [] });
  });
});
