import { type API, Client } from '@opensearch-project/opensearch';
import { z } from 'zod';
import type { Migration } from '../../definition/migration.js';
import type {
  DocumentQuery,
  DomainState,
  ProjectionDefinition,
  ReadModelHandle,
  Scalar,
  ViewDefinition,
  Where,
} from '../../definition/read-models.js';
import { composeDocument, composeFromRow } from '../../definition/view/compose.js';
import type { ViewPlan } from '../../definition/view/plan.js';
import type { AsyncRowReader } from '../../definition/view/reads.js';
import { aggregateRows } from '../../definition/view/rows.js';
import { runAsync } from '../../definition/view/run.js';
import type { NewDomainEvent } from '../../eventstore/ports.js';
import { AdapterError, StoreError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import { type AppliedMark, type DocumentProjection, partitionKey, type TopicPartition } from '../ports.js';
import { type VersionRef, versionName } from './document-versions.js';
import {
  applyProjectionBatch,
  checkDocument,
  composePage,
  keysetTerms,
  mirrorWrites,
  type ProjectionBackend,
  type ProjectionState,
  querySort,
  type ReadModelTopics,
  readModelOf,
  readModelTopics,
  type SortKey,
} from './read-model-documents.js';

/**
 * One read model of a migration on OpenSearch, whatever the definition (see MongoReadModel for
 * the model; the guarantees are the same, the mechanics OpenSearch's):
 *
 * - a view keeps a mirror index per captured table it reads, `<prefix>-<readModel>--<table>`,
 *   one document per row `{ key, sourceOrder, deleted, row }`, written by a painless scripted
 *   upsert that replaces the document only when the event's order is newer (removals leave a
 *   tombstone that keeps the order), and composes documents at query time;
 * - a projection keeps `<prefix>-<readModel>`, one document per id `{ key, live, doc, _seen }`,
 *   written with if_seq_no/if_primary_term (`create` for a new one) and redone on conflict.
 *
 * Visibility: `apply` resolves once the bulk request is acknowledged (the writes are in the
 * translog). Lookups by id (`get`, and the rows a view looks up by key) are realtime; searches
 * (`find`, a view's children and aggregates) see writes after the next refresh, at most the
 * indexes' refresh_interval (1 s) later. `refresh()` makes them visible at once (tests).
 */

/** Runs on the stored mirror (an empty one for a new id, thanks to scripted_upsert). */
const GUARDED_REPLACE = `
if (ctx._source.sourceOrder == null || ctx._source.sourceOrder.compareTo(params.order) < 0) {
  ctx._source.clear();
  ctx._source.putAll(params.doc);
} else {
  ctx.op = 'none';
}`;

/** Concurrent updates of one mirror (e.g. two group members after a rebalance) retry instead of failing. */
const RETRY_ON_CONFLICT = 3;
/** Rows per search request when a read wants every matching row (aggregates, unlimited children). */
const PAGE = 1000;
/** Beyond this OpenSearch refuses from+size; larger reads page with search_after. */
const MAX_WINDOW = 10_000;
const READ_CONCURRENCY = 16;

/**
 * Row and document fields are mapped from the first value seen, the same way for every
 * definition: strings as keywords (exact match, binary order, as compareValues has it; no date
 * guessing), every number as a double (integers are exact up to 2^53; larger ones arrive as
 * strings), booleans as booleans. Values too long for a keyword are kept but not indexed.
 */
type Mappings = NonNullable<API.Indices_Create_RequestBody['mappings']>;
const DYNAMIC: Pick<Mappings, 'date_detection' | 'numeric_detection' | 'dynamic_templates'> = {
  date_detection: false,
  numeric_detection: false,
  dynamic_templates: [
    { strings: { match_mapping_type: 'string', mapping: { type: 'keyword', ignore_above: 8191 } } },
    { integers: { match_mapping_type: 'long', mapping: { type: 'double' } } },
    { reals: { match_mapping_type: 'double', mapping: { type: 'double' } } },
  ],
};
const SETTINGS = { number_of_shards: 1, refresh_interval: '1s' };

function mirrorBody(): API.Indices_Create_RequestBody {
  return {
    settings: SETTINGS,
    mappings: {
      dynamic: 'strict',
      ...DYNAMIC,
      properties: {
        key: { type: 'keyword' },
        sourceOrder: { type: 'keyword' },
        deleted: { type: 'boolean' },
        row: { type: 'object', dynamic: true },
      },
    },
  };
}

function projectionBody(): API.Indices_Create_RequestBody {
  return {
    settings: SETTINGS,
    mappings: {
      dynamic: 'strict',
      ...DYNAMIC,
      properties: {
        key: { type: 'keyword' },
        live: { type: 'boolean' },
        doc: { type: 'object', dynamic: true },
        // Per-row markers: read whole, never searched, so not mapped (their keys are open-ended).
        _seen: { type: 'object', enabled: false },
      },
    },
  };
}

/** Index names are lower case: `<prefix>-<readModel>--<table>` for a view's mirror of a table. */
export const mirrorIndex = (prefix: string, readModel: string, table: string) =>
  `${prefix}-${readModel}--${table}`.toLowerCase();
/** `<prefix>-<readModel>` for a projection. */
export const projectionIndex = (prefix: string, readModel: string) => `${prefix}-${readModel}`.toLowerCase();

/**
 * Every read model's applied marks in one index beside theirs, so a cluster restored from an
 * older snapshot (or emptied) rewinds or loses them with the documents.
 */
export const appliedMarksIndex = (prefix: string) => `${prefix}--applied-marks`.toLowerCase();
const appliedMarkSource = z.object({ readModel: z.string(), next: z.string() });

export interface OpenSearchReadModelOptions {
  migration: Migration;
  readModel: string;
  /** A client shared by several read models (close() leaves it open); without it one is opened from `url`. */
  client?: Client;
  url?: string;
  /** Prefix of the index names (stores.opensearchIndexPrefix). */
  indexPrefix: string;
  logger: Logger;
  /**
   * Which version's indexes this instance uses (default 1: today's indexes). Version n ≥ 2
   * has its own indexes and applied marks; 'live' reads through the aliases that name the
   * live version (document-versions.ts) and is never written.
   */
  version?: VersionRef;
}

type Query = Record<string, unknown>;

const searchResponse = z.object({
  hits: z.object({
    hits: z.array(z.object({ _id: z.string(), _source: z.unknown(), sort: z.array(z.unknown()).optional() })),
  }),
});
const mgetResponse = z.object({
  docs: z.array(
    z.object({
      _id: z.string(),
      found: z.boolean().optional(),
      _source: z.unknown().optional(),
      _seq_no: z.number().optional(),
      _primary_term: z.number().optional(),
    }),
  ),
});
const mirrorSource = z.object({ deleted: z.boolean(), row: z.record(z.string(), z.unknown()).optional() });
const projectionSource = z.object({
  live: z.boolean(),
  doc: z.unknown(),
  _seen: z.record(z.string(), z.object({ o: z.string(), t: z.array(z.string()) })),
});
type BulkItem = NonNullable<API.Bulk_Response['body']['items'][number]['index']>;

function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new StoreError(
      'STORE_DOCUMENT_INVALID',
      `OpenSearch answer for ${where} is not what this store writes`,
      {
        cause: parsed.error,
      },
    );
  }
  return parsed.data;
}

