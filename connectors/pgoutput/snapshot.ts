import type pg from 'pg';
import { z } from 'zod';
import type { Logger } from '../../lib/logger.js';
import { ProgressMeter } from '../../lib/progress.js';
import type { ChangeEvent, Row, SourceInfo } from '../change-event.js';
import {
  endOfTable,
  finalChunk,
  type SnapshotChunk as SharedSnapshotChunk,
  snapshotTxId,
} from '../snapshot-chunk.js';
import { pgTextValue } from './values.js';

export type SnapshotChunk = SharedSnapshotChunk<string>;

/** Where a snapshot run goes on after an interruption. */
export interface SnapshotResumePoint {
  table: string;
  after: readonly string[] | null;
  nextChunk: number;
  rowsDone: number;
}

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Primary-key columns of a table, in key order; empty without a primary key. */
async function primaryKeyOf(client: pg.Client, schema: string, table: string): Promise<string[]> {
  const result = await client.query(
    `SELECT a.attname AS name
       FROM pg_index i
       JOIN pg_class c ON c.oid = i.indrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[])
      WHERE i.indisprimary AND n.nspname = $1 AND c.relname = $2
      ORDER BY array_position(i.indkey::int2[], a.attnum)`,
    [schema, table],
  );
  return result.rows.map((r) => z.object({ name: z.string() }).parse(r).name);
}

type TextPage = { rows: Array<Array<string | null>>; fields: pg.FieldDef[] };

const TEXT_ROWS = { rowMode: 'array' as const, types: { getTypeParser: () => (value: string) => value } };

/**
 * Pages of a keyed table in primary-key order: `WHERE (key) > (last key)`, so a restart can go
 * on after the last delivered key. Values come as text, and the key's text is compared as the
 * column's type (an untyped parameter takes the column's type).
 */
async function* keysetPages(
  client: pg.Client,
  from: string,
  key: readonly string[],
  pageRows: number,
  startAfter: readonly string[] | null,
  filter: string | undefined,
): AsyncGenerator<TextPage> {
  const cols = `(${key.map(quote).join(', ')})`;
  let last: readonly (string | null)[] | null = startAfter;
  for (;;) {
    const conditions = [
      ...(last ? [`${cols} > (${key.map((_, i) => `$${i + 1}`).join(', ')})`] : []),
      ...(filter === undefined ? [] : [`(${filter})`]),
    ];
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const page = await client.query<Array<string | null>>({
      text: `SELECT * FROM ${from} ${where} ORDER BY ${key.map(quote).join(', ')} LIMIT ${pageRows}`,
      values: last ? [...last] : [],
      ...TEXT_ROWS,
    });
    if (page.rows.length > 0) yield page;
    if (page.rows.length < pageRows) return;
    const lastRow = page.rows[page.rows.length - 1] ?? [];
    last = key.map((k) => lastRow[page.fields.findIndex((f) => f.name === k)] ?? null);
  }
}

/** A keyless table through a cursor, a page at a time. */
async function* cursorPages(
  client: pg.Client,
  from: string,
  pageRows: number,
  filter: string | undefined,
): AsyncGenerator<TextPage> {
  const where = filter === undefined ? '' : ` WHERE (${filter})`;
  await client.query(`DECLARE snapshot_rows NO SCROLL CURSOR FOR SELECT * FROM ${from}${where}`);
  for (;;) {
    const page = await client.query<Array<string | null>>({
      text: `FETCH FORWARD ${pageRows} FROM snapshot_rows`,
      ...TEXT_ROWS,
    });
    if (page.rows.length === 0) break;
    yield page;
  }
  await client.query('CLOSE snapshot_rows');
}

/**
 * Opens the snapshot's read view on `client`: the slot's exported snapshot when there is one
 * (exactly the data before the slot's consistent point), else a fresh repeatable-read view.
 * Returns the view's transaction id, which Debezium reports as source.txId of snapshot rows.
 */
export async function openSnapshotView(client: pg.Client, snapshotName: string | null): Promise<number> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  if (snapshotName !== null)
    await client.query(`SET TRANSACTION SNAPSHOT '${snapshotName.replace(/'/g, "''")}'`);
  const result = await client.query('SELECT txid_current()::text AS txid');
  return Number(z.object({ txid: z.string() }).parse(result.rows[0]).txid);
}

