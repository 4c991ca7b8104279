import { createHash } from 'node:crypto';
import { type DuckDBConnection, DuckDBInstance, type DuckDBValue } from '@duckdb/node-api';
import {
  type Analytics,
  type AnalyticsDefinition,
  type AnalyticsRow,
  type AnalyticsTarget,
  type AnalyticsValues,
  type AnalyticsWrites,
  foldAnalyticsWrites,
  targetsByTable,
} from '../../definition/analytics.js';
import type { Migration } from '../../definition/migration.js';
import type { Scalar } from '../../definition/read-models.js';
import type { StoredEvent } from '../../eventstore/ports.js';
import { errorMessage, StoreError } from '../../lib/errors.js';
import type { AnalyticsStore, AnalyticsTransaction } from '../ports.js';

/**
 * The analytics read models in an embedded DuckDB file (columnar, one writer process). Each
 * model is a schema of its own, so its queries name its tables unqualified; each table has the
 * declared columns plus `_key`, the captured row's key, its primary key. A chunk of events is
 * folded first (the last state of each row wins), then appended to a staging table and written
 * as one DELETE of the touched keys and one INSERT … SELECT per table: set-wise, as a columnar
 * store wants it, and a row delivered twice is replaced, not counted twice. The runner's
 * checkpoint lives in `_analytics_checkpoints` and commits with the rows.
 */

const quote = (identifier: string) => `"${identifier.replaceAll('"', '""')}"`;
const tableName = (model: string, table: string) => `${quote(model)}.${quote(table)}`;
/** A target's staging table (every column text) and the statements that empty it and move its rows. */
interface Stage {
  name: string;
  columns: readonly string[];
  create: string;
  delete: string;
  insert: string;
}

/** What a model's stored rows depend on: its tables' sources, columns and row functions. */
function fingerprint(model: AnalyticsDefinition): string {
  const tables = Object.entries(model.tables).map(([name, t]) => [
    name,
    t.from,
    t.columns,
    String(t.row),
    // Left out when VARCHAR, the default, so models stored before the option keep their fingerprint.
    ...(t.keyType === 'BIGINT' ? [t.keyType] : []),
  ]);
  return createHash('sha256').update(JSON.stringify(tables)).digest('hex');
}

/** The SQL of a named query in DuckDB's dialect. */
function duckdbSql(model: AnalyticsDefinition, name: string): string | undefined {
  const sql = model.queries[name];
  return typeof sql === 'string' ? sql : sql?.duckdb;
}

/** A result value as JSON-friendly scalar: integers beyond 2^53 stay exact as text. */
function scalarOf(value: unknown): Scalar {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : String(value);
  return String(value);
}

export class DuckDbAnalytics implements AnalyticsStore {
  private readonly targets;
  /** Query connections, one per model, its schema first on the search path. */
  private readonly readers = new Map<string, DuckDBConnection>();
  /** Staging-table statements, by model and table. */
  private readonly staged = new Map<string, Stage>();

  private constructor(
    private readonly migration: Migration,
    private readonly instance: DuckDBInstance,
    private readonly writer: DuckDBConnection,
  ) {
    this.targets = targetsByTable(migration.analytics);
  }

  /** Opens (creating) the file; one process at a time: DuckDB locks it for its writer. */
  static async open(path: string, migration: Migration): Promise<DuckDbAnalytics> {
    for (const model of migration.analytics) {
      for (const name of Object.keys(model.queries)) {
        if (duckdbSql(model, name) === undefined)
          throw new StoreError(
            'ANALYTICS_QUERY_MISSING',
            `analytics ${model.name}: query ${name} has no duckdb SQL`,
            {
              hint: 'give the query a `duckdb` text (or one text for every store)',
            },
          );
      }
    }
    let instance: DuckDBInstance;
    try {
      instance = await DuckDBInstance.create(path);
    } catch (cause) {
      throw new StoreError(
        'ANALYTICS_OPEN_FAILED',
        `cannot open the analytics store ${path}: ${errorMessage(cause)}`,
        {
          cause,
          hint: 'one process writes it at a time: stop the other `run` on this data directory, or check the path',
        },
      );
    }
    const store = new DuckDbAnalytics(migration, instance, await instance.connect());
    for (const model of migration.analytics) {
      const reader = await instance.connect();
      await reader.run(`CREATE SCHEMA IF NOT EXISTS ${quote(model.name)}`);
      await reader.run(`SET search_path = '${quote(model.name).replaceAll("'", "''")},main'`);
      store.readers.set(model.name, reader);
    }
    return store;
  }