async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AdapterError) throw err;
    throw new StoreError('STORE_READ_FAILED', `OpenSearch ${what} failed`, { cause: err });
  }
}

const NOTHING: Query = { bool: { must_not: [{ match_all: {} }] } };
const missing = (field: string): Query => ({ bool: { must_not: [{ exists: { field } }] } });

/** Equality as matchesWhere has it: a missing field is null, and null matches it. */
function equals(field: string, value: Scalar): Query {
  return value === null ? missing(field) : { term: { [field]: value } };
}

function whereQueries(prefix: string, where: Where): Query[] {
  return Object.entries(where).map(([name, value]) => {
    const field = `${prefix}.${name}`;
    if (!Array.isArray(value)) return equals(field, value as Scalar);
    const values = value as readonly Scalar[];
    const present = values.filter((v) => v !== null);
    const should: Query[] = present.length > 0 ? [{ terms: { [field]: present } }] : [];
    if (present.length < values.length) should.push(missing(field));
    return should.length === 0 ? NOTHING : { bool: { should, minimum_should_match: 1 } };
  });
}

function rangeQueries(prefix: string, range: DocumentQuery['range']): Query[] {
  return Object.entries(range ?? {}).map(([name, bounds]) => {
    const ops: Record<string, Scalar> = {};
    for (const op of ['gt', 'gte', 'lt', 'lte'] as const) {
      const value = bounds[op];
      if (value !== undefined) ops[op] = value;
    }
    return { range: { [`${prefix}.${name}`]: ops } };
  });
}

