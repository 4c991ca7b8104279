import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DomainEvent } from '../../definition/read-models.js';
import {
  type ActivityDay,
  activityDaySchema,
  bucketWith,
  type DayFigures,
  evolveActivityDay,
  evolveOwnedActivityDay,
  readDayFigures,
} from '../../examples/bank/activity-days.js';
import {
  fromUnits,
  nextDay,
  overviewWindows,
  rankCategories,
  splitByDay,
  toUnits,
} from '../../examples/bank/overview.js';

let position = 0;
function posting(
  id: number,
  postedAt: string,
  direction: 'debit' | 'credit',
  amount: string,
  merchantId: number | null = null,
  type = 'TransactionPosted',
): DomainEvent {
  position++;
  return {
    streamType: 'account',
    streamId: 'account-1',
    type,
    removed: type === 'TransactionRemoved',
    data: {
      state: {
        transactionId: id,
        accountId: 1,
        direction,
        amount,
        currency: 'EUR',
        balanceAfter: '0.0000',
        description: 'x',
        merchantId,
        transferId: null,
        paymentId: null,
        postedAt,
      },
      changes: {},
    },
    metadata: {
      op: 'c',
      table: 'transactions',
      sourcePosition: `f:${position}:0`,
      sourceOrder: String(position),
      sourceTxId: `tx${position}`,
      sourceTsMs: 0,
      snapshot: false,
    },
  };
}

const apply = (events: DomainEvent[], start: ActivityDay | null = null) =>
  events.reduce<ActivityDay | null>((doc, e) => evolveActivityDay(doc, e), start);

/** The figures readDayFigures hands over for `text`, collected; merchants only when `merchants`. */
function figuresOf(text: string, merchants = true): DayFigures {
  const figures: DayFigures = { day: '', spent: '', received: '', spentByMerchant: {} };
  readDayFigures(text, {
    day(day, spent, received) {
      Object.assign(figures, { day, spent, received });
      return merchants;
    },
    merchant(merchantId, spent) {
      figures.spentByMerchant[String(merchantId)] = spent;
    },
  });
  return figures;
}

describe('overview windows', () => {
  it('month-to-date starts at the month, spending 90 days before asOf to the microsecond', () => {
    expect(overviewWindows('2024-03-15 10:30:00.250000')).toEqual({
      asOf: '2024-03-15 10:30:00.250000',
      monthStart: '2024-03-01 00:00:00.000000',
      spendingFrom: '2023-12-16 10:30:00.250000',
    });
    expect(overviewWindows('2024-01-01 00:00:00.000000').spendingFrom).toBe('2023-10-03 00:00:00.000000');
    expect(nextDay('2024-02-28')).toBe('2024-02-29');
    expect(nextDay('2023-12-31')).toBe('2024-01-01');
  });

  it('splits a range into whole days and the partial days at its edges', () => {
    expect(splitByDay('2024-01-01 00:00:00.000000', '2024-01-04 00:00:00.000000')).toEqual({
      firstDay: '2024-01-01',
      endDay: '2024-01-04',
      partial: [],
    });
    expect(splitByDay('2024-01-01 06:00:00.000000', '2024-01-04 12:00:00.000000')).toEqual({
      firstDay: '2024-01-02',
      endDay: '2024-01-04',
      partial: [
        { gte: '2024-01-01 06:00:00.000000', lt: '2024-01-02 00:00:00.000000' },
        { gte: '2024-01-04 00:00:00.000000', lt: '2024-01-04 12:00:00.000000' },
      ],
    });
    expect(splitByDay('2024-01-01 06:00:00.000000', '2024-01-01 07:00:00.000000').partial).toEqual([
      { gte: '2024-01-01 06:00:00.000000', lt: '2024-01-01 07:00:00.000000' },
    ]);
    expect(splitByDay('2024-01-01 00:00:00.000000', '2024-01-01 00:00:00.000000').partial).toEqual([]);
  });

  // Every posting in [from, to) is counted exactly once by whole-day buckets plus partial ranges.
  it('buckets plus partial days sum to a scan of the postings (property)', () => {
    const instant = fc
      .record({ day: fc.integer({ min: 1, max: 6 }), second: fc.integer({ min: 0, max: 86_399 }) })
      .map(({ day, second }) => {
        const at = new Date(Date.UTC(2024, 0, day, 0, 0, second));
        return `${at.toISOString().slice(0, 10)} ${at.toISOString().slice(11, 19)}.000000`;
      });
    const midnightOr = fc.oneof(
      instant,
      fc.integer({ min: 1, max: 7 }).map((d) => `2024-01-0${d} 00:00:00.000000`),
    );
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: instant, cents: fc.integer({ min: 1, max: 100_000 }) }), { maxLength: 40 }),
        midnightOr,
        midnightOr,
        (postings, a, b) => {
          const [from, to] = a <= b ? [a, b] : [b, a];
          const events = postings.map((p, i) => posting(i + 1, p.at, 'debit', fromUnits(BigInt(p.cents)), 7));
          const days = new Map<string, ActivityDay>();
          for (const e of events) {
            const day = String((e.data.state as { postedAt: string }).postedAt).slice(0, 10);
            const next = evolveActivityDay(days.get(day) ?? null, e);
            if (next !== null) days.set(day, next);
          }
          const split = splitByDay(from, to);
          let sum = 0n;
          for (const [day, bucket] of days)
            if (day >= split.firstDay && day < split.endDay) sum += toUnits(bucket.spent);
          for (const p of postings)
            if (split.partial.some((r) => p.at >= r.gte && p.at < r.lt)) sum += BigInt(p.cents);
          const scan = postings
            .filter((p) => p.at >= from && p.at < to)
            .reduce((n, p) => n + BigInt(p.cents), 0n);
          expect(sum).toBe(scan);
        },
      ),
      { seed: 9, numRuns: 300 },
    );
  });
});

