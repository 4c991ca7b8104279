import type { z } from 'zod';
import type { NewDomainEvent } from '../eventstore/ports.js';
import { AdapterError } from '../lib/errors.js';

/**
 * Read models of a migration: what the projectors build from domain events and the endpoints
 * read. Two forms share one query surface (ReadModelHandle):
 *
 * - a **projection** (code): `evolve(document, event)` per document, the shape event-sourcing
 *   libraries offer; the user decides which document an event changes;
 * - a **view** (declarative): one document per row of a root table, with rows looked up through
 *   foreign keys, child collections (all, or top-N by an order) and aggregates over children.
 *   The engine keeps every row a view reads and maintains each document incrementally,
 *   including the fan-out when a looked-up row changes; it never queries the legacy database.
 */

/** A captured row's domain state, as its capture rule's row schema produced it. */
export type DomainState = Record<string, unknown>;
export type Scalar = string | number | boolean | null;

/** A domain event as projections receive it; `removed` is true for its table's onDelete event. */
export interface DomainEvent extends NewDomainEvent {
  readonly removed: boolean;
}

export type SortDirection = 'asc' | 'desc';
export interface OrderBy {
  field: string;
  /** Default 'asc'. */
  direction?: SortDirection;
}

/** Equality filter: `{ status: 'active' }`, or any of a list: `{ status: ['active', 'frozen'] }`. */
export type Where = Readonly<Record<string, Scalar | readonly Scalar[]>>;

/** Bounds on one field; strings compare as text, numbers as numbers. */
export interface Range {
  gt?: Scalar;
  gte?: Scalar;
  lt?: Scalar;
  lte?: Scalar;
}

/** Fields of a compound index, in order (dotted paths reach nested fields). */
export type IndexFields = readonly string[];

// ---------------------------------------------------------------------------------------------
// Code form

export interface ProjectionSpec<Doc> {
  name: string;
  /** What a stored document must look like; checked on every write. */
  schema: z.ZodType<Doc>;
  /** Event types the projection consumes; other events never reach it. */
  canHandle: readonly string[];
  /** The document an event changes, or null to ignore the event. */
  documentId(event: DomainEvent): string | null;
  /** The next state of the document (null: none yet / delete it). Must be deterministic. */
  evolve(document: Doc | null, event: DomainEvent): Doc | null;
  /**
   * Optional: `evolve` for a document the store holds alone (one it parsed, or an earlier
   * evolveOwned returned), which it may change in place and return. For a document that
   * accumulates (a map of contributions) a pure evolve copies it per event; the embedded store
   * folds a batch's events into its private copy with this instead. Must give what evolve gives.
   */
  evolveOwned?(document: Doc | null, event: DomainEvent): Doc | null;
  /** Indexes over document fields that `find` queries use. */
  indexes?: readonly IndexFields[];
}

export interface ProjectionDefinition<Doc = unknown> extends ProjectionSpec<Doc> {
  readonly kind: 'projection';
}

/** A read model written as code: Emmett-style document projection. */
export function defineProjection<Doc>(spec: ProjectionSpec<Doc>): ProjectionDefinition<Doc> {
  return { kind: 'projection', ...spec };
}

// ---------------------------------------------------------------------------------------------
// Declarative form

/**
 * A row of `table` whose key equals this node's `on` field(s): a lookup through a foreign key
 * (many-to-one). `required` gives INNER JOIN semantics: without the row there is no document.
 */
export interface LookupJoin {
  table: string;
  /** Field(s) of the parent row holding the looked-up row's key (in its key's field order). */
  on: string | readonly string[];
  required?: boolean;
  join?: Joins;
  aggregate?: Aggregates;
}

/**
 * The rows of `table` whose `by` field(s) equal the parent row's key (one-to-many): all of
 * them, or the first `limit` by `orderBy`. `limit: 0` loads no rows (aggregates only).
 */
export interface ChildrenJoin {
  table: string;
  /** Field(s) of the child row holding the parent's key (in the parent key's field order). */
  by: string | readonly string[];
  where?: Where;
  orderBy?: readonly OrderBy[];
  limit?: number;
  join?: Joins;
  aggregate?: Aggregates;
}

export type Join = LookupJoin | ChildrenJoin;
export type Joins = Readonly<Record<string, Join>>;

/**
 * An aggregate over all rows of one of the node's child joins (its `limit` does not apply),
 * narrowed by an optional extra `where`. `sum` of DECIMAL strings is exact and formatted with
 * `scale` fraction digits (as `CAST(COALESCE(SUM(x), 0) AS DECIMAL(p, scale))` would); without
 * `scale` it sums numbers. count of none is 0; sum of none is 0; min/max of none is null.
 */
export type Aggregate =
  | { count: string; where?: Where }
  | { sum: string; field: string; where?: Where; scale?: number }
  | { min: string; field: string; where?: Where }
  | { max: string; field: string; where?: Where };
