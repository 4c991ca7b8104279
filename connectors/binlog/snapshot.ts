import type { Readable } from 'node:stream';
import type { Connection as CoreConnection } from 'mysql2';
import type mysql from 'mysql2/promise';
import type { Logger } from '../../lib/logger.js';
import { ProgressMeter } from '../../lib/progress.js';
import type { ChangeEvent, SourceInfo } from '../change-event.js';
import {
  endOfTable,
  finalChunk,
  type SnapshotChunk as SharedSnapshotChunk,
  snapshotTxId,
} from '../snapshot-chunk.js';
import type { BinlogPosition } from './config.js';
import { normalizeRow } from './normalize.js';
import type { TableInfo } from './schema-info.js';
import { binlogHead, gtidAt } from './server-position.js';

export type SnapshotChunk = SharedSnapshotChunk<string | number>;

/** Where a snapshot run goes on after an interruption (start-plan.ts). */
export interface SnapshotResumePoint {
  table: string;
  after: ReadonlyArray<string | number> | null;
  nextChunk: number;
  rowsDone: number;
}

/** A key value as stored in an offset: JSON, and compared by the server as it compares the column. */
function keyValue(value: unknown): string | number {
  if (typeof value === 'number' || typeof value === 'string') return value;
  if (typeof value === 'bigint') return value.toString();
  if (Buffer.isBuffer(value)) return value.toString('latin1');
  return String(value);
}

type RawRow = Record<string, unknown>;

