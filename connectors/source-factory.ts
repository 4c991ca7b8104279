import mysql from 'mysql2/promise';
import pg from 'pg';
import type { z } from 'zod';
import type { LegacyDialect } from '../definition/endpoints.js';
import type { Config } from '../lib/config.js';
import { AdapterError, ConfigError, errorMessage, SourceError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { MYSQL_TYPE_OPTIONS } from '../lib/mysql-types.js';
import {
  type BinlogSourceConfig,
  type BinlogSourceConfigInput,
  binlogOffsetSchema,
  binlogSourceConfigSchema,
  connectionOptions,
} from './binlog/config.js';
import { preflight as binlogPreflight, detectFlavor } from './binlog/preflight.js';
import { binlogEnd, positionAtLeast } from './binlog/server-position.js';
import { MysqlBinlogSource } from './binlog/source.js';
import type { SourceOffset, SourceTransaction } from './change-event.js';
import { parseLegacyUrl, redactUrl, requireDatabase } from './legacy/url.js';
import {
  connectionConfig,
  type PgoutputSourceConfig,
  type PgoutputSourceConfigInput,
  pgoutputConfigFromUrl,
  pgoutputOffsetSchema,
  pgoutputSourceConfigSchema,
} from './pgoutput/config.js';
import { formatLsn, parseLsn } from './pgoutput/lsn.js';
import { capturedTables, tablesWithoutFullIdentity } from './pgoutput/slot.js';
import { PgoutputSource } from './pgoutput/source.js';
import type { ChangeSource } from './ports.js';

/**
 * The embedded change source of the legacy database, picked from `legacy.url`'s scheme:
 * mysql:// and mariadb:// read the binlog (MysqlBinlogSource), postgres:// and postgresql://
 * read logical replication with pgoutput (PgoutputSource). The composition layer sees one
 * shape for both, plus a probe that says whether the source has caught up with the database.
 */

export interface ChangeSourceOptions {
  /**
   * Tables to capture, from the migration definition's capture rules; `cdc.tables`, when not
   * empty, overrides them. Empty both: every table of the database (MariaDB/MySQL) or of the
   * schema when the publication is created (PostgreSQL).
   */
  tables: readonly string[];
  logger?: Logger;
  /** Called once when the source stops on its own after `start` resolved; restart from `offset()`. */
  onError?: (err: SourceError) => void;
}

/**
 * Where the legacy database's change log ends at one moment: a binlog file and offset, or a
 * WAL LSN. Opaque to callers: take it with `legacyEnd()`, test it with `reached()`.
 */
export type LegacyEnd =
  | { dialect: 'mysql'; file: string; pos: number }
  | { dialect: 'postgres'; lsn: string };

/**
 * Has the source delivered everything the legacy database had committed? The pipeline answers
 * "is the read model fresh" as `reached(end)` and "projector checkpoint = event store head".
 * Take `legacyEnd()` once and poll `reached(end)`: under steady writes the end keeps moving, so
 * asking `reachedLegacyEnd()` in a loop might never say yes.
 */
export interface SourceProgress {
  /** The legacy database's change-log end now (one query on the probe's own connection). */
  legacyEnd(): Promise<LegacyEnd>;
  /**
   * True when the sink has accepted every captured change committed before `end` and no
   * delivery is in flight. No I/O. False while the initial snapshot is being delivered.
   */
  reached(end: LegacyEnd): boolean;
  /** `reached(await legacyEnd())`. */
  reachedLegacyEnd(): Promise<boolean>;
  /** Closes the probe's connection (the source is stopped separately). */
  close(): Promise<void>;
}

export interface LegacyChangeSource extends ChangeSource {
  readonly dialect: LegacyDialect;
  /** The database the URL names, whose changes this source reads. */
  readonly database: string;
  /**
   * Connects and checks the server can feed this source (binlog on in ROW/FULL and the grants;
   * wal_level=logical and the REPLICATION attribute); throws a SourceError with the fix in its hint.
   */
  preflight(): Promise<void>;
  /** Offset of the last transaction or snapshot chunk the sink accepted. */
  offset(): SourceOffset | null;
  stats(): { streamedRows: number };
  /** A progress probe over this source, with its own connection to the legacy database. */
  openProgress(): SourceProgress;
  /**
   * Reads one captured table again (the rows of `where`, when given) as snapshot chunks of run
   * `run`, in a view of its own; the source's stream and offset are not touched (resnapshot).
   */
  snapshotTable(
    table: string,
    where: string | undefined,
    run: string,
    sink: (tx: SourceTransaction) => Promise<void>,
  ): Promise<{ rows: number; chunks: number }>;
}

function tablesOf(config: Config, tables: readonly string[]): string[] {
  return config.cdc.tables.length > 0 ? [...config.cdc.tables] : [...tables];
}

/** A reader config the schema rejects is the operator's to fix: a ConfigError, not a ZodError. */
function validated<S extends z.ZodType>(schema: S, input: z.input<S>, what: string): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  throw new ConfigError(`invalid ${what} settings: ${issues}`, {
    cause: parsed.error,
    hint: 'check legacy.url and the cdc.* options (see "Configuration" in README.md)',
  });
}