export type Aggregates = Readonly<Record<string, Aggregate>>;

/** What `select` receives for the root row and each joined row. */
export interface ViewNode {
  row: DomainState;
  /** Per join name: a lookup's node (or null), or a children join's nodes in order. */
  joins: Record<string, ViewNode | ViewNode[] | null>;
  aggregates: Record<string, Scalar>;
}

export interface ViewSpec<Doc> {
  name: string;
  /** Root table: one document per row, keyed by the row's key. */
  from: string;
  join?: Joins;
  aggregate?: Aggregates;
  /** Builds the document from the joined rows; pure. Return null for "no document". */
  select(root: ViewNode): Doc | null;
  schema: z.ZodType<Doc>;
  /** Indexes over root-row fields that `find` queries use (e.g. ['accountId', 'postedAt']). */
  indexes?: readonly IndexFields[];
}

export interface ViewDefinition<Doc = unknown> extends ViewSpec<Doc> {
  readonly kind: 'view';
}

/** A read model declared as a join over captured tables, maintained incrementally by the engine. */
export function defineView<Doc>(spec: ViewSpec<Doc>): ViewDefinition<Doc> {
  return { kind: 'view', ...spec };
}

export type ReadModelDefinition = ProjectionDefinition<unknown> | ViewDefinition<unknown>;

export const isChildrenJoin = (join: Join): join is ChildrenJoin => 'by' in join;

// ---------------------------------------------------------------------------------------------
// Query surface, the same on every store

/**
 * A query over documents. For a projection, fields are document fields; for a view, they are
 * fields of the root row (the `from` table's domain state), so every store answers it with an
 * index range before composing documents.
 */
export interface DocumentQuery {
  where?: Where;
  range?: Readonly<Record<string, Range>>;
  orderBy?: readonly OrderBy[];
  /** Keyset pagination: the orderBy values of the last document of the previous page. */
  after?: readonly Scalar[];
  limit: number;
}

/** One read model as an endpoint's read-model query sees it. */
export interface ReadModelHandle<Doc = unknown> {
  get(key: string): Promise<Doc | null>;
  find(query: DocumentQuery): Promise<Doc[]>;
  /**
   * Optional: the document `get` would return, as its stored JSON text, without a parse. Stores
   * that keep documents as JSON text have it (the embedded SQLite read models).
   */
  getJson?(key: string): Promise<string | null>;
  /** Optional: the documents `find` would return, as their stored JSON texts. */
  findJson?(query: DocumentQuery): Promise<string[]>;
  /**
   * Optional: what `get` would return for each key, in the keys' order (null where there is
   * none), read together: one statement or round trip instead of one per key. Use `getMany`
   * (below), which falls back to `get` per key on a store without it.
   */
  getMany?(keys: readonly string[]): Promise<Array<Doc | null>>;
}

/** What `handle.get` returns for each key, in order: by one `getMany` where the store has it. */
export function getMany<Doc>(
  handle: ReadModelHandle<Doc>,
  keys: readonly string[],
): Promise<Array<Doc | null>> {
  if (handle.getMany !== undefined) return handle.getMany(keys);
  return Promise.all(keys.map((key) => handle.get(key)));
}

export type ReadModels = Readonly<Record<string, ReadModelHandle<unknown>>>;

/**
 * Every document of a read model, in the order of `fields`, read a page (`pageSize`, 1,000) at
 * a time through `find`, each page continuing after the previous page's last document. The
 * fields must be top-level fields of the documents that together identify one (a view's key
 * fields when its `select` keeps them), and an index on them keeps each page a range read.
 * For listing keys, e.g. reconciliation's `readModel` parameter sets.
 */
export async function* documentsInOrder(
  handle: ReadModelHandle<unknown>,
  fields: readonly [string, ...string[]],
  pageSize = 1_000,
): AsyncGenerator<Readonly<Record<string, unknown>>> {
  const orderBy = fields.map((field) => ({ field }));
  let after: Scalar[] | undefined;
  for (;;) {
    const page = await handle.find({ orderBy, limit: pageSize, ...(after === undefined ? {} : { after }) });
    for (const doc of page) {
      if (typeof doc !== 'object' || doc === null)
        throw new AdapterError('DOCUMENTS_UNORDERED', 'documentsInOrder: a document is not an object', {
          hint: 'list the documents of a read model whose documents are objects',
        });
      yield doc as Readonly<Record<string, unknown>>;
    }
    if (page.length < pageSize) return;
    const last = page[page.length - 1] as Record<string, unknown>;
    after = fields.map((field) => {
      const value = last[field];
      if (value === undefined || (typeof value === 'object' && value !== null))
        throw new AdapterError(
          'DOCUMENTS_UNORDERED',
          `documentsInOrder: a document has no scalar field ${field} to page by`,
          {
            hint: 'order by top-level fields the documents keep (a view whose select drops its key fields cannot be paged by them)',
          },
        );
      return value as Scalar;
    });
  }
}
