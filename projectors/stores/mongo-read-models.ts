import {
  type AnyBulkWriteOperation,
  type Collection,
  type Db,
  type Document,
  type Filter,
  MongoBulkWriteError,
  MongoClient,
  type Sort,
} from 'mongodb';
import type { Migration } from '../../definition/migration.js';
import type {
  DocumentQuery,
  DomainState,
  ProjectionDefinition,
  Range,
  ReadModelHandle,
  Scalar,
  ViewDefinition,
  Where,
} from '../../definition/read-models.js';
import { composeDocument, composeFromRow } from '../../definition/view/compose.js';
import { affectedKeys } from '../../definition/view/fanout.js';
import type { ViewPlan } from '../../definition/view/plan.js';
import type { AsyncRowReader } from '../../definition/view/reads.js';
import { aggregateRows } from '../../definition/view/rows.js';
import { runAsync } from '../../definition/view/run.js';
import type { NewDomainEvent } from '../../eventstore/ports.js';
import { AdapterError, StoreError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import {
  type AppliedMark,
  type DocumentProjection,
  partitionKey,
  type TopicPartition,
  type TouchedDocument,
} from '../ports.js';
import { versionName } from './document-versions.js';
import {
  applyProjectionBatch,
  checkDocument,
  composePage,
  eventsByDocument,
  keysetTerms,
  type MirrorWrite,
  mapLimit,
  mirrorWrites,
  type ProjectionBackend,
  type ProjectionState,
  querySort,
  type ReadModelTopics,
  readModelOf,
  readModelTopics,
  type SeenRows,
  type SortKey,
} from './read-model-documents.js';

/**
 * One read model of a migration on MongoDB, whatever the definition: a view keeps a mirror
 * document per captured row it reads and composes its documents at query time; a projection
 * keeps one document per id, evolved by the user's code.
 *
 * Views. Mirror `<readModel>__<table>`: `{ _id: rowKey, _order, _deleted, row }`. A batch reads
 * the stored `_order` of its rows, skips the rows stored as new or newer, inserts the new ones
 * and replaces the others with a filter on the `_order` it read (compare and set). A row
 * another writer changed in between fails that filter, the upsert collides on `_id` (11000)
 * and the row is read and decided again. Removals leave a tombstone that keeps `_order`, so a
 * late older create cannot bring the row back.
 * Redelivered or reordered batches therefore change nothing, and since documents are composed
 * from the mirrors when read, renaming a looked-up row is one write, whatever reads it.
 *
 * Projections. Collection `<readModel>`: `{ _id, doc, _seen, _v }`, written with optimistic
 * concurrency on `_v` (the same duplicate-key trick: a replace upsert filtered on the version
 * read collides when another writer moved it) and redone from the new state when it lost.
 */

/** Mirror of one captured row. */
interface MirrorDocument {
  _id: string;
  _order: string;
  _deleted: boolean;
  row?: DomainState;
}

interface ProjectionDocument {
  _id: string;
  doc: unknown;
  _seen: SeenRows;
  _v: number;
}

const DUPLICATE_KEY = 11000;
/** Rounds of re-reading rows another writer changed between a read and a write. */
const MAX_WRITE_ROUNDS = 20;
/**
 * `{ _id, _order }` as one unique index (unique since `_id` is): mirror writes are guarded by
 * an exact match on both, which a MongoDB-wire server without query planning (the stack's
 * in-memory one) answers from this index instead of a collection scan.
 */
const ORDER_INDEX = { key: { _id: 1, _order: 1 }, name: 'cqrs_row_order', unique: true } as const;
/** The same for a projection document's version guard `{ _id, _v }`. */
const VERSION_INDEX = { key: { _id: 1, _v: 1 }, name: 'cqrs_document_version', unique: true } as const;
/** Reads in flight per request (the driver pools connections; this keeps one request from taking all). */
const READ_CONCURRENCY = 16;
/** Document ids a projection's load asks for in one find. */
const LOAD_CHUNK = 1000;

export interface MongoReadModelOptions {
  migration: Migration;
  /** Name of the read model (one of migration.readModels). */
  readModel: string;
  /** A client shared by several read models (close() leaves it open); without it one is opened from `url`. */
  client?: MongoClient;
  url?: string;
  database: string;
  logger: Logger;
  /**
   * Which version of the read model this instance stores (default 1: today's collections).
   * Version n ≥ 2 keeps its own collections and applied marks (document-versions.ts).
   */
  version?: number;
}

/**
 * Every read model's applied marks in one collection of the same database, so losing the
 * database (or restoring an older backup of it) loses or rewinds them with the documents.
 */
export const APPLIED_MARKS_COLLECTION = 'cqrs_applied_marks';

interface AppliedMarkDocument {
  _id: string;
  readModel: string;
  /** Next offset as a decimal string: offsets are 64-bit. */
  next: string;
}

/** The collection holding a view's mirror of `table`. */
export const mirrorCollection = (readModel: string, table: string) => `${readModel}__${table}`;

/** Store calls wrapped so every failure is a StoreError with the operation named. */
async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AdapterError) throw err;
    throw new StoreError('STORE_READ_FAILED', `MongoDB ${what} failed`, { cause: err });
  }
}

