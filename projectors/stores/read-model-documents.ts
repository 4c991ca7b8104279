import type { z } from 'zod';
import type { Migration } from '../../definition/migration.js';
import type {
  DocumentQuery,
  DomainEvent,
  DomainState,
  ProjectionDefinition,
  ReadModelDefinition,
  Scalar,
  SortDirection,
} from '../../definition/read-models.js';
import type { NewDomainEvent } from '../../eventstore/ports.js';
import { AdapterError, StoreError } from '../../lib/errors.js';

/**
 * What the MongoDB and OpenSearch read-model stores share: which topics and events a read
 * model of a migration consumes, how a batch becomes per-row mirror writes (views) and guarded
 * document updates (projections), and the checks every store applies to queries and
 * documents. Only the storage calls differ between the stores, so the guarantees are written
 * once here.
 */

/** The read model `name` of the migration, or a ConfigError-like StoreError naming the ones it has. */
export function readModelOf(migration: Migration, name: string): ReadModelDefinition {
  const model = migration.readModels.find((m) => m.name === name);
  if (model === undefined) {
    throw new StoreError('READ_MODEL_UNKNOWN', `migration ${migration.name} has no read model ${name}`, {
      hint: `read models of ${migration.name}: ${migration.readModels.map((m) => m.name).join(', ')}`,
    });
  }
  return model;
}

export interface ReadModelTopics {
  /** Stream types whose domain topics carry the read model's events. */
  streamTypes: string[];
  /** Event types the read model applies. */
  handles: Set<string>;
  /** Captured tables whose rows a view mirrors (empty for a projection). */
  tables: string[];
}

/**
 * A view reads the rows of `plan.tables`, so it consumes every event their rules emit; a
 * projection consumes its `canHandle` events, from the streams of the rules that emit them.
 */
export function readModelTopics(migration: Migration, model: ReadModelDefinition): ReadModelTopics {
  if (model.kind === 'view') {
    const plan = migration.viewPlans.get(model.name);
    if (plan === undefined)
      throw new StoreError('READ_MODEL_UNKNOWN', `view ${model.name} has no compiled plan`);
    const rules = [...plan.tables].map((table) => {
      const rule = migration.ruleOf(table);
      if (rule === undefined)
        throw new StoreError(
          'READ_MODEL_UNKNOWN',
          `view ${model.name} reads ${table}, which no rule captures`,
        );
      return rule;
    });
    return {
      streamTypes: unique(rules.map((r) => r.streamType)),
      handles: new Set(rules.flatMap(emittedEvents)),
      tables: [...plan.tables],
    };
  }
  const wanted = new Set(model.canHandle);
  return {
    streamTypes: unique(
      migration.rules.rules
        .filter((r) => emittedEvents(r).some((e) => wanted.has(e)))
        .map((r) => r.streamType),
    ),
    handles: wanted,
    tables: [],
  };
}

function emittedEvents(rule: Migration['rules']['rules'][number]): string[] {
  return [rule.onCreate, rule.onSnapshot, rule.otherwise, rule.onDelete, ...rule.onUpdate.map((c) => c.emit)];
}

function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}

/** The captured row an event carries (RowEventPayload.state: after the change, before it for a delete). */
export function eventState(event: NewDomainEvent): DomainState {
  const state = (event.data as { state?: unknown }).state;
  if (typeof state !== 'object' || state === null || Array.isArray(state)) {
    throw new AdapterError(
      'EVENT_INVALID',
      `${event.type} of ${event.streamId} at ${event.metadata.sourcePosition} carries no row state`,
    );
  }
  return state as DomainState;
}

/**
 * The order a row document keeps: the event's sourceOrder, then whether it removes the row.
 * One source change can emit a removal and a creation of the same row at the same sourceOrder
 * (the row moved to another aggregate: two streams, maybe two partitions, so either may be
 * applied first); the row exists after that change, so at equal sourceOrder the creation
 * sorts last and wins in every delivery order. sourceOrder keys are fixed-width per source,
 * so the suffix never changes how two different keys compare.
 */
export function rowOrder(event: NewDomainEvent, removed: boolean): string {
  return `${event.metadata.sourceOrder}|${removed ? '0' : '1'}`;
}

/** The newest write a batch holds for one mirrored row: its state, or a removal (state null). */
export interface MirrorWrite {
  table: string;
  key: string;
  order: string;
  state: DomainState | null;
}

/**
 * A batch reduced to the newest event per row (by rowOrder), for the tables a view mirrors.
 * One write per row and batch means the store never races two upserts of the same new row
 * against each other, which would lose one of them to a duplicate key.
 */
