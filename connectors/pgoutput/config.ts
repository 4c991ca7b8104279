import { z } from 'zod';
import { ConfigError } from '../../lib/errors.js';
import { slotNameFor } from '../debezium/config.js';
import { parseLegacyUrl, redactUrl, requireDatabase } from '../legacy/url.js';
import { lsnSchema } from './lsn.js';

const identifier = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'a plain SQL identifier (letters, digits, "_")');

/**
 * A database's or table's name as the catalog holds it: any text the server accepts as a quoted
 * identifier (`"Order Lines"`, `billing-prod`); every statement quotes it.
 */
const objectName = z
  .string()
  .min(1)
  .refine((name) => !name.includes('\0') && Buffer.byteLength(name) <= 63, {
    message: 'a PostgreSQL name: at most 63 bytes, no NUL',
  });

export const pgoutputSourceConfigSchema = z.object({
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(1).max(65535).default(5432),
  user: z.string().min(1),
  password: z.string().default(''),
  database: objectName,
  /** The schema whose tables are captured (Debezium's source.schema). */
  schema: identifier.default('public'),
  /** Logical server name (Debezium's topic.prefix). */
  name: z.string().min(1).default('legacy'),
  /** Tables to capture, unqualified; empty = every table of `schema` when the publication is created. */
  tables: z.array(objectName).default([]),
  /** Replication slot: lower-case letters, digits and "_" (the server's rule). */
  slotName: z.string().regex(/^[a-z0-9_]{1,63}$/, 'lower-case letters, digits and "_" only, at most 63'),
  /** Publication the slot streams; created for `tables` when missing. */
  publicationName: identifier.optional(),
  /**
   * initial: snapshot unless the offset says a snapshot completed; never: only stream (from the
   * offset, else from the slot's position, created at the current WAL end when missing).
   */
  snapshotMode: z.enum(['initial', 'never']).default('initial'),
  snapshotChunkRows: z.number().int().min(1).default(5000),
  /**
   * Row changes one delivery holds at most: a bigger transaction is delivered in fragments of
   * this many rows, which the event store stages and publishes together at the commit.
   */
  maxTransactionRows: z.number().int().min(1).default(5000),
  /**
   * While only tables it does not capture change, how often the reader stores the WAL position
   * it has passed (a transaction without events): a restart resumes there, and a process beside
   * the run (reconcile) sees the read models caught up. 0: never (a reader built
   * on its own; the pipeline passes cdc.heartbeatIntervalMs).
   */
  heartbeatIntervalMs: z.number().int().min(0).default(0),
  /** Seconds between standby status updates that report the acknowledged LSN. */
  statusIntervalSec: z.number().int().min(1).default(10),
});
export type PgoutputSourceConfig = z.output<typeof pgoutputSourceConfigSchema>;
export type PgoutputSourceConfigInput = z.input<typeof pgoutputSourceConfigSchema>;

export function publicationOf(config: PgoutputSourceConfig): string {
  return config.publicationName ?? `${config.slotName}_pub`;
}

/**
 * The resume point stored with every delivered unit. While the snapshot runs, `lsn` is where
 * streaming will start once it is complete (the slot's consistent point) and the rest records
 * progress for operators; while streaming, `lsn` is the end of the last delivered commit:
 * the server skips every transaction that committed before it.
 */
export const pgoutputOffsetSchema = z.discriminatedUnion('phase', [
  z.object({
    phase: z.literal('snapshot'),
    snapshotCompleted: z.literal(false),
    lsn: lsnSchema,
    table: z.string(),
    chunk: z.number().int().nonnegative(),
    rows: z.number().int().nonnegative(),
    /**
     * Primary key (as text) of the last delivered chunk's last row: a restart reads `table` on
     * from the next key. Null for a table without a primary key (read again whole) and in
     * offsets stored before resumable snapshots.
     */
    after: z.array(z.string()).nullable().default(null),
  }),
  z.object({
    phase: z.literal('stream'),
    snapshotCompleted: z.literal(true),
    lsn: lsnSchema,
    /** The last delivered transaction's xid, for operators. */
    txId: z.number().int().nullable(),
  }),
]);
export type PgoutputOffset = z.infer<typeof pgoutputOffsetSchema>;
export type PgoutputStreamOffset = Extract<PgoutputOffset, { phase: 'stream' }>;

/**
 * Session settings of every connection: values print in ISO style and in UTC, as values.ts
 * expects, and floats print exactly.
 */
export function connectionConfig(config: PgoutputSourceConfig) {
  return {
    host: config.host,
    port: config.port,
    user: config.user,
    password: config.password,
    database: config.database,
    connectionTimeoutMillis: 10_000,
    options:
      '-c TimeZone=UTC -c DateStyle=ISO -c extra_float_digits=1 -c lc_monetary=C -c IntervalStyle=postgres',
  };
}

/** Where `legacy.url` is a postgres:// URL: the connection part of the reader's config. */
export function parsePostgresUrl(url: string): {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** `?schema=`: the captured schema (absent: the reader's default, public). */
  schema?: string;
} {
  // One parser of legacy URLs (connectors/legacy/url.ts); this one only insists on PostgreSQL.
  const { dialect, ...conn } = parseLegacyUrl(url);
  if (dialect !== 'postgres') {
    throw new ConfigError(
      `invalid PostgreSQL URL "${redactUrl(url)}": expected postgres://user:password@host:port/database`,
    );
  }
  return { ...conn, database: requireDatabase(url, { dialect, ...conn }) };
}

/**
 * The reader's config for a postgres:// legacy URL: the slot is named after the logical
 * server name (slot names allow only [a-z0-9_]), so each pipeline keeps its own position.
 */
export function pgoutputConfigFromUrl(
  url: string,
  options: Omit<
    PgoutputSourceConfigInput,
    'host' | 'port' | 'user' | 'password' | 'database' | 'slotName'
  > & {
    slotName?: string;
  } = {},
): PgoutputSourceConfigInput {
  const name = options.name ?? 'legacy';
  return {
    ...parsePostgresUrl(url),
    ...options,
    name,
    slotName: options.slotName ?? `cqrs_${slotNameFor(name)}`,
  };
}
