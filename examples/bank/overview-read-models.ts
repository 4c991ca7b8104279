import { defineView, type ReadModels, type ViewNode, z } from '../../index.js';
import { type ActivityDay, activityDaysProjection } from './activity-days.js';
import type { AccountSummary, TransactionItem } from './contract.js';
import {
  type AccountOverview,
  fromUnits,
  type OverviewQuery,
  overviewCardSchema,
  overviewLoanSchema,
  overviewWindows,
  rankCategories,
  splitByDay,
  toUnits,
} from './overview.js';
import type * as Rows from './rows.js';
import { money } from './rows.js';

/**
 * The read side of the account overview: the light summary document, a per-account view of the
 * current-state figures (cards, loans, pending transfers, holds), the daily activity buckets
 * and a merchant → category view. None of them is recomputed per request from postings, except
 * the postings of a partial day at a window's edge when `asOf` is not a midnight.
 */

const tally = z.object({ count: z.number().int(), total: money });
const accountPositionSchema = z.object({
  accountId: z.number().int(),
  cards: z.array(overviewCardSchema),
  loans: z.array(overviewLoanSchema),
  pendingTransfers: z.object({ outgoing: tally, incoming: tally }),
  cardHolds: tally,
});
type AccountPosition = z.infer<typeof accountPositionSchema>;

const rowsOf = <T>(node: ViewNode | ViewNode[] | null | undefined): T[] =>
  Array.isArray(node) ? node.map((n) => n.row as T) : [];

export const accountPositionView = defineView<AccountPosition>({
  name: 'account-position',
  from: 'accounts',
  join: {
    cards: { table: 'cards', by: 'accountId', orderBy: [{ field: 'cardId' }] },
    loans: { table: 'loans', by: 'accountId', orderBy: [{ field: 'loanId' }] },
    pendingOut: { table: 'transfers', by: 'fromAccountId', where: { status: 'pending' }, limit: 0 },
    pendingIn: { table: 'transfers', by: 'toAccountId', where: { status: 'pending' }, limit: 0 },
    holds: { table: 'payments', by: 'accountId', where: { status: 'authorized' }, limit: 0 },
  },
  aggregate: {
    outCount: { count: 'pendingOut' },
    outTotal: { sum: 'pendingOut', field: 'amount', scale: 4 },
    inCount: { count: 'pendingIn' },
    inTotal: { sum: 'pendingIn', field: 'amount', scale: 4 },
    holdCount: { count: 'holds' },
    holdTotal: { sum: 'holds', field: 'amount', scale: 4 },
  },
  schema: accountPositionSchema,
  select(root) {
    const a = root.row as Rows.Account;
    const n = root.aggregates;
    return {
      accountId: a.accountId,
      cards: rowsOf<Rows.Card>(root.joins.cards).map((c) => ({
        cardId: c.cardId,
        maskedPan: c.maskedPan,
        type: c.cardType,
        status: c.status,
        expiresOn: c.expiresOn,
      })),
      loans: rowsOf<Rows.Loan>(root.joins.loans).map((l) => ({
        loanId: l.loanId,
        principal: l.principal,
        outstanding: l.outstanding,
        interestRate: l.interestRate,
        status: l.status,
        maturityDate: l.maturityDate,
      })),
      pendingTransfers: {
        outgoing: { count: Number(n.outCount), total: String(n.outTotal) },
        incoming: { count: Number(n.inCount), total: String(n.inTotal) },
      },
      cardHolds: { count: Number(n.holdCount), total: String(n.holdTotal) },
    };
  },
});

const merchantCategorySchema = z.object({
  merchantId: z.number().int(),
  categoryId: z.number().int(),
  category: z.string(),
});
type MerchantCategory = z.infer<typeof merchantCategorySchema>;

/** A merchant's current category, as the legacy query's JOIN merchants → categories sees it. */
export const merchantCategoryView = defineView<MerchantCategory>({
  name: 'merchant-category',
  from: 'merchants',
  join: { category: { table: 'categories', on: 'categoryId', required: true } },
  schema: merchantCategorySchema,
  select(root) {
    const m = root.row as Rows.Merchant;
    const category = root.joins.category;
    if (category === null || category === undefined || Array.isArray(category)) return null;
    const c = category.row as Rows.Category;
    return { merchantId: m.merchantId, categoryId: c.categoryId, category: c.name };
  },
});