export function mirrorWrites(
  migration: Migration,
  topics: ReadModelTopics,
  events: readonly NewDomainEvent[],
): MirrorWrite[] {
  const tables = new Set(topics.tables);
  const latest = new Map<string, MirrorWrite>();
  for (const event of events) {
    const table = event.metadata.table;
    if (!topics.handles.has(event.type) || !tables.has(table)) continue;
    const rule = migration.ruleOf(table);
    if (rule === undefined) continue;
    const state = eventState(event);
    const removed = migration.toDomainEvent(event).removed;
    const key = rule.rowKey(state);
    const order = rowOrder(event, removed);
    const id = `${table}\u0000${key}`;
    const seen = latest.get(id);
    if (seen !== undefined && seen.order >= order) continue;
    latest.set(id, { table, key, order, state: removed ? null : state });
  }
  return [...latest.values()];
}

// ---------------------------------------------------------------------------------------------
// Projections

/**
 * What a projection document remembers of the rows that changed it: per row (`<table>:<key>`,
 * escaped), the newest sourceOrder applied and the event types applied at that order. Per row
 * and not per stream, because sourceOrder sorts in commit order per row only (snapshot rows
 * of one aggregate may share one), and with the types because one update can emit several
 * events at one sourceOrder.
 */
export type SeenRows = Record<string, { o: string; t: string[] }>;

/** A projection document as the stores keep it; `doc: null` is a tombstone that keeps `seen`. */
export interface ProjectionState {
  doc: unknown;
  seen: SeenRows;
}

