import { defineView, getMany, jsonText, type ReadModels, type ViewNode, z } from '../../index.js';
import {
  type ActivityDay,
  activityDaysProjection,
  type DayFiguresSink,
  readDayFigures,
  sendDayFigures,
} from './activity-days.js';
import type { AccountSummary, TransactionItem } from './contract.js';
import {
  type AccountOverview,
  type DaySplit,
  fromUnits,
  type OverviewQuery,
  type OverviewWindows,
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

/**
 * What the overview shows of its two windows: the month's debits and credits, and the spending
 * window's debits by merchant (its category ranking). Nothing else of either is summed.
 */
interface OverviewTotals {
  monthSpent: bigint;
  monthReceived: bigint;
  spentByMerchant: Map<number, bigint>;
}

function model(readModels: ReadModels, name: string) {
  const found = readModels[name];
  if (found === undefined) throw new Error(`read model ${name} is not served here`);
  return found;
}

const inWholeDays = (split: DaySplit, day: string) => day >= split.firstDay && day < split.endDay;

function addSpend(byMerchant: Map<number, bigint>, merchantId: number, units: bigint): void {
  byMerchant.set(merchantId, (byMerchant.get(merchantId) ?? 0n) + units);
}

/** Adds whole-day buckets to `totals`: the month's from those in it, the spending by merchant of all. */
function bucketSums(totals: OverviewTotals, month: DaySplit, spending: DaySplit): DayFiguresSink {
  return {
    day(day, spent, received) {
      if (inWholeDays(month, day)) {
        totals.monthSpent += toUnits(spent);
        totals.monthReceived += toUnits(received);
      }
      return inWholeDays(spending, day);
    },
    merchant(merchantId, spent) {
      addSpend(totals.spentByMerchant, merchantId, toUnits(spent));
    },
  };
}

/**
 * Month-to-date and the spending window, each [from, asOf): summed from whole-day buckets plus
 * the postings of the partial days at their edges. Both windows end at asOf and the month lies
 * inside the 90 days, so one read of the spending window's buckets (and of each partial day)
 * serves both: a busy account's buckets are its overview's largest read.
 */
async function overviewTotals(
  readModels: ReadModels,
  accountId: number,
  windows: OverviewWindows,
): Promise<OverviewTotals> {
  const month = splitByDay(windows.monthStart, windows.asOf);
  const spending = splitByDay(windows.spendingFrom, windows.asOf);
  const totals: OverviewTotals = { monthSpent: 0n, monthReceived: 0n, spentByMerchant: new Map() };
  // The spending window's whole days hold the month's (same end, earlier start).
  if (spending.firstDay < spending.endDay) {
    const buckets = model(readModels, activityDaysProjection.name);
    const query = {
      where: { accountId },
      range: { day: { gte: spending.firstDay, lt: spending.endDay } },
      // The index's order read backwards (day, then key, descending both ways): no sort of the
      // page. The sums do not depend on the order.
      orderBy: [{ field: 'day', direction: 'desc' }],
      limit: 400,
    } as const;
    const sink = bucketSums(totals, month, spending);
    if (buckets.findJson === undefined)
      for (const bucket of (await buckets.find(query)) as ActivityDay[]) sendDayFigures(bucket, sink);
    else for (const text of await buckets.findJson(query)) readDayFigures(text, sink);
  }
  // A partial day both windows share (the one asOf falls in) is read once.
  const partials = new Map<
    string,
    { range: { gte: string; lt: string }; month: boolean; spending: boolean }
  >();
  for (const [split, window] of [
    [month, 'month'],
    [spending, 'spending'],
  ] as const) {
    for (const range of split.partial) {
      const id = `${range.gte}|${range.lt}`;
      const entry = partials.get(id) ?? { range, month: false, spending: false };
      entry[window] = true;
      partials.set(id, entry);
    }
  }
  for (const { range, month: inMonth, spending: inSpending } of partials.values()) {
    const items = (await model(readModels, 'transaction-history').find({
      where: { accountId },
      range: { postedAt: range },
      limit: PARTIAL_DAY_LIMIT,
    })) as TransactionItem[];
    for (const item of items) {
      const units = toUnits(item.amount);
      const credit = item.direction === 'credit';
      if (inMonth) {
        if (credit) totals.monthReceived += units;
        else totals.monthSpent += units;
      }
      const merchantId = item.merchant?.merchantId;
      if (inSpending && !credit && merchantId !== undefined)
        addSpend(totals.spentByMerchant, merchantId, units);
    }
  }
  return totals;
}

/** Everything of the overview but its summary; null when the account has no position document. */
async function overviewFigures(
  readModels: ReadModels,
  query: OverviewQuery,
): Promise<Omit<AccountOverview, 'summary'> | null> {
  const { accountId } = query;
  const position = (await model(readModels, accountPositionView.name).get(
    String(accountId),
  )) as AccountPosition | null;
  if (position === null) return null;
  const windows = overviewWindows(query.asOf);
  const totals = await overviewTotals(readModels, accountId, windows);
  const merchantIds = [...totals.spentByMerchant.keys()];
  const categories = new Map<number, { name: string; units: bigint }>();
  if (merchantIds.length > 0) {
    // The merchants by key (the view's key is the merchant id), together: a find on merchantId
    // has no index to use and scanned every merchant document, and a get per merchant cost a
    // statement each (12% of an overview's CPU).
    const merchants = (await getMany(
      model(readModels, merchantCategoryView.name),
      merchantIds.map(String),
    )) as Array<MerchantCategory | null>;
    for (const m of merchants) {
      if (m === null) continue;
      const units = totals.spentByMerchant.get(m.merchantId) ?? 0n;
      const current = categories.get(m.categoryId);
      categories.set(m.categoryId, { name: m.category, units: (current?.units ?? 0n) + units });
    }
  }
  return {
    asOf: windows.asOf,
    monthToDate: {
      from: windows.monthStart,
      spent: fromUnits(totals.monthSpent),
      received: fromUnits(totals.monthReceived),
    },
    spending: { from: windows.spendingFrom, byCategory: rankCategories(categories) },
    pendingTransfers: position.pendingTransfers,
    cardHolds: position.cardHolds,
    cards: position.cards,
    loans: position.loans,
  };
}

/** The overview answered from the read models; null when the account has no summary. */
export async function readModelOverview(
  readModels: ReadModels,
  query: OverviewQuery,
): Promise<AccountOverview | null> {
  const summary = (await model(readModels, 'account-summary').get(
    String(query.accountId),
  )) as AccountSummary | null;
  if (summary === null) return null;
  const figures = await overviewFigures(readModels, query);
  return figures === null ? null : { summary, ...figures };
}

/**
 * The same answer as JSON text around the summary's stored text, when the store has it: the
 * summary (the answer's largest part) is neither parsed nor serialised again. Equal, as JSON,
 * to readModelOverview's.
 */
export async function readModelOverviewReply(readModels: ReadModels, query: OverviewQuery): Promise<unknown> {
  const summaries = model(readModels, 'account-summary');
  if (summaries.getJson === undefined) return readModelOverview(readModels, query);
  const summary = await summaries.getJson(String(query.accountId));
  if (summary === null) return null;
  const figures = await overviewFigures(readModels, query);
  return figures === null ? null : jsonText(`{"summary":${summary},${JSON.stringify(figures).slice(1)}`);
}
