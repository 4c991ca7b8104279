import { type API, Client } from '@opensearch-project/opensearch';
import type { NewDomainEvent } from '../../eventstore/ports.js';
import { ConfigError, StoreError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import { openSearchIndexes } from '../../migrations/stores.js';
import type { DocumentProjection } from '../ports.js';
import { TRANSACTION_HISTORY_EVENTS } from '../transaction-history.js';
import { categoryDoc, merchantDoc, postingDoc, type RowSpec, rowSpec, rowWrites } from './row-documents.js';

/** Legacy table → index name without the configured prefix (a file of migrations/opensearch/). */
const TABLE_INDEX = { categories: 'categories', merchants: 'merchants', transactions: 'postings' } as const;
type HistoryTable = keyof typeof TABLE_INDEX;

export type HistoryIndexes = Record<(typeof TABLE_INDEX)[HistoryTable], string>;

/** The concrete index names under a prefix: `<prefix>-postings`, `<prefix>-merchants`, `<prefix>-categories`. */
export function historyIndexes(prefix: string): HistoryIndexes {
  return {
    postings: `${prefix}-postings`,
    merchants: `${prefix}-merchants`,
    categories: `${prefix}-categories`,
  };
}

const specs: Record<HistoryTable, RowSpec> = {
  categories: rowSpec(categoryDoc, (r) => r.categoryId),
  merchants: rowSpec(merchantDoc, (r) => r.merchantId),
  transactions: rowSpec(postingDoc, (r) => r.transactionId),
};

/**
 * Runs on the stored document (an empty one for a new id, thanks to scripted_upsert) and
 * replaces it only when the event's source order is newer; otherwise the update is a no-op.
 */
const GUARDED_REPLACE = `
if (ctx._source.sourceOrder == null || ctx._source.sourceOrder.compareTo(params.order) < 0) {
  ctx._source.clear();
  ctx._source.putAll(params.doc);
} else {
  ctx.op = 'none';
}`;

/** Concurrent updates of one document (e.g. two group members after a rebalance) retry instead of failing. */
const RETRY_ON_CONFLICT = 3;

export interface OpenSearchStoreOptions {
  url: string;
  /** Prefix of the index names (stores.opensearchIndexPrefix). */
  indexPrefix: string;
  logger: Logger;
}

/**
 * Transaction history on OpenSearch: one document per posting (id = transactionId), plus
 * merchants and categories whose names are resolved when a page is read
 * (OpenSearchHistoryQueries), so a merchant rename needs no rewrite of its postings.
 *
 * Visibility: `apply` resolves once the bulk request is acknowledged, which with the default
 * request durability means the writes are in the translog; searches see them after the next
 * refresh, at most the indexes' refresh_interval (1 s) later. `refresh()` makes them visible
 * at once, for tests and for a lag check that must not wait.
 */
export class OpenSearchHistoryProjection implements DocumentProjection {
  readonly name = 'transaction-history';
  readonly streamTypes = ['category', 'merchant', 'account'];
  readonly handles = TRANSACTION_HISTORY_EVENTS;
  readonly indexes: HistoryIndexes;
  private readonly client: Client;
  private readonly logger: Logger;

  constructor(options: OpenSearchStoreOptions) {
    this.client = new Client({ node: options.url });
    this.indexes = historyIndexes(options.indexPrefix);
    this.logger = options.logger.child({ component: 'opensearch-history' });
  }

  /** Creates each missing index from its migrations/opensearch/ body; existing indexes are left as they are. */
  async migrate(): Promise<void> {
    const bodies = openSearchIndexes();
    for (const [name, index] of Object.entries(this.indexes)) {
      const body = bodies[name];
      if (body === undefined) throw new ConfigError(`migrations/opensearch/${name}.json is missing`);
      if ((await this.client.indices.exists({ index })).body) continue;
      try {
        // The file's outline is checked by zod; OpenSearch validates the mapping itself on create.
        await this.client.indices.create({ index, body: body as API.Indices_Create_RequestBody });
      } catch (err) {
        // Another group member may have created it in between.
        if (!(await this.client.indices.exists({ index })).body) {
          throw new StoreError('STORE_MIGRATION_FAILED', `could not create OpenSearch index ${index}`, {
            cause: err,
          });
        }
      }
    }
  }

  async apply(events: readonly NewDomainEvent[]): Promise<void> {
    const writes = rowWrites(events, this.handles, specs);
    if (writes.length === 0) return;
    const body = writes.flatMap((w) => [
      {
        update: {
          _index: this.indexes[TABLE_INDEX[w.table as HistoryTable]],
          _id: String(w.id),
          retry_on_conflict: RETRY_ON_CONFLICT,
        },
      },
      {
        scripted_upsert: true,
        upsert: {},
        script: {
          lang: 'painless',
          source: GUARDED_REPLACE,
          params: {
            order: w.order,
            doc: w.removed
              ? { sourceOrder: w.order, deleted: true }
              : { ...w.fields, sourceOrder: w.order, deleted: false },
          },
        },
      },
    ]);
    let response: API.Bulk_Response;
    try {
      response = await this.client.bulk({ body });
    } catch (err) {
      throw new StoreError('STORE_WRITE_FAILED', `OpenSearch bulk request of ${writes.length} rows failed`, {
        cause: err,
      });
    }
    const failed = response.body.items.flatMap((item) => Object.values(item)).filter((r) => r.error != null);
    if (failed.length > 0) {
      throw new StoreError(
        'STORE_WRITE_FAILED',
        `OpenSearch rejected ${failed.length} of ${writes.length} writes: ${failed[0]?.error?.reason ?? failed[0]?.error?.type}`,
        { cause: failed },
      );
    }
    const noop = response.body.items.filter((item) => item.update?.result === 'noop').length;
    this.logger.debug({ rows: writes.length, stale: noop });
  }

  /** Makes every acknowledged write searchable now instead of within the refresh interval. */
  async refresh(): Promise<void> {
    await this.client.indices.refresh({ index: Object.values(this.indexes) });
  }

  async reset(): Promise<void> {
    await this.client.deleteByQuery({
      index: Object.values(this.indexes),
      conflicts: 'proceed',
      refresh: true,
      body: { query: { match_all: {} } },
    });
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