/** The binlog reader's settings from the adapter's configuration; the URL must name the database. */
export function binlogSourceConfigFrom(config: Config, tables: readonly string[]): BinlogSourceConfigInput {
  const url = config.legacy.url;
  const legacy = parseLegacyUrl(url);
  if (legacy.dialect !== 'mysql') {
    throw new ConfigError(`the binlog reader needs a mysql:// or mariadb:// URL, got "${redactUrl(url)}"`);
  }
  return {
    host: legacy.host,
    port: legacy.port,
    user: legacy.user,
    password: legacy.password,
    database: requireDatabase(url, legacy),
    serverId: config.cdc.serverId,
    name: config.cdc.name,
    flavor: config.legacy.flavor,
    tables: tablesOf(config, tables),
    snapshotMode: config.cdc.snapshotMode,
    snapshotChunkRows: config.cdc.snapshotChunkRows,
    maxTransactionRows: config.cdc.maxTransactionRows,
    heartbeatIntervalMs: config.cdc.heartbeatIntervalMs,
    // One full fragment waits while the sink stores another and the reader fills the next.
    maxQueuedRows: config.cdc.maxTransactionRows,
  };
}

/** The pgoutput reader's settings from the adapter's configuration; the URL must name the database. */
export function pgoutputSourceConfigFrom(
  config: Config,
  tables: readonly string[],
): PgoutputSourceConfigInput {
  if (config.cdc.snapshotMode === 'when_needed') {
    throw new ConfigError('cdc.snapshotMode "when_needed" is not supported for PostgreSQL', {
      hint: 'use "initial" or "never": a replication slot keeps its WAL, so there is no purged position to recover from',
    });
  }
  return pgoutputConfigFromUrl(config.legacy.url, {
    name: config.cdc.name,
    tables: tablesOf(config, tables),
    snapshotMode: config.cdc.snapshotMode,
    snapshotChunkRows: config.cdc.snapshotChunkRows,
    maxTransactionRows: config.cdc.maxTransactionRows,
    heartbeatIntervalMs: config.cdc.heartbeatIntervalMs,
  });
}

