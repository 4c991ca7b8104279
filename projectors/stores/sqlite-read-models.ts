import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { Migration } from '../../definition/migration.js';
import type {
  DocumentQuery,
  DomainEvent,
  DomainState,
  OrderBy,
  ProjectionDefinition,
  Range,
  ReadModelHandle,
  ReadModels,
  Scalar,
  Where,
} from '../../definition/read-models.js';
import {
  affectedKeys,
  aggregateRows,
  composeFromRow,
  keptIndexes,
  runSync,
  type SyncRowReader,
  type ViewPlan,
} from '../../definition/view/index.js';
import type { AggregateFn } from '../../definition/view/reads.js';
import { storedStateJson } from '../../eventstore/event-encoding.js';
import type { StoredEvent } from '../../eventstore/ports.js';
import { StoreError } from '../../lib/errors.js';
import { type ComposedDocument, ComposeThreads } from '../compose-thread.js';
import type { ComposeThreadsOption, FlushOptions, SqliteProjection, TouchedDocument } from '../ports.js';
import { prepared } from '../statement-cache.js';
import { querySort } from './read-model-documents.js';
import { DEFAULT_VERSION, docTableName, rowTableName } from './read-model-versions.js';

/**
 * Every read model of a migration in the embedded SQLite database.
 *
 * - Views: each captured row a view reads is kept as JSON in `rm_row__<table>` (indexed on the
 *   fields the engine looks rows up by); an event updates its row and marks the documents that
 *   read the row before or after the change (fan-out through lookups and children); `flush`
 *   recomposes each marked document once into `rm_doc__<view>` with its root row. While the
 *   runner catches up it calls `defer` instead: the marks are kept in `rm_dirty` (committed with
 *   the rows, so a crash loses none) and the documents composed once, by a later `flush`.
 * - Projections: `rm_doc__<projection>` holds each document; `evolve` runs per event, in order,
 *   on a copy held in memory until the batch ends (`flush` or `defer` write it once).
 *
 * The runner calls apply/flush inside one transaction with its checkpoint, so the read models
 * never run ahead of or behind it; each event is applied exactly once, in store order, which is
 * why no per-row source-order guard is needed here (the server stores need one).
 */

type Db = Database.Database;
type RowData = { state?: unknown; changes?: unknown };
type SqlValue = string | number | bigint | null;

const quote = (identifier: string) => `"${identifier.replaceAll('"', '""')}"`;

/** A JSON path literal for json_extract; dotted fields reach nested values. */
function jsonPath(field: string): string {
  const parts = field.split('.').map((p) => `"${p.replaceAll('"', '\\"')}"`);
  return `'$.${parts.join('.').replaceAll("'", "''")}'`;
}
const extracts = new Map<string, string>();
/** Memoised: reads build their SQL per request, and the path literal's building showed in their profile. */
function extract(column: string, field: string): string {
  const key = `${column}.${field}`;
  let sql = extracts.get(key);
  if (sql === undefined) {
    sql = `json_extract(${column}, ${jsonPath(field)})`;
    extracts.set(key, sql);
  }
  return sql;
}

/** better-sqlite3 binds no booleans; json_extract yields 1/0 for JSON true/false. */
function bind(value: Scalar): SqlValue {
  return typeof value === 'boolean' ? (value ? 1 : 0) : value;
}

interface Clause {
  sql: string;
  params: SqlValue[];
}

function whereClauses(column: string, where: Where | undefined): Clause[] {
  const out: Clause[] = [];
  for (const [field, value] of Object.entries(where ?? {})) {
    const expr = extract(column, field);
    if (Array.isArray(value)) {
      const list = value as readonly Scalar[];
      const nonNull = list.filter((v) => v !== null);
      const parts: string[] = [];
      if (nonNull.length > 0) parts.push(`${expr} IN (${nonNull.map(() => '?').join(', ')})`);
      if (nonNull.length < list.length) parts.push(`${expr} IS NULL`);
      out.push({ sql: parts.length === 0 ? '0' : `(${parts.join(' OR ')})`, params: nonNull.map(bind) });
    } else if (value === null) {
      out.push({ sql: `${expr} IS NULL`, params: [] });
    } else {
      out.push({ sql: `${expr} = ?`, params: [bind(value as Scalar)] });
    }
  }
  return out;
}

const RANGE_OPS = { gt: '>', gte: '>=', lt: '<', lte: '<=' } as const;

/**
 * Keyset continuation: strictly after `after` (`count` values, one per field of `orderBy`, as
 * findJson checks) in the order `orderBy` gives. Over more than one field the first field's bound (<= or >= its value, which the OR
 * implies) comes first: SQLite seeks the index to it, where the OR alone had it walk every
 * entry of the pages before the cursor.
 */
function afterSql(column: string, orderBy: readonly OrderBy[], count: number): string {
  if (count === 0) return '1';
  const ors: string[] = [];
  for (let i = 0; i < count; i++) {
    const ands: string[] = [];
    for (let j = 0; j < i; j++) ands.push(`${extract(column, (orderBy[j] as OrderBy).field)} = ?`);
    const o = orderBy[i] as OrderBy;
    ands.push(`${extract(column, o.field)} ${o.direction === 'desc' ? '<' : '>'} ?`);
    ors.push(`(${ands.join(' AND ')})`);
  }
  if (count === 1) return ors[0] as string;
  const first = orderBy[0] as OrderBy;
  return `(${extract(column, first.field)} ${first.direction === 'desc' ? '<=' : '>='} ? AND (${ors.join(' OR ')}))`;
}

/** The params of afterSql(column, orderBy, after.length), in its order. */
function afterParams(after: readonly Scalar[], into: SqlValue[]): void {
  const count = after.length;
  if (count > 1) into.push(bind(after[0] as Scalar));
  for (let i = 0; i < count; i++) for (let j = 0; j <= i; j++) into.push(bind(after[j] as Scalar));
}

/** A find's SQL text; findParams gives its params, findShape what the text depends on. */
function findSql(table: string, column: string, query: DocumentQuery): string {
  const clauses = whereClauses(column, query.where).map((c) => c.sql);
  const range = query.range ?? {};
  for (const field in range) {
    const bounds = range[field] as Range;
    for (const op in bounds) {
      if (bounds[op as keyof Range] === undefined) continue;
      clauses.push(`${extract(column, field)} ${RANGE_OPS[op as keyof Range]} ?`);
    }
  }
  const orderBy = query.orderBy ?? [];
  if (query.after !== undefined) clauses.push(afterSql(column, orderBy, query.after.length));
  const where = clauses.length === 0 ? '' : ` WHERE ${clauses.join(' AND ')}`;
  // `+?`, not `?`: SQLite (3.53) re-prepares a statement whose LIMIT is a bare parameter on every
  // run after a bind (~5 µs of parse and planning, a history page's 11 µs here); an expression
  // over it is left alone. The limit is a checked non-negative integer, so the rows are the same.
  return `SELECT doc FROM ${table}${where}${orderSql(column, query.orderBy)} LIMIT +?`;
}

function findParams(query: DocumentQuery): SqlValue[] {
  const params: SqlValue[] = [];
  if (query.where !== undefined) whereParams(query.where, params);
  const range = query.range ?? {};
  for (const field in range) {
    const bounds = range[field] as Range;
    for (const op in bounds) {
      const value = bounds[op as keyof Range];
      if (value !== undefined) params.push(bind(value));
    }
  }
  if (query.after !== undefined) afterParams(query.after, params);
  params.push(query.limit);
  return params;
}

