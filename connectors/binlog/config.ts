import { z } from 'zod';

export const binlogSourceConfigSchema = z.object({
  host: z.string().default('127.0.0.1'),
  port: z.number().int().default(3306),
  user: z.string(),
  password: z.string().default(''),
  database: z.string().min(1),
  /** Replica id: unique among everything replicating from the server. */
  serverId: z.number().int().min(1).default(5401),
  /** Logical server name (Debezium's topic.prefix). */
  name: z.string().min(1).default('legacy'),
  flavor: z.enum(['mariadb', 'mysql']).optional(),
  /** Tables to capture; empty = every base table of the database. */
  tables: z.array(z.string()).default([]),
  snapshotMode: z.enum(['initial', 'never', 'when_needed']).default('initial'),
  snapshotChunkRows: z.number().int().min(1).default(5000),
  /** Completed transactions held before the binlog socket is paused. */
  maxQueuedTransactions: z.number().int().min(1).default(1000),
});
export type BinlogSourceConfig = z.infer<typeof binlogSourceConfigSchema>;
export type BinlogSourceConfigInput = z.input<typeof binlogSourceConfigSchema>;

export const binlogOffsetSchema = z.discriminatedUnion('phase', [
  /** A snapshot was under way; streaming must start from `streamFrom` once it is redone. */
  z.object({
    phase: z.literal('snapshot'),
    streamFrom: z.object({ file: z.string(), pos: z.number().int() }),
  }),
  z.object({
    phase: z.literal('stream'),
    file: z.string(),
    pos: z.number().int(),
    gtid: z.string().nullable(),
  }),
]);
export type BinlogOffset = z.infer<typeof binlogOffsetSchema>;
