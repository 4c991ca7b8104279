import type pg from 'pg';
import { z } from 'zod';
import type { Logger } from '../../lib/logger.js';
import { ProgressMeter } from '../../lib/progress.js';
import type { ChangeEvent, Row, SourceInfo } from '../change-event.js';
import { pgTextValue } from './values.js';

export interface SnapshotChunk {
  /** `snapshot:<table>:<chunkNo>`, or `snapshot:done` for the empty marker of an empty snapshot. */
  id: string;
  table: string;
  chunkNo: number;
  events: ChangeEvent[];
  /** Rows read so far, this chunk included. */
  rowsDone: number;
  /** True for the chunk carrying the snapshot's very last row (or the empty marker). */
  last: boolean;
}

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

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
  const { logger } = options;
  const meter = new ProgressMeter(await estimatedRows(client, options.schema, options.tables));
  const tsMs = Date.now();
  let pending: SnapshotChunk | null = null;
  let rowsDone = 0;
  for (const table of options.tables) {
    await client.query(
      `DECLARE snapshot_rows NO SCROLL CURSOR FOR SELECT * FROM ${quote(options.schema)}.${quote(table)}`,
    );
    for (let chunkNo = 0; ; chunkNo++) {
      const page = await client.query<string[]>({
        text: `FETCH FORWARD ${options.chunkRows} FROM snapshot_rows`,
        rowMode: 'array',
        types: { getTypeParser: () => (value: string) => value },
      });
      if (page.rows.length === 0) break;
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
      pending = { id: `snapshot:${table}:${chunkNo}`, table, chunkNo, events, rowsDone, last: false };
      meter.add(events.length);
    }
    await client.query('CLOSE snapshot_rows');
    logger.debug({ table, rows: rowsDone }, 'snapshot table read');
  }
  const done = pending ?? { id: 'snapshot:done', table: '', chunkNo: 0, events: [], rowsDone: 0, last: true };
  done.last = true;
  const lastEvent = done.events[done.events.length - 1];
  if (lastEvent) lastEvent.source.snapshot = 'last';
  const p = meter.snapshot();
  logger.info({ rows: p.done, rowsPerSec: p.rowsPerSec, elapsedSec: p.elapsedSec }, 'snapshot read complete');
  yield done;
}
