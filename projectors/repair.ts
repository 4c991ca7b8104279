import type Database from 'better-sqlite3';
import type { EndpointDefinition, EndpointParams } from '../definition/endpoints.js';
import type { Migration } from '../definition/migration.js';
import type {
  DocumentQuery,
  DomainState,
  ReadModelHandle,
  ReadModels,
  Where,
} from '../definition/read-models.js';
import { composeDocument, matchesWhere, runSync, type SyncRowReader } from '../definition/view/index.js';
import type { StoredEvent } from '../eventstore/ports.js';
import { errorMessage } from '../lib/errors.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import type { ProjectorEventSource } from './runner.js';
import { SqliteReadModels } from './stores/sqlite-read-models.js';

/**
 * Repairs the embedded SQLite read models behind drifted answers by re-projecting them from the
 * event store, without a rebuild and while they are served:
 *
 * 1. The endpoint's read-model query runs once more over handles that record what it read: the
 *    documents it got by key, and the queries it ran.
 * 2. Each view document is composed over a reader that records the rows it reads (lookups by
 *    key, children and aggregates by condition): the rows the document is built from.
 * 3. The event store is read once up to where the projector applied rows (its checkpoint, or
 *    ahead of it while a catch-up defers composing documents), keeping the last event of
 *    each of those rows, and every event of each projection document concerned.
 * 4. In one write transaction: each row's last event is re-applied (idempotent: a view keeps a
 *    row's latest state), a row no event accounts for is removed, projection documents are
 *    folded again from nothing, and every document concerned is recomposed.
 *
 * Events past the checkpoint are left to the projector: repairing up to it keeps the read
 * models exactly where the checkpoint says they are. Within step 4, events that the projector
 * applied after step 3 (a live `run`) are read too, under the write lock, so a row is never set
 * back to a state older than the checkpoint. A row that the query never reaches (a child deleted
 * from the row store whose parent document was not read) is out of reach; the re-comparison
 * after the repair reports it.
 */

export interface RepairTarget {
  endpoint: EndpointDefinition;
  params: EndpointParams;
}

export interface RepairOptions {
  migration: Migration;
  /** The read-model database, writable (the pipeline's own connection in `run`). */
  db: Database.Database;
  eventStore: Pick<ProjectorEventSource, 'readAfterSync'>;
  /** Projector checkpoint row (ProjectionRunner's default name). */
  checkpointName?: string;
  /** Events read per page of the scan. */
  pageSize?: number;
  logger?: Logger;
}

export interface RepairSummary {
  /** Rows whose last event was re-applied, and rows removed for want of one. */
  rowsReapplied: number;
  rowsRemoved: number;
  /** View and projection documents rebuilt. */
  documents: number;
  /** Events read from the store. */
  eventsScanned: number;
}

const rowId = (table: string, key: string) => `${table}\u0000${key}`;
const sameWhere = (a: Where, b: Where) => JSON.stringify(a) === JSON.stringify(b);

/** What drifted answers were built from: documents by key, and rows by key or by condition. */
class Dependencies {
  readonly viewDocs = new Map<string, Set<string>>();
  readonly projectionDocs = new Map<string, Set<string>>();
  readonly rows = new Map<string, { table: string; key: string }>();
  /** Conditions on rows, by table (finds and aggregates of compositions, queries on views). */
  readonly conditions = new Map<string, Where[]>();
  /** Queries on code projections: their documents are not known by key, so they are not repaired. */
  readonly unreachable = new Set<string>();

  addCondition(table: string, where: Where): void {
    const list = this.conditions.get(table) ?? [];
    if (!list.some((w) => sameWhere(w, where))) list.push(where);
    this.conditions.set(table, list);
  }

  addRow(table: string, key: string): void {
    this.rows.set(rowId(table, key), { table, key });
  }

  addDocument(kind: 'view' | 'projection', name: string, key: string): void {
    const map = kind === 'view' ? this.viewDocs : this.projectionDocs;
    let keys = map.get(name);
    if (keys === undefined) {
      keys = new Set();
      map.set(name, keys);
    }
    keys.add(key);
  }

  /** Whether an event's row is one of the rows the answers read. */
  concerns(table: string, key: string, state: DomainState): boolean {
    return (
      this.rows.has(rowId(table, key)) ||
      (this.conditions.get(table)?.some((where) => matchesWhere(state, where)) ?? false)
    );
  }
}