function findShape(query: DocumentQuery): string {
  let shape = `${query.where === undefined ? '' : whereShape(query.where)}\u0003`;
  const range = query.range ?? {};
  for (const field in range) {
    const bounds = range[field] as Range;
    for (const op in bounds)
      if (bounds[op as keyof Range] !== undefined) shape += `${field}\u0001${op}\u0002`;
  }
  shape += `\u0003${orderShape(query.orderBy)}\u0003`;
  if (query.after !== undefined) shape += query.after.length;
  return shape;
}

function orderSql(column: string, orderBy: readonly OrderBy[] | undefined): string {
  const terms = (orderBy ?? []).map(
    (o) => `${extract(column, o.field)} ${o.direction === 'desc' ? 'DESC' : 'ASC'}`,
  );
  // The key last, so equal sort values come back in one stable order.
  terms.push('key ASC');
  return ` ORDER BY ${terms.join(', ')}`;
}

/** An index's name as sqlite_master holds it. */
function indexId(prefix: string, fields: readonly string[]): string {
  const digest = createHash('sha1').update(fields.join('\u0000')).digest('hex').slice(0, 10);
  return `ix__${prefix}__${digest}`;
}

function indexName(prefix: string, fields: readonly string[]): string {
  return quote(indexId(prefix, fields));
}

/** How much of read-models.db a connection serving reads maps into memory (SQLite mmap_size). */
export const READ_MMAP_BYTES = 1024 * 1024 * 1024;

/** An index the engine keeps on one of its tables: its name unquoted (id) and quoted, and its DDL. */
interface TableIndex {
  id: string;
  name: string;
  table: string;
  create: string;
}

/**
 * Creates the indexes missing on `db`, telling `onIndex` of each before and after: a bulk
 * build drops its indexes and makes them again in one sorted pass each, and an upgrade may add
 * one to a full table, a statement of minutes at scale. Those already there cost nothing and go
 * unreported; with `quietWhenEmpty`, so does one on an empty table (a first start's).
 */
function createIndexes(
  db: Db,
  indexes: readonly TableIndex[],
  onIndex?: FlushOptions['onIndex'],
  quietWhenEmpty = false,
): void {
  for (const index of indexes) {
    if (onIndex === undefined || (quietWhenEmpty && isEmpty(db, index.table))) {
      db.exec(index.create);
      continue;
    }
    const exists = prepared(db, "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", {
      pluck: true,
    }).get(index.id);
    if (exists !== undefined) continue;
    const started = performance.now();
    onIndex({ table: index.table, index: index.id });
    db.exec(index.create);
    onIndex({ table: index.table, index: index.id, ms: Math.round(performance.now() - started) });
  }
}

function isEmpty(db: Db, table: string): boolean {
  return prepared(db, `SELECT 1 FROM ${quote(table)} LIMIT 1`, { pluck: true }).get() === undefined;
}

interface TurnSnapshot {
  open: () => void;
  release: () => void;
}

const turnSnapshots = new WeakMap<Db, TurnSnapshot>();
const leftAlone: TurnSnapshot = { open: () => {}, release: () => {} };

/**
 * What a read on `db` calls first: on a read-only connection, the reads of one event-loop turn
 * share one read transaction, ended when the turn's I/O callbacks have run (setImmediate).
 * Each statement run outside a transaction opens and ends its own (file locks, the WAL read
 * mark, the mapping's size check), 8 of a key lookup's 10 µs here. A turn's reads see the
 * read models as they were at its first read; the snapshot is let go within the turn, so a
 * checkpoint waits for it no longer than that. A writable connection is left alone: the reads
 * would hold its writer's transactions open. Whatever else the read side asks of `db` (the
 * projector checkpoint its freshness and cache compare with) is read the same way, so it
 * never claims more than the turn's reads see.
 */
export function turnSnapshot(db: Db): () => void {
  return snapshotOf(db).open;
}

/**
 * Lets go of the turn's read transaction on `db` now, so the next read sees the latest commit:
 * for a reader that must see a write this thread has just made on another connection (a
 * version switch in the registry).
 */
export function releaseTurnSnapshot(db: Db): void {
  turnSnapshots.get(db)?.release();
}

function snapshotOf(db: Db): TurnSnapshot {
  let snapshot = turnSnapshots.get(db);
  if (snapshot !== undefined) return snapshot;
  if (!db.readonly) snapshot = leftAlone;
  else {
    const begin = db.prepare('BEGIN');
    const commit = db.prepare('COMMIT');
    let ours = false;
    const release = () => {
      if (!ours) return;
      if (!db.open || !db.inTransaction) {
        ours = false;
        return;
      }
      try {
        commit.run();
        ours = false;
      } catch {
        // A statement still iterating holds the connection busy: the next turn ends it.
        setImmediate(release);
      }
    };
    snapshot = {
      open: () => {
        if (ours || db.inTransaction) return;
        begin.run();
        ours = true;
        setImmediate(release);
      },
      release,
    };
  }
  turnSnapshots.set(db, snapshot);
  return snapshot;
}

/** Marks a document index's name apart from the one it replaced (the declared fields alone). */
const PAGE_INDEX = '\u0000page';

/**
 * Marks a row index that holds the row itself: a joined list (a summary's latest postings) is
 * then read from consecutive index entries, not one table page per row, which on a store larger
 * than memory was a disk read each and kept the live projector waiting.
 */
const COVERING_INDEX = '\u0000covering';

/** The rm_dirty key that stands for every document of a view (no row key starts with NUL). */
const EVERY_DOCUMENT = '\u0000every';

/** Where a written document's key is noted: a read model's touched set, or nowhere. */
interface KeySink {
  add(key: string): unknown;
}
const IGNORED_KEYS: KeySink = { add: () => undefined };

/** Root rows a whole-view composition reads per statement. */
const ROOT_PAGE = 1000;
/**
 * Roots a view needs before compose threads compose it whole (ComposeThreadsOption.minRoots).
 * On 2 cores, a view of 355,000 roots composed no faster on threads than on the projector's
 * thread (replay compose step 9.5-10.2 s without, 10.1-11.9 s with two), while each thread
 * (its own isolate and copy of the definition) took ~70-100 MiB; 2.2 million composed 18-30%
 * faster.
 */
const OFF_THREAD_MIN_ROOTS = 1_000_000;

/** Most looked-up rows a flush keeps (as text): merchants, branches, categories… are read per document. */
const LOOKUP_MEMO_LIMIT = 20_000;

/** A looked-up row a flush keeps: its text, and its parsed value when no field holds an object or array. */
interface KeptRow {
  text: string;
  flat: DomainState | null;
}

function keptRow(text: string): KeptRow {
  const row = JSON.parse(text) as unknown;
  if (typeof row !== 'object' || row === null || Array.isArray(row)) return { text, flat: null };
  for (const field in row) {
    const value = (row as DomainState)[field];
    if (typeof value === 'object' && value !== null) return { text, flat: null };
  }
  return { text, flat: row as DomainState };
}

/** The params of whereClauses(column, where), in its order, for a statement cached per where shape. */
function whereParams(where: Where, into: SqlValue[]): void {
  for (const field in where) {
    const value = where[field];
    if (Array.isArray(value)) {
      for (const v of value as readonly Scalar[]) if (v !== null) into.push(bind(v));
    } else if (value !== null) into.push(bind(value as Scalar));
  }
}

/** What a where's SQL text depends on: its fields, and per field scalar, null, or a list's make-up. */
function whereShape(where: Where): string {
  let shape = '';
  for (const field in where) {
    const value = where[field];
    let kind: string;
    if (Array.isArray(value)) {
      const list = value as readonly Scalar[];
      let nulls = 0;
      for (const v of list) if (v === null) nulls++;
      kind = `[${list.length - nulls}${nulls > 0 ? 'n' : ''}`;
    } else kind = value === null ? 'n' : '=';
    shape += `${field}\u0001${kind}\u0002`;
  }
  return shape;
}