  async migrate(): Promise<boolean> {
    const db = this.writer;
    await db.run(
      'CREATE TABLE IF NOT EXISTS _analytics_meta (name VARCHAR PRIMARY KEY, fingerprint VARCHAR NOT NULL)',
    );
    await db.run(
      `CREATE TABLE IF NOT EXISTS _analytics_checkpoints (name VARCHAR PRIMARY KEY, position BIGINT NOT NULL,
       source_tx_id VARCHAR NOT NULL, updated_at TIMESTAMP NOT NULL)`,
    );
    const previous = new Map(
      (await db.runAndReadAll('SELECT name, fingerprint FROM _analytics_meta'))
        .getRowObjectsJS()
        .map((r) => [String(r.name), String(r.fingerprint)]),
    );
    const projected =
      previous.size > 0 ||
      (await db.runAndReadAll('SELECT 1 FROM _analytics_checkpoints WHERE position > 0 LIMIT 1'))
        .currentRowCount > 0;
    let changed = false;
    await this.transaction(async () => {
      for (const model of this.migration.analytics) {
        const print = fingerprint(model);
        const before = previous.get(model.name);
        // Changed, or new where events were already applied: either way it needs every past event.
        const stale = before !== undefined ? before !== print : projected;
        if (before !== undefined && before !== print)
          await db.run(`DROP SCHEMA IF EXISTS ${quote(model.name)} CASCADE`);
        await db.run(`CREATE SCHEMA IF NOT EXISTS ${quote(model.name)}`);
        for (const [table, spec] of Object.entries(model.tables)) {
          const columns = Object.entries(spec.columns).map(([c, type]) => `${quote(c)} ${type}`);
          await db.run(
            `CREATE TABLE IF NOT EXISTS ${tableName(model.name, table)} (_key ${spec.keyType ?? 'VARCHAR'} PRIMARY KEY, ${columns.join(', ')})`,
          );
        }
        await db.run('INSERT OR REPLACE INTO _analytics_meta (name, fingerprint) VALUES ($1, $2)', [
          model.name,
          print,
        ]);
        changed ||= stale;
      }
    });
    return changed;
  }

  async checkpoint(runner: string): Promise<number> {
    const reader = await this.writer.runAndReadAll(
      'SELECT position FROM _analytics_checkpoints WHERE name = $1',
      [runner],
    );
    const row = reader.getRowObjectsJS()[0];
    return row === undefined ? 0 : Number(row.position);
  }

  async write(runner: string, work: (tx: AnalyticsTransaction) => Promise<void>): Promise<void> {
    await this.transaction(() =>
      work({
        apply: (events) => this.applyEvents(events),
        commit: async ({ position, sourceTxId }) => {
          // An UPDATE of the existing row: DuckDB's INSERT OR REPLACE (a delete and an insert
          // through the primary-key index) made the commit of a one-event batch twice as costly.
          const updated = await this.writer.run(
            'UPDATE _analytics_checkpoints SET position = $2, source_tx_id = $3, updated_at = now() WHERE name = $1',
            [runner, BigInt(position), sourceTxId],
          );
          if (updated.rowsChanged === 0)
            await this.writer.run(
              `INSERT INTO _analytics_checkpoints (name, position, source_tx_id, updated_at)
               VALUES ($1, $2, $3, now())`,
              [runner, BigInt(position), sourceTxId],
            );
        },
      }),
    );
  }

  async reset(runner: string): Promise<void> {
    await this.transaction(async () => {
      for (const model of this.migration.analytics)
        for (const table of Object.keys(model.tables))
          await this.writer.run(`DELETE FROM ${tableName(model.name, table)}`);
      await this.writer.run('DELETE FROM _analytics_checkpoints WHERE name = $1', [runner]);
    });
  }