export function quoteIdent(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

/**
 * The select list of a snapshot query. FLOAT is read widened to DOUBLE: the text protocol
 * prints a FLOAT with 6 significant digits, while the binlog carries the exact float32, and
 * the widened double is that exact value (normalize.ts then prints both the same way).
 */
export function selectList(table: TableInfo): string {
  return table.columns
    .map((c) =>
      c.dataType === 'float' ? `(${quoteIdent(c.name)} + 0e0) AS ${quoteIdent(c.name)}` : quoteIdent(c.name),
    )
    .join(', ');
}

/**
 * `WHERE` clause of the keyset page after a given key: (a > ?) OR (a = ? AND b > ?) ... spelled
 * out, because row-constructor comparisons are not used as index ranges by every server version.
 * Returns the SQL and the order in which the last key's values fill its placeholders.
 */
export function keysetAfter(primaryKey: readonly string[]): { sql: string; valueIndexes: number[] } {
  const valueIndexes: number[] = [];
  const build = (i: number): string => {
    const col = quoteIdent(primaryKey[i] as string);
    valueIndexes.push(i);
    if (i === primaryKey.length - 1) return `${col} > ?`;
    const gt = `${col} > ?`;
    valueIndexes.push(i);
    return `${gt} OR (${col} = ? AND (${build(i + 1)}))`;
  };
  return { sql: build(0), valueIndexes };
}

/**
 * Opens a consistent read view on `conn` and returns the binlog position it corresponds to.
 * MariaDB reports that position for the view itself (binlog_snapshot_file/position), so no
 * global lock is taken; MySQL needs a brief FLUSH TABLES WITH READ LOCK around it.
 */
export async function openConsistentView(
  conn: mysql.Connection,
  flavor: 'mariadb' | 'mysql',
): Promise<BinlogPosition> {
  // TIMESTAMP values print in UTC, as the binlog reader renders them (timezone 'Z').
  await conn.query("SET SESSION time_zone = '+00:00'");
  await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
  if (flavor === 'mariadb') {
    await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    const [rows] = await conn.query("SHOW STATUS LIKE 'binlog_snapshot_%'");
    const vars = new Map(
      (rows as Array<{ Variable_name: string; Value: string }>).map((r) => [r.Variable_name, r.Value]),
    );
    const file = String(vars.get('Binlog_snapshot_file'));
    const pos = Number(vars.get('Binlog_snapshot_position'));
    return { file, pos, gtid: await gtidAt(conn, file, pos) };
  }
  await conn.query('FLUSH TABLES WITH READ LOCK');
  try {
    await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    return await binlogHead(conn, 'mysql');
  } finally {
    await conn.query('UNLOCK TABLES');
  }
}

/** Rows of one table in primary-key order, a page at a time, inside the caller's read view. */
async function* keysetPages(
  conn: mysql.Connection,
  database: string,
  table: TableInfo,
  pageRows: number,
  startAfter: ReadonlyArray<unknown> | null,
  filter: string | undefined,
): AsyncGenerator<RawRow[]> {
  const from = `${quoteIdent(database)}.${quoteIdent(table.name)}`;
  const orderBy = table.primaryKey.map(quoteIdent).join(', ');
  const after = keysetAfter(table.primaryKey);
  let last: ReadonlyArray<unknown> | null = startAfter;
  for (;;) {
    const conditions = [
      ...(last ? [`(${after.sql})`] : []),
      // The operator's own condition (resnapshot --where), kept apart by its parentheses.
      ...(filter === undefined ? [] : [`(${filter})`]),
    ];
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const values = last ? after.valueIndexes.map((i) => (last as ReadonlyArray<unknown>)[i]) : [];
    const [rows] = await conn.query({
      sql: `SELECT ${selectList(table)} FROM ${from} ${where} ORDER BY ${orderBy} LIMIT ${pageRows}`,
      values,
    });
    const page = rows as RawRow[];
    if (page.length > 0) yield page;
    if (page.length < pageRows) return;
    const lastRow = page[page.length - 1] as RawRow;
    last = table.primaryKey.map((k) => lastRow[k]);
  }
}

/**
 * A table without a primary key has no order to page by (a keyset over all columns would skip
 * duplicate rows), so it is read by one streamed query, a page at a time, never all at once.
 */
async function* streamedPages(
  core: CoreConnection,
  database: string,
  table: TableInfo,
  pageRows: number,
  filter: string | undefined,
): AsyncGenerator<RawRow[]> {
  const where = filter === undefined ? '' : ` WHERE (${filter})`;
  const stream: Readable = core
    .query(`SELECT ${selectList(table)} FROM ${quoteIdent(database)}.${quoteIdent(table.name)}${where}`)
    .stream({ highWaterMark: pageRows });
  let page: RawRow[] = [];
  for await (const row of stream) {
    page.push(row as RawRow);
    if (page.length >= pageRows) {
      yield page;
      page = [];
    }
  }
  if (page.length > 0) yield page;
}

export interface SnapshotReadOptions {
  database: string;
  chunkRows: number;
  /** Fields shared by every event's `source` block. */
  source: Omit<SourceInfo, 'table' | 'snapshot' | 'ts_ms'>;
  logger: Logger;
  /** Names this snapshot in its chunk ids; the same for every attempt of one snapshot. */
  run: string;
  /** Go on after this point of an interrupted attempt instead of from the first table's first row. */
  resume?: SnapshotResumePoint | null;
  /** SQL condition on the rows to read (resnapshot --where); every row when absent. */
  where?: string;
}

/**
 * Reads every captured table inside the view open on `core` (the callback-style connection:
 * only it can stream a result), yielding each chunk as one unit.
 * One chunk is held back until the next exists, so the chunk with the very last row can be
 * marked (and its last event's source.snapshot set to 'last'); the first row gets 'first'.
 */
export async function* readSnapshot(
  core: CoreConnection,
  tables: Map<string, TableInfo>,
  options: SnapshotReadOptions,
): AsyncGenerator<SnapshotChunk> {
  const { logger, run } = options;
  const conn = core.promise();
  let order = [...tables.values()];
  const resume = options.resume ?? null;
  const resumeAt = resume === null ? -1 : order.findIndex((t) => t.name === resume.table);
  if (resume !== null && resumeAt < 0)
    logger.warn({ table: resume.table }, 'the interrupted snapshot was in a table no longer captured');
  // Tables before the interrupted one were delivered whole by the earlier attempt.
  if (resumeAt >= 0) order = order.slice(resumeAt);
  const total = order.reduce((n, t) => n + t.estimatedRows, 0);
  const meter = new ProgressMeter(total);
  const tsMs = Date.now();
  let pending: SnapshotChunk | null = null;
  let rowsDone = resumeAt >= 0 ? (resume?.rowsDone ?? 0) : 0;
  for (const [index, table] of order.entries()) {
    const resuming = resumeAt >= 0 && index === 0 ? resume : null;
    const keyed = table.primaryKey.length > 0;
    // A keyless table has no position to go on from: it is read again whole.
    const startAfter = keyed ? (resuming?.after ?? null) : null;
    const pages = keyed
      ? keysetPages(conn, options.database, table, options.chunkRows, startAfter, options.where)
      : streamedPages(core, options.database, table, options.chunkRows, options.where);
    let chunkNo = resuming !== null && (startAfter !== null || !keyed) ? resuming.nextChunk : 0;
    let any = false;
    for await (const page of pages) {
      // One source block and read time for the page's rows: the mapping then derives their
      // shared metadata once per page (mapper.ts), not once per row. The first and last rows
      // get their own block, the ones a snapshot marks 'first' and 'last' (finalChunk).
      const source: SourceInfo = { ...options.source, table: table.name, ts_ms: tsMs, snapshot: 'true' };
      const readMs = Date.now();
      const end = page.length - 1;
      const events = page.map(
        (raw, i): ChangeEvent => ({
          before: null,
          after: normalizeRow(raw, table.columns),
          op: 'r',
          ts_ms: readMs,
          source: i === 0 || i === end ? { ...source } : source,
          transaction: null,
        }),
      );
      if (rowsDone === 0 && events[0]) events[0].source.snapshot = 'first';
      rowsDone += page.length;
      if (pending) yield pending;
      const lastRow = page[page.length - 1] as RawRow;
      pending = {
        id: snapshotTxId(table.name, chunkNo, run),
        table: table.name,
        chunkNo,
        events,
        rowsDone,
        after: keyed ? table.primaryKey.map((k) => keyValue(lastRow[k])) : null,
        tableDone: false,
        last: false,
      };
      any = true;
      chunkNo++;
      const p = meter.addDue(page.length, 2000);
      if (p !== null) {
        logger.info(
          {
            table: table.name,
            rows: p.done,
            estimatedTotal: total,
            rowsPerSec: p.rowsPerSec,
            etaSec: p.etaSec,
          },
          'snapshot progress',
        );
      }
    }
    pending = yield* endOfTable(pending, {
      table: table.name,
      run,
      chunkNo,
      rowsDone,
      startAfter,
      readAny: any,
    });
    logger.debug({ table: table.name, chunks: chunkNo }, 'snapshot table read');
  }
  const done = finalChunk(pending, rowsDone, run);
  const p = meter.snapshot();
  logger.info({ rows: p.done, rowsPerSec: p.rowsPerSec, elapsedSec: p.elapsedSec }, 'snapshot read complete');
  yield done;
}