function orderShape(orderBy: readonly OrderBy[] | undefined): string {
  let shape = '';
  for (const o of orderBy ?? []) shape += `${o.field}\u0001${o.direction ?? ''}\u0002`;
  return shape;
}

/**
 * A declared index of a document table, in a shape that serves a page from the index alone.
 * The key comes last, descending: walked backwards, the index gives an all-descending order with
 * its ascending key tie-break (newest-first pages, the common one) with no sort step, where the
 * declared fields alone left SQLite sorting every equal-prefix group on the key. A view's index
 * also carries the document (covering): a page is read from consecutive index entries, not one
 * table row per document scattered over the table.
 */
function documentIndexColumns(kind: 'view' | 'projection', fields: readonly string[]): string {
  const column = kind === 'view' ? 'row' : 'doc';
  const columns = [...fields.map((f) => extract(column, f)), 'key DESC'];
  if (kind === 'view') columns.push('doc');
  return columns.join(', ');
}

/** Whether a projection runner has already applied events to this database. */
function anyCheckpoint(db: Db): boolean {
  const table = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'projector_checkpoints'")
    .get();
  if (table === undefined) return false;
  // Rows applied by a catch-up that composed no document yet count too (applied_position).
  const rows = db.prepare('SELECT * FROM projector_checkpoints').all() as Array<{
    position: number;
    applied_position?: number | null;
  }>;
  return rows.some((r) => r.position > 0 || (r.applied_position ?? 0) > 0);
}

const hasTable = (db: Db, name: string) =>
  db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;

const hasIndex = (db: Db, name: string) =>
  db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?").get(name) !== undefined;

/** A stable fingerprint of what a read model's stored data depends on. */
function fingerprint(model: Migration['readModels'][number], plan: ViewPlan | undefined): string {
  const shape =
    model.kind === 'view'
      ? {
          from: model.from,
          join: model.join,
          aggregate: model.aggregate,
          indexes: model.indexes,
          select: String(model.select),
        }
      : {
          canHandle: model.canHandle,
          evolve: String(model.evolve),
          evolveOwned: model.evolveOwned === undefined ? undefined : String(model.evolveOwned),
          documentId: String(model.documentId),
          indexes: model.indexes,
        };
  return createHash('sha256')
    .update(JSON.stringify({ kind: model.kind, shape, tables: plan ? [...plan.tables].sort() : [] }))
    .digest('hex');
}

/**
 * Statements kept per table or projection for the connection they were prepared on, built again
 * when another connection (a version build's) asks: the statement cache's SQL-text lookup per
 * event showed in a bulk replay's profile.
 */
function keptFor<S extends { db: Db }>(kept: Map<string, S>, name: string, db: Db, build: () => S): S {
  let found = kept.get(name);
  if (found === undefined || found.db !== db) {
    found = build();
    kept.set(name, found);
  }
  return found;
}

/** The statements reading and writing one projection's documents on one connection. */
interface DocumentStatements {
  db: Db;
  read: Database.Statement;
  put: Database.Statement;
  drop: Database.Statement;
}

/** A replayed version of one read model (read-model-versions.ts), instead of every read model's version 1. */
export interface VersionTarget {
  readModel: string;
  version: number;
}

export class SqliteReadModels implements SqliteProjection {
  readonly name: string;
  readonly handles: ReadonlySet<string>;
  private readonly models: Migration['readModels'];
  private readonly plans: ViewPlan[];
  private readonly projections: ProjectionDefinition<unknown>[];
  /** Captured table → the views that read it. */
  private readonly viewsOfTable = new Map<string, ViewPlan[]>();
  private readonly dirty = new Map<string, Set<string>>();
  /** Marks not yet in rm_dirty, as [view, key]: what the next `defer` persists. */
  private unsaved: Array<[string, string]> = [];
  /** Whether rm_dirty may hold marks of this projection (then `flush` composes and clears them too). */
  private persisted = false;
  /**
   * Views the next flush composes whole, from their root rows: in a bulk build, a view whose
   * document table was empty when a batch began needs no marks, since every document it will
   * hold is composed anyway. Its rows are then written without the fan-out reads, which were
   * most of a bulk replay's per-event cost. Outside a bulk build views are marked per row, so a
   * catch-up's deferral stays bounded by the documents it leaves.
   */
  private readonly whole = new Set<string>();
  /** Views found with documents, or composed whole, since start: marked per row from then on. */
  private readonly settled = new Set<string>();
  /** Whether this batch or an earlier one of a whole composition dropped the row indexes. */
  private rowIndexesDropped = false;
  /**
   * Projections whose document indexes a bulk build dropped (their table was empty when a batch
   * began): the next flush builds them again in one pass over the documents. Kept entry by entry,
   * every write of a document also replaced its index entry (its fields read out of the JSON
   * text, old and new), at a place in the index as scattered as the document's own.
   */
  private readonly unindexed = new Set<string>();
  /** Set by the runner during a bulk build: only then are views composed whole. */
  private bulk = false;
  /** Compose threads for whole views (composeOffThread); null: none. */
  private composeThreads: ComposeThreadsOption | null = null;
  /** Whether this batch has looked for views to compose whole (the first apply of each does). */
  private wholeChecked = false;
  /** Captured table → the views that read it and are marked per row (not composed whole). */
  private markedViewsOfTable = new Map<string, ViewPlan[]>();
  /** Tables some view looks rows up in by key: a flush keeps what it read of them. */
  private readonly lookupTables: ReadonlySet<string>;
  /** Projection documents evolved in this batch and not written yet, by `projection\u0000id` (null: deleted). */
  private readonly held = new Map<
    string,
    { projection: ProjectionDefinition<unknown>; id: string; doc: unknown }
  >();
  private readonly readers = new WeakMap<Db, SyncRowReader>();
  private readonly rowByKey = new WeakMap<Db, Map<string, Database.Statement>>();
  private readonly rowWriteStatements = new Map<
    string,
    { db: Db; put: Database.Statement; drop: Database.Statement }
  >();
  private readonly documentStatements = new Map<string, DocumentStatements>();
  /**
   * Documents written since drainTouched last ran, per read model: a whole composition adds
   * every document of a view, and joining the two names into one string per document showed in
   * a bulk replay's profile.
   */
  private readonly touched = new Map<string, Set<string>>();
  /** Whether documents written are noted in `touched` (trackTouched). */
  private tracking = true;

  /** A mirrored table's row table, as sqlite_master names it, and quoted for SQL. */
  private readonly rowTableName: (table: string) => string;
  private readonly rowTable: (table: string) => string;
  /** A read model's document table, as sqlite_master names it, and quoted for SQL. */
  private readonly docTableName: (readModel: string) => string;
  private readonly docTable: (readModel: string) => string;
  /** Set for a replayed version: it keeps no fingerprints (its tables are built for the definition it was replayed with). */
  private readonly version: VersionTarget | null;
  /** Appended to index names, so a version's indexes never collide with version 1's. */
  private readonly indexSuffix: string;