/** Ids a find by id asks for at once: bounded so that one reply always holds every match. */
const IDS_PER_FIND = 1000;

/**
 * The small documents (marks, stored orders: `projection` keeps them small) of `ids`, by the
 * find command itself, one reply per IDS_PER_FIND ids. A batch reads them before each write,
 * and the driver's cursor cost twice the CPU of the command (sessions, cursor state) and a
 * second round trip past 101 matches (its default first batch). Each id matches one document
 * at most, so a reply of IDS_PER_FIND of them stays far below the 16 MB that would cut it.
 */
async function findSmallByIds<T>(
  db: Db,
  collection: string,
  ids: readonly string[],
  projection?: Document,
): Promise<T[]> {
  const replies = [];
  for (let i = 0; i < ids.length; i += IDS_PER_FIND) {
    const chunk = ids.slice(i, i + IDS_PER_FIND);
    replies.push(
      db.command({
        find: collection,
        filter: { _id: { $in: chunk } },
        ...(projection === undefined ? {} : { projection }),
        batchSize: chunk.length,
        singleBatch: true,
      }),
    );
  }
  const out: T[] = [];
  for (const reply of await Promise.all(replies)) {
    const batch: unknown = reply.cursor?.firstBatch;
    if (!Array.isArray(batch) || (reply.cursor.id !== 0 && String(reply.cursor.id) !== '0'))
      throw new StoreError('STORE_READ_FAILED', `MongoDB find in ${collection} answered no single batch`);
    for (const doc of batch) out.push(doc as T);
  }
  return out;
}

/** `{ <prefix>.<field>: value | { $in } }` for a Where; a missing field matches null, as matchesWhere has it. */
function whereFilters(prefix: string, where: Where): Filter<Document>[] {
  return Object.entries(where).map(([field, value]) =>
    Array.isArray(value)
      ? { [`${prefix}.${field}`]: { $in: [...value] } }
      : { [`${prefix}.${field}`]: value },
  );
}

function rangeFilters(prefix: string, range: DocumentQuery['range']): Filter<Document>[] {
  return Object.entries(range ?? {}).map(([field, bounds]: [string, Range]) => {
    const ops: Record<string, Scalar> = {};
    for (const op of ['gt', 'gte', 'lt', 'lte'] as const) {
      const value = bounds[op];
      if (value !== undefined) ops[`$${op}`] = value;
    }
    return { [`${prefix}.${field}`]: ops };
  });
}

/** Matches nothing (an `$in` of no values), for "nothing sorts beyond this". */
const NOTHING: Filter<Document> = { _id: { $in: [] } };

/**
 * Keyset "after" as a filter, with nulls placed as compareRows places them: first in 'asc'
 * (so every non-null is beyond a null), last in 'desc' (so nothing is beyond a null, and
 * nulls are beyond every value).
 */
