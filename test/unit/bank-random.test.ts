import { describe, expect, it } from 'vitest';
import { parseMysqlUrl } from '../../examples/bank/db.js';
import { bankRows, resolveScale, SCALE_PRESETS } from '../../examples/bank/generate.js';
import {
  formatDate,
  formatDatetime6,
  formatMoney,
  parseDatetime6,
  parseMoneyCents,
  Random,
  WeightedChoice,
} from '../../examples/bank/random.js';
import { ConfigError } from '../../lib/errors.js';

describe('Random', () => {
  it('replays the same sequence for the same seed and differs for another', () => {
    const draw = (seed: number | string) => {
      const r = new Random(seed);
      return Array.from({ length: 20 }, () => r.nextUint32());
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw('42')).toEqual(draw(42));
    expect(draw(43)).not.toEqual(draw(42));
  });

  it('forks independent streams that are themselves reproducible', () => {
    const a = new Random(7).fork('x');
    const b = new Random(7).fork('x');
    const c = new Random(7).fork('y');
    const take = (r: Random) => Array.from({ length: 5 }, () => r.nextUint32());
    const fromA = take(a);
    expect(take(b)).toEqual(fromA);
    expect(take(c)).not.toEqual(fromA);
  });

  it('keeps int() inside its inclusive bounds and reaches both ends', () => {
    const r = new Random(1);
    const seen = new Set<number>();
    for (let i = 0; i < 5000; i++) {
      const v = r.int(-3, 3);
      expect(v).toBeGreaterThanOrEqual(-3);
      expect(v).toBeLessThanOrEqual(3);
      seen.add(v);
    }
    expect([...seen].sort((x, y) => x - y)).toEqual([-3, -2, -1, 0, 1, 2, 3]);
    expect(() => r.int(2, 1)).toThrow(RangeError);
    expect(() => r.int(0.5, 1)).toThrow(RangeError);
  });

  it('draws next() in [0, 1) with a plausible mean', () => {
    const r = new Random('mean');
    let sum = 0;
    for (let i = 0; i < 20_000; i++) {
      const v = r.next();
      expect(v >= 0 && v < 1).toBe(true);
      sum += v;
    }
    expect(sum / 20_000).toBeGreaterThan(0.48);
    expect(sum / 20_000).toBeLessThan(0.52);
  });

  it('picks weighted values in proportion and never a zero-weight one', () => {
    const r = new Random(3);
    const choice = new WeightedChoice([
      ['a', 1],
      ['b', 3],
      ['never', 0],
    ] as const);
    const counts = { a: 0, b: 0, never: 0 };
    for (let i = 0; i < 8000; i++) counts[choice.pick(r)]++;
    expect(counts.never).toBe(0);
    expect(counts.b / counts.a).toBeGreaterThan(2.6);
    expect(counts.b / counts.a).toBeLessThan(3.4);
    expect(() => new WeightedChoice([['x', 0]])).toThrow(RangeError);
    expect(() => r.pick([])).toThrow(RangeError);
  });
});

describe('money and time formats', () => {
  it('formats integer cents as DECIMAL(19,4) text and parses it back', () => {
    expect(formatMoney(0)).toBe('0.0000');
    expect(formatMoney(5)).toBe('0.0500');
    expect(formatMoney(123456)).toBe('1234.5600');
    expect(formatMoney(-5)).toBe('-0.0500');
    expect(formatMoney(-100)).toBe('-1.0000');
    expect(() => formatMoney(1.5)).toThrow(RangeError);
    for (const cents of [0, 1, 99, 100, 101, -1, -12345, 987654321]) {
      expect(parseMoneyCents(formatMoney(cents))).toBe(cents);
    }
    expect(parseMoneyCents('12.3')).toBe(1230);
    expect(() => parseMoneyCents('1.0001')).toThrow(RangeError);
    expect(() => parseMoneyCents('abc')).toThrow(RangeError);
  });

  it('formats microsecond instants as DATETIME(6) text in UTC and round-trips them', () => {
    const micros = Date.UTC(2023, 4, 1, 9, 30, 0) * 1000 + 123;
    expect(formatDatetime6(micros)).toBe('2023-05-01 09:30:00.000123');
    expect(formatDatetime6(micros + 999_877)).toBe('2023-05-01 09:30:01.000000');
    expect(formatDatetime6(micros - 124)).toBe('2023-05-01 09:29:59.999999');
    expect(parseDatetime6('2023-05-01 09:30:00.000123')).toBe(micros);
    expect(parseDatetime6('2023-05-01 09:30:00')).toBe(micros - 123);
    expect(formatDate(micros)).toBe('2023-05-01');
    expect(() => parseDatetime6('2023-05-01T09:30:00Z')).toThrow(RangeError);
  });
});

describe('parseMysqlUrl', () => {
  it('reads user, password, host, port and database, decoding escapes', () => {
    expect(parseMysqlUrl('mysql://cqrs:cqrs@127.0.0.1:3307/legacy_bank')).toEqual({
      host: '127.0.0.1',
      port: 3307,
      user: 'cqrs',
      password: 'cqrs',
      database: 'legacy_bank',
    });
    expect(parseMysqlUrl('mariadb://u:p%40ss@db.local/x')).toEqual({
      host: 'db.local',
      port: 3306,
      user: 'u',
      password: 'p@ss',
      database: 'x',
    });
    expect(parseMysqlUrl('mysql://u@h:1').database).toBeUndefined();
  });

  it('rejects other schemes and unsafe database names without echoing the password', () => {
    expect(() => parseMysqlUrl('postgres://u:p@h/db')).toThrow(ConfigError);
    expect(() => parseMysqlUrl('not a url')).toThrow(ConfigError);
    try {
      parseMysqlUrl('mysql://u:secret@h/bad-name');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).not.toContain('secret');
    }
  });
});

describe('bankRows (pure model)', () => {
  const collect = (seed: number) => {
    const rows: string[] = [];
    for (const _ of bankRows(seed, resolveScale('tiny'), {
      row: (table, tuple) => rows.push(`${table}${tuple}`),
    })) {
      // drain
    }
    return rows;
  };

  it('emits the same rows for the same seed and different ones for another', () => {
    const a = collect(42);
    expect(collect(42)).toEqual(a);
    expect(collect(43)).not.toEqual(a);
    const customers = a.filter((r) => r.startsWith('customers(')).length;
    expect(customers).toBe(SCALE_PRESETS.tiny.customers);
  });

  it('resolves explicit scales with defaults derived from the customer count', () => {
    const s = resolveScale({ customers: 1000 });
    expect(s.customers).toBe(1000);
    expect(s.accountsPerCustomer).toBe(SCALE_PRESETS.small.accountsPerCustomer);
    expect(s.merchants).toBeGreaterThan(0);
    expect(() => resolveScale({ customers: 0 })).toThrow();
  });
});
