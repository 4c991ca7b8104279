import { describe, expect, it } from 'vitest';
import { datetimeParam, integerParam } from '../../definition/params.js';

describe('integerParam', () => {
  const id = integerParam({ min: 1 });
  it('takes canonical decimal text and JSON numbers', () => {
    expect(id.parse('42')).toBe(42);
    expect(id.parse(7)).toBe(7);
    expect(integerParam().parse('-3')).toBe(-3);
    expect(integerParam().parse('0')).toBe(0);
  });

  it.each(['0x10', '1e3', ' 1', '1 ', '', '01', '+1', '1.0', 'abc'])(
    'refuses %j, which would alias another key',
    (text) => {
      const result = id.safeParse(text);
      expect(result.success).toBe(false);
      expect(result.error?.issues[0]?.message).toMatch(/whole number written in decimal digits/);
    },
  );

  it('applies bounds and refuses integers beyond 2^53', () => {
    expect(id.safeParse('0').error?.issues[0]?.message).toMatch(/>=1/);
    expect(integerParam({ max: 200 }).safeParse('201').success).toBe(false);
    expect(integerParam().safeParse('9007199254740993').success).toBe(false);
    expect(integerParam().safeParse(1.5).success).toBe(false);
  });
});

describe('datetimeParam', () => {
  const at = datetimeParam(6);
  it('takes real instants with exactly the column fraction digits', () => {
    expect(at.parse('2024-02-29 23:59:59.999999')).toBe('2024-02-29 23:59:59.999999');
    expect(datetimeParam(0).parse('2024-01-01 00:00:00')).toBe('2024-01-01 00:00:00');
    // Years below 100 are real years (PostgreSQL stores them), not 1900 + year.
    expect(datetimeParam(0).parse('0099-12-31 23:59:59')).toBe('0099-12-31 23:59:59');
    expect(datetimeParam(0).parse('0001-01-01 00:00:00')).toBe('0001-01-01 00:00:00');
  });

  it('refuses impossible dates and times', () => {
    for (const text of [
      '2024-13-45 25:61:61.000000',
      '2023-02-29 10:00:00.000000',
      '2024-04-31 00:00:00.000000',
      '0000-01-01 00:00:00.000000',
      '0099-02-29 00:00:00.000000',
    ])
      expect(at.safeParse(text).error?.issues[0]?.message, text).toBe('not a real date and time');
  });

  it('refuses other shapes with the expected form', () => {
    for (const text of ['2024-01-01 00:00:00', '2024-01-01T00:00:00.000000', 'yesterday'])
      expect(at.safeParse(text).error?.issues[0]?.message, text).toBe(
        'expected DATETIME(6) "YYYY-MM-DD HH:MM:SS.ffffff"',
      );
  });
});
