import { z } from 'zod';

/**
 * The change event every CDC path yields, shaped like Debezium's envelope
 * (https://debezium.io/documentation/reference/stable/connectors/mysql.html#mysql-events):
 * the embedded binlog reader builds it directly, the Kafka path parses it from Debezium's
 * topics. Column values are normalised the same way on both paths:
 * integers as numbers (strings beyond 2^53), DECIMAL as exact strings, DATE as
 * "YYYY-MM-DD", DATETIME/TIMESTAMP as "YYYY-MM-DD HH:MM:SS[.ffffff]" with exactly the
 * column's fractional digits, everything else as strings; SQL NULL as null.
 */
export const rowValueSchema = z.union([z.string(), z.number(), z.boolean(), z.null()]);
export type RowValue = z.infer<typeof rowValueSchema>;
export const rowSchema = z.record(z.string(), rowValueSchema);
export type Row = z.infer<typeof rowSchema>;

export const opSchema = z.enum(['c', 'u', 'd', 'r']);
export type Op = z.infer<typeof opSchema>;

export const sourceInfoSchema = z.object({
  version: z.string(),
  connector: z.enum(['mariadb', 'mysql', 'postgresql']),
  /** Logical server name: the topic prefix in Debezium terms. */
  name: z.string(),
  /** Commit time of the source transaction, epoch ms. */
  ts_ms: z.number().int(),
  /** Debezium's values: "true", "first", "last", "false" (and "incremental"). */
  snapshot: z.enum(['true', 'first', 'last', 'false', 'incremental']),
  db: z.string(),
  table: z.string(),
  /** PostgreSQL schema; absent for MySQL/MariaDB. */
  schema: z.string().optional(),
  // MySQL / MariaDB binlog coordinates
  server_id: z.number().int().optional(),
  gtid: z.string().nullable().optional(),
  file: z.string().optional(),
  pos: z.number().int().optional(),
  row: z.number().int().optional(),
  // PostgreSQL coordinates
  lsn: z.string().optional(),
  txId: z.number().int().optional(),
});
export type SourceInfo = z.infer<typeof sourceInfoSchema>;

export const transactionBlockSchema = z.object({
  /** Source transaction id: the GTID on MariaDB/MySQL, the xid on PostgreSQL. */
  id: z.string(),
  total_order: z.number().int(),
  data_collection_order: z.number().int(),
});

export const changeEventSchema = z.object({
  before: rowSchema.nullable(),
  after: rowSchema.nullable(),
  source: sourceInfoSchema,
  op: opSchema,
  /** When the connector processed the event, epoch ms. */
  ts_ms: z.number().int(),
  transaction: transactionBlockSchema.nullable(),
});
export type ChangeEvent = z.infer<typeof changeEventSchema>;

/** Opaque, JSON-serialisable resume point; each source validates its own shape. */
export type SourceOffset = Record<string, unknown>;

/**
 * All row changes of one committed source transaction, delivered together so downstream
 * commits never split a transaction, or one fragment of a big one (`fragment`), which the
 * event store stages until the last fragment publishes them all at once. Snapshot rows come in
 * chunks, each its own unit.
 */
export interface SourceTransaction {
  id: string;
  events: ChangeEvent[];
  /** Resume point just after this transaction (or snapshot chunk). */
  offset: SourceOffset;
  snapshot: boolean;
  /**
   * On the last snapshot chunk of a table: snapshot run `run` has now delivered every row the
   * table has, so an aggregate of the table it did not deliver is gone from the source and must
   * be removed (see SnapshotSweep in eventstore/ports.ts).
   */
  completesTable?: { db: string; table: string; run: string };
  /** DDL on captured tables that committed at this point of the stream (no row events then). */
  schemaChanges?: SourceSchemaChange[];
  /**
   * Present when a streamed transaction too big to hold in memory is delivered in pieces (see
   * cdc.maxTransactionRows): every piece carries the transaction's `id`, its transaction block
   * keeps counting across pieces, and `index` numbers them from 0. Only the `last` one ends the
   * transaction and carries a resume point; the others carry an offset before the transaction
   * (its start in the binlog, the previous commit's end in the WAL), which nobody stores (a
   * restart replays the transaction from its beginning). Absent:
   * the whole transaction, or a snapshot chunk.
   */
  fragment?: TransactionFragment;
}

export interface TransactionFragment {
  index: number;
  last: boolean;
}

/** Whether a delivery ends its transaction (whole, or the last fragment): only then is its offset a resume point. */
export function endsTransaction(tx: { fragment?: TransactionFragment }): boolean {
  return tx.fragment === undefined || tx.fragment.last;
}

/** A captured table's definition changed (ALTER/RENAME/DROP … in the binlog, a Relation message in pgoutput). */
export interface SourceSchemaChange {
  db: string;
  table: string;
  /** The statement, or a description of the change where the log carries none (pgoutput). */
  ddl: string;
  /** Where in the change log it was seen (binlog file:pos, or LSN). */
  position: string;
  /** The table's columns after the change, in order; empty when the table is gone. */
  columns: string[];
  /**
   * A few of the table's current rows, normalised as captured rows are, so the capture rules
   * can be tried on the new shape before any row change arrives.
   */
  sample: Row[];
}

/** Stable text form of an event's source position, e.g. "binlog.000003:1234:0" or "0/16B3748". */
export function sourcePositionOf(event: Pick<ChangeEvent, 'source'>): string {
  const s = event.source;
  if (s.lsn !== undefined) return s.lsn;
  return `${s.file ?? ''}:${s.pos ?? 0}:${s.row ?? 0}`;
}

const pad = (n: number | string, width: number) => String(n).padStart(width, '0');

/**
 * A key that sorts, as plain text, in the order the source committed changes to any one row:
 * binlog file sequence, position, the change's order within its transaction and its row index
 * (MariaDB/MySQL), or the LSN (PostgreSQL). Projections on server stores keep the key of the
 * change a document reflects and skip anything not newer, so a redelivered or replayed event
 * never applies twice nor moves a document back. A snapshot read at position P reflects every
 * change before P, so it sorts before a change streamed at P ("0" against "1" last).
 */
export function sourceOrderOf(event: ChangeEvent): string {
  const s = event.source;
  const phase = event.op === 'r' && s.snapshot !== 'incremental' ? '0' : '1';
  const order = pad(event.transaction?.total_order ?? 0, 10);
  if (s.lsn !== undefined) {
    const [hi = '0', lo = '0'] = s.lsn.split('/');
    return `l:${pad(hi.toUpperCase(), 8)}${pad(lo.toUpperCase(), 8)}:${order}:${phase}`;
  }
  const seq = /\.(\d+)$/.exec(s.file ?? '')?.[1] ?? '0';
  return `b:${pad(seq, 10)}:${pad(s.pos ?? 0, 12)}:${order}:${pad(s.row ?? 0, 6)}:${phase}`;
}