export const overviewReadModels = [
  accountPositionView,
  merchantCategoryView,
  activityDaysProjection,
] as const;

/** Far above a day's postings of the busiest account: partial days are read whole. */
const PARTIAL_DAY_LIMIT = 1_000_000;

interface WindowTotals {
  spent: bigint;
  received: bigint;
  byMerchant: Map<number, bigint>;
}

function model(readModels: ReadModels, name: string) {
  const found = readModels[name];
  if (found === undefined) throw new Error(`read model ${name} is not served here`);
  return found;
}

/** Sums [from, to) from whole-day buckets plus the postings of the partial days at its edges. */
async function windowTotals(readModels: ReadModels, accountId: number, from: string, to: string) {
  const totals: WindowTotals = { spent: 0n, received: 0n, byMerchant: new Map() };
  const addSpend = (merchantId: number | null, units: bigint) => {
    totals.spent += units;
    if (merchantId !== null)
      totals.byMerchant.set(merchantId, (totals.byMerchant.get(merchantId) ?? 0n) + units);
  };
  const split = splitByDay(from, to);
  if (split.firstDay < split.endDay) {
    const days = (await model(readModels, activityDaysProjection.name).find({
      where: { accountId },
      range: { day: { gte: split.firstDay, lt: split.endDay } },
      limit: 400,
    })) as ActivityDay[];
    for (const day of days) {
      totals.received += toUnits(day.received);
      totals.spent += toUnits(day.spent);
      for (const [merchantId, spent] of Object.entries(day.spentByMerchant)) {
        const id = Number(merchantId);
        totals.byMerchant.set(id, (totals.byMerchant.get(id) ?? 0n) + toUnits(spent));
      }
    }
  }
  for (const range of split.partial) {
    const items = (await model(readModels, 'transaction-history').find({
      where: { accountId },
      range: { postedAt: range },
      limit: PARTIAL_DAY_LIMIT,
    })) as TransactionItem[];
    for (const item of items) {
      if (item.direction === 'credit') totals.received += toUnits(item.amount);
      else addSpend(item.merchant?.merchantId ?? null, toUnits(item.amount));
    }
  }
  return totals;
}

/** The overview answered from the read models; null when the account has no summary. */
export async function readModelOverview(
  readModels: ReadModels,
  query: OverviewQuery,
): Promise<AccountOverview | null> {
  const { accountId } = query;
  const summary = (await model(readModels, 'account-summary').get(
    String(accountId),
  )) as AccountSummary | null;
  if (summary === null) return null;
  const position = (await model(readModels, accountPositionView.name).get(
    String(accountId),
  )) as AccountPosition | null;
  if (position === null) return null;
  const windows = overviewWindows(query.asOf);
  const month = await windowTotals(readModels, accountId, windows.monthStart, windows.asOf);
  const spending = await windowTotals(readModels, accountId, windows.spendingFrom, windows.asOf);
  const merchantIds = [...spending.byMerchant.keys()];
  const categories = new Map<number, { name: string; units: bigint }>();
  if (merchantIds.length > 0) {
    const merchants = (await model(readModels, merchantCategoryView.name).find({
      where: { merchantId: merchantIds },
      limit: merchantIds.length,
    })) as MerchantCategory[];
    for (const m of merchants) {
      const units = spending.byMerchant.get(m.merchantId) ?? 0n;
      const current = categories.get(m.categoryId);
      categories.set(m.categoryId, { name: m.category, units: (current?.units ?? 0n) + units });
    }
  }
  return {
    summary,
    asOf: windows.asOf,
    monthToDate: {
      from: windows.monthStart,
      spent: fromUnits(month.spent),
      received: fromUnits(month.received),
    },
    spending: { from: windows.spendingFrom, byCategory: rankCategories(categories) },
    pendingTransfers: position.pendingTransfers,
    cardHolds: position.cardHolds,
    cards: position.cards,
    loans: position.loans,
  };
}
