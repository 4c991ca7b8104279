import { z } from 'zod';
import { AdapterError, type LegacyDb } from '../../index.js';
import {
  type AccountQueries,
  type AccountSummary,
  decodeCursor,
  HISTORY_MAX_LIMIT,
  type HistoryPage,
  type HistoryQuery,
  nextCursorFor,
  RECENT_TRANSACTIONS,
  type TransactionItem,
} from './contract.js';

/**
 * The legacy monolith's read path: the account summary as one wide JOIN with aggregates
 * plus its latest postings, and the keyset-paged transaction history. These answers are
 * the reference the read models are compared against. The SQL runs unchanged on MariaDB/MySQL
 * and PostgreSQL through cqrs-migrate's LegacyDb, which returns DECIMAL/NUMERIC and
 * date-times as text, exactly as change-data-capture delivers them.
 */

/**
 * Cards fan out the join (one row per card), so they are counted with conditional
 * aggregates over that fan-out; loans are pre-aggregated in a derived table that yields at
 * most one row, so their sum is not multiplied by the card count.
 */
export const SUMMARY_SQL = `
SELECT a.id AS account_id, a.account_number, a.status, a.currency_code, a.opened_at,
       c.id AS customer_id, c.first_name, c.last_name, c.email,
       p.code AS product_code, p.name AS product_name, p.kind AS product_kind,
       br.code AS branch_code, br.name AS branch_name,
       b.available, b.ledger, b.updated_at AS balance_updated_at,
       COUNT(cd.id) AS cards_total,
       COUNT(CASE WHEN cd.status = 'active' THEN 1 END) AS cards_active,
       COALESCE(ln.active_loans, 0) AS loans_active,
       CAST(COALESCE(ln.outstanding, 0) AS DECIMAL(19,4)) AS loans_outstanding
  FROM accounts a
  JOIN customers c ON c.id = a.customer_id
  JOIN products p ON p.id = a.product_id
  JOIN branches br ON br.id = a.branch_id
  JOIN balances b ON b.account_id = a.id
  LEFT JOIN cards cd ON cd.account_id = a.id
  LEFT JOIN (SELECT account_id, COUNT(*) AS active_loans, SUM(outstanding) AS outstanding
               FROM loans
              WHERE account_id = :accountId AND status = 'active'
              GROUP BY account_id) ln ON ln.account_id = a.id
 WHERE a.id = :accountId
 GROUP BY a.id, a.account_number, a.status, a.currency_code, a.opened_at,
          c.id, c.first_name, c.last_name, c.email, p.code, p.name, p.kind, br.code, br.name,
          b.available, b.ledger, b.updated_at, ln.active_loans, ln.outstanding`;

const POSTING_COLUMNS = `
SELECT t.id, t.posted_at, t.direction, t.amount, t.currency_code, t.balance_after, t.description,
       m.id AS merchant_id, m.name AS merchant_name, cat.name AS category_name
  FROM transactions t
  LEFT JOIN merchants m ON m.id = t.merchant_id
  LEFT JOIN categories cat ON cat.id = m.category_id`;

export const RECENT_SQL = `${POSTING_COLUMNS}
 WHERE t.account_id = :accountId
 ORDER BY t.posted_at DESC, t.id DESC
 LIMIT ${RECENT_TRANSACTIONS}`;

const count = z.coerce.number().int();

export const summaryRow = z.object({
  account_id: z.number(),
  account_number: z.string(),
  status: z.enum(['active', 'frozen', 'closed']),
  currency_code: z.string(),
  opened_at: z.string(),
  customer_id: z.number(),
  first_name: z.string(),
  last_name: z.string(),
  email: z.string(),
  product_code: z.string(),
  product_name: z.string(),
  product_kind: z.string(),
  branch_code: z.string(),
  branch_name: z.string(),
  available: z.string(),
  ledger: z.string(),
  balance_updated_at: z.string(),
  cards_total: count,
  cards_active: count,
  loans_active: count,
  loans_outstanding: z.string(),
});

export const postingRow = z.object({
  id: z.number(),
  posted_at: z.string(),
  direction: z.enum(['debit', 'credit']),
  amount: z.string(),
  currency_code: z.string(),
  balance_after: z.string(),
  description: z.string(),
  merchant_id: z.number().nullable(),
  merchant_name: z.string().nullable(),
  category_name: z.string().nullable(),
});