/** Keyset "after", nulls placed as compareRows places them (first in 'asc', last in 'desc'). */
function keysetQuery(prefix: string, sort: readonly SortKey[], after: readonly Scalar[]): Query {
  const path = (name: string) => `${prefix}.${name}`;
  const should = keysetTerms(sort, after).map(({ equal, beyond }) => {
    const field = path(beyond.field);
    const past: Query =
      beyond.value === null
        ? beyond.op === 'gt'
          ? { exists: { field } }
          : NOTHING
        : beyond.op === 'gt'
          ? { range: { [field]: { gt: beyond.value } } }
          : {
              bool: {
                should: [{ range: { [field]: { lt: beyond.value } } }, missing(field)],
                minimum_should_match: 1,
              },
            };
    return { bool: { filter: [...equal.map((e) => equals(path(e.field), e.value)), past] } };
  });
  return { bool: { should, minimum_should_match: 1 } };
}

/** Sort clauses with missing values where compareRows puts null; `key` last so the order is total. */
function sortClauses(prefix: string, sort: readonly SortKey[]): Record<string, unknown>[] {
  return [
    ...sort.map((k) => ({
      [`${prefix}.${k.field}`]: {
        order: k.direction,
        missing: k.direction === 'asc' ? '_first' : '_last',
        unmapped_type: 'keyword',
      },
    })),
    { key: { order: 'asc' } },
  ];
}

function failedItems(response: API.Bulk_Response, ignore: (item: BulkItem) => boolean): BulkItem[] {
  return response.body.items
    .flatMap((item) => Object.values(item) as BulkItem[])
    .filter((r) => r.error != null && !ignore(r));
}

interface Strategy {
  indexes(): string[];
  migrate(): Promise<void>;
  apply(events: readonly NewDomainEvent[]): Promise<void>;
  handle(): ReadModelHandle;
}

abstract class Base {
  constructor(protected readonly client: Client) {}

  protected async ensureIndex(index: string, body: API.Indices_Create_RequestBody): Promise<void> {
    if ((await this.client.indices.exists({ index })).body) return;
    try {
      await this.client.indices.create({ index, body });
    } catch (err) {
      // Another group member may have created it in between.
      if (!(await this.client.indices.exists({ index })).body) {
        throw new StoreError('STORE_MIGRATION_FAILED', `could not create OpenSearch index ${index}`, {
          cause: err,
        });
      }
    }
  }

  protected async bulk(body: Record<string, unknown>[], what: string): Promise<API.Bulk_Response> {
    try {
      return await this.client.bulk({ body });
    } catch (err) {
      throw new StoreError('STORE_WRITE_FAILED', `OpenSearch bulk request (${what}) failed`, { cause: err });
    }
  }

  /** Sources of the found ids, realtime (mget reads the translog, not the last refresh). */
  protected async mget(index: string, ids: readonly string[]) {
    if (ids.length === 0) return [];
    const response = await call(`mget ${index}`, () => this.client.mget({ index, body: { ids: [...ids] } }));
    return parse(mgetResponse, response.body, index).docs.filter((d) => d.found === true);
  }

