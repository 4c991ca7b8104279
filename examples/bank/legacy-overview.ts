import { z } from 'zod';
import type { LegacyDb } from '../../index.js';
import {
  accountSummaryIn,
  postingRow,
  RECENT_SQL,
  rows,
  SUMMARY_SQL,
  summaryOf,
  summaryRow,
} from './legacy-queries.js';
import {
  type AccountOverview,
  type OverviewQuery,
  type OverviewWindows,
  overviewWindows,
} from './overview.js';

/**
 * The account overview as a monolith computes it: aggregates over the ledger at request time.
 * Two variants, both measured by the bench: `split` issues one statement per figure (what an
 * ORM-backed service layer tends to do), `wide` folds the summary head and every scalar figure
 * into one statement of correlated subqueries; the lists (latest postings, spending by
 * category, cards, loans) are their own statements in both. Each runs in one snapshot, so its
 * figures agree with one another. The SQL runs unchanged on MariaDB/MySQL and PostgreSQL.
 */

type Tx = Pick<LegacyDb, 'query'>;
export type OverviewVariant = 'split' | 'wide';

const money = (expr: string) => `CAST(COALESCE(${expr}, 0) AS DECIMAL(19,4))`;
/** A scalar figure's statement; its one column is `v`. */
const scalar = (expr: string, rest: string) => `SELECT ${expr} AS v FROM ${rest}`;

/** Money the account moved in one direction this month. */
const monthToDate = (direction: 'debit' | 'credit') =>
  scalar(
    money('SUM(t.amount)'),
    `transactions t
  WHERE t.account_id = :accountId AND t.direction = '${direction}' AND t.posted_at >= :monthStart AND t.posted_at < :asOf`,
  );

/** How many rows a condition selects, and the sum of their amounts: two figures over the same rows. */
const countAndTotal = (amount: string, rows: string) => ({
  count: scalar('COUNT(*)', rows),
  total: scalar(money(`SUM(${amount})`), rows),
});

const PENDING_OUT = countAndTotal(
  'tr.amount',
  `transfers tr WHERE tr.from_account_id = :accountId AND tr.status = 'pending'`,
);
const PENDING_IN = countAndTotal(
  'tr.amount',
  `transfers tr WHERE tr.to_account_id = :accountId AND tr.status = 'pending'`,
);
const HOLDS = countAndTotal(
  'p.amount',
  `payments p WHERE p.account_id = :accountId AND p.status = 'authorized'`,
);

const SCALARS = {
  mtd_spent: monthToDate('debit'),
  mtd_received: monthToDate('credit'),
  out_count: PENDING_OUT.count,
  out_total: PENDING_OUT.total,
  in_count: PENDING_IN.count,
  in_total: PENDING_IN.total,
  hold_count: HOLDS.count,
  hold_total: HOLDS.total,
} as const;

/** The summary head and every scalar figure in one statement. */
const WIDE_SQL = `
SELECT s.*,
${Object.entries(SCALARS)
  .map(([name, sql]) => `  (${sql}) AS ${name}`)
  .join(',\n')}
  FROM (${SUMMARY_SQL}) s`;

const CATEGORIES_SQL = `
SELECT cat.id AS category_id, cat.name, ${money('SUM(t.amount)')} AS spent
  FROM transactions t
  JOIN merchants m ON m.id = t.merchant_id
  JOIN categories cat ON cat.id = m.category_id
 WHERE t.account_id = :accountId AND t.direction = 'debit'
   AND t.posted_at >= :spendingFrom AND t.posted_at < :asOf
 GROUP BY cat.id, cat.name
 ORDER BY SUM(t.amount) DESC, cat.id`;

const CARDS_SQL = `
SELECT id, masked_pan, card_type, status, expires_on FROM cards WHERE account_id = :accountId ORDER BY id`;

const LOANS_SQL = `
SELECT id, principal, outstanding, interest_rate, status, maturity_date
  FROM loans WHERE account_id = :accountId ORDER BY id`;