function keysetFilter(prefix: string, sort: readonly SortKey[], after: readonly Scalar[]): Filter<Document> {
  const path = (field: string) => `${prefix}.${field}`;
  return {
    $or: keysetTerms(sort, after).map(({ equal, beyond }) => {
      const field = path(beyond.field);
      const past: Filter<Document> =
        beyond.value === null
          ? beyond.op === 'gt'
            ? { [field]: { $ne: null } }
            : NOTHING
          : beyond.op === 'gt'
            ? { [field]: { $gt: beyond.value } }
            : { $or: [{ [field]: { $lt: beyond.value } }, { [field]: null }] };
      return { $and: [...equal.map((e) => ({ [path(e.field)]: e.value })), past] };
    }),
  };
}

function sortOf(prefix: string, sort: readonly SortKey[], tieBreak: readonly string[]): Sort {
  const keys: [string, 1 | -1][] = sort.map((k) => [`${prefix}.${k.field}`, k.direction === 'asc' ? 1 : -1]);
  for (const field of tieBreak) if (!keys.some(([k]) => k === field)) keys.push([field, 1]);
  return keys;
}

function and(filters: readonly Filter<Document>[]): Filter<Document> {
  return filters.length === 0 ? {} : { $and: [...filters] };
}

/** Writes that answered 11000 are "someone else got there first"; anything else fails the batch. */
function duplicateKeyIndexes(err: unknown, collection: string, ops: number): number[] {
  if (!(err instanceof MongoBulkWriteError) || err.writeConcernError !== undefined) {
    throw new StoreError('STORE_WRITE_FAILED', `MongoDB bulk write to ${collection} failed`, { cause: err });
  }
  const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
  const failed = errors.filter((e) => e.code !== DUPLICATE_KEY);
  if (failed.length > 0) {
    throw new StoreError(
      'STORE_WRITE_FAILED',
      `MongoDB rejected ${failed.length} of ${ops} writes to ${collection}: ${failed[0]?.errmsg}`,
      { cause: err },
    );
  }
  return errors.map((e) => e.index);
}

interface Strategy {
  migrate(): Promise<void>;
  /** Keys of the documents a batch will address, read before its writes. */
  addressedBy(events: readonly NewDomainEvent[]): Promise<string[]>;
  /** `touched` (when given) receives the key of every document the batch addresses, changed or not. */
  apply(events: readonly NewDomainEvent[], touched: Set<string> | null): Promise<void>;
  reset(): Promise<void>;
  handle(): ReadModelHandle;
}

class MongoView implements Strategy {
  private readonly schema: ViewDefinition['schema'];

  constructor(
    private readonly db: Db,
    private readonly migration: Migration,
    private readonly plan: ViewPlan,
    private readonly topics: ReadModelTopics,
    private readonly logger: Logger,
    /** Base of the mirror collections' names: the read model's name, with its version's suffix. */
    private readonly storage: string,
  ) {
    this.schema = plan.view.schema;
  }

  private mirror(table: string): Collection<MirrorDocument> {
    return this.db.collection<MirrorDocument>(mirrorCollection(this.storage, table));
  }

  async migrate(): Promise<void> {
    const byTable = new Map<string, (readonly string[])[]>();
    for (const index of this.plan.indexes) {
      byTable.set(index.table, [...(byTable.get(index.table) ?? []), index.fields]);
    }
    for (const table of this.topics.tables) {
      const collection = mirrorCollection(this.storage, table);
      const indexes = byTable.get(table) ?? [];
      await call(`create indexes on ${collection}`, () =>
        this.mirror(table).createIndexes([
          ORDER_INDEX,
          ...indexes.map((fields) => ({ key: Object.fromEntries(fields.map((f) => [`row.${f}`, 1])) })),
        ]),
      );
    }
  }

  async addressedBy(events: readonly NewDomainEvent[]): Promise<string[]> {
    const keys = new Set<string>();
    const fanOut = async (table: string, state: DomainState | null) => {
      if (state === null) return;
      for (const key of await runAsync(affectedKeys(this.plan, table, state), this.reader)) keys.add(key);
    };
    await mapLimit(mirrorWrites(this.migration, this.topics, events), READ_CONCURRENCY, async (w) => {
      await fanOut(w.table, await this.reader.get(w.table, w.key));
      await fanOut(w.table, w.state);
    });
    return [...keys];
  }