  /**
   * Sources of the hits of `query` in `sort` order, at most `limit` (every hit when absent):
   * one search when the window allows it, else pages chained with search_after.
   */
  protected async search(
    index: string,
    query: Query,
    sort: Record<string, unknown>[],
    limit: number | undefined,
  ): Promise<unknown[]> {
    const out: unknown[] = [];
    let after: unknown[] | undefined;
    for (;;) {
      const left = limit === undefined ? PAGE : limit - out.length;
      const size = limit !== undefined && limit <= MAX_WINDOW ? left : Math.min(left, PAGE);
      if (size <= 0) return out;
      const response = await call(`search ${index}`, () =>
        this.client.search({
          index,
          ignore_unavailable: true,
          body: {
            size,
            query,
            sort,
            track_total_hits: false,
            ...(after === undefined ? {} : { search_after: after }),
          } as API.Search_RequestBody,
        }),
      );
      const hits = parse(searchResponse, response.body, index).hits.hits;
      out.push(...hits.map((h) => h._source));
      const last = hits[hits.length - 1];
      if (hits.length < size || last?.sort === undefined) return out;
      after = last.sort;
    }
  }
}

class OpenSearchView extends Base implements Strategy {
  private readonly schema: ViewDefinition['schema'];

  constructor(
    client: Client,
    private readonly prefix: string,
    private readonly migration: Migration,
    private readonly plan: ViewPlan,
    private readonly topics: ReadModelTopics,
    private readonly logger: Logger,
    /** The read model's name with its version's suffix. */
    private readonly storage: string,
  ) {
    super(client);
    this.schema = plan.view.schema;
  }

  private index(table: string): string {
    return mirrorIndex(this.prefix, this.storage, table);
  }

  indexes(): string[] {
    return this.topics.tables.map((t) => this.index(t));
  }

  async migrate(): Promise<void> {
    for (const index of this.indexes()) await this.ensureIndex(index, mirrorBody());
  }

  async apply(events: readonly NewDomainEvent[]): Promise<void> {
    const writes = mirrorWrites(this.migration, this.topics, events);
    if (writes.length === 0) return;
    const body = writes.flatMap((w) => [
      { update: { _index: this.index(w.table), _id: w.key, retry_on_conflict: RETRY_ON_CONFLICT } },
      {
        scripted_upsert: true,
        upsert: {},
        script: {
          lang: 'painless',
          source: GUARDED_REPLACE,
          params: {
            order: w.order,
            doc:
              w.state === null
                ? { key: w.key, sourceOrder: w.order, deleted: true }
                : { key: w.key, sourceOrder: w.order, deleted: false, row: w.state },
          },
        },
      },
    ]);
    const response = await this.bulk(body, `${writes.length} rows of ${this.plan.name}`);
    const failed = failedItems(response, () => false);
    if (failed.length > 0) {
      throw new StoreError(
        'STORE_WRITE_FAILED',
        `OpenSearch rejected ${failed.length} of ${writes.length} row writes of ${this.plan.name}: ${failed[0]?.error?.reason ?? failed[0]?.error?.type}`,
        { cause: failed },
      );
    }
    const stale = response.body.items.filter((item) => item.update?.result === 'noop').length;
    this.logger.debug({ rows: writes.length, stale });
  }

  private rows(
    table: string,
    query: Query,
    sort: readonly SortKey[],
    limit: number | undefined,
  ): Promise<DomainState[]> {
    if (limit === 0) return Promise.resolve([]);
    const index = this.index(table);
    return this.search(
      index,
      { bool: { filter: [{ term: { deleted: false } }, query] } },
      sortClauses('row', sort),
      limit,
    ).then((sources) => sources.map((s) => parse(mirrorSource, s, index).row ?? {}));
  }

  private readonly reader: AsyncRowReader = {
    get: async (table, key) => {
      const [found] = await this.mget(this.index(table), [key]);
      if (found === undefined) return null;
      const source = parse(mirrorSource, found._source, `${this.index(table)}/${key}`);
      return source.deleted ? null : (source.row ?? null);
    },
    find: (table, where, orderBy, limit) =>
      this.rows(
        table,
        { bool: { filter: whereQueries('row', where) } },
        (orderBy ?? []).map((o) => ({ field: o.field, direction: o.direction ?? 'asc' })),
        limit,
      ),
    aggregate: async (table, where, fn, field, scale) =>
      aggregateRows(
        await this.rows(table, { bool: { filter: whereQueries('row', where) } }, [], undefined),
        fn,
        field,
        scale,
      ),
  };

