import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { datetimeParam, integerParam, quickParams, uuidParam } from '../../definition/params.js';

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

  it('writes a shorter fraction or a T separator in the column form', () => {
    expect(at.parse('2024-01-01 09:00:00')).toBe('2024-01-01 09:00:00.000000');
    expect(at.parse('2024-01-01 09:00:00.5')).toBe('2024-01-01 09:00:00.500000');
    expect(at.parse('2024-01-01T09:00:00.123')).toBe('2024-01-01 09:00:00.123000');
    expect(datetimeParam(3).parse('2024-01-01T09:00:00')).toBe('2024-01-01 09:00:00.000');
    expect(datetimeParam(0).parse('2024-01-01T09:00:00')).toBe('2024-01-01 09:00:00');
    expect(at.safeParse('2024-02-30T09:00:00').error?.issues[0]?.message).toBe('not a real date and time');
  });

  it('refuses other shapes, and more fraction digits than the column holds, with the expected form', () => {
    for (const [schema, text] of [
      [at, '2024-01-01 09:00:00.1234567'],
      [datetimeParam(0), '2024-01-01 09:00:00.5'],
      [at, '2024-01-01 09:00'],
      [at, '2024-01-01T09:00:00Z'],
      [at, '2024-01-01 09:00:00+02:00'],
      [at, 'yesterday'],
    ] as const) {
      const digits = schema === at ? 6 : 0;
      expect(schema.safeParse(text).error?.issues[0]?.message, text).toMatch(
        new RegExp(`^expected DATETIME\\(${digits}\\) "YYYY-MM-DD HH:MM:SS`),
      );
    }
  });
});

describe('datetimeParam with utc (TIMESTAMPTZ, MySQL TIMESTAMP)', () => {
  const instant = datetimeParam(6, { utc: true });
  it('converts an offset to the UTC text the column is captured as', () => {
    expect(instant.parse('2026-12-02 09:00:00')).toBe('2026-12-02 09:00:00.000000');
    expect(instant.parse('2026-12-02T09:00:00Z')).toBe('2026-12-02 09:00:00.000000');
    expect(instant.parse('2026-12-02T11:00:00.25+02:00')).toBe('2026-12-02 09:00:00.250000');
    expect(instant.parse('2026-12-02 11:00:00+02')).toBe('2026-12-02 09:00:00.000000');
    expect(instant.parse('2026-12-02 03:30:00-0530')).toBe('2026-12-02 09:00:00.000000');
    // Across midnight, a month end and a leap day.
    expect(instant.parse('2024-03-01 01:00:00+02:00')).toBe('2024-02-29 23:00:00.000000');
    expect(datetimeParam(0, { utc: true }).parse('2025-12-31T23:30:00-01:00')).toBe('2026-01-01 00:30:00');
  });

  it('refuses offsets no database takes and instants before year 1 in UTC', () => {
    expect(instant.safeParse('2026-12-02 09:00:00+16:00').error?.issues[0]?.message).toBe(
      'not a real date and time',
    );
    expect(instant.safeParse('2026-12-02 09:00:00+02:60').error?.issues[0]?.message).toBe(
      'not a real date and time',
    );
    expect(instant.safeParse('0001-01-01 00:30:00+01:00').error?.issues[0]?.message).toBe(
      'before year 1 in UTC',
    );
    expect(instant.safeParse('2026-12-02 09:00:00 +02:00').error?.issues[0]?.message).toMatch(
      /^expected TIMESTAMP\(6\) "YYYY-MM-DD HH:MM:SS.ffffff" in UTC or with an offset/,
    );
  });
});

describe('quickParams', () => {
  const account = z.object({ accountId: integerParam({ min: 1 }) });
  const page = z.object({
    accountId: integerParam({ min: 1 }),
    from: datetimeParam(6).optional(),
    limit: integerParam({ min: 1, max: 200 }).default(50),
    after: integerParam().optional(),
  });
  const inputs: Record<string, unknown>[] = [
    { accountId: '42' },
    { accountId: 42 },
    { accountId: '42', extra: 'dropped' },
    { accountId: '0' },
    { accountId: '-1' },
    { accountId: '042' },
    { accountId: ' 1' },
    { accountId: '1e3' },
    { accountId: '9007199254740993' },
    { accountId: 1.5 },
    { accountId: Number.NaN },
    { accountId: ['1', '2'] },
    { accountId: undefined },
    {},
    { accountId: '5', limit: '10' },
    { accountId: '5', limit: '201' },
    { accountId: '5', after: '-0' },
    { accountId: '5', after: '7', limit: '3' },
    { accountId: '5', from: '2024-01-02 03:04:05.000006' },
    { accountId: '5', from: '2024-13-02 03:04:05.000006' },
  ];

  it.each(inputs)('answers %j as zod does, or leaves it to zod', (input) => {
    for (const schema of [account, page]) {
      const quick = quickParams(schema);
      expect(quick).not.toBeNull();
      const answer = quick?.(input);
      const zod = schema.safeParse(input);
      if (answer === undefined) continue;
      expect(zod.success).toBe(true);
      expect(answer).toStrictEqual(zod.data);
      expect(Object.keys(answer)).toEqual(Object.keys(zod.data as object));
    }
  });

  it('answers the common reads itself', () => {
    expect(quickParams(account)?.({ accountId: '42' })).toStrictEqual({ accountId: 42 });
    expect(quickParams(page)?.({ accountId: '42', limit: '50' })).toStrictEqual({ accountId: 42, limit: 50 });
    expect(quickParams(page)?.({ accountId: '42' })).toStrictEqual({ accountId: 42, limit: 50 });
  });

  it('knows only stripping objects of integerParam fields, optional and defaulted ones', () => {
    expect(quickParams(z.object({ id: z.coerce.number() }))).toBeNull();
    expect(quickParams(z.strictObject({ id: integerParam() }))).toBeNull();
    expect(quickParams(z.object({ id: integerParam() }).refine(() => true))).toBeNull();
    expect(quickParams(integerParam())).toBeNull();
  });
});

describe('uuidParam', () => {
  it('writes any case, and the form without hyphens, as the database prints it', () => {
    const id = '6f9619ff-8b86-d011-b42d-00c04fc964ff';
    expect(uuidParam().parse(id)).toBe(id);
    expect(uuidParam().parse(id.toUpperCase())).toBe(id);
    expect(uuidParam().parse(id.replace(/-/g, ''))).toBe(id);
  });

  it('refuses what is not a UUID', () => {
    for (const text of [
      '6f9619ff-8b86-d011-b42d-00c04fc964f',
      'g'.repeat(32),
      '',
      '{6f9619ff-8b86-d011-b42d-00c04fc964ff}',
    ])
      expect(uuidParam().safeParse(text).error?.issues[0]?.message, text).toMatch(/^expected a UUID/);
  });
});