describe('activity day buckets', () => {
  it('sums credits, debits and debits per merchant; exact decimals', () => {
    const day = apply([
      posting(1, '2024-01-02 09:00:00.000000', 'credit', '1000.0000'),
      posting(2, '2024-01-02 10:00:00.000000', 'debit', '0.1000', 5),
      posting(3, '2024-01-02 11:00:00.000000', 'debit', '0.2000', 5),
      posting(4, '2024-01-02 12:00:00.000000', 'debit', '12.3456', 3),
      posting(5, '2024-01-02 13:00:00.000000', 'debit', '40.0000'),
    ]);
    expect(day).toMatchObject({
      accountId: 1,
      day: '2024-01-02',
      received: '1000.0000',
      spent: '52.6456',
      spentByMerchant: { '3': '12.3456', '5': '0.3000' },
    });
  });

  it('counts a re-delivered posting once, follows an amendment and drops a removal', () => {
    const first = posting(1, '2024-01-02 09:00:00.000000', 'debit', '5.0000', 2);
    const day = apply([first, first, posting(2, '2024-01-02 10:00:00.000000', 'debit', '1.0000', 2)]);
    expect(day?.spent).toBe('6.0000');
    const amended = apply(
      [posting(1, '2024-01-02 09:00:00.000000', 'credit', '7.0000', 2, 'TransactionAmended')],
      day,
    );
    expect(amended).toMatchObject({
      spent: '1.0000',
      received: '7.0000',
      spentByMerchant: { '2': '1.0000' },
    });
    const removed = apply(
      [
        posting(1, '2024-01-02 09:00:00.000000', 'credit', '7.0000', 2, 'TransactionRemoved'),
        posting(2, '2024-01-02 10:00:00.000000', 'debit', '1.0000', 2, 'TransactionRemoved'),
      ],
      amended,
    );
    expect(removed).toBeNull();
  });

  it('adding postings one by one gives the totals of summing them all, in any order (property)', () => {
    const contribution = fc.record({
      id: fc.integer({ min: 1, max: 60 }),
      direction: fc.constantFrom<'debit' | 'credit'>('debit', 'credit'),
      units: fc.bigInt({ min: -(10n ** 18n), max: 10n ** 18n }),
      merchantId: fc.option(fc.integer({ min: 0, max: 12 }), { nil: null }),
      kind: fc.constantFrom(
        'TransactionPosted',
        'TransactionPosted',
        'TransactionAmended',
        'TransactionRemoved',
      ),
    });
    fc.assert(
      fc.property(fc.array(contribution, { maxLength: 40 }), (steps) => {
        const events = steps.map((c) =>
          posting(c.id, '2024-01-02 09:00:00.000000', c.direction, fromUnits(c.units), c.merchantId, c.kind),
        );
        const day = apply(events);
        // Reference: every contribution summed from scratch (what the bucket held before it added incrementally).
        const recomputed = day === null ? null : bucketWith(day.accountId, day.day, day.postings);
        expect(JSON.stringify(day)).toBe(JSON.stringify(recomputed));
        // The in-place fold the embedded store runs gives the same document.
        const owned = events.reduce<ActivityDay | null>((doc, e) => evolveOwnedActivityDay(doc, e), null);
        expect(JSON.stringify(owned)).toBe(JSON.stringify(day));
      }),
      { seed: 11, numRuns: 300 },
    );
  });

  it("reads a stored bucket's figures without its postings, and any other layout whole", () => {
    const day = apply([
      posting(1, '2024-01-02 09:00:00.000000', 'debit', '5.0000', 2),
      posting(2, '2024-01-02 10:00:00.000000', 'credit', '7.2500'),
      posting(3, '2024-01-02 11:00:00.000000', 'debit', '1.0000', 9),
    ]) as ActivityDay;
    const figures = {
      day: day.day,
      spent: day.spent,
      received: day.received,
      spentByMerchant: day.spentByMerchant,
    };
    // As the embedded store writes it: the schema's output, serialised.
    const stored = JSON.stringify(activityDaySchema.parse(day));
    expect(figuresOf(stored)).toEqual(figures);
    // Keys ordered otherwise (as a JSONB store would): the figures are still all there.
    const { postings, accountId, spentByMerchant, ...rest } = day;
    expect(figuresOf(JSON.stringify({ ...rest, postings, accountId, spentByMerchant }))).toEqual(figures);
    // A string with an escape is left to JSON.parse, which reads it as the scan could not.
    const escaped = stored.replace('"spentByMerchant":{"2"', '"spentByMerchant":{"\\u0032"');
    expect(figuresOf(escaped)).toEqual(figures);
    // Spending by merchant is read only when the sink wants it.
    expect(figuresOf(stored, false)).toEqual({ ...figures, spentByMerchant: {} });
  });

  it("checks a bucket's postings entry by entry and stores them as they are", () => {
    const day = apply([
      posting(1, '2024-01-02 09:00:00.000000', 'debit', '5.0000', 2),
      posting(2, '2024-01-02 10:00:00.000000', 'credit', '7.2500'),
    ]) as ActivityDay;
    expect(JSON.stringify(activityDaySchema.parse(day))).toBe(JSON.stringify(day));
    const withEntry = (entry: unknown) => ({ ...day, postings: { ...day.postings, '3': entry } });
    for (const bad of [
      ['refund', '1.0000', null],
      ['debit', '1.00', null],
      ['debit', 1, null],
      ['debit', '1.0000', 1.5],
      ['debit', '1.0000'],
      { direction: 'debit' },
    ]) {
      const result = activityDaySchema.safeParse(withEntry(bad));
      expect(result.success, JSON.stringify(bad)).toBe(false);
      expect(result.error?.message).toContain('expected postings');
    }
    expect(activityDaySchema.safeParse({ ...day, postings: [] }).success).toBe(false);
    expect(activityDaySchema.safeParse(withEntry(['debit', '-1.0000', 7])).success).toBe(true);
  });

  it('leaves the bucket it evolves as it was', () => {
    const day = apply([posting(1, '2024-01-02 09:00:00.000000', 'debit', '5.0000', 2)]);
    const before = JSON.stringify(day);
    evolveActivityDay(day, posting(2, '2024-01-02 10:00:00.000000', 'debit', '1.0000', 2));
    evolveActivityDay(day, posting(3, '2024-01-02 11:00:00.000000', 'credit', '1.0000'));
    expect(JSON.stringify(day)).toBe(before);
  });

  it('money survives large sums and ranks categories by spend, then id', () => {
    expect(fromUnits(toUnits('999999999999999.9999') + toUnits('0.0001'))).toBe('1000000000000000.0000');
    expect(toUnits('-1.5')).toBe(-15_000n);
    expect(fromUnits(-15_000n)).toBe('-1.5000');
    expect(toUnits('-0.0001')).toBe(-1n);
    expect(toUnits('0.0000')).toBe(0n);
    expect(toUnits('-0.0000')).toBe(0n);
    expect(toUnits('007.0500')).toBe(70_500n);
    expect(toUnits('9223372036854775807.9999')).toBe(92_233_720_368_547_758_079_999n);
    // Fewer or more than four decimals: padded, or cut to scale 4 (as DECIMAL(19,4) would store).
    expect(toUnits('5')).toBe(50_000n);
    expect(toUnits('0.12345678')).toBe(1_234n);
    expect(toUnits('-2.5')).toBe(-25_000n);
    expect(fromUnits(0n)).toBe('0.0000');
    expect(fromUnits(1n)).toBe('0.0001');
    expect(fromUnits(-1n)).toBe('-0.0001');
    expect(fromUnits(-10_000n)).toBe('-1.0000');
    expect(fromUnits(123_456_789_012_345_678_901n)).toBe('12345678901234567.8901');
    const ranked = rankCategories(
      new Map([
        [4, { name: 'b', units: 10n }],
        [2, { name: 'a', units: 10n }],
        [9, { name: 'c', units: 30n }],
      ]),
    );
    expect(ranked.map((c) => c.categoryId)).toEqual([9, 2, 4]);
    expect(ranked[0]?.spent).toBe('0.0030');
  });

  it('money text at scale 4 round-trips through units, and sums match the schoolbook result (property)', () => {
    const units = fc.bigInt({ min: -(10n ** 22n), max: 10n ** 22n });
    fc.assert(
      fc.property(units, units, (a, b) => {
        expect(toUnits(fromUnits(a))).toBe(a);
        const text = fromUnits(a);
        expect(text).toMatch(/^-?\d+\.\d{4}$/);
        const abs = a < 0n ? -a : a;
        expect(text).toBe(`${a < 0n ? '-' : ''}${abs / 10_000n}.${String(abs % 10_000n).padStart(4, '0')}`);
        expect(toUnits(fromUnits(a)) + toUnits(fromUnits(b))).toBe(a + b);
      }),
      { seed: 5, numRuns: 500 },
    );
  });
});
