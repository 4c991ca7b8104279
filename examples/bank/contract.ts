import { z } from 'zod';
import { datetimeParam, integerParam } from '../../index.js';
import { datetime6, money } from './rows.js';

/**
 * The two read endpoints the legacy monolith serves, as a contract both implementations
 * satisfy: the legacy JOIN queries (examples/bank/legacy-queries.ts) and the read models
 * (projectors/). The shadow API serves one and compares it with the other, so both must
 * produce byte-identical JSON for the same database state.
 *
 * Conventions: money is a DECIMAL(19,4) string ("12.3400"); times are DATETIME(6) strings
 * ("2024-05-01 09:30:00.123456", UTC); ids are numbers.
 */
export const RECENT_TRANSACTIONS = 10;
export const HISTORY_DEFAULT_LIMIT = 50;
export const HISTORY_MAX_LIMIT = 200;

export const transactionItemSchema = z.object({
  transactionId: z.number().int(),
  postedAt: datetime6,
  direction: z.enum(['debit', 'credit']),
  amount: money,
  currency: z.string(),
  balanceAfter: money,
  description: z.string(),
  merchant: z.object({ merchantId: z.number().int(), name: z.string() }).nullable(),
  category: z.string().nullable(),
});
export type TransactionItem = z.infer<typeof transactionItemSchema>;

export const accountSummarySchema = z.object({
  accountId: z.number().int(),
  accountNumber: z.string(),
  status: z.enum(['active', 'frozen', 'closed']),
  currency: z.string(),
  openedAt: datetime6,
  owner: z.object({ customerId: z.number().int(), name: z.string(), email: z.string() }),
  product: z.object({ code: z.string(), name: z.string(), kind: z.string() }),
  branch: z.object({ code: z.string(), name: z.string() }),
  balance: z.object({ available: money, ledger: money, updatedAt: datetime6 }),
  cards: z.object({ active: z.number().int(), total: z.number().int() }),
  loans: z.object({ active: z.number().int(), outstanding: money }),
  /** The last RECENT_TRANSACTIONS postings, newest first (posted_at DESC, id DESC). */
  recentTransactions: z.array(transactionItemSchema),
});
export type AccountSummary = z.infer<typeof accountSummarySchema>;

// A cursor is client input: an impossible time ('2024-01-01 24:00:00.000000') would reach both
// databases, which order it differently, and be recorded as a mismatch the client caused.
const cursorSchema = z.object({ postedAt: datetimeParam(6), transactionId: integerParam() });
export type HistoryCursor = z.infer<typeof cursorSchema>;

export function encodeCursor(c: HistoryCursor): string {
  return Buffer.from(`${c.postedAt}|${c.transactionId}`, 'utf8').toString('base64url');
}

export function decodeCursor(text: string): HistoryCursor | null {
  const [postedAt, id] = Buffer.from(text, 'base64url').toString('utf8').split('|');
  const parsed = cursorSchema.safeParse({ postedAt, transactionId: Number(id) });
  return parsed.success ? parsed.data : null;
}

/** Query-string input of GET /accounts/:id/transactions, validated at the API boundary. */
export const historyQuerySchema = z.object({
  accountId: integerParam({ min: 1 }),
  /** Inclusive lower bound on postedAt. */
  from: datetimeParam(6).optional(),
  /** Exclusive upper bound on postedAt. */
  to: datetimeParam(6).optional(),
  limit: integerParam({ min: 1, max: HISTORY_MAX_LIMIT }).default(HISTORY_DEFAULT_LIMIT),
  /** Keyset cursor from a previous page's nextCursor: the page continues strictly after it. */
  cursor: z
    .string()
    .refine((c) => decodeCursor(c) !== null, 'cursor is not one this API issued')
    .optional(),
});
export type HistoryQuery = z.infer<typeof historyQuerySchema>;

export const historyPageSchema = z.object({
  accountId: z.number().int(),
  items: z.array(transactionItemSchema),
  /** Present when more items may follow; pass it back as `cursor`. */
  nextCursor: z.string().nullable(),
});
export type HistoryPage = z.infer<typeof historyPageSchema>;

/**
 * The read port both sides implement. `null` summary = no such account. History of an
 * unknown account is an empty page (the legacy API behaved so).
 */
export interface AccountQueries {
  accountSummary(accountId: number): Promise<AccountSummary | null>;
  transactionHistory(query: HistoryQuery): Promise<HistoryPage>;
}

/** Both implementations page the same way: a full page carries the cursor of its last item. */
export function nextCursorFor(items: TransactionItem[], limit: number): string | null {
  const last = items[items.length - 1];
  return items.length === limit && last
    ? encodeCursor({ postedAt: last.postedAt, transactionId: last.transactionId })
    : null;
}