  constructor(
    private readonly migration: Migration,
    target?: VersionTarget,
  ) {
    this.version = target === undefined || target.version === DEFAULT_VERSION ? null : target;
    const only = this.version?.readModel;
    this.name = this.version === null ? 'read-models' : `read-models:${only}:v${this.version.version}`;
    this.models = migration.readModels.filter((m) => only === undefined || m.name === only);
    const version = this.version?.version ?? DEFAULT_VERSION;
    this.indexSuffix = this.version === null ? '' : `__${only}__v${version}`;
    this.rowTableName = (table) => rowTableName(table, only ?? null, version);
    this.rowTable = (table) => quote(this.rowTableName(table));
    this.docTableName = (readModel) => docTableName(readModel, version);
    this.docTable = (readModel) => quote(this.docTableName(readModel));
    this.plans = [...migration.viewPlans.values()].filter((p) => only === undefined || p.name === only);
    this.projections = this.models.filter((m): m is ProjectionDefinition<unknown> => m.kind === 'projection');
    for (const plan of this.plans) {
      for (const table of plan.tables) {
        const list = this.viewsOfTable.get(table) ?? [];
        list.push(plan);
        this.viewsOfTable.set(table, list);
      }
    }
    this.markedViewsOfTable = this.viewsOfTable;
    this.lookupTables = new Set(
      this.plans.flatMap((plan) =>
        plan.nodes.filter((n) => n.relation.kind === 'lookup').map((n) => n.table),
      ),
    );
    const handles = new Set<string>();
    for (const rule of migration.rules.rules) {
      if (!this.viewsOfTable.has(rule.table)) continue;
      for (const type of [
        rule.onCreate,
        rule.onSnapshot,
        rule.otherwise,
        rule.onDelete,
        ...rule.onUpdate.map((c) => c.emit),
      ])
        handles.add(type);
    }
    for (const p of this.projections) for (const type of p.canHandle) handles.add(type);
    this.handles = handles;
  }

  /**
   * Creates the tables and indexes. Returns the read models whose definition changed since
   * their data was built: their data was dropped and the caller must replay the event store.
   */
  migrate(db: Db, onIndex?: FlushOptions['onIndex']): string[] {
    db.exec('CREATE TABLE IF NOT EXISTS rm_meta (name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL)');
    const changed: string[] = [];
    db.transaction(() => {
      for (const table of this.viewsOfTable.keys()) {
        db.exec(
          `CREATE TABLE IF NOT EXISTS ${this.rowTable(table)} (key TEXT PRIMARY KEY, state TEXT NOT NULL)`,
        );
      }
      this.dropUnwantedRowIndexes(db);
      createIndexes(db, this.rowIndexes(), onIndex, true);
      const previous = new Map(
        (
          db.prepare('SELECT name, fingerprint FROM rm_meta').all() as Array<{
            name: string;
            fingerprint: string;
          }>
        ).map((r) => [r.name, r.fingerprint]),
      );
      const projected = previous.size > 0 || anyCheckpoint(db);
      for (const model of this.models) {
        const extra = model.kind === 'view' ? ', row TEXT NOT NULL' : '';
        db.exec(
          `CREATE TABLE IF NOT EXISTS ${this.docTable(model.name)} (key TEXT PRIMARY KEY, doc TEXT NOT NULL${extra})`,
        );
        for (const fields of model.indexes ?? []) {
          const prefix = `doc__${model.name}${this.indexSuffix}`;
          // Replaced by the page index below; dropped in this transaction, so a reader sees one of them.
          db.exec(`DROP INDEX IF EXISTS ${indexName(prefix, fields)}`);
        }
        createIndexes(db, this.documentIndexes(model), onIndex, true);
        if (this.version !== null) continue;
        const print = fingerprint(model, this.migration.viewPlans.get(model.name));
        const before = previous.get(model.name);
        // Changed, or new where events were already projected: either way it needs every past event.
        if (before !== undefined ? before !== print : projected) changed.push(model.name);
        db.prepare('INSERT OR REPLACE INTO rm_meta (name, fingerprint) VALUES (?, ?)').run(model.name, print);
      }
      if (changed.length > 0) this.reset(db);
    })();
    return changed;
  }

  /** The mirrored rows' indexes (what the engine finds rows by), as migrate creates them. */
  private rowIndexes(): TableIndex[] {
    // Two views may find one table's rows by the same fields: one index serves both.
    return keptIndexes(this.plans.flatMap((plan) => plan.indexes)).map(({ table, fields, covering }) => {
      const id = indexId(`row__${table}${this.indexSuffix}`, covering ? [...fields, COVERING_INDEX] : fields);
      // The key too: a list is read in its order, and the key breaks ties in it.
      const columns = [...fields.map((f) => extract('state', f)), ...(covering ? ['key', 'state'] : [])].join(
        ', ',
      );
      return {
        id,
        name: quote(id),
        table: this.rowTableName(table),
        create: `CREATE INDEX IF NOT EXISTS ${quote(id)} ON ${this.rowTable(table)} (${columns})`,
      };
    });
  }

  /**
   * Drops the row indexes an earlier version of the engine or the definition made and the
   * plans no longer seek by: each would still be kept up to date on every row write. Only
   * this instance's tables and the engine's own index names are looked at.
   */
  private dropUnwantedRowIndexes(db: Db): void {
    const wanted = new Set(this.rowIndexes().map((index) => index.name));
    const listed = db
      .prepare(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND substr(name, 1, 9) = 'ix__row__'",
      )
      .pluck();
    for (const table of this.viewsOfTable.keys()) {
      for (const name of listed.all(this.rowTableName(table)) as string[]) {
        if (!wanted.has(quote(name))) db.exec(`DROP INDEX IF EXISTS ${quote(name)}`);
      }
    }
  }

  /** A read model's declared (page) indexes. */
  private documentIndexes(model: Migration['readModels'][number]): TableIndex[] {
    const prefix = `doc__${model.name}${this.indexSuffix}`;
    return (model.indexes ?? []).map((fields) => {
      const id = indexId(prefix, [...fields, PAGE_INDEX]);
      const name = quote(id);
      return {
        id,
        name,
        table: this.docTableName(model.name),
        create: `CREATE INDEX IF NOT EXISTS ${name} ON ${this.docTable(model.name)} (${documentIndexColumns(model.kind, fields)})`,
      };
    });
  }

  apply(db: Db, stored: StoredEvent): void {
    if (!this.wholeChecked && this.bulk) this.checkWhole(db);
    const event = this.migration.toDomainEvent(stored);
    this.applyToViews(db, event, stored);
    this.applyToProjections(db, event);
  }

  /**
   * Re-applies a row's last event to the views only (repair). A view keeps each row's latest
   * state, so re-applying the last event is idempotent: a correct row stays as it is, a drifted
   * or lost one is restored; either way the documents that read it are marked for `flush`.
   * Projections are left alone: `evolve` folds every event, and applying one twice would count it twice.
   */
  reapplyRow(db: Db, stored: StoredEvent): void {
    if (!this.wholeChecked && this.bulk) this.checkWhole(db);
    this.applyToViews(db, this.migration.toDomainEvent(stored), stored);
  }

  /** Removes a row no event accounts for (repair), marking the documents that read it. */
  dropRow(db: Db, table: string, key: string): void {
    const views = this.viewsOfTable.get(table);
    const reader = this.readerOf(db);
    const before = reader.get(table, key);
    if (views === undefined || before === null) return;
    this.mark(views, table, before, reader);
    prepared(db, `DELETE FROM ${this.rowTable(table)} WHERE key = ?`).run(key);
  }

  /** Has the next `flush` recompose one view document (or drop it when its root row is gone). */
  markDocument(view: string, key: string): void {
    if (this.whole.has(view)) return;
    let keys = this.dirty.get(view);
    if (keys === undefined) {
      keys = new Set();
      this.dirty.set(view, keys);
    }
    if (keys.has(key)) return;
    keys.add(key);
    this.unsaved.push([view, key]);
  }