/** A reader that notes every row read (by key, or by condition for finds and aggregates). */
function recordingReader(reader: SyncRowReader, deps: Dependencies): SyncRowReader {
  return {
    get(table, key) {
      deps.addRow(table, key);
      return reader.get(table, key);
    },
    find(table, where, orderBy, limit) {
      deps.addCondition(table, where);
      return reader.find(table, where, orderBy, limit);
    },
    aggregate(table, where, fn, field, scale) {
      deps.addCondition(table, where);
      return reader.aggregate(table, where, fn, field, scale);
    },
  };
}

export class ReadModelRepair {
  private readonly store: SqliteReadModels;
  private readonly served: ReadModels;
  private readonly checkpoint: Database.Statement<[string], number>;
  private readonly logger: Logger;

  constructor(private readonly options: RepairOptions) {
    // Its own instance: the documents it marks are flushed by it, never by the live projector.
    this.store = new SqliteReadModels(options.migration);
    this.served = this.store.readModels(options.db);
    this.checkpoint = options.db
      // The rows stand where the runner applied them (ahead of its checkpoint while it defers
      // composing): re-applying only up to the checkpoint would take rows back in time.
      .prepare<[string], number>(
        'SELECT MAX(position, COALESCE(applied_position, 0)) FROM projector_checkpoints WHERE name = ?',
      )
      .pluck();
    this.logger = (options.logger ?? silentLogger).child({ component: 'repair' });
  }

  async repair(targets: readonly RepairTarget[]): Promise<RepairSummary> {
    const deps = new Dependencies();
    for (const target of targets) await this.discover(target, deps);
    this.expand(deps);
    if (deps.unreachable.size > 0) {
      this.logger.warn(
        { projections: [...deps.unreachable] },
        'queries on code projections are not repaired per key (their documents are not known by key); `rebuild` re-projects them',
      );
    }
    const name = this.options.checkpointName ?? 'read-models';
    const last = new Map<string, StoredEvent>();
    const folds = new Map<string, StoredEvent[]>();
    const seen = this.scan(deps, 0, this.checkpoint.get(name) ?? 0, last, folds);
    const summary = this.options.db
      .transaction(() => {
        const scanned =
          seen.scanned + this.scan(deps, seen.upTo, this.checkpoint.get(name) ?? 0, last, folds).scanned;
        return { ...this.write(deps, last, folds), eventsScanned: scanned };
      })
      .immediate();
    this.logger.info({ targets: targets.length, ...summary }, 'read models repaired from the event store');
    return summary;
  }

  /** Step 1: what the endpoint's read-model query reads for these parameters. */
  private async discover(target: RepairTarget, deps: Dependencies): Promise<void> {
    const recording: Record<string, ReadModelHandle<unknown>> = {};
    for (const [name, handle] of Object.entries(this.served)) {
      const kind = this.options.migration.viewPlans.has(name) ? 'view' : 'projection';
      const byKey = (key: string) => deps.addDocument(kind, name, key);
      const byQuery = (query: DocumentQuery) => {
        const plan = this.options.migration.viewPlans.get(name);
        // A view's query fields are its root row's: the rows that could answer it are known by condition.
        if (plan === undefined) deps.unreachable.add(name);
        else deps.addCondition(plan.view.from, query.where ?? {});
      };
      const { getJson, findJson } = handle;
      recording[name] = {
        get: (key) => {
          byKey(key);
          return handle.get(key);
        },
        find: (query) => {
          byQuery(query);
          return handle.find(query);
        },
        ...(getJson === undefined
          ? {}
          : {
              getJson: (key: string) => {
                byKey(key);
                return getJson(key);
              },
            }),
        ...(findJson === undefined
          ? {}
          : {
              findJson: (query: DocumentQuery) => {
                byQuery(query);
                return findJson(query);
              },
            }),
      };
    }
    try {
      // Analytics stores keep no per-key documents to re-project: such endpoints trace nothing.
      await target.endpoint.readModel({ params: target.params, readModels: recording, analytics: {} });
    } catch (err) {
      // What it read before failing is still repaired; the re-comparison tells whether that was enough.
      this.logger.warn({ err: errorMessage(err) }, 'read-model query failed while tracing its reads');
    }
  }