const count = z.coerce.number().int();
const text = z.coerce.string();
const scalarsRow = z.object({
  mtd_spent: text,
  mtd_received: text,
  out_count: count,
  out_total: text,
  in_count: count,
  in_total: text,
  hold_count: count,
  hold_total: text,
});
type Scalars = z.infer<typeof scalarsRow>;
const valueRow = z.object({ v: z.unknown() });
const categoryRow = z.object({ category_id: count, name: z.string(), spent: text });
const cardRow = z.object({
  id: count,
  masked_pan: z.string(),
  card_type: z.string(),
  status: z.string(),
  expires_on: text,
});
const loanRow = z.object({
  id: count,
  principal: text,
  outstanding: text,
  interest_rate: text,
  status: z.string(),
  maturity_date: text,
});

/** One statement per scalar figure, as a service layer with a repository method per number would. */
async function scalarsSplit(tx: Tx, params: Record<string, unknown>): Promise<Scalars> {
  const found: Record<string, unknown> = {};
  for (const [name, sql] of Object.entries(SCALARS)) {
    const [row] = rows(valueRow, await tx.query(sql, params));
    found[name] = row?.v;
  }
  return scalarsRow.parse(found);
}

async function lists(tx: Tx, params: Record<string, unknown>) {
  const categories = rows(categoryRow, await tx.query(CATEGORIES_SQL, params));
  const cards = rows(cardRow, await tx.query(CARDS_SQL, params));
  const loans = rows(loanRow, await tx.query(LOANS_SQL, params));
  return { categories, cards, loans };
}

function overviewOf(
  windows: OverviewWindows,
  summary: AccountOverview['summary'],
  s: Scalars,
  l: Awaited<ReturnType<typeof lists>>,
): AccountOverview {
  return {
    summary,
    asOf: windows.asOf,
    monthToDate: { from: windows.monthStart, spent: s.mtd_spent, received: s.mtd_received },
    spending: {
      from: windows.spendingFrom,
      byCategory: l.categories.map((c) => ({ categoryId: c.category_id, name: c.name, spent: c.spent })),
    },
    pendingTransfers: {
      outgoing: { count: s.out_count, total: s.out_total },
      incoming: { count: s.in_count, total: s.in_total },
    },
    cardHolds: { count: s.hold_count, total: s.hold_total },
    cards: l.cards.map((c) => ({
      cardId: c.id,
      maskedPan: c.masked_pan,
      type: c.card_type,
      status: c.status,
      expiresOn: c.expires_on,
    })),
    loans: l.loans.map((x) => ({
      loanId: x.id,
      principal: x.principal,
      outstanding: x.outstanding,
      interestRate: x.interest_rate,
      status: x.status,
      maturityDate: x.maturity_date,
    })),
  };
}

/** The overview from the legacy database; null when the account does not exist. */
export function legacyAccountOverview(
  db: LegacyDb,
  query: OverviewQuery,
  variant: OverviewVariant,
): Promise<AccountOverview | null> {
  const windows = overviewWindows(query.asOf);
  const params = {
    accountId: query.accountId,
    asOf: windows.asOf,
    monthStart: windows.monthStart,
    spendingFrom: windows.spendingFrom,
  };
  return db.snapshot(async (tx) => {
    if (variant === 'split') {
      const summary = await accountSummaryIn(tx, query.accountId);
      if (summary === null) return null;
      return overviewOf(windows, summary, await scalarsSplit(tx, params), await lists(tx, params));
    }
    const [wide] = rows(summaryRow.extend(scalarsRow.shape), await tx.query(WIDE_SQL, params));
    if (wide === undefined) return null;
    const recent = rows(postingRow, await tx.query(RECENT_SQL, params));
    return overviewOf(windows, summaryOf(wide, recent), wide, await lists(tx, params));
  });
}
