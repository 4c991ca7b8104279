import type { TransactionItem } from '../examples/bank/contract.js';
import type { Transaction } from '../examples/bank/rows.js';

/**
 * Both projections keep ledger postings (sum_postings, hist_postings) with the same leading
 * columns and turn them into the same API item, so the two endpoints can never disagree on a
 * posting's shape.
 */
export interface PostingRow {
  transaction_id: number;
  posted_at: string;
  direction: 'debit' | 'credit';
  amount: string;
  currency: string;
  balance_after: string;
  description: string;
  merchant_id: number | null;
  merchant_name: string | null;
  category_name: string | null;
}

/** The posting columns in table order, from a TransactionPosted/Amended state. */
export function postingColumns(s: Transaction): Array<string | number | null> {
  return [
    s.transactionId,
    s.accountId,
    s.postedAt,
    s.direction,
    s.amount,
    s.currency,
    s.balanceAfter,
    s.description,
    s.merchantId,
  ];
}

export function toItem(r: PostingRow): TransactionItem {
  return {
    transactionId: r.transaction_id,
    postedAt: r.posted_at,
    direction: r.direction,
    amount: r.amount,
    currency: r.currency,
    balanceAfter: r.balance_after,
    description: r.description,
    merchant: r.merchant_id === null ? null : { merchantId: r.merchant_id, name: r.merchant_name ?? '' },
    category: r.category_name,
  };
}