/** The legacy database's change source for `config.legacy.url`; nothing connects until `preflight`/`start`. */
export function createChangeSource(config: Config, options: ChangeSourceOptions): LegacyChangeSource {
  const dialect = parseLegacyUrl(config.legacy.url).dialect;
  const sourceOptions = {
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    ...(options.onError === undefined ? {} : { onError: options.onError }),
  };
  if (dialect === 'mysql') {
    const settings = validated(
      binlogSourceConfigSchema,
      binlogSourceConfigFrom(config, options.tables),
      'binlog reader',
    );
    const source = new MysqlBinlogSource(settings, sourceOptions);
    return {
      name: source.name,
      dialect,
      database: settings.database,
      start: (from, sink, delivery) => source.start(from, sink, delivery),
      stop: () => source.stop(),
      offset: () => source.offset(),
      stats: () => ({ streamedRows: source.stats().streamedRows }),
      preflight: async () => {
        await binlogPreflight(settings);
      },
      openProgress: () => binlogProgress(settings, source),
      snapshotTable: (table, where, run, sink) => source.snapshotTable(table, where, run, sink),
    };
  }
  const settings = validated(
    pgoutputSourceConfigSchema,
    pgoutputSourceConfigFrom(config, options.tables),
    'pgoutput reader',
  );
  const source = new PgoutputSource(settings, sourceOptions);
  return {
    name: source.name,
    dialect,
    database: settings.database,
    start: (from, sink, delivery) => source.start(from, sink, delivery),
    stop: () => source.stop(),
    offset: () => source.offset(),
    stats: () => source.stats(),
    preflight: () => pgoutputPreflight(settings),
    openProgress: () => pgoutputProgress(settings, source),
    snapshotTable: (table, where, run, sink) => source.snapshotTable(table, where, run, sink),
  };
}

function headFailed(cause: unknown): AdapterError {
  if (cause instanceof AdapterError) return cause;
  return new SourceError(
    'LEGACY_HEAD_FAILED',
    `cannot read where the legacy change log ends: ${errorMessage(cause)}`,
    {
      cause,
      hint: 'is the legacy database reachable? (it is asked on every freshness check)',
    },
  );
}

/** Reads where the legacy change log ends, on one kept connection of its own (no replica stream). */
interface LegacyEndReader {
  legacyEnd(): Promise<LegacyEnd>;
  close(): Promise<void>;
}

/** The binlog's end (file/offset, cheap: no GTID lookup). */
function binlogEndReader(settings: BinlogSourceConfig): LegacyEndReader {
  // One kept connection: freshness is asked per shadow comparison, not worth a connect each time.
  const pool = mysql.createPool({
    ...connectionOptions(settings),
    connectionLimit: 1,
    ...MYSQL_TYPE_OPTIONS,
  });
  let flavor = settings.flavor;
  return {
    async legacyEnd() {
      try {
        if (flavor === undefined) {
          const [rows] = await pool.query('SELECT VERSION() AS version');
          flavor = detectFlavor(String((rows as Array<{ version?: unknown }>)[0]?.version ?? ''));
        }
        const end = await binlogEnd(pool, flavor);
        return { dialect: 'mysql', file: end.file, pos: end.pos };
      } catch (cause) {
        throw headFailed(cause);
      }
    },
    close: () => pool.end(),
  };
}

function progressOf(reader: LegacyEndReader, reached: (end: LegacyEnd) => boolean): SourceProgress {
  return {
    legacyEnd: () => reader.legacyEnd(),
    reached,
    reachedLegacyEnd: async () => reached(await reader.legacyEnd()),
    close: () => reader.close(),
  };
}

/**
 * MariaDB/MySQL: the binlog's end against the last transaction boundary the reader has passed,
 * which counts only once the delivery queue is empty. Before streaming starts, a stored stream
 * offset is where the reader will resume.
 */
function binlogProgress(settings: BinlogSourceConfig, source: MysqlBinlogSource): SourceProgress {
  return progressOf(binlogEndReader(settings), (end) => {
    if (end.dialect !== 'mysql') return false;
    const seen = source.seenPosition();
    const stored = source.offset();
    const at = seen ?? (stored?.phase === 'stream' ? { file: stored.file, pos: stored.pos } : null);
    return at !== null && positionAtLeast(at, end) && source.idle();
  });
}

// Sizes of a WAL page header (xlog_internal.h, MAXALIGNed on 64-bit servers): short on every
// page, long on the first page of a segment.
const SHORT_PAGE_HEADER = 24n;
const LONG_PAGE_HEADER = 40n;