  /** Replaces a projection's document with the fold of `events` (all of its events, in store order) from nothing. */
  refold(db: Db, projection: string, id: string, events: readonly StoredEvent[]): void {
    const definition = this.projections.find((p) => p.name === projection);
    if (definition === undefined) return;
    // Folded from nothing: the document is this fold's alone.
    const evolve = definition.evolveOwned ?? definition.evolve;
    let doc: unknown = null;
    for (const stored of events) doc = evolve(doc, this.migration.toDomainEvent(stored));
    const table = this.docTable(projection);
    if (doc === null) prepared(db, `DELETE FROM ${table} WHERE key = ?`).run(id);
    else {
      const valid = this.validate(projection, id, definition.schema, doc);
      prepared(db, `INSERT OR REPLACE INTO ${table} (key, doc) VALUES (?, ?)`).run(id, JSON.stringify(valid));
    }
  }

  /** Every table this projection writes (unquoted): what dropping a replayed version removes. */
  tables(): string[] {
    const version = this.version?.version ?? DEFAULT_VERSION;
    const only = this.version?.readModel ?? null;
    return [
      ...[...this.viewsOfTable.keys()].map((t) => rowTableName(t, only, version)),
      ...this.models.map((m) => docTableName(m.name, version)),
    ];
  }

  /** The row reader over `db` (the rows views are composed from). */
  rows(db: Db): SyncRowReader {
    return this.readerOf(db);
  }

  private applyToViews(db: Db, event: DomainEvent, stored: StoredEvent): void {
    const table = event.metadata.table;
    if (!this.viewsOfTable.has(table)) return;
    const rule = this.migration.ruleOf(table);
    const state = (event.data as { state?: DomainState }).state;
    if (rule === undefined || state === undefined) {
      throw new StoreError(
        'EVENT_INVALID',
        `${event.type} at position ${stored.position} carries no row state`,
      );
    }
    const views = this.markedViewsOfTable.get(table);
    const reader = this.readerOf(db);
    const key = rule.rowKey(state);
    if (views !== undefined) {
      const before = reader.get(table, key);
      if (before !== null) this.mark(views, table, before, reader);
    }
    const writes = this.rowWrites(db, table);
    if (event.removed) writes.drop.run(key);
    // The state's text as the store holds it, when it came with the event: the same bytes as
    // serialising the parsed state again, for a string copy.
    else writes.put.run(key, storedStateJson(stored, event.data as RowData) ?? JSON.stringify(state));
    if (views !== undefined && !event.removed) this.mark(views, table, state, reader);
  }

  /** The statements writing one mirrored table's rows, kept per table (run for every event). */
  private rowWrites(db: Db, table: string): { put: Database.Statement; drop: Database.Statement } {
    return keptFor(this.rowWriteStatements, table, db, () => ({
      db,
      put: prepared(db, `INSERT OR REPLACE INTO ${this.rowTable(table)} (key, state) VALUES (?, ?)`),
      drop: prepared(db, `DELETE FROM ${this.rowTable(table)} WHERE key = ?`),
    }));
  }

  /**
   * A projection's document statements, kept per projection: run for every event and document,
   * where building the SQL text and looking it up in the statement cache each time showed in a
   * bulk replay's profile.
   */
  private documentWrites(db: Db, projection: string): DocumentStatements {
    const table = this.docTable(projection);
    return keptFor(this.documentStatements, projection, db, () => ({
      db,
      read: prepared(db, `SELECT doc FROM ${table} WHERE key = ?`, { pluck: true }),
      put: prepared(db, `INSERT OR REPLACE INTO ${table} (key, doc) VALUES (?, ?)`),
      drop: prepared(db, `DELETE FROM ${table} WHERE key = ?`),
    }));
  }

  /**
   * At a batch's first row: a view with no document stored and not composed whole yet is
   * composed whole by the next flush (its marks dropped); the mark is kept in rm_dirty too, so
   * a deferral interrupted by a crash still composes every document.
   */
  private checkWhole(db: Db): void {
    this.wholeChecked = true;
    let changed = false;
    for (const plan of this.plans) {
      if (this.whole.has(plan.name) || this.settled.has(plan.name)) continue;
      const anyDocument = prepared(db, `SELECT 1 FROM ${this.docTable(plan.name)} LIMIT 1`, {
        pluck: true,
      }).get();
      if (anyDocument !== undefined) {
        this.settled.add(plan.name);
        continue;
      }
      this.dirty.delete(plan.name);
      this.unsaved = this.unsaved.filter(([view]) => view !== plan.name);
      this.unsaved.push([plan.name, EVERY_DOCUMENT]);
      this.whole.add(plan.name);
      changed = true;
    }
    if (changed) this.markedViews();
    // Every view composed whole: nothing finds rows until the flush, which builds the indexes
    // again in one pass over each table (cheaper than keeping them row by row). Dropped in this
    // batch's transaction with the whole-view marks; a restart's migrate creates them again.
    if (!this.rowIndexesDropped && this.whole.size === this.plans.length && this.plans.length > 0) {
      for (const index of this.rowIndexes()) db.exec(`DROP INDEX IF EXISTS ${index.name}`);
      this.rowIndexesDropped = true;
    }
    // Documents are read by key only while they are evolved: a projection starting empty has
    // its indexes dropped in this batch's transaction, and the flush ending the build (or a
    // restart's migrate) creates them again.
    for (const model of this.projections) {
      if (
        (model.indexes ?? []).length === 0 ||
        this.unindexed.has(model.name) ||
        this.settled.has(model.name)
      )
        continue;
      const anyDocument = prepared(db, `SELECT 1 FROM ${this.docTable(model.name)} LIMIT 1`, {
        pluck: true,
      }).get();
      if (anyDocument !== undefined) {
        this.settled.add(model.name);
        continue;
      }
      for (const index of this.documentIndexes(model)) db.exec(`DROP INDEX IF EXISTS ${index.name}`);
      this.unindexed.add(model.name);
    }
  }

  setBulk(bulk: boolean): void {
    this.bulk = bulk;
  }

  /** Recomputes which views each table's rows are marked for: those not composed whole. */
  private markedViews(): void {
    const marked = new Map<string, ViewPlan[]>();
    for (const [table, views] of this.viewsOfTable) {
      const list = views.filter((plan) => !this.whole.has(plan.name));
      if (list.length > 0) marked.set(table, list);
    }
    this.markedViewsOfTable = marked;
  }

  /** Takes a mark kept in rm_dirty (at start, or at a flush after a deferral). */
  private takeKept(view: string, key: string): void {
    if (key !== EVERY_DOCUMENT) {
      this.markDocument(view, key);
      return;
    }
    if (this.whole.has(view) || !this.plans.some((p) => p.name === view)) return;
    this.dirty.delete(view);
    this.whole.add(view);
    this.markedViews();
  }

  private applyToProjections(db: Db, event: DomainEvent): void {
    for (const projection of this.projections) {
      if (!projection.canHandle.includes(event.type)) continue;
      const id = projection.documentId(event);
      if (id === null) continue;
      const slot = `${projection.name}\u0000${id}`;
      let entry = this.held.get(slot);
      if (entry === undefined) {
        const text = this.documentWrites(db, projection.name).read.get(id) as string | undefined;
        entry = { projection, id, doc: text === undefined ? null : JSON.parse(text) };
        this.held.set(slot, entry);
      }
      // Parsed once per batch and evolved in memory: validated and written once, at the batch's end.
      // Nothing else holds the parsed document or what evolve returned: it may change in place.
      entry.doc = (projection.evolveOwned ?? projection.evolve)(entry.doc, event);
    }
  }

  /** Writes the projection documents this batch evolved (both `flush` and `defer` do). */
  writeHeld(db: Db): void {
    for (const { projection, id, doc } of this.held.values()) {
      this.touchedOf(projection.name).add(id);
      const writes = this.documentWrites(db, projection.name);
      if (doc === null) {
        writes.drop.run(id);
        continue;
      }
      const valid = this.validate(projection.name, id, projection.schema, doc);
      writes.put.run(id, JSON.stringify(valid));
    }
    this.held.clear();
  }

