import type Database from 'better-sqlite3';
import Big from 'big.js';
import type { StoredEvent } from '../eventstore/ports.js';
import type { AccountSummary } from '../examples/bank/contract.js';
import { RECENT_TRANSACTIONS } from '../examples/bank/contract.js';
import type * as Rows from '../examples/bank/rows.js';
import type { SqliteProjection } from './ports.js';
import { type PostingRow, postingColumns, toItem } from './postings.js';
import { prepared } from './statement-cache.js';

interface Data<T> {
  state: T;
}

function stateOf<T>(event: StoredEvent): T {
  return (event.data as unknown as Data<T>).state;
}

const isRemoval = (event: StoredEvent) => event.type.endsWith('Removed');

type Db = Database.Database;

/** Every event that changes what an account summary shows; the SQLite and MongoDB projections both apply them. */
export const ACCOUNT_SUMMARY_EVENTS: ReadonlySet<string> = new Set([
  'CustomerRegistered',
  'CustomerProfileChanged',
  'CustomerKycStatusChanged',
  'CustomerUpdated',
  'CustomerRemoved',
  'ProductUpserted',
  'ProductRemoved',
  'BranchUpserted',
  'BranchRemoved',
  'CategoryUpserted',
  'CategoryRemoved',
  'MerchantUpserted',
  'MerchantRemoved',
  'AccountOpened',
  'AccountStatusChanged',
  'AccountUpdated',
  'AccountRemoved',
  'BalanceInitialized',
  'BalanceChanged',
  'BalanceRemoved',
  'CardIssued',
  'CardStatusChanged',
  'CardUpdated',
  'CardRemoved',
  'LoanOpened',
  'LoanBalanceChanged',
  'LoanStatusChanged',
  'LoanUpdated',
  'LoanRemoved',
  'TransactionPosted',
  'TransactionAmended',
  'TransactionRemoved',
]);

/**
 * The account summary read model. Events update normalised helper tables; every account an
 * event touches (directly, or through its customer, product, branch, merchant or category) is
 * marked and its document recomputed once per batch. Full row state in every event makes each
 * step an idempotent upsert or delete.
 */
export class AccountSummaryProjection implements SqliteProjection {
  readonly name = 'account-summary';
  readonly migrations = ['001_account_summary.sql'];
  readonly handles = ACCOUNT_SUMMARY_EVENTS;
  private readonly dirty = new Set<number>();

  apply(db: Db, event: StoredEvent): void {
    const removed = isRemoval(event);
    const touch = (sql: string, id: number) => {
      for (const a of prepared(db, sql, { pluck: true }).all(id) as number[]) this.dirty.add(a);
    };
    switch (event.metadata.table) {
      case 'customers': {
        const s = stateOf<Rows.Customer>(event);
        mirror(db, 'sum_customers', 'customer_id', removed, [
          s.customerId,
          `${s.firstName} ${s.lastName}`,
          s.email,
        ]);
        touch('SELECT account_id FROM sum_accounts WHERE customer_id = ?', s.customerId);
        return;
      }
      case 'products': {
        const s = stateOf<Rows.Product>(event);
        mirror(db, 'sum_products', 'product_id', removed, [s.productId, s.code, s.name, s.kind]);
        touch('SELECT account_id FROM sum_accounts WHERE product_id = ?', s.productId);
        return;
      }
      case 'branches': {
        const s = stateOf<Rows.Branch>(event);
        mirror(db, 'sum_branches', 'branch_id', removed, [s.branchId, s.code, s.name]);
        touch('SELECT account_id FROM sum_accounts WHERE branch_id = ?', s.branchId);
        return;
      }
      case 'categories': {
        const s = stateOf<Rows.Category>(event);
        mirror(db, 'sum_categories', 'category_id', removed, [s.categoryId, s.name]);
        touch(
          `SELECT DISTINCT p.account_id FROM sum_postings p JOIN sum_merchants m ON m.merchant_id = p.merchant_id
            WHERE m.category_id = ?`,
          s.categoryId,
        );
        return;
      }
      case 'merchants': {
        const s = stateOf<Rows.Merchant>(event);
        mirror(db, 'sum_merchants', 'merchant_id', removed, [s.merchantId, s.name, s.categoryId]);
        touch('SELECT DISTINCT account_id FROM sum_postings WHERE merchant_id = ?', s.merchantId);
        return;
      }
      case 'accounts': {
        const s = stateOf<Rows.Account>(event);
        mirror(db, 'sum_accounts', 'account_id', removed, [
          s.accountId,
          s.accountNumber,
          s.customerId,
          s.productId,
          s.branchId,
          s.currency,
          s.status,
          s.openedAt,
        ]);
        this.dirty.add(s.accountId);
        return;
      }
      case 'balances': {
        const s = stateOf<Rows.Balance>(event);
        mirror(db, 'sum_balances', 'account_id', removed, [s.accountId, s.available, s.ledger, s.updatedAt]);
        this.dirty.add(s.accountId);
        return;
      }
      case 'cards': {
        const s = stateOf<Rows.Card>(event);
        // The card may have moved from another account: that one changes too.
        touch('SELECT account_id FROM sum_cards WHERE card_id = ?', s.cardId);
        mirror(db, 'sum_cards', 'card_id', removed, [s.cardId, s.accountId, s.status]);
        this.dirty.add(s.accountId);
        return;
      }
      case 'loans': {
        const s = stateOf<Rows.Loan>(event);
        touch('SELECT account_id FROM sum_loans WHERE loan_id = ?', s.loanId);
        mirror(db, 'sum_loans', 'loan_id', removed, [s.loanId, s.accountId, s.status, s.outstanding]);
        this.dirty.add(s.accountId);
        return;
      }
      case 'transactions': {
        const s = stateOf<Rows.Transaction>(event);
        touch('SELECT account_id FROM sum_postings WHERE transaction_id = ?', s.transactionId);
        mirror(db, 'sum_postings', 'transaction_id', removed, postingColumns(s));
        this.dirty.add(s.accountId);
        return;
      }
      default:
        return;
    }
  }