/**
 * The server's insert position as the end of the last record, the form a decoder's positions
 * take. At a page boundary the insert position already points past the next page's header,
 * where no record ends, so the source would never "reach" it until more WAL came.
 */
export function recordEndOf(insertLsn: bigint, blockSize: bigint, segmentSize: bigint): bigint {
  if (insertLsn % segmentSize === LONG_PAGE_HEADER) return insertLsn - LONG_PAGE_HEADER;
  if (insertLsn % blockSize === SHORT_PAGE_HEADER) return insertLsn - SHORT_PAGE_HEADER;
  return insertLsn;
}

/**
 * PostgreSQL: the WAL insert position, not pg_current_wal_lsn(): with synchronous_commit=off a
 * commit is visible before its WAL is written, and the check must cover everything a reader of
 * the legacy database could see.
 */
function walEndReader(settings: PgoutputSourceConfig): LegacyEndReader {
  const pool = new pg.Pool({ ...connectionConfig(settings), max: 1 });
  // An idle connection that drops emits 'error' on the pool; unheard, it ends the process.
  pool.on('error', () => undefined);
  return {
    async legacyEnd() {
      try {
        const result = await pool.query<{ lsn: string; block: string; segment: string }>(
          `SELECT pg_current_wal_insert_lsn()::text AS lsn,
                  (SELECT setting FROM pg_settings WHERE name = 'wal_block_size') AS block,
                  (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') AS segment`,
        );
        const row = result.rows[0];
        if (row === undefined) throw new Error('pg_current_wal_insert_lsn() returned no row');
        const end = recordEndOf(parseLsn(row.lsn), BigInt(row.block), BigInt(row.segment));
        return { dialect: 'postgres', lsn: formatLsn(end) };
      } catch (cause) {
        throw headFailed(cause);
      }
    },
    close: () => pool.end(),
  };
}

/**
 * PostgreSQL: the WAL insert position against the source's seen LSN, which moves with delivered
 * commits and with keepalives once nothing received is waiting. The walsender decodes every
 * database's WAL and sends a keepalive with its position once caught up, so writes elsewhere on
 * the server do not keep the source "behind".
 */
function pgoutputProgress(settings: PgoutputSourceConfig, source: PgoutputSource): SourceProgress {
  return progressOf(walEndReader(settings), (end) => {
    if (end.dialect !== 'postgres') return false;
    const seen = source.seenLsn();
    return seen !== null && parseLsn(seen) >= parseLsn(end.lsn);
  });
}

/**
 * A progress probe over the offset a pipeline stored (`stored()`, read on every `reached`), for
 * a process that reads beside the running pipeline: it opens one plain connection to ask where
 * the change log ends, never a binlog dump or a replication slot. The stored offset moves with
 * delivered transactions of captured tables, and every cdc.heartbeatIntervalMs over writes
 * elsewhere on the server: until the next of either it reads as "behind".
 */
export function openStoredProgress(
  config: Config,
  tables: readonly string[],
  stored: () => SourceOffset | null,
): SourceProgress {
  const reader =
    parseLegacyUrl(config.legacy.url).dialect === 'mysql'
      ? binlogEndReader(
          validated(binlogSourceConfigSchema, binlogSourceConfigFrom(config, tables), 'binlog reader'),
        )
      : walEndReader(
          validated(pgoutputSourceConfigSchema, pgoutputSourceConfigFrom(config, tables), 'pgoutput reader'),
        );
  return progressOf(reader, (end) => storedStreamReached(stored(), end));
}

/** Whether a stored offset is a streaming one at or past `end` (a snapshot's offset never is). */
function storedStreamReached(offset: SourceOffset | null, end: LegacyEnd): boolean {
  if (end.dialect === 'mysql') {
    const binlog = binlogOffsetSchema.safeParse(offset);
    return binlog.success && binlog.data.phase === 'stream' && positionAtLeast(binlog.data, end);
  }
  const wal = pgoutputOffsetSchema.safeParse(offset);
  return wal.success && wal.data.phase === 'stream' && parseLsn(wal.data.lsn) >= parseLsn(end.lsn);
}