  async apply(events: readonly NewDomainEvent[], touched: Set<string> | null): Promise<void> {
    const byTable = new Map<string, MirrorWrite[]>();
    const writes = mirrorWrites(this.migration, this.topics, events);
    // Documents that read a row as it was (before its mirror changes) and as it will be (after).
    const fanOut = async (table: string, state: DomainState | null) => {
      if (touched === null || state === null) return;
      for (const key of await runAsync(affectedKeys(this.plan, table, state), this.reader)) touched.add(key);
    };
    if (touched !== null)
      await mapLimit(writes, READ_CONCURRENCY, async (w) =>
        fanOut(w.table, await this.reader.get(w.table, w.key)),
      );
    for (const w of writes) byTable.set(w.table, [...(byTable.get(w.table) ?? []), w]);
    await Promise.all([...byTable].map(([table, rows]) => this.write(table, rows)));
    if (touched !== null) await mapLimit(writes, READ_CONCURRENCY, (w) => fanOut(w.table, w.state));
  }

  /**
   * Writes the rows whose mirror is older than the write: the stored orders are read first
   * (by `_id`), then each row is inserted (new) or replaced only if its order is still the
   * one read (`{ _id, _order }`, an exact match the ORDER_INDEX answers; a range filter on
   * `_order` makes some MongoDB-wire servers scan the whole collection per row). A row another
   * writer changed in between fails its filter, its upsert collides on `_id` (11000), and it
   * is read and decided again.
   */
  private async write(table: string, rows: readonly MirrorWrite[]): Promise<void> {
    const collection = mirrorCollection(this.storage, table);
    let pending = rows;
    for (let round = 0; pending.length > 0; round++) {
      if (round === MAX_WRITE_ROUNDS) {
        throw new StoreError(
          'STORE_WRITE_CONFLICT',
          `MongoDB ${collection}: ${pending.length} row(s) still changed concurrently after ${round} attempts`,
          {
            hint: 'the batch is redelivered; if it persists, check for a runaway writer on the same read model',
          },
        );
      }
      const keys = pending.map((w) => w.key);
      const found = await call(`read orders in ${collection}`, () =>
        findSmallByIds<Pick<MirrorDocument, '_id' | '_order'>>(this.db, collection, keys, { _order: 1 }),
      );
      const stored = new Map(found.map((d) => [d._id, d._order]));
      const ops: AnyBulkWriteOperation<MirrorDocument>[] = [];
      const written: MirrorWrite[] = [];
      for (const w of pending) {
        const current = stored.get(w.key);
        // As new or newer already (a redelivery, or a later event applied first): nothing to do.
        if (current !== undefined && current >= w.order) continue;
        const replacement: Omit<MirrorDocument, '_id'> =
          w.state === null
            ? { _order: w.order, _deleted: true }
            : { _order: w.order, _deleted: false, row: w.state };
        ops.push(
          current === undefined
            ? { insertOne: { document: { _id: w.key, ...replacement } } }
            : { replaceOne: { filter: { _id: w.key, _order: current }, replacement, upsert: true } },
        );
        written.push(w);
      }
      if (ops.length === 0) return;
      let lost: number[] = [];
      try {
        await this.mirror(table).bulkWrite(ops, { ordered: false });
      } catch (err) {
        lost = duplicateKeyIndexes(err, collection, ops.length);
      }
      this.logger.debug({ collection, rows: ops.length, raced: lost.length });
      pending = lost.map((i) => written[i]).filter((w): w is MirrorWrite => w !== undefined);
    }
  }

  async reset(): Promise<void> {
    await Promise.all(this.topics.tables.map((t) => this.mirror(t).deleteMany({})));
  }

  /** The engine's reads, answered from the mirrors (tombstones are not rows). */
  private readonly reader: AsyncRowReader = {
    get: (table, key) =>
      call(`get ${table}/${key}`, async () => {
        const found = await this.mirror(table).findOne({ _id: key });
        return found === null || found._deleted ? null : (found.row ?? null);
      }),
    find: (table, where, orderBy, limit) =>
      call(`find in ${table}`, () => this.rows(table, and(whereFilters('row', where)), orderBy ?? [], limit)),
    aggregate: (table, where, fn, field, scale) =>
      call(`aggregate over ${table}`, async () =>
        aggregateRows(
          await this.rows(table, and(whereFilters('row', where)), [], undefined),
          fn,
          field,
          scale,
        ),
      ),
  };