  handles(): Analytics {
    const handles: Analytics = Object.fromEntries(
      this.migration.analytics.map((model) => [
        model.name,
        {
          query: async (
            name: string,
            params: Readonly<Record<string, Scalar>> = {},
          ): Promise<AnalyticsRow[]> => {
            const sql = duckdbSql(model, name);
            if (sql === undefined)
              throw new StoreError(
                'ANALYTICS_QUERY_UNKNOWN',
                `analytics ${model.name} has no query ${name}`,
                {
                  hint: `name one of: ${Object.keys(model.queries).join(', ')}`,
                },
              );
            const reader = this.readers.get(model.name) as DuckDBConnection;
            const result = await reader.runAndReadAll(sql, params as Record<string, DuckDBValue>);
            return result
              .getRowObjectsJS()
              .map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, scalarOf(v)])));
          },
        },
      ]),
    );
    return handles;
  }

  async close(): Promise<void> {
    for (const reader of this.readers.values()) reader.closeSync();
    this.readers.clear();
    this.writer.closeSync();
    this.instance.closeSync();
  }

  private async transaction(work: () => Promise<void>): Promise<void> {
    await this.writer.run('BEGIN TRANSACTION');
    try {
      await work();
    } catch (err) {
      await this.writer.run('ROLLBACK').catch(() => undefined);
      throw err;
    }
    await this.writer.run('COMMIT');
  }

  private async applyEvents(events: readonly StoredEvent[]): Promise<void> {
    const domainEvents = events.map((e) => this.migration.toDomainEvent(e));
    let writes: AnalyticsWrites;
    try {
      writes = foldAnalyticsWrites(domainEvents, this.targets, (table, state) => {
        const rule = this.migration.ruleOf(table);
        if (rule === undefined) throw new Error(`no capture rule for ${table}`);
        return rule.rowKey(state);
      });
    } catch (cause) {
      const first = events[0];
      throw new StoreError(
        'ANALYTICS_ROW_INVALID',
        `analytics rows of events ${first?.position ?? '?'}..${events[events.length - 1]?.position ?? '?'}: ${errorMessage(cause)}`,
        { cause, hint: "fix the analytics table's row() or its columns in the definition" },
      );
    }
    for (const { target, rows } of writes.values()) await this.writeRows(target, rows);
  }

  /**
   * Replaces a table's rows by key, set-wise: the folded rows (and the keys to delete) go into a
   * staging table through DuckDB's appender, every value as text, then one DELETE of the staged
   * keys and one INSERT … SELECT of the staged rows, each column cast to its declared type.
   * A multi-row INSERT with a parameter per value cost DuckDB's parser and the bindings ~100 µs
   * a row: into an empty store, 500 events a batch, the sample bank's first 300,000 events took
   * 20 s that way (15,000 events/s) and 10 s this way (30,000/s), the tables identical.
   * The staging table is created anew for every write: emptied with TRUNCATE, the temporary
   * (in-memory) table kept its deleted rows' memory for good, ~100 bytes a staged row (1.5M of
   * the bench bank's stored events, most of them postings: 152 MB of IN_MEMORY_TABLE in
   * duckdb_memory(), 18 MB this way).
   */
  private async writeRows(target: AnalyticsTarget, rows: ReadonlyMap<string, AnalyticsValues | null>) {
    const stage = await this.stageOf(target);
    await this.writer.run(stage.create);
    const appender = await this.writer.createAppender(stage.name, 'main', 'temp');
    try {
      for (const [key, row] of rows) {
        appender.appendVarchar(key);
        appender.appendBoolean(row !== null);
        for (const column of stage.columns) {
          const value = row?.[column];
          if (value === null || value === undefined) appender.appendNull();
          else appender.appendVarchar(String(value));
        }
        appender.endRow();
      }
    } finally {
      appender.closeSync();
    }
    await this.writer.run(stage.delete);
    await this.writer.run(stage.insert);
  }

  /**
   * The statements that (re)create a target's staging table on the writer connection (temporary:
   * never in the file) and move its rows, made at its first write.
   */
  private async stageOf(target: AnalyticsTarget): Promise<Stage> {
    const key = `${target.model}\u0000${target.table}`;
    const made = this.staged.get(key);
    if (made !== undefined) return made;
    const name = `_stage_${this.staged.size + 1}`;
    const staging = `temp.main.${quote(name)}`;
    const table = tableName(target.model, target.table);
    const columns = Object.keys(target.spec.columns);
    const casts = Object.entries(target.spec.columns).map(([c, type]) => `CAST(${quote(c)} AS ${type})`);
    const keyCast = `CAST(_key AS ${target.spec.keyType ?? 'VARCHAR'})`;
    const stage: Stage = {
      name,
      columns,
      create: `CREATE OR REPLACE TEMP TABLE ${quote(name)} (_key VARCHAR NOT NULL, _present BOOLEAN NOT NULL${columns.map((c) => `, ${quote(c)} VARCHAR`).join('')})`,
      delete: `DELETE FROM ${table} WHERE _key IN (SELECT ${keyCast} FROM ${staging})`,
      insert: `INSERT INTO ${table} (_key, ${columns.map(quote).join(', ')}) SELECT ${keyCast}, ${casts.join(', ')} FROM ${staging} WHERE _present`,
    };
    this.staged.set(key, stage);
    return stage;
  }
}
