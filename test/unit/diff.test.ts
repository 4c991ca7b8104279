import { describe, expect, it } from 'vitest';
import { diffJson, pathPattern } from '../../compare/diff.js';

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