  private async rows(
    table: string,
    filter: Filter<Document>,
    orderBy: readonly { field: string; direction?: 'asc' | 'desc' }[],
    limit: number | undefined,
    tieBreak: readonly string[] = [],
  ): Promise<DomainState[]> {
    if (limit === 0) return [];
    const sort = sortOf(
      'row',
      orderBy.map((o) => ({ field: o.field, direction: o.direction ?? 'asc' })),
      tieBreak,
    );
    let cursor = this.mirror(table)
      .find({ $and: [filter, { _deleted: false }] } as Filter<MirrorDocument>, { projection: { row: 1 } })
      .sort(sort);
    if (limit !== undefined) cursor = cursor.limit(limit);
    return (await cursor.toArray()).map((d) => d.row ?? {});
  }

  private document(doc: unknown, where: string): unknown {
    return checkDocument(this.schema, doc, `${this.plan.name}/${where}`);
  }

  handle(): ReadModelHandle {
    const { plan } = this;
    const rule = this.migration.ruleOf(plan.root.table);
    return {
      get: async (key) => {
        const doc = await runAsync(composeDocument(plan, key), this.reader);
        return doc === null ? null : this.document(doc, key);
      },
      find: async (query) => {
        const sort = querySort(query);
        if (query.limit === 0) return [];
        const filters = [...whereFilters('row', query.where ?? {}), ...rangeFilters('row', query.range)];
        if (query.after !== undefined && sort.length > 0)
          filters.push(keysetFilter('row', sort, query.after));
        // Rows equal on the query's order come in row-key order, as on every store.
        const docs = await composePage(
          query.limit,
          (want) =>
            call(`find in ${plan.root.table}`, () =>
              this.rows(plan.root.table, and(filters), sort, want, ['_id']),
            ),
          async (row) => {
            const doc = await runAsync(composeFromRow(plan, row), this.reader);
            return doc === null ? null : this.document(doc, rule?.rowKey(row) ?? plan.root.table);
          },
          READ_CONCURRENCY,
        );
        return docs;
      },
    };
  }
}

class MongoProjection implements Strategy, ProjectionBackend {
  private readonly collection: Collection<ProjectionDocument>;

  constructor(
    db: Db,
    private readonly migration: Migration,
    private readonly projection: ProjectionDefinition,
    private readonly logger: Logger,
    storage: string,
  ) {
    this.collection = db.collection<ProjectionDocument>(storage);
  }

  async migrate(): Promise<void> {
    const indexes = this.projection.indexes ?? [];
    await call(`create indexes on ${this.projection.name}`, () =>
      this.collection.createIndexes([
        VERSION_INDEX,
        ...indexes.map((fields) => ({ key: Object.fromEntries(fields.map((f) => [`doc.${f}`, 1])) })),
      ]),
    );
  }

  async addressedBy(events: readonly NewDomainEvent[]): Promise<string[]> {
    return [...eventsByDocument(this.migration, this.projection, events).keys()];
  }

  apply(events: readonly NewDomainEvent[], touched: Set<string> | null): Promise<void> {
    if (touched !== null)
      for (const id of eventsByDocument(this.migration, this.projection, events).keys()) touched.add(id);
    return applyProjectionBatch(this.migration, this.projection, this, events);
  }

  /**
   * The batch's documents by `_id` (the lookup every MongoDB-wire server indexes), LOAD_CHUNK
   * ids a find: one round trip where a findOne per id cost the driver ~0.2 ms CPU each (100
   * ids: 14-46 ms CPU and 22-56 ms wall against 1-2 ms and 2-3 ms, on the stack's server).
   */
  async load(ids: readonly string[]): Promise<Map<string, { state: ProjectionState; version: unknown }>> {
    const chunks: string[][] = [];
    for (let i = 0; i < ids.length; i += LOAD_CHUNK) chunks.push(ids.slice(i, i + LOAD_CHUNK));
    const found = await Promise.all(
      chunks.map((chunk) =>
        call(`load ${chunk.length} documents of ${this.projection.name}`, () =>
          // Every match in the first reply (the driver's default is 101): no getMore round trip.
          this.collection.find({ _id: { $in: chunk } }, { batchSize: chunk.length }).toArray(),
        ),
      ),
    );
    const out = new Map<string, { state: ProjectionState; version: unknown }>();
    for (const d of found.flat()) out.set(d._id, { state: { doc: d.doc, seen: d._seen }, version: d._v });
    return out;
  }