function toItem(r: z.infer<typeof postingRow>): TransactionItem {
  return {
    transactionId: r.id,
    postedAt: r.posted_at,
    direction: r.direction,
    amount: r.amount,
    currency: r.currency_code,
    balanceAfter: r.balance_after,
    description: r.description,
    merchant: r.merchant_id === null ? null : { merchantId: r.merchant_id, name: r.merchant_name ?? '' },
    category: r.category_name,
  };
}

export function rows<S extends z.ZodType>(schema: S, found: Record<string, unknown>[]): Array<z.output<S>> {
  return found.map((row) => schema.parse(row));
}

/** The summary as the legacy API answered it: both statements in one snapshot, so they agree. */
export function legacyAccountSummary(db: LegacyDb, accountId: number): Promise<AccountSummary | null> {
  return db.snapshot((tx) => accountSummaryIn(tx, accountId));
}

/** The summary's two statements inside a caller's snapshot (the overview reads it with more). */
export async function accountSummaryIn(
  tx: Pick<LegacyDb, 'query'>,
  accountId: number,
): Promise<AccountSummary | null> {
  const [head] = rows(summaryRow, await tx.query(SUMMARY_SQL, { accountId }));
  if (head === undefined) return null;
  const recent = rows(postingRow, await tx.query(RECENT_SQL, { accountId }));
  return summaryOf(head, recent);
}

/** The summary from its head row and its latest postings. */
export function summaryOf(
  head: z.infer<typeof summaryRow>,
  recent: Array<z.infer<typeof postingRow>>,
): AccountSummary {
  return {
    accountId: head.account_id,
    accountNumber: head.account_number,
    status: head.status,
    currency: head.currency_code,
    openedAt: head.opened_at,
    owner: {
      customerId: head.customer_id,
      name: `${head.first_name} ${head.last_name}`,
      email: head.email,
    },
    product: { code: head.product_code, name: head.product_name, kind: head.product_kind },
    branch: { code: head.branch_code, name: head.branch_name },
    balance: { available: head.available, ledger: head.ledger, updatedAt: head.balance_updated_at },
    cards: { active: head.cards_active, total: head.cards_total },
    loans: { active: head.loans_active, outstanding: head.loans_outstanding },
    recentTransactions: recent.map(toItem),
  };
}

export async function legacyTransactionHistory(db: LegacyDb, query: HistoryQuery): Promise<HistoryPage> {
  const limit = Math.min(Math.max(1, query.limit), HISTORY_MAX_LIMIT);
  const where = ['t.account_id = :accountId'];
  const params: Record<string, unknown> = { accountId: query.accountId };
  if (query.from !== undefined) {
    where.push('t.posted_at >= :from');
    params.from = query.from;
  }
  if (query.to !== undefined) {
    where.push('t.posted_at < :to');
    params.to = query.to;
  }
  if (query.cursor !== undefined) {
    const cursor = decodeCursor(query.cursor);
    if (cursor === null) {
      throw new AdapterError('INVALID_CURSOR', 'the history cursor is not one this API issued');
    }
    // Spelled out rather than as a row comparison so the (account_id, posted_at, id) index serves it.
    where.push('(t.posted_at < :cursorAt OR (t.posted_at = :cursorAt AND t.id < :cursorId))');
    params.cursorAt = cursor.postedAt;
    params.cursorId = cursor.transactionId;
  }
  const sql = `${POSTING_COLUMNS}
 WHERE ${where.join(' AND ')}
 ORDER BY t.posted_at DESC, t.id DESC
 LIMIT ${limit}`;
  const items = rows(postingRow, await db.query(sql, params)).map(toItem);
  return { accountId: query.accountId, items, nextCursor: nextCursorFor(items, limit) };
}

/** Both legacy reads behind the AccountQueries port, for tests that compare whole accounts. */
export class LegacyQueries implements AccountQueries {
  constructor(private readonly db: LegacyDb) {}

  accountSummary(accountId: number): Promise<AccountSummary | null> {
    return legacyAccountSummary(this.db, accountId);
  }

  transactionHistory(query: HistoryQuery): Promise<HistoryPage> {
    return legacyTransactionHistory(this.db, query);
  }
}

/** Every account id, ascending: what a reconciliation run may check. */
export async function legacyAccountIds(db: LegacyDb): Promise<number[]> {
  const found = await db.query('SELECT id FROM accounts ORDER BY id');
  return rows(z.object({ id: z.coerce.number().int() }), found).map((r) => r.id);
}