  /**
   * Compose threads for a bulk build's views (composeOffThread): how many, and the definition
   * module they load; null: every document is composed on the calling thread.
   */
  composeOffThread(threads: ComposeThreadsOption | null): void {
    this.composeThreads = threads;
  }

  /**
   * Before the flush that ends a deferral, in a transaction of its own: the row indexes a whole
   * composition looks rows up by, committed, so a compose thread's connection has them too.
   */
  prepareCompose(db: Db, options: Pick<FlushOptions, 'onIndex'> = {}): void {
    if (!this.rowIndexesDropped) return;
    createIndexes(db, this.rowIndexes(), options.onIndex);
    this.rowIndexesDropped = false;
  }

  /** Ends a batch and composes every marked view document (those kept in rm_dirty too). */
  flush(db: Db, options: FlushOptions = {}): void {
    this.writeHeld(db);
    if (this.persisted) {
      const kept = prepared(db, 'SELECT view, key FROM rm_dirty WHERE projection = ?').all(
        this.name,
      ) as Array<{
        view: string;
        key: string;
      }>;
      for (const { view, key } of kept) this.takeKept(view, key);
    }
    if (this.whole.size > 0) {
      createIndexes(db, this.rowIndexes(), options.onIndex);
      this.rowIndexesDropped = false;
    }
    for (const model of this.projections) {
      if (!this.unindexed.has(model.name)) continue;
      createIndexes(db, this.documentIndexes(model), options.onIndex);
      this.settled.add(model.name);
    }
    this.unindexed.clear();
    let thread: ComposeThreads | null = null;
    try {
      for (const plan of this.plans) {
        if (!this.whole.has(plan.name)) continue;
        if (thread === null && options.rowsCommitted === true && this.composesOffThread(db, plan))
          thread = this.startComposeThreads(db);
        this.composeWhole(db, plan, thread, options);
      }
    } finally {
      thread?.close();
    }
    const reader = this.composingReader(db);
    for (const plan of this.plans) {
      if (this.whole.has(plan.name)) continue;
      const keys = this.dirty.get(plan.name);
      if (keys === undefined || keys.size === 0) continue;
      const table = this.docTable(plan.name);
      const put = prepared(db, `INSERT OR REPLACE INTO ${table} (key, doc, row) VALUES (?, ?, ?)`);
      const drop = prepared(db, `DELETE FROM ${table} WHERE key = ?`);
      const touched = this.touchedOf(plan.name);
      for (const key of keys) {
        touched.add(key);
        const text = this.rowText(db, plan.view.from, key);
        if (text === undefined || !this.composeInto(plan, key, text, reader, put)) drop.run(key);
      }
      keys.clear();
    }
    if (this.whole.size > 0) {
      for (const view of this.whole) this.settled.add(view);
      this.whole.clear();
      this.markedViews();
    }
    this.unsaved = [];
    this.wholeChecked = false;
    if (this.persisted) {
      prepared(db, 'DELETE FROM rm_dirty WHERE projection = ?').run(this.name);
      this.persisted = false;
    }
  }

  /**
   * Every document of a view, from its root rows in key order, a page per statement: what the
   * marks of a bulk run would have named, without reading a row per event to find them. The
   * table is emptied first, so a root row gone since is no document.
   */
  private composeWhole(
    db: Db,
    plan: ViewPlan,
    thread: ComposeThreads | null,
    { onComposed, onIndex }: FlushOptions,
  ): void {
    const table = this.docTable(plan.name);
    prepared(db, `DELETE FROM ${table}`).run();
    // Built again after the inserts, in one sorted pass, instead of entry by entry.
    const indexes = this.documentIndexes(plan.view);
    for (const index of indexes) db.exec(`DROP INDEX IF EXISTS ${index.name}`);
    const put = prepared(db, `INSERT INTO ${table} (key, doc, row) VALUES (?, ?, ?)`);
    const touched = this.touchedOf(plan.name);
    const total =
      onComposed === undefined
        ? 0
        : (prepared(db, `SELECT COUNT(*) FROM ${this.rowTable(plan.view.from)}`, {
            pluck: true,
          }).get() as number);
    let done = 0;
    const write = (documents: ComposedDocument[]) => {
      for (const [key, doc, row] of documents) {
        touched.add(key);
        if (doc !== null) put.run(key, doc, row);
      }
      done += documents.length;
      onComposed?.(plan.name, done, total);
    };
    if (thread === null) this.composeView(db, plan.name, write);
    else thread.compose(plan.name, write);
    createIndexes(db, indexes, onIndex);
  }

  /**
   * The documents of view `name`, composed from its root rows in key order and handed to `write`
   * a page of roots at a time: every page, or with `stripe` of `stripes` only the pages whose
   * number modulo `stripes` is `stripe` (the others' keys are walked past in the key index).
   * composeWhole's composing, on the projector's thread or on compose threads
   * (compose-worker.ts), each over a connection of its own; `onRoot` hears each root composed.
   */
  composeView(
    db: Db,
    name: string,
    write: (documents: ComposedDocument[]) => void,
    options: { stripe?: number; stripes?: number; onRoot?: () => void } = {},
  ): void {
    const plan = this.plans.find((p) => p.name === name);
    if (plan === undefined) throw new StoreError('VIEW_UNKNOWN', `no view ${name} is built here`);
    const { stripe = 0, stripes = 1, onRoot } = options;
    const reader = this.composingReader(db);
    const table = this.rowTable(plan.view.from);
    const page = prepared(
      db,
      `SELECT key, state FROM ${table} WHERE key > ? ORDER BY key LIMIT ${ROOT_PAGE}`,
    ).raw(true);
    const lastOfPage = prepared(
      db,
      `SELECT key FROM ${table} WHERE key > ? ORDER BY key LIMIT 1 OFFSET ${ROOT_PAGE - 1}`,
      { pluck: true },
    );
    let after = '';
    for (let n = 0; ; n++) {
      if (n % stripes !== stripe) {
        const last = lastOfPage.get(after) as string | undefined;
        // Fewer than a page's roots left: that page was the last.
        if (last === undefined) break;
        after = last;
        continue;
      }
      const rows = page.all(after) as Array<[string, string]>;
      const documents = new Array<ComposedDocument>(rows.length);
      for (let i = 0; i < rows.length; i++) {
        const [key, text] = rows[i] as [string, string];
        documents[i] = [key, this.composedText(plan, key, text, reader), text];
        onRoot?.();
      }
      write(documents);
      if (rows.length < ROOT_PAGE) break;
      after = (rows[rows.length - 1] as [string, string])[0];
    }
  }

  /**
   * Whether a whole composition of `plan` goes to a compose thread: one is configured, the
   * database is a file another connection can open, and the view has enough roots to be worth
   * the thread's start (loading the definition takes about a second).
   */
  private composesOffThread(db: Db, plan: ViewPlan): boolean {
    if (this.composeThreads === null || db.memory) return false;
    const minRoots = this.composeThreads.minRoots ?? OFF_THREAD_MIN_ROOTS;
    const enough = prepared(
      db,
      `SELECT 1 FROM ${this.rowTable(plan.view.from)} ORDER BY key LIMIT 1 OFFSET ${Math.max(0, minRoots - 1)}`,
      { pluck: true },
    ).get();
    return enough !== undefined;
  }

  private startComposeThreads(db: Db): ComposeThreads {
    const { definition, threads } = this.composeThreads as ComposeThreadsOption;
    const target =
      this.version === null ? null : { readModel: this.version.readModel, version: this.version.version };
    return new ComposeThreads({ definition, readModelsPath: db.name, target }, threads);
  }