/**
 * Updates and deletes are captured with their whole before image only under REPLICA IDENTITY
 * FULL; with the default identity a delete's before image holds just the key, which the
 * mapping rules cannot map, and the change would be dead-lettered: refuse to start instead.
 */
async function checkReplicaIdentity(client: pg.Client, settings: PgoutputSourceConfig): Promise<void> {
  const tables = await capturedTables(client, settings);
  const missing = await tablesWithoutFullIdentity(client, settings.schema, tables);
  if (missing.length === 0) return;
  const shown =
    missing.length > 5
      ? `${missing.slice(0, 5).join(', ')} and ${missing.length - 5} more`
      : missing.join(', ');
  throw new SourceError(
    'REPLICA_IDENTITY',
    `${missing.length} captured table(s) of ${settings.database} lack REPLICA IDENTITY FULL (${shown}): updates and deletes would arrive without their before image`,
    {
      hint: `run, as the tables' owner (a partitioned table's partitions each need their own):\n${missing
        .map((t) => `ALTER TABLE ${t} REPLICA IDENTITY FULL;`)
        .join('\n')}`,
    },
  );
}

const PG_START_HINT =
  'is the server running and legacy.url right? The project instance: `bash scripts/legacy-pg.sh up` (127.0.0.1:5433)';

/**
 * Connects and checks PostgreSQL can feed the pgoutput reader: wal_level=logical, a role
 * allowed to replicate, and REPLICA IDENTITY FULL on every captured table and partition.
 * SOURCE_UNREACHABLE, SOURCE_ACCESS_DENIED, DATABASE_MISSING, WAL_LEVEL, MISSING_PRIVILEGES,
 * REPLICA_IDENTITY, each with the fix in its hint.
 */
export async function pgoutputPreflight(settings: PgoutputSourceConfig): Promise<void> {
  const client = new pg.Client(connectionConfig(settings));
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (cause) {
    const code = (cause as { code?: unknown }).code;
    await client.end().catch(() => undefined);
    if (code === '28P01' || code === '28000') {
      throw new SourceError(
        'SOURCE_ACCESS_DENIED',
        `PostgreSQL refused ${settings.user}: ${errorMessage(cause)}`,
        {
          cause,
          hint: 'check the user and password in CQRS_LEGACY_URL (and pg_hba.conf)',
        },
      );
    }
    if (code === '3D000') {
      throw new SourceError(
        'DATABASE_MISSING',
        `database '${settings.database}' does not exist on the legacy server`,
        {
          cause,
          hint: 'create it, or fix the database name in CQRS_LEGACY_URL',
        },
      );
    }
    throw new SourceError(
      'SOURCE_UNREACHABLE',
      `cannot connect to PostgreSQL at ${settings.host}:${settings.port}: ${errorMessage(cause)}`,
      { cause, hint: PG_START_HINT },
    );
  }
  try {
    const result = await client.query<{ wal_level: string; can_replicate: boolean; role: string }>(
      `SELECT current_setting('wal_level') AS wal_level, r.rolreplication OR r.rolsuper AS can_replicate,
              current_user AS role
         FROM pg_roles r WHERE r.rolname = current_user`,
    );
    const row = result.rows[0];
    if (row === undefined) throw new SourceError('MISSING_PRIVILEGES', 'cannot read the current role');
    if (row.wal_level !== 'logical') {
      throw new SourceError('WAL_LEVEL', `wal_level is ${row.wal_level}; logical replication needs logical`, {
        hint: 'run ALTER SYSTEM SET wal_level = logical; and restart the server',
      });
    }
    if (!row.can_replicate) {
      throw new SourceError('MISSING_PRIVILEGES', `role ${row.role} may not replicate`, {
        hint: `ALTER ROLE ${row.role} WITH REPLICATION; (it must also own the captured tables for the publication)`,
      });
    }
    await checkReplicaIdentity(client, settings);
  } finally {
    await client.end().catch(() => undefined);
  }
}
