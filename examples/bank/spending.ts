import {
  type Analytics,
  AnalyticsNotServedError,
  analyticsTable,
  datetimeParam,
  defineAnalytics,
  defineEndpoint,
  integerParam,
  type LegacyDb,
  z,
} from '../../index.js';
import { midnightAfterLatestPosting } from './overview.js';
import type * as Rows from './rows.js';
import { money } from './rows.js';

/**
 * Monthly spend by category per customer, across all of the customer's accounts: the kind of
 * report a monolith answers with a GROUP BY over its ledger at request time, and a CQRS side
 * from an analytics store. The analytics model keeps columnar copies of the postings (the
 * facts) and of the three tables that place them (accounts → customer, merchants → category,
 * categories → name), joined at query time like the legacy SQL joins them. The reference
 * instant `asOf` is a parameter, so both sides answer the same question.
 */

export const spendingQuerySchema = z.object({
  customerId: integerParam({ min: 1 }),
  /** The reference instant: the window ends just before it (exclusive upper bound). */
  asOf: datetimeParam(6),
  /** Calendar months in the window, asOf's month included. */
  months: integerParam({ min: 1, max: 24 }).default(3),
});
export type SpendingQuery = z.infer<typeof spendingQuerySchema>;

export const monthlySpendSchema = z.object({
  /** 'YYYY-MM'. */
  month: z.string(),
  categoryId: z.number().int(),
  name: z.string(),
  spent: money,
  postings: z.number().int(),
});

export const customerSpendingSchema = z.object({
  customerId: z.number().int(),
  from: z.string(),
  asOf: z.string(),
  /** Debits at merchants in [from, asOf), by month then category: month ascending, most spent first, then category id. */
  byMonth: z.array(monthlySpendSchema),
});
export type CustomerSpending = z.infer<typeof customerSpendingSchema>;

/** Midnight on the first day of the month `months - 1` before asOf's month. */
export function spendingFrom(asOf: string, months: number): string {
  const year = Number(asOf.slice(0, 4));
  const month = Number(asOf.slice(5, 7)) - (months - 1);
  const first = new Date(0);
  first.setUTCFullYear(year, month - 1, 1);
  return `${first.toISOString().slice(0, 7)}-01 00:00:00.000000`;
}

/** Both sides' rows, as SQL returns them (counts may come as text), shaped into one answer. */
const resultRow = z.object({
  ym: z.string(),
  category_id: z.coerce.number().int(),
  name: z.string(),
  spent: z.coerce.string(),
  postings: z.coerce.number().int(),
});

function answerOf(query: SpendingQuery, from: string, found: readonly unknown[]): CustomerSpending {
  return {
    customerId: query.customerId,
    from,
    asOf: query.asOf,
    byMonth: found.map((raw) => {
      const r = resultRow.parse(raw);
      return { month: r.ym, categoryId: r.category_id, name: r.name, spent: r.spent, postings: r.postings };
    }),
  };
}

const monthOf = { mysql: "DATE_FORMAT(t.posted_at, '%Y-%m')", postgres: "to_char(t.posted_at, 'YYYY-MM')" };
const legacySql = (dialect: keyof typeof monthOf) => `
SELECT ${monthOf[dialect]} AS ym, cat.id AS category_id, cat.name,
       CAST(SUM(t.amount) AS DECIMAL(19,4)) AS spent, COUNT(*) AS postings
  FROM transactions t
  JOIN accounts a ON a.id = t.account_id
  JOIN merchants m ON m.id = t.merchant_id
  JOIN categories cat ON cat.id = m.category_id
 WHERE a.customer_id = :customerId AND t.direction = 'debit'
   AND t.posted_at >= :from AND t.posted_at < :asOf
 GROUP BY ${monthOf[dialect]}, cat.id, cat.name
 ORDER BY ym, SUM(t.amount) DESC, cat.id`;

/** The legacy answer: one GROUP BY over the ledger. */
export async function legacyCustomerSpending(db: LegacyDb, query: SpendingQuery): Promise<CustomerSpending> {
  const from = spendingFrom(query.asOf, query.months);
  const found = await db.query(
    { mysql: legacySql('mysql'), postgres: legacySql('postgres') },
    { customerId: query.customerId, from, asOf: query.asOf },
  );
  return answerOf(query, from, found);
}