  /**
   * Composes one document from its root row's stored text and writes it with `put`; false when
   * it composes to nothing. The row column takes the stored text as it is: it is what
   * JSON.stringify gave when the row was written, so serialising the parsed row again would
   * give the same bytes.
   */
  private composeInto(
    plan: ViewPlan,
    key: string,
    rowText: string,
    reader: SyncRowReader,
    put: Database.Statement,
  ): boolean {
    const doc = this.composedText(plan, key, rowText, reader);
    if (doc === null) return false;
    put.run(key, doc, rowText);
    return true;
  }

  /** One document's JSON text, composed from its root row's text and validated; null when it composes to nothing. */
  private composedText(plan: ViewPlan, key: string, rowText: string, reader: SyncRowReader): string | null {
    const composed = runSync(composeFromRow(plan, JSON.parse(rowText) as DomainState), reader);
    if (composed === null) return null;
    return JSON.stringify(this.validate(plan.name, key, plan.view.schema, composed));
  }

  /**
   * The row reader a flush composes with: rows of looked-up tables are kept for the flush, since
   * the same few merchants or branches are read for document after document. Each read still
   * gets a row of its own, so no document shares a row another's select could change: a copy of
   * the top level when every value is a scalar (what JSON.parse of the text would give, for a
   * fraction of its cost), the text parsed again otherwise.
   */
  private composingReader(db: Db): SyncRowReader {
    const rows = this.readerOf(db);
    const memo = new Map<string, Map<string, KeptRow | null>>();
    let size = 0;
    const valuesFor = this.valuesFieldsOfCounts();
    // The values a count read for the sum (or min/max) asked next over the same rows.
    let counted: {
      table: string;
      shape: string;
      params: SqlValue[];
      field: string;
      values: Scalar[];
    } | null = null;
    return {
      get: (table, key) => {
        if (!this.lookupTables.has(table)) return rows.get(table, key);
        let kept = memo.get(table);
        if (kept === undefined) {
          kept = new Map();
          memo.set(table, kept);
        }
        let row = kept.get(key);
        if (row === undefined) {
          const text = this.rowText(db, table, key);
          row = text === undefined ? null : keptRow(text);
          if (size >= LOOKUP_MEMO_LIMIT) {
            for (const m of memo.values()) m.clear();
            size = 0;
          }
          kept.set(key, row);
          size++;
        }
        if (row === null) return null;
        return row.flat === null ? (JSON.parse(row.text) as DomainState) : { ...row.flat };
      },
      find: rows.find,
      aggregate: (table, where, fn, field, scale) => {
        const shape = whereShape(where);
        const params: SqlValue[] = [];
        whereParams(where, params);
        if (fn === 'count') {
          const valuesField = valuesFor.get(`${table}\u0000${shape}`);
          if (valuesField === undefined) return rows.aggregate(table, where, fn, field, scale);
          const values = this.fieldValues(db, table, where, valuesField);
          counted = { table, shape, params, field: valuesField, values };
          return values.length;
        }
        const mine = counted;
        counted = null;
        if (
          mine === null ||
          mine.table !== table ||
          mine.field !== field ||
          mine.shape !== shape ||
          mine.params.length !== params.length ||
          mine.params.some((p, i) => p !== params[i])
        )
          return rows.aggregate(table, where, fn, field, scale);
        return aggregateRows(
          mine.values.map((v) => ({ v })),
          fn,
          'v',
          scale,
        );
      },
    };
  }

  /**
   * Per table and where shape a count reads, the field a sum, min or max over the same rows reads
   * (a view counting and summing one children join): the count reads that field's values and
   * counts them, and the aggregate after it takes them, one scan of those rows instead of two
   * (account-position's three count and sum pairs were the most of its composition's reads).
   */
  private valuesFieldsOfCounts(): Map<string, string> {
    const counts = new Set<string>();
    const fields = new Map<string, string>();
    for (const plan of this.plans) {
      for (const node of plan.nodes) {
        for (const agg of node.aggregates) {
          // Shaped as composeNode builds it: the parent's key fields, then the join's where.
          const where: Record<string, Where[string]> = {};
          for (const by of agg.by) where[by] = 0;
          Object.assign(where, agg.where);
          const key = `${agg.table}\u0000${whereShape(where)}`;
          if (agg.fn === 'count') counts.add(key);
          else if (agg.field !== undefined && !fields.has(key)) fields.set(key, agg.field);
        }
      }
    }
    for (const key of fields.keys()) if (!counts.has(key)) fields.delete(key);
    return fields;
  }

  /** What the row reader's sum, min and max read: `field` of each row matching `where`, by the same statement. */
  private fieldValues(db: Db, table: string, where: Where, field: string): Scalar[] {
    const clauses = whereClauses('state', where);
    const filter = clauses.length === 0 ? '' : ` WHERE ${clauses.map((c) => c.sql).join(' AND ')}`;
    const params: SqlValue[] = [];
    whereParams(where, params);
    return prepared(db, `SELECT ${extract('state', field)} FROM ${this.rowTable(table)}${filter}`, {
      pluck: true,
    }).all(...params) as Scalar[];
  }

  /**
   * Ends a batch without composing: projection documents are written, the view documents it
   * marked are added to rm_dirty (in the batch's transaction) for a later `flush` to compose.
   */
  defer(db: Db): void {
    this.writeHeld(db);
    this.wholeChecked = false;
    if (this.unsaved.length === 0) return;
    const keep = prepared(db, 'INSERT OR IGNORE INTO rm_dirty (projection, view, key) VALUES (?, ?, ?)');
    for (const [view, key] of this.unsaved) keep.run(this.name, view, key);
    this.unsaved = [];
    this.persisted = true;
  }

  /**
   * Forgets what memory holds and takes the marks rm_dirty keeps: at start, and after a batch
   * rolled back (whose marks and evolved documents went with it).
   */
  restore(db: Db): void {
    this.dirty.clear();
    this.held.clear();
    this.unsaved = [];
    this.whole.clear();
    this.settled.clear();
    this.wholeChecked = false;
    this.rowIndexesDropped = false;
    // A rolled-back batch leaves dropped what the batches before it committed dropping.
    this.unindexed.clear();
    for (const model of this.projections)
      if (this.documentIndexes(model).some((index) => !hasIndex(db, index.id)))
        this.unindexed.add(model.name);
    this.markedViews();
    const kept = prepared(db, 'SELECT view, key FROM rm_dirty WHERE projection = ?').all(this.name) as Array<{
      view: string;
      key: string;
    }>;
    for (const { view, key } of kept) this.takeKept(view, key);
    this.unsaved = [];
    this.persisted = kept.length > 0;
  }

  drainTouched(): TouchedDocument[] {
    const out: TouchedDocument[] = [];
    for (const [model, keys] of this.touched) for (const key of keys) out.push([model, key]);
    this.touched.clear();
    return out;
  }

  trackTouched(on: boolean): void {
    this.tracking = on;
    if (!on) this.touched.clear();
  }

  private touchedOf(model: string): KeySink {
    if (!this.tracking) return IGNORED_KEYS;
    let keys = this.touched.get(model);
    if (keys === undefined) {
      keys = new Set();
      this.touched.set(model, keys);
    }
    return keys;
  }

  pending(): number {
    let n = 0;
    for (const keys of this.dirty.values()) n += keys.size;
    return n;
  }

  reset(db: Db): void {
    this.dirty.clear();
    this.held.clear();
    this.unsaved = [];
    this.persisted = false;
    this.whole.clear();
    this.settled.clear();
    this.wholeChecked = false;
    this.markedViews();
    if (hasTable(db, 'rm_dirty')) prepared(db, 'DELETE FROM rm_dirty WHERE projection = ?').run(this.name);
    for (const table of this.viewsOfTable.keys()) prepared(db, `DELETE FROM ${this.rowTable(table)}`).run();
    for (const model of this.models) prepared(db, `DELETE FROM ${this.docTable(model.name)}`).run();
  }

