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
 * commits never split a transaction. Snapshot rows come in chunks, each its own unit.
 */
export interface SourceTransaction {
  id: string;
  events: ChangeEvent[];
  /** Resume point just after this transaction (or snapshot chunk). */
  offset: SourceOffset;
  snapshot: boolean;
}

/** Stable text form of an event's source position, e.g. "binlog.000003:1234:0" or "0/16B3748". */
export function sourcePositionOf(event: ChangeEvent): string {
  const s = event.source;
  if (s.lsn !== undefined) return s.lsn;
  return `${s.file ?? ''}:${s.pos ?? 0}:${s.row ?? 0}`;
}