  private document(doc: unknown, where: string): unknown {
    return checkDocument(this.schema, doc, `${this.plan.name}/${where}`);
  }

  handle(): ReadModelHandle {
    const { plan } = this;
    const rule = this.migration.ruleOf(plan.root.table);
    return {
      get: async (key) => {
        const doc = await call(`compose ${plan.name}/${key}`, () =>
          runAsync(composeDocument(plan, key), this.reader),
        );
        return doc === null ? null : this.document(doc, key);
      },
      find: async (query) => {
        const sort = querySort(query);
        if (query.limit === 0) return [];
        const filter = [...whereQueries('row', query.where ?? {}), ...rangeQueries('row', query.range)];
        if (query.after !== undefined && sort.length > 0) filter.push(keysetQuery('row', sort, query.after));
        // Rows equal on the query's order come in row-key order (sortClauses ends with `key`).
        return composePage(
          query.limit,
          (want) => this.rows(plan.root.table, { bool: { filter } }, sort, want),
          async (row) => {
            const doc = await call(`compose ${plan.name}`, () =>
              runAsync(composeFromRow(plan, row), this.reader),
            );
            return doc === null ? null : this.document(doc, rule?.rowKey(row) ?? plan.root.table);
          },
          READ_CONCURRENCY,
        );
      },
    };
  }
}

class OpenSearchProjection extends Base implements Strategy, ProjectionBackend {
  private readonly index: string;

  constructor(
    client: Client,
    prefix: string,
    private readonly migration: Migration,
    private readonly projection: ProjectionDefinition,
    private readonly logger: Logger,
    storage: string,
  ) {
    super(client);
    this.index = projectionIndex(prefix, storage);
  }

  indexes(): string[] {
    return [this.index];
  }

  migrate(): Promise<void> {
    return this.ensureIndex(this.index, projectionBody());
  }

  apply(events: readonly NewDomainEvent[]): Promise<void> {
    return applyProjectionBatch(this.migration, this.projection, this, events);
  }

  async load(ids: readonly string[]): Promise<Map<string, { state: ProjectionState; version: unknown }>> {
    const out = new Map<string, { state: ProjectionState; version: unknown }>();
    for (const d of await this.mget(this.index, ids)) {
      const source = parse(projectionSource, d._source, `${this.index}/${d._id}`);
      out.set(d._id, {
        state: { doc: source.live ? source.doc : null, seen: source._seen },
        version: { seqNo: d._seq_no, primaryTerm: d._primary_term },
      });
    }
    return out;
  }

  /** `create` for a new document, `index` guarded by the sequence number read otherwise; 409 = lost the race. */
  async save(
    writes: readonly { id: string; state: ProjectionState; version: unknown }[],
  ): Promise<Set<string>> {
    const body = writes.flatMap((w) => {
      const version = w.version as { seqNo?: number; primaryTerm?: number } | undefined;
      const action =
        version?.seqNo === undefined || version.primaryTerm === undefined
          ? { create: { _index: this.index, _id: w.id } }
          : {
              index: {
                _index: this.index,
                _id: w.id,
                if_seq_no: version.seqNo,
                if_primary_term: version.primaryTerm,
              },
            };
      return [action, { key: w.id, live: w.state.doc !== null, doc: w.state.doc, _seen: w.state.seen }];
    });
    const response = await this.bulk(body, `${writes.length} documents of ${this.projection.name}`);
    const failed = failedItems(response, (item) => item.status === 409);
    if (failed.length > 0) {
      throw new StoreError(
        'STORE_WRITE_FAILED',
        `OpenSearch rejected ${failed.length} of ${writes.length} document writes of ${this.projection.name}: ${failed[0]?.error?.reason ?? failed[0]?.error?.type}`,
        { cause: failed },
      );
    }
    const lost = new Set<string>();
    response.body.items.forEach((item, i) => {
      const result = Object.values(item)[0];
      if (result?.status === 409) lost.add(writes[i]?.id as string);
    });
    this.logger.debug({ documents: writes.length, conflicts: lost.size });
    return lost;
  }