  /** The query handles of every read model, over `db` (a connection that may be read-only). */
  readModels(db: Db): ReadModels {
    // Pages read from the mapping instead of copied by a pread each: a history page's system CPU
    // halved (small scale). Only what lies in the mapped first GiB benefits (256 MiB gave nothing
    // measurable), and touched pages count towards RSS (file-backed, reclaimable).
    db.pragma(`mmap_size = ${READ_MMAP_BYTES}`);
    const snapshot = turnSnapshot(db);
    const handles: Record<string, ReadModelHandle<unknown>> = {};
    for (const model of this.models) {
      const table = this.docTable(model.name);
      const column = model.kind === 'view' ? 'row' : 'doc';
      // Kept by the handle (compiled at first use, when the tables exist): no cache lookup per read.
      let byKey: Database.Statement | undefined;
      const getJson = async (key: string): Promise<string | null> => {
        byKey ??= prepared(db, `SELECT doc FROM ${table} WHERE key = ?`, { pluck: true });
        snapshot();
        return (byKey.get(key) as string | undefined) ?? null;
      };
      // One statement per query shape, kept by the handle: a find's SQL text is built and
      // compiled once per shape, and a request only collects its parameters.
      const byShape = new Map<string, Database.Statement>();
      const findJson = async (query: DocumentQuery): Promise<string[]> => {
        // Refused as the server stores refuse it (querySort throws QUERY_INVALID): a keyset
        // position shorter than the order would page by a prefix of it and skip or repeat rows.
        if (
          (query.after !== undefined && query.after.length !== (query.orderBy?.length ?? 0)) ||
          !Number.isInteger(query.limit) ||
          query.limit < 0
        )
          querySort(query);
        const shape = findShape(query);
        let statement = byShape.get(shape);
        if (statement === undefined) {
          statement = prepared(db, findSql(table, column, query), { pluck: true });
          byShape.set(shape, statement);
        }
        snapshot();
        return statement.all(...findParams(query)) as string[];
      };
      // The keys as one JSON array, each looked up by the primary key: one statement per batch
      // where a get per key cost a statement run each (an overview's merchants). Each row says
      // its key's place in the array, so no ORDER BY (a sort step) is needed.
      let byKeys: Database.Statement | undefined;
      const getManyJson = (keys: readonly string[]): Array<string | null> => {
        byKeys ??= prepared(
          db,
          `SELECT k.key AS i, d.doc AS doc FROM json_each(?) AS k JOIN ${table} AS d ON d.key = k.value`,
        );
        snapshot();
        const texts = new Array<string | null>(keys.length).fill(null);
        for (const row of byKeys.all(JSON.stringify(keys)) as Array<{ i: number; doc: string }>)
          texts[row.i] = row.doc;
        return texts;
      };
      handles[model.name] = {
        getJson,
        findJson,
        async getMany(keys) {
          if (keys.length === 0) return [];
          return getManyJson(keys).map((text) => (text === null ? null : (JSON.parse(text) as unknown)));
        },
        async get(key) {
          const text = await getJson(key);
          return text === null ? null : JSON.parse(text);
        },
        async find(query: DocumentQuery) {
          return (await findJson(query)).map((t) => JSON.parse(t) as unknown);
        },
      };
    }
    return handles;
  }

  private mark(views: readonly ViewPlan[], table: string, state: DomainState, reader: SyncRowReader): void {
    for (const plan of views) {
      for (const key of runSync(affectedKeys(plan, table, state), reader)) this.markDocument(plan.name, key);
    }
  }

  private validate<T>(
    readModel: string,
    key: string,
    schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: Error } },
    value: unknown,
  ): T {
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      throw new StoreError(
        'STORE_DOCUMENT_INVALID',
        `read model ${readModel}: document ${key} does not match its schema: ${parsed.error.message}`,
        { cause: parsed.error, hint: `fix the read model's select/evolve or its schema in the definition` },
      );
    }
    return parsed.data;
  }

  /** The row reader over `db`, built once per database: apply runs it for every event. */
  private readerOf(db: Db): SyncRowReader {
    let reader = this.readers.get(db);
    if (reader === undefined) {
      reader = this.reader(db);
      this.readers.set(db, reader);
    }
    return reader;
  }

  private reader(db: Db): SyncRowReader {
    const parse = (text: string) => JSON.parse(text) as DomainState;
    // One statement per table and read shape, kept here: the engine reads rows for every event
    // and every document, and building each read's SQL text again showed in replay profiles.
    const statements = new Map<string, Database.Statement>();
    const statement = (shape: string, sql: () => string) => {
      let found = statements.get(shape);
      if (found === undefined) {
        found = prepared(db, sql(), { pluck: true });
        statements.set(shape, found);
      }
      return found;
    };
    const filter = (where: Where) => {
      const clauses = whereClauses('state', where);
      return clauses.length === 0 ? '' : ` WHERE ${clauses.map((c) => c.sql).join(' AND ')}`;
    };
    return {
      get: (table, key) => {
        const text = this.rowText(db, table, key);
        return text === undefined ? null : parse(text);
      },
      find: (table, where, orderBy, limit) => {
        const shape = `find\u0000${table}\u0000${whereShape(where)}\u0000${orderShape(orderBy)}\u0000${limit === undefined ? '' : 'limit'}`;
        const find = statement(
          shape,
          () =>
            // LIMIT +? for the reason findSql gives.
            `SELECT state FROM ${this.rowTable(table)}${filter(where)}${orderSql('state', orderBy)}${limit === undefined ? '' : ' LIMIT +?'}`,
        );
        const params: SqlValue[] = [];
        whereParams(where, params);
        if (limit !== undefined) params.push(limit);
        const texts = find.all(...params) as string[];
        const rows = new Array<DomainState>(texts.length);
        for (let i = 0; i < texts.length; i++) rows[i] = parse(texts[i] as string);
        return rows;
      },
      aggregate: (table, where, fn: AggregateFn, field, scale) => {
        const params: SqlValue[] = [];
        whereParams(where, params);
        if (fn === 'count') {
          const count = statement(
            `count\u0000${table}\u0000${whereShape(where)}`,
            () => `SELECT COUNT(*) FROM ${this.rowTable(table)}${filter(where)}`,
          );
          return count.get(...params) as number;
        }
        if (field === undefined) throw new StoreError('VIEW_INVALID', `${fn} over ${table} needs a field`);
        // Summed in JS: SQLite would add DECIMAL strings as floats.
        const values = statement(
          `values\u0000${table}\u0000${whereShape(where)}\u0000${field}`,
          () => `SELECT ${extract('state', field)} FROM ${this.rowTable(table)}${filter(where)}`,
        ).all(...params) as Scalar[];
        return aggregateRows(
          values.map((v) => ({ v })),
          fn,
          'v',
          scale,
        );
      },
    };
  }

  /** A mirrored row's stored JSON text (undefined: no such row), by a statement kept per table. */
  private rowText(db: Db, table: string, key: string): string | undefined {
    let byKey = this.rowByKey.get(db)?.get(table);
    if (byKey === undefined) {
      byKey = prepared(db, `SELECT state FROM ${this.rowTable(table)} WHERE key = ?`, { pluck: true });
      let tables = this.rowByKey.get(db);
      if (tables === undefined) {
        tables = new Map();
        this.rowByKey.set(db, tables);
      }
      tables.set(table, byKey);
    }
    return byKey.get(key) as string | undefined;
  }
}