  /** Step 2: the rows each view document concerned is composed from, as stored now. */
  private expand(deps: Dependencies): void {
    const reader = this.store.rows(this.options.db);
    const recording = recordingReader(reader, deps);
    const compose = (view: string, key: string) => {
      const plan = this.options.migration.viewPlans.get(view);
      if (plan === undefined) return;
      deps.addRow(plan.view.from, key);
      runSync(composeDocument(plan, key), recording);
    };
    for (const [view, keys] of deps.viewDocs) for (const key of keys) compose(view, key);
    // Documents found by a condition on their root rows: compose each root row that meets it.
    for (const [view, plan] of this.options.migration.viewPlans) {
      const rule = this.options.migration.ruleOf(plan.view.from);
      if (rule === undefined) continue;
      for (const where of deps.conditions.get(plan.view.from) ?? []) {
        for (const row of reader.find(plan.view.from, where)) compose(view, rule.rowKey(row));
      }
    }
  }

  /** Step 3: events in (from, upTo]; the last per concerned row, every one per concerned projection document. */
  private scan(
    deps: Dependencies,
    from: number,
    upTo: number,
    last: Map<string, StoredEvent>,
    folds: Map<string, StoredEvent[]>,
  ): { scanned: number; upTo: number } {
    const { migration } = this.options;
    const pageSize = this.options.pageSize ?? 1000;
    const projections = migration.readModels.filter(
      (m) => m.kind === 'projection' && deps.projectionDocs.has(m.name),
    );
    let position = from;
    let scanned = 0;
    while (position < upTo) {
      const page = this.options.eventStore
        .readAfterSync(position, pageSize)
        .filter((e) => e.position <= upTo);
      if (page.length === 0) break;
      for (const event of page) {
        const table = event.metadata.table;
        const rule = migration.ruleOf(table);
        const state = (event.data as { state?: DomainState }).state;
        if (rule !== undefined && state !== undefined) {
          const key = rule.rowKey(state);
          const id = rowId(table, key);
          // Once a row is concerned every later event of it counts, even one that no longer meets the condition.
          if (last.has(id) || deps.concerns(table, key, state)) last.set(id, event);
        }
        for (const p of projections) {
          if (p.kind !== 'projection' || !p.canHandle.includes(event.type)) continue;
          const doc = p.documentId(migration.toDomainEvent(event));
          if (doc === null || !deps.projectionDocs.get(p.name)?.has(doc)) continue;
          const id = rowId(p.name, doc);
          folds.set(id, [...(folds.get(id) ?? []), event]);
        }
      }
      scanned += page.length;
      position = (page[page.length - 1] as StoredEvent).position;
    }
    return { scanned, upTo: Math.max(from, upTo) };
  }

  /** Step 4, inside the write transaction. */
  private write(
    deps: Dependencies,
    last: Map<string, StoredEvent>,
    folds: Map<string, StoredEvent[]>,
  ): Omit<RepairSummary, 'eventsScanned'> {
    const { db, migration } = this.options;
    const reader = this.store.rows(db);
    let rowsRemoved = 0;
    for (const event of last.values()) this.store.reapplyRow(db, event);
    const phantom = (table: string, key: string) => {
      if (last.has(rowId(table, key)) || reader.get(table, key) === null) return;
      this.store.dropRow(db, table, key);
      rowsRemoved++;
    };
    for (const { table, key } of deps.rows.values()) phantom(table, key);
    for (const [table, wheres] of deps.conditions) {
      const rule = migration.ruleOf(table);
      if (rule === undefined) continue;
      for (const where of wheres)
        for (const row of reader.find(table, where)) phantom(table, rule.rowKey(row));
    }
    let documents = 0;
    for (const [view, keys] of deps.viewDocs) for (const key of keys) this.store.markDocument(view, key);
    for (const [name, keys] of deps.projectionDocs) {
      for (const key of keys) this.store.refold(db, name, key, folds.get(rowId(name, key)) ?? []);
      documents += keys.size;
    }
    documents += this.store.pending();
    this.store.flush(db);
    // Whoever caches these documents is told otherwise (EmbeddedPipeline.dropCache): no checkpoint moved.
    this.store.drainTouched();
    return { rowsReapplied: last.size, rowsRemoved, documents };
  }
}