  handle(): ReadModelHandle {
    return {
      get: async (key) => {
        const [found] = await this.mget(this.index, [key]);
        if (found === undefined) return null;
        const source = parse(projectionSource, found._source, `${this.index}/${key}`);
        return source.live ? source.doc : null;
      },
      // One mget for every key: a get each cost a round trip each.
      getMany: async (keys) => {
        const docs = new Map<string, unknown>();
        for (const found of await this.mget(this.index, keys)) {
          const source = parse(projectionSource, found._source, `${this.index}/${found._id}`);
          if (source.live) docs.set(found._id, source.doc);
        }
        return keys.map((key) => docs.get(key) ?? null);
      },
      find: async (query) => {
        const sort = querySort(query);
        if (query.limit === 0) return [];
        const filter = [
          { term: { live: true } },
          ...whereQueries('doc', query.where ?? {}),
          ...rangeQueries('doc', query.range),
        ];
        if (query.after !== undefined && sort.length > 0) filter.push(keysetQuery('doc', sort, query.after));
        // Documents equal on the query's order come in id order (sortClauses ends with `key`).
        const sources = await this.search(
          this.index,
          { bool: { filter } },
          sortClauses('doc', sort),
          query.limit,
        );
        return sources.map((s) => parse(projectionSource, s, this.index).doc);
      },
    };
  }
}

/**
 * A read model of a migration on OpenSearch, as a projector feeds it (DocumentProjection) and
 * as endpoints read it (`handle()`).
 */
export class OpenSearchReadModel implements DocumentProjection {
  /** The stored version's name (see MongoReadModel.name); `<name>__live` for the reading instance. */
  readonly name: string;
  /** The read model this instance stores a version of. */
  readonly readModel: string;
  readonly version: VersionRef;
  readonly streamTypes: readonly string[];
  readonly handles: ReadonlySet<string>;
  private readonly client: Client;
  private readonly ownsClient: boolean;
  private readonly strategy: Strategy;
  private readonly marksIndex: string;

  constructor(options: OpenSearchReadModelOptions) {
    const { migration } = options;
    const model = readModelOf(migration, options.readModel);
    const topics = readModelTopics(migration, model);
    this.version = options.version ?? 1;
    this.readModel = model.name;
    this.name = versionName(model.name, this.version);
    this.streamTypes = topics.streamTypes;
    this.handles = topics.handles;
    if (options.client === undefined && options.url === undefined) {
      throw new StoreError(
        'STORE_CONFIG_INVALID',
        `OpenSearch read model ${model.name}: give a client or a url`,
      );
    }
    this.ownsClient = options.client === undefined;
    this.client = options.client ?? new Client({ node: options.url as string });
    this.marksIndex = appliedMarksIndex(options.indexPrefix);
    const logger = options.logger.child({ component: 'opensearch-read-model', readModel: this.name });
    if (model.kind === 'view') {
      const plan = migration.viewPlans.get(model.name);
      if (plan === undefined)
        throw new StoreError('READ_MODEL_UNKNOWN', `view ${model.name} has no compiled plan`);
      this.strategy = new OpenSearchView(
        this.client,
        options.indexPrefix,
        migration,
        plan,
        topics,
        logger,
        this.name,
      );
    } else {
      this.strategy = new OpenSearchProjection(
        this.client,
        options.indexPrefix,
        migration,
        model,
        logger,
        this.name,
      );
    }
  }

  /** The indexes this read model writes. */
  indexes(): string[] {
    return this.strategy.indexes();
  }

