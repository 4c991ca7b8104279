import { defineView, type ViewNode } from '../../index.js';
import {
  type AccountSummary,
  accountSummarySchema,
  RECENT_TRANSACTIONS,
  type TransactionItem,
  transactionItemSchema,
} from './contract.js';
import type * as Rows from './rows.js';

/**
 * The bank's two read models, declared as views over the captured tables: the engine keeps
 * the rows they read and maintains each document as those rows change, so a renamed branch,
 * merchant or category reaches every document that shows it.
 */

const rowOf = <T>(node: ViewNode | ViewNode[] | null | undefined): T | null =>
  node === null || node === undefined || Array.isArray(node) ? null : (node.row as T);
const nodesOf = (node: ViewNode | ViewNode[] | null | undefined): ViewNode[] =>
  Array.isArray(node) ? node : [];

/** A posting with its merchant and category, as the legacy LEFT JOINs show it. */
const postingJoins = {
  merchant: {
    table: 'merchants',
    on: 'merchantId',
    join: { category: { table: 'categories', on: 'categoryId' } },
  },
} as const;

function postingItem(node: ViewNode): TransactionItem {
  const t = node.row as Rows.Transaction;
  const merchantNode = node.joins.merchant;
  const merchant = rowOf<Rows.Merchant>(merchantNode);
  const category =
    merchantNode && !Array.isArray(merchantNode) ? rowOf<Rows.Category>(merchantNode.joins.category) : null;
  return {
    transactionId: t.transactionId,
    postedAt: t.postedAt,
    direction: t.direction,
    amount: t.amount,
    currency: t.currency,
    balanceAfter: t.balanceAfter,
    description: t.description,
    merchant: merchant === null ? null : { merchantId: merchant.merchantId, name: merchant.name },
    category: merchant === null ? null : (category?.name ?? null),
  };
}

export const accountSummaryView = defineView<AccountSummary>({
  name: 'account-summary',
  from: 'accounts',
  join: {
    // Required lookups mirror the legacy query's inner joins: no summary until all are known.
    owner: { table: 'customers', on: 'customerId', required: true },
    product: { table: 'products', on: 'productId', required: true },
    branch: { table: 'branches', on: 'branchId', required: true },
    balance: { table: 'balances', on: 'accountId', required: true },
    cards: { table: 'cards', by: 'accountId', limit: 0 },
    activeLoans: { table: 'loans', by: 'accountId', where: { status: 'active' }, limit: 0 },
    recent: {
      table: 'transactions',
      by: 'accountId',
      orderBy: [
        { field: 'postedAt', direction: 'desc' },
        { field: 'transactionId', direction: 'desc' },
      ],
      limit: RECENT_TRANSACTIONS,
      join: postingJoins,
    },
  },
  aggregate: {
    cardsTotal: { count: 'cards' },
    cardsActive: { count: 'cards', where: { status: 'active' } },
    loansActive: { count: 'activeLoans' },
    loansOutstanding: { sum: 'activeLoans', field: 'outstanding', scale: 4 },
  },
  schema: accountSummarySchema,
  select(root) {
    const a = root.row as Rows.Account;
    const owner = rowOf<Rows.Customer>(root.joins.owner);
    const product = rowOf<Rows.Product>(root.joins.product);
    const branch = rowOf<Rows.Branch>(root.joins.branch);
    const balance = rowOf<Rows.Balance>(root.joins.balance);
    if (owner === null || product === null || branch === null || balance === null) return null;
    return {
      accountId: a.accountId,
      accountNumber: a.accountNumber,
      status: a.status,
      currency: a.currency,
      openedAt: a.openedAt,
      owner: {
        customerId: owner.customerId,
        name: `${owner.firstName} ${owner.lastName}`,
        email: owner.email,
      },
      product: { code: product.code, name: product.name, kind: product.kind },
      branch: { code: branch.code, name: branch.name },
      balance: { available: balance.available, ledger: balance.ledger, updatedAt: balance.updatedAt },
      cards: { active: Number(root.aggregates.cardsActive), total: Number(root.aggregates.cardsTotal) },
      loans: {
        active: Number(root.aggregates.loansActive),
        outstanding: String(root.aggregates.loansOutstanding),
      },
      recentTransactions: nodesOf(root.joins.recent).map(postingItem),
    };
  },
});

/** One document per posting; pages are keyset ranges over (accountId, postedAt, transactionId). */
export const transactionHistoryView = defineView<TransactionItem>({
  name: 'transaction-history',
  from: 'transactions',
  join: postingJoins,
  schema: transactionItemSchema,
  indexes: [['accountId', 'postedAt', 'transactionId']],
  select: postingItem,
});
