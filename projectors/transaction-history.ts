import type Database from 'better-sqlite3';
import type { StoredEvent } from '../eventstore/ports.js';
import type * as Rows from '../examples/bank/rows.js';
import type { SqliteProjection } from './ports.js';
import { postingColumns } from './postings.js';
import { prepared } from './statement-cache.js';

type Db = Database.Database;

function stateOf<T>(event: StoredEvent): T {
  return (event.data as unknown as { state: T }).state;
}

/** Every event that changes a transaction-history page; the SQLite and OpenSearch projections both apply them. */
export const TRANSACTION_HISTORY_EVENTS: ReadonlySet<string> = new Set([
  'CategoryUpserted',
  'CategoryRemoved',
  'MerchantUpserted',
  'MerchantRemoved',
  'TransactionPosted',
  'TransactionAmended',
  'TransactionRemoved',
]);

/**
 * Transaction history: one denormalised row per posting with its merchant and category names,
 * so a page is a single range scan. A merchant or category rename rewrites the names of the
 * postings that carry them.
 */
export class TransactionHistoryProjection implements SqliteProjection {
  readonly name = 'transaction-history';
  readonly migrations = ['002_transaction_history.sql'];
  readonly handles = TRANSACTION_HISTORY_EVENTS;

  apply(db: Db, event: StoredEvent): void {
    const removed = event.type.endsWith('Removed');
    switch (event.metadata.table) {
      case 'categories': {
        const s = stateOf<Rows.Category>(event);
        if (removed) prepared(db, 'DELETE FROM hist_categories WHERE category_id = ?').run(s.categoryId);
        else prepared(db, 'INSERT OR REPLACE INTO hist_categories VALUES (?, ?)').run(s.categoryId, s.name);
        prepared(
          db,
          `UPDATE hist_postings SET category_name = ?
            WHERE merchant_id IN (SELECT merchant_id FROM hist_merchants WHERE category_id = ?)`,
        ).run(removed ? null : s.name, s.categoryId);
        return;
      }
      case 'merchants': {
        const s = stateOf<Rows.Merchant>(event);
        if (removed) prepared(db, 'DELETE FROM hist_merchants WHERE merchant_id = ?').run(s.merchantId);
        else
          prepared(db, 'INSERT OR REPLACE INTO hist_merchants VALUES (?, ?, ?)').run(
            s.merchantId,
            s.name,
            s.categoryId,
          );
        const category = removed
          ? null
          : ((prepared(db, 'SELECT name FROM hist_categories WHERE category_id = ?', { pluck: true }).get(
              s.categoryId,
            ) as string | undefined) ?? null);
        prepared(
          db,
          'UPDATE hist_postings SET merchant_name = ?, category_name = ? WHERE merchant_id = ?',
        ).run(removed ? null : s.name, category, s.merchantId);
        return;
      }
      case 'transactions': {
        const s = stateOf<Rows.Transaction>(event);
        if (removed) {
          prepared(db, 'DELETE FROM hist_postings WHERE transaction_id = ?').run(s.transactionId);
          return;
        }
        const names = prepared(
          db,
          `SELECT m.name AS merchant, c.name AS category FROM hist_merchants m
               LEFT JOIN hist_categories c ON c.category_id = m.category_id WHERE m.merchant_id = ?`,
        ).get(s.merchantId) as { merchant: string; category: string | null } | undefined;
        prepared(db, 'INSERT OR REPLACE INTO hist_postings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
          ...postingColumns(s),
          names?.merchant ?? null,
          names?.category ?? null,
        );
        return;
      }
      default:
        return;
    }
  }

  reset(db: Db): void {
    for (const t of ['hist_categories', 'hist_merchants', 'hist_postings'])
      prepared(db, `DELETE FROM ${t}`).run();
  }
}
