import { type AnyBulkWriteOperation, type Db, MongoBulkWriteError, MongoClient } from 'mongodb';
import type { NewDomainEvent } from '../../eventstore/ports.js';
import { StoreError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import { mongoIndexes } from '../../migrations/stores.js';
import { ACCOUNT_SUMMARY_EVENTS } from '../account-summary.js';
import type { DocumentProjection } from '../ports.js';
import {
  accountDoc,
  balanceDoc,
  branchDoc,
  cardDoc,
  categoryDoc,
  customerDoc,
  loanDoc,
  merchantDoc,
  postingDoc,
  productDoc,
  type RowSpec,
  rowSpec,
  rowWrites,
} from './row-documents.js';

/**
 * A row's document: the state's fields, the source order of the event that wrote it
 * (`_order`), and `deleted` for a removal's tombstone, which keeps `_order` so an older event
 * delivered late cannot bring the row back.
 */
export interface RowDocument {
  _id: number;
  _order: string;
  deleted: boolean;
  [field: string]: unknown;
}

/** Legacy table → the collection holding its rows. */
export const MONGO_COLLECTIONS = {
  customers: 'customers',
  products: 'products',
  branches: 'branches',
  categories: 'categories',
  merchants: 'merchants',
  accounts: 'accounts',
  balances: 'balances',
  cards: 'cards',
  loans: 'loans',
  transactions: 'postings',
} as const;
type SummaryTable = keyof typeof MONGO_COLLECTIONS;

const specs: Record<SummaryTable, RowSpec> = {
  customers: rowSpec(customerDoc, (r) => r.customerId),
  products: rowSpec(productDoc, (r) => r.productId),
  branches: rowSpec(branchDoc, (r) => r.branchId),
  categories: rowSpec(categoryDoc, (r) => r.categoryId),
  merchants: rowSpec(merchantDoc, (r) => r.merchantId),
  accounts: rowSpec(accountDoc, (r) => r.accountId),
  balances: rowSpec(balanceDoc, (r) => r.accountId),
  cards: rowSpec(cardDoc, (r) => r.cardId),
  loans: rowSpec(loanDoc, (r) => r.loanId),
  transactions: rowSpec(postingDoc, (r) => r.transactionId),
};

const DUPLICATE_KEY = 11000;

export interface MongoStoreOptions {
  url: string;
  database: string;
  logger: Logger;
}

/**
 * The account summary on MongoDB: one document per row the summary reads, composed into the
 * AccountSummary at query time (MongoAccountSummaryQueries), so a rename of a branch or a
 * merchant is one document write instead of a rewrite of every summary showing it.
 *
 * Each write is a replaceOne upsert whose filter only matches an older `_order`. When the
 * stored document is as new or newer the filter misses, the upsert tries to insert the same
 * `_id` and the server answers duplicate key (11000): that is the "already newer" outcome and
 * is not an error. Redelivered or reordered batches therefore change nothing.
 */
export class MongoAccountSummaryProjection implements DocumentProjection {
  readonly name = 'account-summary';
  readonly streamTypes = ['customer', 'product', 'branch', 'category', 'merchant', 'account', 'card', 'loan'];
  readonly handles = ACCOUNT_SUMMARY_EVENTS;
  private readonly client: MongoClient;
  private readonly db: Db;
  private readonly logger: Logger;

  constructor(options: MongoStoreOptions) {
    this.client = new MongoClient(options.url);
    this.db = this.client.db(options.database);
    this.logger = options.logger.child({ component: 'mongo-account-summary' });
  }

  async migrate(): Promise<void> {
    for (const [collection, indexes] of Object.entries(mongoIndexes())) {
      await this.db.collection(collection).createIndexes(indexes);
    }
  }

  async apply(events: readonly NewDomainEvent[]): Promise<void> {
    const byCollection = new Map<string, AnyBulkWriteOperation<RowDocument>[]>();
    for (const w of rowWrites(events, this.handles, specs)) {
      const collection = MONGO_COLLECTIONS[w.table as SummaryTable];
      const replacement = w.removed
        ? { _order: w.order, deleted: true }
        : { ...w.fields, _order: w.order, deleted: false };
      const ops = byCollection.get(collection) ?? [];
      ops.push({
        replaceOne: { filter: { _id: w.id, _order: { $lt: w.order } }, replacement, upsert: true },
      });
      byCollection.set(collection, ops);
    }
    await Promise.all([...byCollection].map(([collection, ops]) => this.write(collection, ops)));
  }

  private async write(collection: string, ops: AnyBulkWriteOperation<RowDocument>[]): Promise<void> {
    try {
      const result = await this.db.collection<RowDocument>(collection).bulkWrite(ops, { ordered: false });
      this.logger.debug({
        collection,
        rows: ops.length,
        written: result.upsertedCount + result.modifiedCount,
      });
    } catch (err) {
      if (!(err instanceof MongoBulkWriteError) || err.writeConcernError !== undefined) {
        throw new StoreError('STORE_WRITE_FAILED', `MongoDB bulk write to ${collection} failed`, {
          cause: err,
        });
      }
      const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
      const failed = errors.filter((e) => e.code !== DUPLICATE_KEY);
      if (failed.length > 0) {
        throw new StoreError(
          'STORE_WRITE_FAILED',
          `MongoDB rejected ${failed.length} of ${ops.length} writes to ${collection}: ${failed[0]?.errmsg}`,
          { cause: err },
        );
      }
      this.logger.debug({ collection, rows: ops.length, stale: errors.length });
    }
  }

  async reset(): Promise<void> {
    await Promise.all(Object.values(MONGO_COLLECTIONS).map((c) => this.db.collection(c).deleteMany({})));
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