/** Field names both stores accept: no '.', no leading '$', nothing that decodes ambiguously. */
export function escapeFieldName(name: string): string {
  return name.replace(/[%.$]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/** The projection's events of a batch, in batch order, per document id (events it ignores are dropped). */
export function eventsByDocument(
  migration: Migration,
  projection: ProjectionDefinition,
  events: readonly NewDomainEvent[],
): Map<string, DomainEvent[]> {
  const wanted = new Set(projection.canHandle);
  const byDoc = new Map<string, DomainEvent[]>();
  for (const raw of events) {
    if (!wanted.has(raw.type)) continue;
    const event = migration.toDomainEvent(raw);
    const id = projection.documentId(event);
    if (id === null) continue;
    const list = byDoc.get(id) ?? [];
    list.push(event);
    byDoc.set(id, list);
  }
  return byDoc;
}

/**
 * Runs `evolve` over the events the document has not seen yet, in order. Returns null when
 * every event was already applied (a redelivery), so the store writes nothing. A document
 * evolve returns is checked against the projection's schema before it may be written.
 */
export function evolveDocument(
  migration: Migration,
  projection: ProjectionDefinition,
  id: string,
  current: ProjectionState | null,
  events: readonly DomainEvent[],
): ProjectionState | null {
  let doc: unknown = current?.doc ?? null;
  const seen: SeenRows = { ...(current?.seen ?? {}) };
  let changed = false;
  for (const event of events) {
    const row = escapeFieldName(`${event.metadata.table}:${rowIdentity(migration, event)}`);
    const order = event.metadata.sourceOrder;
    const mark = seen[row];
    if (mark !== undefined && (mark.o > order || (mark.o === order && mark.t.includes(event.type)))) continue;
    doc = projection.evolve(doc, event);
    seen[row] =
      mark !== undefined && mark.o === order
        ? { o: order, t: [...mark.t, event.type] }
        : { o: order, t: [event.type] };
    changed = true;
  }
  if (!changed) return null;
  if (doc !== null) doc = checkDocument(projection.schema, doc, `${projection.name}/${id}`);
  return { doc, seen };
}

function rowIdentity(migration: Migration, event: DomainEvent): string {
  const rule = migration.ruleOf(event.metadata.table);
  // An event no rule produced cannot be traced to a row; its stream is the next best identity.
  return rule === undefined ? `stream:${event.streamId}` : rule.rowKey(eventState(event));
}

/** Writes one per document, retrying the ones another writer changed in between. */
export interface ProjectionBackend {
  /** Current states (with the store's version token) of these ids; absent ids have none. */
  load(ids: readonly string[]): Promise<Map<string, { state: ProjectionState; version: unknown }>>;
  /** Writes each state if the stored version is still `version` (undefined: must not exist); returns the ids that lost a race. */
  save(writes: readonly { id: string; state: ProjectionState; version: unknown }[]): Promise<Set<string>>;
}

const MAX_CONFLICT_ROUNDS = 20;

/**
 * Applies a batch to a projection: per document, load, evolve the unseen events, write with
 * optimistic concurrency, and redo the documents whose write lost to a concurrent writer
 * (e.g. a document fed from two partitions owned by two processes) from their new state.
 */
export async function applyProjectionBatch(
  migration: Migration,
  projection: ProjectionDefinition,
  backend: ProjectionBackend,
  events: readonly NewDomainEvent[],
): Promise<void> {
  let pending = eventsByDocument(migration, projection, events);
  for (let round = 0; pending.size > 0; round++) {
    if (round === MAX_CONFLICT_ROUNDS) {
      throw new StoreError(
        'STORE_WRITE_CONFLICT',
        `${projection.name}: ${pending.size} document(s) still changed concurrently after ${round} attempts`,
        {
          hint: 'the batch is redelivered; if it persists, check for a runaway writer on the same read model',
        },
      );
    }
    const loaded = await backend.load([...pending.keys()]);
    const writes: { id: string; state: ProjectionState; version: unknown }[] = [];
    for (const [id, list] of pending) {
      const current = loaded.get(id);
      const next = evolveDocument(migration, projection, id, current?.state ?? null, list);
      if (next !== null) writes.push({ id, state: next, version: current?.version });
    }
    const lost = writes.length === 0 ? new Set<string>() : await backend.save(writes);
    pending = new Map([...pending].filter(([id]) => lost.has(id)));
  }
}

// ---------------------------------------------------------------------------------------------
// Documents and queries

/** The document as the read model's schema outputs it, or STORE_DOCUMENT_INVALID. */
export function checkDocument(schema: z.ZodType<unknown>, doc: unknown, where: string): unknown {
  const parsed = schema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new StoreError(
      'STORE_DOCUMENT_INVALID',
      `document ${where} does not match its read model's schema: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}`,
      {
        cause: parsed.error,
        hint: 'fix the read model (select/evolve and schema must agree), then rebuild it',
      },
    );
  }
  return parsed.data;
}

export interface SortKey {
  field: string;
  direction: SortDirection;
}

/**
 * The query's order as explicit keys, and its keyset position checked against it. Documents
 * equal on every orderBy field come in row-key (document id) order, so pages never overlap.
 */
export function querySort(query: DocumentQuery): SortKey[] {
  const orderBy = (query.orderBy ?? []).map((o) => ({ field: o.field, direction: o.direction ?? 'asc' }));
  if (query.after !== undefined && query.after.length !== orderBy.length) {
    throw new StoreError(
      'QUERY_INVALID',
      `after has ${query.after.length} value(s) but orderBy has ${orderBy.length} field(s)`,
      { hint: 'pass the orderBy values of the last document of the previous page' },
    );
  }
  if (!Number.isInteger(query.limit) || query.limit < 0) {
    throw new StoreError('QUERY_INVALID', `limit must be a non-negative integer (got ${query.limit})`);
  }
  return orderBy;
}

/**
 * The keyset condition "after these values" as a disjunction: for orderBy f1..fn and values
 * v1..vn, (f1 beyond v1) or (f1 = v1 and f2 beyond v2) or …, "beyond" following each field's
 * direction. Each store turns the terms into its own query language.
 */
export function keysetTerms(
  sort: readonly SortKey[],
  after: readonly Scalar[],
): {
  equal: { field: string; value: Scalar }[];
  beyond: { field: string; op: 'gt' | 'lt'; value: Scalar };
}[] {
  return sort.map((key, i) => ({
    equal: sort.slice(0, i).map((k, j) => ({ field: k.field, value: after[j] ?? null })),
    beyond: { field: key.field, op: key.direction === 'asc' ? 'gt' : 'lt', value: after[i] ?? null },
  }));
}

/**
 * A view's `find` page: the documents of the root rows the query selects, in its order, at
 * most `limit`. A root row whose document is null (a required lookup missing) yields none and
 * makes room for the next row, as materialised documents would (the SQLite store keeps only
 * non-null ones), so the store reads further rows, doubling the window, until the page is full
 * or the rows run out.
 */
export async function composePage(
  limit: number,
  readRoots: (want: number) => Promise<DomainState[]>,
  compose: (row: DomainState) => Promise<unknown>,
  concurrency: number,
): Promise<unknown[]> {
  const docs: unknown[] = [];
  let composed = 0;
  let want = limit;
  for (;;) {
    const rows = await readRoots(want);
    const fresh = rows.slice(composed);
    const built = await mapLimit(fresh, concurrency, compose);
    for (const doc of built) {
      if (doc === null) continue;
      docs.push(doc);
      if (docs.length === limit) return docs;
    }
    composed = rows.length;
    if (rows.length < want) return docs;
    want *= 2;
  }
}

/** Runs `fn` over `items` with at most `limit` calls in flight, keeping the results' order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
