import type { Client } from '@opensearch-project/opensearch';
import { z } from 'zod';
import {
  decodeCursor,
  type HistoryPage,
  type HistoryQuery,
  nextCursorFor,
} from '../../examples/bank/contract.js';
import { AdapterError, StoreError } from '../../lib/errors.js';
import type { HistoryIndexes } from './opensearch.js';
import { categoryDoc, merchantDoc, postingDoc, postingItems } from './row-documents.js';

const searchResponse = z.object({
  hits: z.object({ hits: z.array(z.object({ _id: z.string(), _source: z.unknown() })) }),
});
const mgetResponse = z.object({
  docs: z.array(
    z.object({ _id: z.string(), found: z.boolean().optional(), _source: z.unknown().optional() }),
  ),
});
const liveFlag = z.object({ deleted: z.boolean() });

/**
 * Transaction history pages from the postings index: one search filtered by account, not
 * removed and the from/to range, sorted like the legacy query (postedAt DESC, transactionId
 * DESC; postedAt is a keyword whose fixed-width DATETIME(6) text sorts chronologically), with
 * the keyset cursor passed as search_after. Merchant and category names come from their own
 * indexes per page.
 */
export class OpenSearchHistoryQueries {
  constructor(
    private readonly client: Client,
    private readonly indexes: HistoryIndexes,
  ) {}

  async transactionHistory(query: HistoryQuery): Promise<HistoryPage> {
    const cursor = query.cursor === undefined ? null : decodeCursor(query.cursor);
    if (query.cursor !== undefined && cursor === null) {
      throw new AdapterError('INVALID_CURSOR', 'the history cursor is not one this API issued');
    }
    const range = {
      ...(query.from === undefined ? {} : { gte: query.from }),
      ...(query.to === undefined ? {} : { lt: query.to }),
    };
    const filter = [
      { term: { accountId: query.accountId } },
      { term: { deleted: false } },
      ...(Object.keys(range).length > 0 ? [{ range: { postedAt: range } }] : []),
    ];
    const response = await this.call(`search ${this.indexes.postings}`, () =>
      this.client.search({
        index: this.indexes.postings,
        body: {
          size: query.limit,
          query: { bool: { filter } },
          sort: [{ postedAt: { order: 'desc' } }, { transactionId: { order: 'desc' } }],
          ...(cursor === null ? {} : { search_after: [cursor.postedAt, cursor.transactionId] }),
        },
      }),
    );
    const hits = parse(searchResponse, response.body, this.indexes.postings).hits.hits;
    const postings = hits.map((h) => parse(postingDoc, h._source, `${this.indexes.postings}/${h._id}`));
    const items = await postingItems(postings, {
      merchants: (ids) => this.live(this.indexes.merchants, ids, merchantDoc, (m) => m.merchantId),
      categories: (ids) => this.live(this.indexes.categories, ids, categoryDoc, (c) => c.categoryId),
    });
    return { accountId: query.accountId, items, nextCursor: nextCursorFor(items, query.limit) };
  }

  /** The documents of `ids` that exist and are not tombstones, by id. */
  private async live<S extends z.ZodType>(
    index: string,
    ids: number[],
    schema: S,
    idOf: (doc: z.output<S>) => number,
  ): Promise<Map<number, z.output<S>>> {
    if (ids.length === 0) return new Map();
    const response = await this.call(`mget ${index}`, () =>
      this.client.mget({ index, body: { ids: ids.map(String) } }),
    );
    const found = new Map<number, z.output<S>>();
    for (const doc of parse(mgetResponse, response.body, index).docs) {
      if (doc.found !== true || parse(liveFlag, doc._source, `${index}/${doc._id}`).deleted) continue;
      const row = parse(schema, doc._source, `${index}/${doc._id}`);
      found.set(idOf(row), row);
    }
    return found;
  }

  private async call<T>(what: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (err) {
      throw new StoreError('STORE_READ_FAILED', `OpenSearch ${what} failed`, { cause: err });
    }
  }
}

function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new StoreError(
      'STORE_DOCUMENT_INVALID',
      `OpenSearch answer for ${where} does not match its schema`,
      {
        cause: parsed.error,
      },
    );
  }
  return parsed.data;
}