  /** Creates each missing index; existing indexes are left as they are. */
  async migrate(): Promise<void> {
    await this.strategy.migrate();
    if ((await this.client.indices.exists({ index: this.marksIndex })).body) return;
    await this.client.indices
      .create({
        index: this.marksIndex,
        body: {
          settings: { number_of_shards: 1 },
          mappings: {
            properties: { readModel: { type: 'keyword' }, next: { type: 'keyword', index: false } },
          },
        },
      })
      .catch(async (err: unknown) => {
        // Another read model's projector may have created it in between.
        if ((await this.client.indices.exists({ index: this.marksIndex })).body) return;
        throw new StoreError(
          'STORE_MIGRATION_FAILED',
          `could not create OpenSearch index ${this.marksIndex}`,
          {
            cause: err,
          },
        );
      });
  }

  private markId(p: TopicPartition): string {
    return `${this.name}|${partitionKey(p)}`;
  }

  async appliedMarks(partitions: readonly TopicPartition[]): Promise<Map<string, bigint>> {
    const marks = new Map<string, bigint>();
    if (partitions.length === 0) return marks;
    const ids = new Map(partitions.map((p) => [this.markId(p), partitionKey(p)]));
    // mget is realtime: a mark written a moment ago is seen before any refresh. Without the
    // marks index it still answers 200, each id with an index_not_found error instead of
    // `found` (no marks): no existence check first, a request less before every batch.
    const response = await call(`read applied marks of ${this.name}`, () =>
      this.client.mget({ index: this.marksIndex, body: { ids: [...ids.keys()] } }),
    );
    for (const doc of parse(mgetResponse, response.body, this.marksIndex).docs) {
      const key = ids.get(doc._id);
      if (doc.found !== true || key === undefined) continue;
      marks.set(key, BigInt(parse(appliedMarkSource, doc._source, this.marksIndex).next));
    }
    return marks;
  }

  async markApplied(partition: TopicPartition, next: bigint): Promise<void> {
    try {
      await this.client.index({
        index: this.marksIndex,
        id: this.markId(partition),
        body: { readModel: this.name, next: String(next) },
      });
    } catch (err) {
      throw new StoreError('STORE_WRITE_FAILED', `OpenSearch applied mark of ${this.name} failed`, {
        cause: err,
      });
    }
  }

  /** The marks of several partitions in one bulk request (a projector applies their batches together). */
  async markAppliedMany(marks: readonly AppliedMark[]): Promise<void> {
    if (marks.length === 0) return;
    const body = marks.flatMap(({ partition, next }) => [
      { index: { _index: this.marksIndex, _id: this.markId(partition) } },
      { readModel: this.name, next: String(next) },
    ]);
    let response: API.Bulk_Response;
    try {
      response = await this.client.bulk({ body });
    } catch (err) {
      throw new StoreError('STORE_WRITE_FAILED', `OpenSearch applied marks of ${this.name} failed`, {
        cause: err,
      });
    }
    const failed = failedItems(response, () => false);
    if (failed.length > 0) {
      throw new StoreError(
        'STORE_WRITE_FAILED',
        `OpenSearch rejected ${failed.length} of ${marks.length} applied marks of ${this.name}: ${failed[0]?.error?.reason ?? failed[0]?.error?.type}`,
        { cause: failed },
      );
    }
  }

  apply(events: readonly NewDomainEvent[]): Promise<void> {
    return this.strategy.apply(events);
  }

  /** Makes every acknowledged write searchable now instead of within the refresh interval. */
  async refresh(): Promise<void> {
    await call('refresh', () =>
      this.client.indices.refresh({ index: this.strategy.indexes(), ignore_unavailable: true }),
    );
  }

  async reset(): Promise<void> {
    await this.client.deleteByQuery({
      index: this.strategy.indexes(),
      conflicts: 'proceed',
      refresh: true,
      ignore_unavailable: true,
      body: { query: { match_all: {} } },
    });
    await this.client.deleteByQuery({
      index: this.marksIndex,
      conflicts: 'proceed',
      refresh: true,
      ignore_unavailable: true,
      body: { query: { term: { readModel: this.name } } },
    });
  }

  handle(): ReadModelHandle {
    return this.strategy.handle();
  }

  async close(): Promise<void> {
    if (this.ownsClient) await this.client.close();
  }
}