  /**
   * Each write replaces the version it read (a new document: version 0, which no stored one
   * has). A document another writer moved on fails the filter, the upsert collides on `_id`
   * (11000), and the id is reported lost, to be redone from its new state.
   */
  async save(
    writes: readonly { id: string; state: ProjectionState; version: unknown }[],
  ): Promise<Set<string>> {
    const ops: AnyBulkWriteOperation<ProjectionDocument>[] = writes.map((w) => {
      const version = typeof w.version === 'number' ? w.version : 0;
      return {
        replaceOne: {
          filter: { _id: w.id, _v: version },
          replacement: { doc: w.state.doc, _seen: w.state.seen, _v: version + 1 },
          upsert: true,
        },
      };
    });
    try {
      await this.collection.bulkWrite(ops, { ordered: false, ignoreUndefined: true });
      return new Set();
    } catch (err) {
      const lost = duplicateKeyIndexes(err, this.projection.name, ops.length);
      this.logger.debug({ collection: this.projection.name, documents: ops.length, conflicts: lost.length });
      return new Set(lost.map((i) => writes[i]?.id).filter((id): id is string => id !== undefined));
    }
  }

  async reset(): Promise<void> {
    await this.collection.deleteMany({});
  }

  handle(): ReadModelHandle {
    return {
      get: (key) =>
        call(
          `get ${this.projection.name}/${key}`,
          async () => (await this.collection.findOne({ _id: key }))?.doc ?? null,
        ),
      // One find for every key: a findOne each cost a round trip each.
      getMany: (keys) =>
        call(`get ${keys.length} of ${this.projection.name}`, async () => {
          const docs = new Map<string, unknown>();
          for (const found of await this.collection.find({ _id: { $in: [...keys] } }).toArray())
            docs.set(String(found._id), found.doc ?? null);
          return keys.map((key) => docs.get(key) ?? null);
        }),
      find: (query) =>
        call(`find in ${this.projection.name}`, async () => {
          const sort = querySort(query);
          if (query.limit === 0) return [];
          const filters: Filter<Document>[] = [
            { doc: { $ne: null } },
            ...whereFilters('doc', query.where ?? {}),
            ...rangeFilters('doc', query.range),
          ];
          if (query.after !== undefined && sort.length > 0)
            filters.push(keysetFilter('doc', sort, query.after));
          // Documents equal on the query's order come in id order, as on every store.
          const found = await this.collection
            .find(and(filters) as Filter<ProjectionDocument>, { projection: { doc: 1 } })
            .sort(sortOf('doc', sort, ['_id']))
            .limit(query.limit)
            .toArray();
          return found.map((d) => d.doc);
        }),
    };
  }
}

/**
 * A read model of a migration on MongoDB, as a projector feeds it (DocumentProjection) and as
 * endpoints read it (`handle()`).
 */
export class MongoReadModel implements DocumentProjection {
  /**
   * The stored version's name (the read model's name for version 1, `<name>__v<n>` after):
   * it names the consumer group, the applied marks and the collections.
   */
  readonly name: string;
  /** The read model this instance stores a version of. */
  readonly readModel: string;
  readonly version: number;
  readonly streamTypes: readonly string[];
  readonly handles: ReadonlySet<string>;
  private readonly client: MongoClient;
  private readonly ownsClient: boolean;
  private readonly strategy: Strategy;
  private readonly marks: Collection<AppliedMarkDocument>;
  private readonly db: Db;
  /** Keys addressed since drainTouched last ran; null until its first call. */
  private touched: Set<string> | null = null;

