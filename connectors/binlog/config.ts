import { z } from 'zod';
import { MYSQL_TYPE_OPTIONS } from '../../lib/mysql-types.js';

export const binlogSourceConfigSchema = z.object({
  host: z.string().default('127.0.0.1'),
  port: z.number().int().default(3306),
  user: z.string(),
  password: z.string().default(''),
  database: z.string().min(1),
  /** Replica id: unique among everything replicating from the server, one per running instance. */
  serverId: z.number().int().min(1).max(4294967295).default(5401),
  /** Logical server name (Debezium's topic.prefix). */
  name: z.string().min(1).default('legacy'),
  /** Detected from VERSION() when omitted. */
  flavor: z.enum(['mariadb', 'mysql']).optional(),
  /** Tables to capture; empty = every base table of the database, including ones created later. */
  tables: z.array(z.string()).default([]),
  /**
   * initial: snapshot unless the offset says a snapshot completed; never: only stream (from the
   * offset, else from the binlog's current end); when_needed: like initial, and snapshot again
   * when the offset's binlog file has been purged from the server.
   */
  snapshotMode: z.enum(['initial', 'never', 'when_needed']).default('initial'),
  snapshotChunkRows: z.number().int().min(1).default(5000),
  /** Completed transactions waiting for the sink before the binlog socket is paused. */
  maxQueuedTransactions: z.number().int().min(1).default(1000),
  /**
   * Row changes one delivery holds at most: a bigger transaction is delivered in fragments of
   * this many rows, which the event store stages and publishes together at the commit.
   */
  maxTransactionRows: z.number().int().min(1).default(5000),
  /**
   * Row changes waiting for the sink (in transactions or fragments) at which the binlog socket
   * is paused, whatever the transaction count: memory stays bounded for any transaction size.
   */
  maxQueuedRows: z.number().int().min(1).default(10_000),
  /**
   * While only tables it does not capture change, how often the reader stores the binlog
   * position it has passed (a transaction without events). Without it the stored offset stays
   * at the last captured transaction: a restart reads all that binlog again (or finds it purged),
   * and a process beside the run (reconcile) takes the read models for behind. 0: never (a
   * reader built on its own; the pipeline passes cdc.heartbeatIntervalMs).
   */
  heartbeatIntervalMs: z.number().int().min(0).default(0),
});
export type BinlogSourceConfig = z.infer<typeof binlogSourceConfigSchema>;
export type BinlogSourceConfigInput = z.input<typeof binlogSourceConfigSchema>;

const position = {
  file: z.string().min(1),
  /** Byte offset in `file`: always a transaction boundary. */
  pos: z.number().int().nonnegative(),
  /** Server GTID position at that point (MariaDB "0-1-42", MySQL executed set), when known. */
  gtid: z.string().nullable(),
};

/**
 * The resume point stored with every delivered transaction. `phase` is the discriminator
 * callers branch on (cli/pipeline.ts); `snapshotCompleted` says the same for readers of the
 * stored JSON. While a snapshot runs, file/pos/gtid are where streaming will start once it is
 * complete, and the rest records progress for operators.
 */
export const binlogOffsetSchema = z.discriminatedUnion('phase', [
  z.object({
    phase: z.literal('snapshot'),
    snapshotCompleted: z.literal(false),
    ...position,
    /** Table of the last chunk the sink accepted. */
    table: z.string(),
    chunk: z.number().int().nonnegative(),
    rows: z.number().int().nonnegative(),
    /**
     * Primary key of that chunk's last row: a restart reads the table on from the next key
     * instead of from its first row. Null for a table without a primary key (read again whole)
     * and in offsets stored before resumable snapshots.
     */
    after: z
      .array(z.union([z.string(), z.number()]))
      .nullable()
      .default(null),
  }),
  z.object({
    phase: z.literal('stream'),
    // Defaulted: offsets stored before this field existed were all of this kind.
    snapshotCompleted: z.literal(true).default(true),
    ...position,
  }),
]);
export type BinlogOffset = z.infer<typeof binlogOffsetSchema>;
export type StreamOffset = Extract<BinlogOffset, { phase: 'stream' }>;

export interface BinlogPosition {
  file: string;
  pos: number;
  gtid: string | null;
}

/**
 * Options of every mysql2 connection this reader opens (snapshot and binlog alike).
 * jsonStrings keeps JSON as the server's text: parsed, a JSON column would lose big numbers.
 */
export function connectionOptions(config: BinlogSourceConfig) {
  return {
    host: config.host,
    port: config.port,
    user: config.user,
    password: config.password,
    connectTimeout: 10_000,
    ...MYSQL_TYPE_OPTIONS,
    jsonStrings: true,
  };
}