async function estimatedRows(client: pg.Client, schema: string, tables: readonly string[]): Promise<number> {
  const result = await client.query(
    // A partitioned table has no rows of its own: count its partitions' (pg_partition_tree lists them).
    `SELECT coalesce(sum(greatest(p.reltuples, 0)), 0)::bigint::text AS n
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       CROSS JOIN LATERAL (SELECT c.oid AS relid UNION SELECT relid FROM pg_partition_tree(c.oid)) tree
       JOIN pg_class p ON p.oid = tree.relid AND p.relkind = 'r'
      WHERE n.nspname = $1 AND c.relname = ANY($2)`,
    [schema, tables],
  );
  return Number(z.object({ n: z.string() }).parse(result.rows[0]).n);
}

export interface SnapshotReadOptions {
  schema: string;
  tables: readonly string[];
  chunkRows: number;
  /** Fields shared by every event's `source` block. */
  source: Omit<SourceInfo, 'table' | 'snapshot' | 'ts_ms'>;
  logger: Logger;
  /** Names this snapshot in its chunk ids; the same for every attempt of one snapshot. */
  run: string;
  /** Go on after this point of an interrupted attempt. */
  resume?: SnapshotResumePoint | null;
  /** SQL condition on the rows to read (resnapshot --where); every row when absent. */
  where?: string;
}

/**
 * Reads every table inside the view open on `client` through a cursor, a chunk at a time (a
 * partitioned table through its root, so its rows carry the root's name, as streamed ones do),
 * values as text (the client's type parsers are bypassed) normalised like streamed ones.
 * One chunk is held back until the next exists, so the chunk with the very last row can be
 * marked (its last event's source.snapshot 'last'); the first row gets 'first'.
 */
export async function* readSnapshot(
  client: pg.Client,
  options: SnapshotReadOptions,
): AsyncGenerator<SnapshotChunk> {
  const { logger, run } = options;
  const resume = options.resume ?? null;
  const resumeAt = resume === null ? -1 : options.tables.indexOf(resume.table);
  if (resume !== null && resumeAt < 0)
    logger.warn({ table: resume.table }, 'the interrupted snapshot was in a table no longer captured');
  // Tables before the interrupted one were delivered whole by the earlier attempt.
  const tables = resumeAt >= 0 ? options.tables.slice(resumeAt) : options.tables;
  const meter = new ProgressMeter(await estimatedRows(client, options.schema, tables));
  const tsMs = Date.now();
  let pending: SnapshotChunk | null = null;
  let rowsDone = resumeAt >= 0 ? (resume?.rowsDone ?? 0) : 0;
  for (const [index, table] of tables.entries()) {
    const resuming = resumeAt >= 0 && index === 0 ? resume : null;
    const key = await primaryKeyOf(client, options.schema, table);
    const from = `${quote(options.schema)}.${quote(table)}`;
    // A keyless table has no position to go on from: it is read again whole.
    const startAfter = key.length > 0 ? (resuming?.after ?? null) : null;
    const pages =
      key.length > 0
        ? keysetPages(client, from, key, options.chunkRows, startAfter, options.where)
        : cursorPages(client, from, options.chunkRows, options.where);
    let chunkNo = resuming !== null && (startAfter !== null || key.length === 0) ? resuming.nextChunk : 0;
    let any = false;
    for await (const page of pages) {
      const events = page.rows.map((values): ChangeEvent => {
        const after: Row = {};
        page.fields.forEach((field, i) => {
          after[field.name] = pgTextValue(values[i] ?? null, {
            typeOid: field.dataTypeID,
            typeMod: field.dataTypeModifier,
          });
        });
        return {
          before: null,
          after,
          op: 'r',
          ts_ms: Date.now(),
          source: { ...options.source, table, ts_ms: tsMs, snapshot: 'true' },
          transaction: null,
        };
      });
      if (rowsDone === 0 && events[0]) events[0].source.snapshot = 'first';
      rowsDone += events.length;
      if (pending) yield pending;
      const lastRow = page.rows[page.rows.length - 1] ?? [];
      pending = {
        id: snapshotTxId(table, chunkNo, run),
        table,
        chunkNo,
        events,
        rowsDone,
        after:
          key.length > 0
            ? key.map((k) => String(lastRow[page.fields.findIndex((f) => f.name === k)] ?? ''))
            : null,
        tableDone: false,
        last: false,
      };
      any = true;
      chunkNo++;
      meter.add(events.length);
    }
    pending = yield* endOfTable(pending, { table, run, chunkNo, rowsDone, startAfter, readAny: any });
    logger.debug({ table, rows: rowsDone }, 'snapshot table read');
  }
  const done = finalChunk(pending, rowsDone, run);
  const p = meter.snapshot();
  logger.info({ rows: p.done, rowsPerSec: p.rowsPerSec, elapsedSec: p.elapsedSec }, 'snapshot read complete');
  yield done;
}