  constructor(options: MongoReadModelOptions) {
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
        `MongoDB read model ${model.name}: give a client or a url`,
      );
    }
    this.ownsClient = options.client === undefined;
    this.client = options.client ?? new MongoClient(options.url as string);
    const db = this.client.db(options.database);
    this.db = db;
    this.marks = db.collection<AppliedMarkDocument>(APPLIED_MARKS_COLLECTION);
    const logger = options.logger.child({ component: 'mongo-read-model', readModel: this.name });
    if (model.kind === 'view') {
      const plan = migration.viewPlans.get(model.name);
      if (plan === undefined)
        throw new StoreError('READ_MODEL_UNKNOWN', `view ${model.name} has no compiled plan`);
      this.strategy = new MongoView(db, migration, plan, topics, logger, this.name);
    } else {
      this.strategy = new MongoProjection(db, migration, model, logger, this.name);
    }
  }

  /** Creates the indexes the reads use; a no-op when they exist. */
  migrate(): Promise<void> {
    return this.strategy.migrate();
  }

  apply(events: readonly NewDomainEvent[]): Promise<void> {
    return this.strategy.apply(events, this.touched);
  }

  async addressedBy(events: readonly NewDomainEvent[]): Promise<TouchedDocument[]> {
    return (await this.strategy.addressedBy(events)).map((key): TouchedDocument => [this.name, key]);
  }

  /**
   * Documents the batches since the last call addressed. Tracking starts with the first call:
   * a view's fan-out costs reads that a process without a cache should not pay.
   */
  drainTouched(): TouchedDocument[] {
    const out = [...(this.touched ?? [])].map((key): TouchedDocument => [this.name, key]);
    this.touched = new Set();
    return out;
  }

  async reset(): Promise<void> {
    await this.strategy.reset();
    await this.marks.deleteMany({ readModel: this.name });
  }

  private markId(p: TopicPartition): string {
    return `${this.name}|${partitionKey(p)}`;
  }

  async appliedMarks(partitions: readonly TopicPartition[]): Promise<Map<string, bigint>> {
    const ids = new Map(partitions.map((p) => [this.markId(p), partitionKey(p)]));
    const found = await call(`read applied marks of ${this.name}`, () =>
      findSmallByIds<AppliedMarkDocument>(this.db, APPLIED_MARKS_COLLECTION, [...ids.keys()]),
    );
    const marks = new Map<string, bigint>();
    for (const mark of found) {
      const key = ids.get(mark._id);
      if (key !== undefined) marks.set(key, BigInt(mark.next));
    }
    return marks;
  }

  async markApplied(partition: TopicPartition, next: bigint): Promise<void> {
    try {
      await this.marks.replaceOne(
        { _id: this.markId(partition) },
        { readModel: this.name, next: String(next) },
        { upsert: true },
      );
    } catch (err) {
      throw new StoreError('STORE_WRITE_FAILED', `MongoDB applied mark of ${this.name} failed`, {
        cause: err,
      });
    }
  }

  /**
   * The marks of several partitions in one update command (a projector applies their batches
   * together): every batch writes them, and a bulk write's driver machinery cost more CPU than
   * the round trip itself. The command reports failed writes in its answer, not by throwing.
   */
  async markAppliedMany(marks: readonly AppliedMark[]): Promise<void> {
    if (marks.length === 0) return;
    let reply: Document;
    try {
      reply = await this.db.command({
        update: APPLIED_MARKS_COLLECTION,
        updates: marks.map(({ partition, next }) => ({
          q: { _id: this.markId(partition) },
          u: { readModel: this.name, next: String(next) },
          upsert: true,
        })),
        ordered: false,
      });
    } catch (err) {
      throw new StoreError('STORE_WRITE_FAILED', `MongoDB applied marks of ${this.name} failed`, {
        cause: err,
      });
    }
    const failed = reply.writeErrors ?? reply.writeConcernError;
    if (failed !== undefined && failed !== null) {
      throw new StoreError('STORE_WRITE_FAILED', `MongoDB applied marks of ${this.name} failed`, {
        cause: failed,
      });
    }
  }

  /** The read model's query surface; documents are checked against its schema. */
  handle(): ReadModelHandle {
    return this.strategy.handle();
  }

  async close(): Promise<void> {
    if (this.ownsClient) await this.client.close();
  }
}