  flush(db: Db): void {
    const put = prepared(db, 'INSERT OR REPLACE INTO account_summaries (account_id, doc) VALUES (?, ?)');
    const drop = prepared(db, 'DELETE FROM account_summaries WHERE account_id = ?');
    for (const accountId of this.dirty) {
      const doc = buildSummary(db, accountId);
      if (doc) put.run(accountId, JSON.stringify(doc));
      else drop.run(accountId);
    }
    this.dirty.clear();
  }

  reset(db: Db): void {
    this.dirty.clear();
    for (const t of [
      'sum_customers',
      'sum_products',
      'sum_branches',
      'sum_categories',
      'sum_merchants',
      'sum_accounts',
      'sum_balances',
      'sum_cards',
      'sum_loans',
      'sum_postings',
      'account_summaries',
    ]) {
      prepared(db, `DELETE FROM ${t}`).run();
    }
  }
}

/** Keeps a helper table's row equal to the event's state: replaced, or deleted on removal. */
function mirror(
  db: Db,
  table: string,
  key: string,
  removed: boolean,
  row: Array<string | number | null>,
): void {
  if (removed) prepared(db, `DELETE FROM ${table} WHERE ${key} = ?`).run(row[0]);
  else prepared(db, `INSERT OR REPLACE INTO ${table} VALUES (${row.map(() => '?').join(', ')})`).run(...row);
}

interface HeadRow {
  account_id: number;
  account_number: string;
  status: AccountSummary['status'];
  currency: string;
  opened_at: string;
  customer_id: number;
  owner_name: string;
  email: string;
  product_code: string;
  product_name: string;
  product_kind: string;
  branch_code: string;
  branch_name: string;
  available: string;
  ledger: string;
  balance_updated_at: string;
}

/** Mirrors the legacy query's inner joins: no summary until account, owner, product, branch and balance are known. */
function buildSummary(db: Db, accountId: number): AccountSummary | null {
  const head = prepared(
    db,
    `SELECT a.account_id, a.account_number, a.status, a.currency, a.opened_at, c.customer_id, c.name AS owner_name,
              c.email, p.code AS product_code, p.name AS product_name, p.kind AS product_kind,
              br.code AS branch_code, br.name AS branch_name, b.available, b.ledger, b.updated_at AS balance_updated_at
         FROM sum_accounts a
         JOIN sum_customers c ON c.customer_id = a.customer_id
         JOIN sum_products p ON p.product_id = a.product_id
         JOIN sum_branches br ON br.branch_id = a.branch_id
         JOIN sum_balances b ON b.account_id = a.account_id
        WHERE a.account_id = ?`,
  ).get(accountId) as HeadRow | undefined;
  if (!head) return null;
  const cards = prepared(
    db,
    `SELECT COUNT(*) AS total, COALESCE(SUM(status = 'active'), 0) AS active FROM sum_cards WHERE account_id = ?`,
  ).get(accountId) as { total: number; active: number };
  const loans = prepared(db, `SELECT outstanding FROM sum_loans WHERE account_id = ? AND status = 'active'`, {
    pluck: true,
  }).all(accountId) as string[];
  const postings = prepared(
    db,
    `SELECT p.transaction_id, p.posted_at, p.direction, p.amount, p.currency, p.balance_after, p.description,
              m.merchant_id, m.name AS merchant_name, cat.name AS category_name
         FROM sum_postings p
         LEFT JOIN sum_merchants m ON m.merchant_id = p.merchant_id
         LEFT JOIN sum_categories cat ON cat.category_id = m.category_id
        WHERE p.account_id = ? ORDER BY p.posted_at DESC, p.transaction_id DESC LIMIT ?`,
  ).all(accountId, RECENT_TRANSACTIONS) as PostingRow[];
  return {
    accountId: head.account_id,
    accountNumber: head.account_number,
    status: head.status,
    currency: head.currency,
    openedAt: head.opened_at,
    owner: { customerId: head.customer_id, name: head.owner_name, email: head.email },
    product: { code: head.product_code, name: head.product_name, kind: head.product_kind },
    branch: { code: head.branch_code, name: head.branch_name },
    balance: { available: head.available, ledger: head.ledger, updatedAt: head.balance_updated_at },
    cards: { active: cards.active, total: cards.total },
    loans: {
      active: loans.length,
      outstanding: loans.reduce((sum, v) => sum.plus(v), new Big(0)).toFixed(4),
    },
    recentTransactions: postings.map(toItem),
  };
}
