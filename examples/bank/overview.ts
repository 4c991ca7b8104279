import { z } from 'zod';
import { datetimeParam, integerParam, type LegacyDb } from '../../index.js';
import { accountSummarySchema } from './contract.js';
import { date, datetime6, money, rate, SCALE_4 } from './rows.js';

/**
 * The case-study-like account overview: the summary plus the aggregate-heavy figures a real
 * banking screen shows (month-to-date spent/received, spending by category over 90 days, pending
 * transfers, card authorisation holds, cards, loans). Time-relative figures are computed for a
 * reference instant `asOf` the caller passes, so the legacy SQL and the read model answer the
 * same question. The windows and money arithmetic here are shared by both sides.
 */

export const SPENDING_WINDOW_DAYS = 90;

export const overviewQuerySchema = z.object({
  accountId: integerParam({ min: 1 }),
  /** The reference instant: windows end just before it (exclusive upper bound). */
  asOf: datetimeParam(6),
});
export type OverviewQuery = z.infer<typeof overviewQuerySchema>;

const tally = z.object({ count: z.number().int(), total: money });

export const categorySpendSchema = z.object({
  categoryId: z.number().int(),
  name: z.string(),
  spent: money,
});
export type CategorySpend = z.infer<typeof categorySpendSchema>;

export const overviewCardSchema = z.object({
  cardId: z.number().int(),
  maskedPan: z.string(),
  type: z.string(),
  status: z.string(),
  expiresOn: date,
});
export const overviewLoanSchema = z.object({
  loanId: z.number().int(),
  principal: money,
  outstanding: money,
  interestRate: rate,
  status: z.string(),
  maturityDate: date,
});

export const accountOverviewSchema = z.object({
  summary: accountSummarySchema,
  asOf: datetime6,
  /** Postings in [from, asOf): the calendar month of asOf so far. */
  monthToDate: z.object({ from: datetime6, spent: money, received: money }),
  /** Debits at merchants in [from, asOf), by the merchant's category: most spent first, then category id. */
  spending: z.object({ from: datetime6, byCategory: z.array(categorySpendSchema) }),
  /** Transfers still pending now (not relative to asOf: a pending transfer has no posting yet). */
  pendingTransfers: z.object({ outgoing: tally, incoming: tally }),
  /** Authorised, not yet captured card payments: money the card has reserved. */
  cardHolds: tally,
  cards: z.array(overviewCardSchema),
  loans: z.array(overviewLoanSchema),
});
export type AccountOverview = z.infer<typeof accountOverviewSchema>;

export interface OverviewWindows {
  asOf: string;
  monthStart: string;
  spendingFrom: string;
}

const MS_PER_DAY = 86_400_000;

/** The windows of an overview at `asOf` ('YYYY-MM-DD HH:MM:SS.ffffff', UTC), as DATETIME(6) text. */
export function overviewWindows(asOf: string): OverviewWindows {
  const fraction = asOf.slice(19);
  const start = new Date(
    Date.parse(`${asOf.slice(0, 10)}T${asOf.slice(11, 19)}Z`) - SPENDING_WINDOW_DAYS * MS_PER_DAY,
  );
  const spendingFrom = `${start.toISOString().slice(0, 10)} ${start.toISOString().slice(11, 19)}${fraction}`;
  return { asOf, monthStart: `${asOf.slice(0, 8)}01 00:00:00.000000`, spendingFrom };
}

/** The calendar day ('YYYY-MM-DD') after `day`. */
export function nextDay(day: string): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + MS_PER_DAY).toISOString().slice(0, 10);
}

/**
 * The midnight after the ledger's latest posting: the reference instant reconciliation asks the
 * time-relative endpoints about, so their windows cover the ledger's last days.
 */
export async function midnightAfterLatestPosting(db: LegacyDb): Promise<string> {
  const [latest] = await db.query('SELECT MAX(posted_at) AS latest FROM transactions');
  return `${nextDay(String(latest?.latest ?? '1970-01-01').slice(0, 10))} 00:00:00.000000`;
}

/**
 * How [from, to) splits into whole days a day bucket answers and the partial days at either
 * end that need the postings themselves.
 */
export interface DaySplit {
  /** Whole days from `firstDay` (inclusive) to `endDay` (exclusive); empty when firstDay >= endDay. */
  firstDay: string;
  endDay: string;
  /** Ranges of postings read individually: [gte, lt). */
  partial: Array<{ gte: string; lt: string }>;
}

const MIDNIGHT = ' 00:00:00.000000';

export function splitByDay(from: string, to: string): DaySplit {
  if (from >= to) return { firstDay: '', endDay: '', partial: [] };
  const fromDay = from.slice(0, 10);
  const toDay = to.slice(0, 10);
  const firstDay = from.endsWith(MIDNIGHT) ? fromDay : nextDay(fromDay);
  if (fromDay === toDay && !from.endsWith(MIDNIGHT)) {
    return { firstDay: '', endDay: '', partial: [{ gte: from, lt: to }] };
  }
  const partial: DaySplit['partial'] = [];
  if (!from.endsWith(MIDNIGHT)) partial.push({ gte: from, lt: `${firstDay}${MIDNIGHT}` });
  if (!to.endsWith(MIDNIGHT)) partial.push({ gte: `${toDay}${MIDNIGHT}`, lt: to });
  return { firstDay, endDay: toDay, partial };
}

// Money as exact integers of 1/10,000: DECIMAL(19,4) text in and out, never a float.

export function toUnits(text: string): bigint {
  // At scale 4 the digits without the point are the units: one parse (a hot path of replays).
  if (SCALE_4.test(text)) return BigInt(text.slice(0, -5) + text.slice(-4));
  const negative = text.startsWith('-');
  const [whole = '0', fraction = ''] = (negative ? text.slice(1) : text).split('.');
  const units = BigInt(whole) * 10_000n + BigInt(fraction.padEnd(4, '0').slice(0, 4));
  return negative ? -units : units;
}

export function fromUnits(units: bigint): string {
  const negative = units < 0n;
  // The digits of |units|, at least one before the point: one conversion, no division.
  const digits = String(negative ? -units : units).padStart(5, '0');
  return `${negative ? '-' : ''}${digits.slice(0, -4)}.${digits.slice(-4)}`;
}

/** Categories by spend, most first; ties by category id, as the legacy ORDER BY does. */
export function rankCategories(spent: ReadonlyMap<number, { name: string; units: bigint }>): CategorySpend[] {
  return [...spent.entries()]
    .sort(([ida, a], [idb, b]) => (a.units === b.units ? ida - idb : a.units > b.units ? -1 : 1))
    .map(([categoryId, { name, units }]) => ({ categoryId, name, spent: fromUnits(units) }));
}