export const spendingAnalytics = defineAnalytics({
  name: 'spending',
  tables: {
    postings: analyticsTable<Rows.Transaction>({
      from: 'transactions',
      keyType: 'BIGINT',
      columns: {
        account_id: 'BIGINT',
        merchant_id: 'BIGINT',
        direction: 'VARCHAR',
        amount: 'DECIMAL(19,4)',
        posted_at: 'TIMESTAMP',
      },
      row: (t) => ({
        account_id: t.accountId,
        merchant_id: t.merchantId,
        direction: t.direction,
        amount: t.amount,
        posted_at: t.postedAt,
      }),
    }),
    accounts: analyticsTable<Rows.Account>({
      from: 'accounts',
      keyType: 'BIGINT',
      columns: { account_id: 'BIGINT', customer_id: 'BIGINT' },
      row: (a) => ({ account_id: a.accountId, customer_id: a.customerId }),
    }),
    merchants: analyticsTable<Rows.Merchant>({
      from: 'merchants',
      keyType: 'BIGINT',
      columns: { merchant_id: 'BIGINT', category_id: 'BIGINT' },
      row: (m) => ({ merchant_id: m.merchantId, category_id: m.categoryId }),
    }),
    categories: analyticsTable<Rows.Category>({
      from: 'categories',
      keyType: 'BIGINT',
      columns: { category_id: 'BIGINT', name: 'VARCHAR' },
      row: (c) => ({ category_id: c.categoryId, name: c.name }),
    }),
  },
  queries: {
    // The legacy GROUP BY's question over the columnar copies; DECIMAL sums are exact, sent as text.
    monthlyByCategory: `
SELECT strftime(p.posted_at, '%Y-%m') AS ym, c.category_id, c.name,
       CAST(CAST(SUM(p.amount) AS DECIMAL(19,4)) AS VARCHAR) AS spent, COUNT(*) AS postings
  FROM postings p
  JOIN accounts a ON a.account_id = p.account_id
  JOIN merchants m ON m.merchant_id = p.merchant_id
  JOIN categories c ON c.category_id = m.category_id
 WHERE a.customer_id = $customerId AND p.direction = 'debit'
   AND p.posted_at >= CAST($from AS TIMESTAMP) AND p.posted_at < CAST($asOf AS TIMESTAMP)
 GROUP BY ym, c.category_id, c.name
 ORDER BY ym, SUM(p.amount) DESC, c.category_id`,
  },
});

/** The same answer from the analytics read model. */
export async function analyticsCustomerSpending(
  analytics: Analytics,
  query: SpendingQuery,
): Promise<CustomerSpending> {
  const model = analytics.spending;
  if (model === undefined) throw new AnalyticsNotServedError('spending');
  const from = spendingFrom(query.asOf, query.months);
  const found = await model.query('monthlyByCategory', {
    customerId: query.customerId,
    from,
    asOf: query.asOf,
  });
  return answerOf(query, from, found);
}

export const customerSpending = defineEndpoint({
  route: '/customers/:customerId/spending',
  params: spendingQuerySchema,
  legacy: ({ params, db }) => legacyCustomerSpending(db, params),
  readModel: ({ params, analytics }) => analyticsCustomerSpending(analytics, params),
  reconcile: everyCustomerAsOfLatest,
});

/** Every customer over the three months up to the midnight after the latest posting (as the overviews' reconciliation asks). */
async function everyCustomerAsOfLatest(
  db: LegacyDb,
): Promise<Array<{ customerId: number; asOf: string; months: number }>> {
  const asOf = await midnightAfterLatestPosting(db);
  const ids = await db.query({
    mysql: 'SELECT id AS customerId FROM customers ORDER BY id',
    postgres: 'SELECT id AS "customerId" FROM customers ORDER BY id',
  });
  return ids.map((r) => ({ customerId: Number(r.customerId), asOf, months: 3 }));
}
