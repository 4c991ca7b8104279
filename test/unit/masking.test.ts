import { describe, expect, it } from 'vitest';
import type { ChangeEvent } from '../../connectors/change-event.js';
import { deadLetterMask } from '../../eventstore/dead-letter-mask.js';
import {
  isMaskedValue,
  maskColumns,
  maskValue,
  pathSegments,
  SensitiveFields,
  sensitivePathSchema,
} from '../../lib/masking.js';

const masked = /^\*\*\*[0-9a-f]{6}$/;

describe('maskValue', () => {
  it('keeps a short hash, so equal values look equal and different ones do not', () => {
    expect(maskValue('ada@example.test')).toMatch(masked);
    expect(maskValue('ada@example.test')).toBe(maskValue('ada@example.test'));
    expect(maskValue('ada@example.test')).not.toBe(maskValue('bob@example.test'));
    expect(maskValue(42)).toMatch(masked);
    expect(maskValue({ a: 1 })).toMatch(masked);
    expect(maskValue(null)).toBeNull();
  });
});

describe('sensitive field paths', () => {
  it('accepts dotted paths with [*] for array items, nothing else', () => {
    for (const ok of ['email', 'owner.email', 'items[*].description', '[*].name', 'a[*][*].b'])
      expect(sensitivePathSchema.safeParse(ok).success, ok).toBe(true);
    for (const bad of ['', 'owner..email', '.email', 'items[0].x', 'a b', 'items[*]x'])
      expect(sensitivePathSchema.safeParse(bad).success, bad).toBe(false);
  });

  it('reads the paths compare/diff writes', () => {
    expect(pathSegments('$')).toEqual([]);
    expect(pathSegments('items[3].amount')).toEqual([{ key: 'items' }, { index: 3 }, { key: 'amount' }]);
    expect(pathSegments('a["odd key"].b')).toEqual([{ key: 'a' }, { key: 'odd key' }, { key: 'b' }]);
    expect(pathSegments('a..b')).toBeNull();
  });
});

describe('SensitiveFields', () => {
  const fields = new SensitiveFields(['owner.email', 'owner.name', 'recentTransactions[*].description']);

  it('masks a difference at or below a sensitive field whole', () => {
    expect(fields.mask('owner.email', 'ada@example.test')).toBe(maskValue('ada@example.test'));
    expect(fields.mask('recentTransactions[4].description', 'rent Ada')).toBe(maskValue('rent Ada'));
    expect(fields.mask('owner.email.domain', 'x')).toBe(maskValue('x'));
  });

  it('masks the sensitive fields inside a difference above them, and leaves the rest', () => {
    const answer = {
      owner: { customerId: 7, name: 'Ada', email: 'ada@example.test' },
      balance: { available: '1.0000' },
      recentTransactions: [
        { amount: '1.0000', description: 'rent' },
        { amount: '2.0000', description: 'gift' },
      ],
    };
    expect(fields.mask('$', answer)).toEqual({
      owner: { customerId: 7, name: maskValue('Ada'), email: maskValue('ada@example.test') },
      balance: { available: '1.0000' },
      recentTransactions: [
        { amount: '1.0000', description: maskValue('rent') },
        { amount: '2.0000', description: maskValue('gift') },
      ],
    });
    expect(fields.mask('recentTransactions[1]', { amount: '2.0000', description: 'gift' })).toEqual({
      amount: '2.0000',
      description: maskValue('gift'),
    });
    // The original is never modified: the comparison keeps using it.
    expect(answer.owner.email).toBe('ada@example.test');
  });

  it('leaves other paths alone and hides a path it cannot read', () => {
    expect(fields.mask('balance.available', '1.0000')).toBe('1.0000');
    expect(fields.mask('owner.customerId', 7)).toBe(7);
    expect(fields.mask('recentTransactions[0].amount', '1.0000')).toBe('1.0000');
    expect(fields.mask('not a path', 'secret')).toBe(maskValue('secret'));
    expect(new SensitiveFields([]).mask('not a path', 'x')).toBe('x');
  });

  it('refuses an invalid pattern', () => {
    expect(() => new SensitiveFields(['owner..email'])).toThrow(/not a sensitive-field path/);
  });
});

describe('row and dead-letter masking', () => {
  const change = (
    before: Record<string, string> | null,
    after: Record<string, string> | null,
  ): ChangeEvent => ({
    before,
    after,
    op: 'u',
    ts_ms: 1,
    transaction: null,
    source: {
      version: '1',
      connector: 'mariadb',
      name: 'legacy',
      ts_ms: 1,
      snapshot: 'false',
      db: 'bank',
      table: 'customers',
    },
  });

  it('masks the named columns of both row images of the tables that have some', () => {
    expect(maskColumns({ id: 1, email: 'a@x' }, ['email', 'phone'])).toEqual({
      id: 1,
      email: maskValue('a@x'),
    });
    expect(maskColumns(null, ['email'])).toBeNull();
    const mask = deadLetterMask(new Map([['customers', ['email']]]));
    const letter = {
      reason: 'after row rejected: email: Invalid email',
      table: 'customers',
      op: 'u' as const,
      sourcePosition: 'binlog.000001:4:0',
      sourceTxId: 'tx-1',
      change: change({ id: '1', email: 'a@x' }, { id: '1', email: 'not-an-email' }),
    };
    const stored = mask(letter);
    expect(stored.change.before).toEqual({ id: '1', email: maskValue('a@x') });
    expect(stored.change.after).toEqual({ id: '1', email: maskValue('not-an-email') });
    expect(stored.reason).toBe(letter.reason);
    expect(letter.change.after?.email).toBe('not-an-email');
    expect(mask({ ...letter, table: 'accounts' })).toEqual({ ...letter, table: 'accounts' });
  });
});

describe('isMaskedValue', () => {
  it("recognises maskValue's output and nothing else", () => {
    expect(isMaskedValue(String(maskValue('ann@example.com')))).toBe(true);
    for (const v of ['***', '***12345', '***12345g', 'x***123456', '***1234567', 'ann@example.com'])
      expect(isMaskedValue(v), v).toBe(false);
  });
});
