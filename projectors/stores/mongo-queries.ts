import Big from 'big.js';
import type { Db } from 'mongodb';
import type { z } from 'zod';
import {
  type AccountSummary,
  RECENT_TRANSACTIONS,
  type TransactionItem,
} from '../../examples/bank/contract.js';
import { StoreError } from '../../lib/errors.js';
import { MONGO_COLLECTIONS, type RowDocument } from './mongo.js';
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
  postingItems,
  productDoc,
} from './row-documents.js';

type Collection = (typeof MONGO_COLLECTIONS)[keyof typeof MONGO_COLLECTIONS];

/**
 * The account summary composed from the row documents at query time with indexed lookups,
 * mirroring the legacy query: no summary until account, owner, product, branch and balance
 * are all known (its inner joins), cards and active loans counted by account, the latest
 * postings with their merchant and category (its left joins).
 */
export class MongoAccountSummaryQueries {
  constructor(private readonly db: Db) {}

  async accountSummary(accountId: number): Promise<AccountSummary | null> {
    const account = await this.one('accounts', accountId, accountDoc);
    if (account === null) return null;
    const [owner, product, branch, balance, cards, loans, recent] = await Promise.all([
      this.one('customers', account.customerId, customerDoc),
      this.one('products', account.productId, productDoc),
      this.one('branches', account.branchId, branchDoc),
      this.one('balances', accountId, balanceDoc),
      this.many('cards', { accountId }, cardDoc),
      this.many('loans', { accountId, status: 'active' }, loanDoc),
      this.recentPostings(accountId),
    ]);
    if (owner === null || product === null || branch === null || balance === null) return null;
    return {
      accountId: account.accountId,
      accountNumber: account.accountNumber,
      status: account.status,
      currency: account.currency,
      openedAt: account.openedAt,
      owner: {
        customerId: owner.customerId,
        name: `${owner.firstName} ${owner.lastName}`,
        email: owner.email,
      },
      product: { code: product.code, name: product.name, kind: product.kind },
      branch: { code: branch.code, name: branch.name },
      balance: { available: balance.available, ledger: balance.ledger, updatedAt: balance.updatedAt },
      cards: { active: cards.filter((c) => c.status === 'active').length, total: cards.length },
      loans: {
        active: loans.length,
        outstanding: loans.reduce((sum, l) => sum.plus(l.outstanding), new Big(0)).toFixed(4),
      },
      recentTransactions: recent,
    };
  }

  private async recentPostings(accountId: number): Promise<TransactionItem[]> {
    const docs = await this.db
      .collection<RowDocument>(MONGO_COLLECTIONS.transactions)
      .find({ accountId, deleted: false })
      .sort({ postedAt: -1, _id: -1 })
      .limit(RECENT_TRANSACTIONS)
      .toArray();
    return postingItems(
      docs.map((d) => parseDoc('postings', d, postingDoc)),
      {
        merchants: (ids) => this.byIds('merchants', ids, merchantDoc, (m) => m.merchantId),
        categories: (ids) => this.byIds('categories', ids, categoryDoc, (c) => c.categoryId),
      },
    );
  }

  private async one<S extends z.ZodType>(
    table: keyof typeof MONGO_COLLECTIONS,
    id: number,
    schema: S,
  ): Promise<z.output<S> | null> {
    const collection = MONGO_COLLECTIONS[table];
    const doc = await this.db.collection<RowDocument>(collection).findOne({ _id: id, deleted: false });
    return doc === null ? null : parseDoc(collection, doc, schema);
  }

  private async many<S extends z.ZodType>(
    table: keyof typeof MONGO_COLLECTIONS,
    filter: Record<string, unknown>,
    schema: S,
  ): Promise<Array<z.output<S>>> {
    const collection = MONGO_COLLECTIONS[table];
    const docs = await this.db
      .collection<RowDocument>(collection)
      .find({ ...filter, deleted: false })
      .toArray();
    return docs.map((d) => parseDoc(collection, d, schema));
  }

  private async byIds<S extends z.ZodType>(
    table: keyof typeof MONGO_COLLECTIONS,
    ids: number[],
    schema: S,
    idOf: (doc: z.output<S>) => number,
  ): Promise<Map<number, z.output<S>>> {
    if (ids.length === 0) return new Map();
    const docs = await this.many(table, { _id: { $in: ids } }, schema);
    return new Map(docs.map((d) => [idOf(d), d]));
  }
}

function parseDoc<S extends z.ZodType>(collection: Collection, doc: RowDocument, schema: S): z.output<S> {
  const parsed = schema.safeParse(doc);
  if (!parsed.success) {
    throw new StoreError(
      'STORE_DOCUMENT_INVALID',
      `document ${doc._id} of ${collection} does not match its schema`,
      {
        cause: parsed.error,
      },
    );
  }
  return parsed.data;
}
