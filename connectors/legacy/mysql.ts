import mysql, { type FieldPacket, type Pool, type PoolConnection } from 'mysql2/promise';
import type { LegacyDb, LegacyRow, LegacySql } from '../../definition/endpoints.js';
import { ConfigError } from '../../lib/errors.js';
import { MYSQL_TYPE_OPTIONS } from '../../lib/mysql-types.js';
import { type ColumnInfo, normalizeValue } from '../binlog/normalize.js';
import { legacyQueryError } from './errors.js';
import { bindNamedParams, sqlFor } from './named-params.js';
import { parseLegacyUrl, redactUrl, requireDatabase } from './url.js';

/**
 * The legacy database as endpoints see it, on MariaDB/MySQL. Values come back in the form the
 * binlog reader delivers for the same row (connectors/binlog/normalize.ts over the result's
 * column metadata): DECIMAL padded to its scale, DATETIME/TIMESTAMP/TIME with exactly the
 * column's fractional digits, TIMESTAMP in UTC, BIGINT a number while safe, binary as base64.
 * Statements are server-side prepared (mysql2 `execute`), so values are bound, never spliced.
 */

export interface LegacyDbOptions {
  /** Connections the legacy read path may hold at once. */
  poolSize?: number;
}

export interface MysqlLegacyDb extends LegacyDb {
  readonly dialect: 'mysql';
  /** The pool behind it, for callers that need plain mysql2 access to the same database. */
  readonly pool: Pool;
  close(): Promise<void>;
}

type Runner = Pick<PoolConnection, 'execute'> | Pick<Pool, 'execute'>;
/** mysql2's bindable values; what a value may be is checked by the driver at execution. */
type ExecuteValues = NonNullable<Parameters<Pool['execute']>[1]>;

// mysql2's column type codes (protocol constants) of the types normalisation treats specially.
const TYPE_NAMES: Readonly<Record<number, string>> = {
  0: 'decimal',
  1: 'tinyint',
  2: 'smallint',
  3: 'int',
  4: 'float',
  5: 'double',
  7: 'timestamp',
  8: 'bigint',
  9: 'mediumint',
  10: 'date',
  11: 'time',
  12: 'datetime',
  13: 'year',
  14: 'date',
  16: 'bit',
  246: 'decimal',
};

/** Above this, `decimals` is the server's "not fixed" marker (31, 39), not a column scale. */
const MAX_FIXED_DECIMALS = 30;

/** What normalisation needs to know of a result column, from the protocol's column definition. */
export function columnInfoOf(field: FieldPacket): ColumnInfo {
  const code = field.columnType ?? field.type ?? -1;
  const dataType = TYPE_NAMES[code] ?? 'other';
  const fixed = field.decimals <= MAX_FIXED_DECIMALS;
  const temporal = dataType === 'datetime' || dataType === 'timestamp' || dataType === 'time';
  const info: ColumnInfo = {
    name: field.name,
    // A computed temporal or decimal of unknown precision is passed through as the server printed it.
    dataType: (temporal || dataType === 'decimal') && !fixed ? 'other' : dataType,
    datetimePrecision: temporal && fixed ? Math.min(field.decimals, 6) : null,
    numericScale: dataType === 'decimal' && fixed ? field.decimals : null,
  };
  // A BIT column's length is its width in bits.
  if (dataType === 'bit') info.bits = field.columnLength ?? 1;
  return info;
}

function rowsOf(result: unknown, fields: FieldPacket[] | undefined): LegacyRow[] {
  if (!Array.isArray(result) || fields === undefined) return [];
  const columns = fields.map(columnInfoOf);
  return (result as unknown[][]).map((values) => {
    const row: LegacyRow = {};
    columns.forEach((column, i) => {
      row[column.name] = normalizeValue(values[i], column);
    });
    return row;
  });
}

const queryFailed = (cause: unknown, sql: string, url: string) =>
  legacyQueryError(cause, sql, url, ['ER_ACCESS_DENIED_ERROR', 'ER_DBACCESS_DENIED_ERROR']);

/** Opens a pool on the mysql:// or mariadb:// URL's database; connections are made on first use. */
export function openMysqlLegacyDb(url: string, options: LegacyDbOptions = {}): MysqlLegacyDb {
  const legacy = parseLegacyUrl(url);
  if (legacy.dialect !== 'mysql') {
    throw new ConfigError(`openMysqlLegacyDb needs a mysql:// or mariadb:// URL, got "${redactUrl(url)}"`, {
      hint: 'openLegacyDb(url) picks the adapter from the scheme',
    });
  }
  const pool = mysql.createPool({
    host: legacy.host,
    port: legacy.port,
    user: legacy.user,
    password: legacy.password,
    database: requireDatabase(url, legacy),
    connectionLimit: options.poolSize ?? 8,
    connectTimeout: 10_000,
    charset: 'utf8mb4',
    // No stack captured per query (up to 9% of a read's CPU): a failure is rethrown as an
    // AdapterError from run(), whose stack and cause already say where and what failed.
    trace: false,
    ...MYSQL_TYPE_OPTIONS,
  });
  // TIMESTAMP prints in the session's zone; the binlog reader renders it in UTC. Queued on the
  // new connection before anything the pool hands it out for.
  pool.pool.on('connection', (conn) => {
    conn.query("SET SESSION time_zone = '+00:00'", () => undefined);
  });

  const run = async (
    on: Runner,
    sql: LegacySql,
    params: Readonly<Record<string, unknown>> = {},
  ): Promise<LegacyRow[]> => {
    const bound = bindNamedParams(sqlFor(sql, 'mysql'), params, 'mysql');
    try {
      const [result, fields] = await on.execute(
        { sql: bound.text, rowsAsArray: true },
        bound.values as ExecuteValues,
      );
      return rowsOf(result, fields);
    } catch (cause) {
      throw queryFailed(cause, bound.text, url);
    }
  };

  return {
    dialect: 'mysql',
    pool,
    query: (sql, params) => run(pool, sql, params),
    async snapshot(fn) {
      let conn: PoolConnection;
      try {
        conn = await pool.getConnection();
      } catch (cause) {
        throw queryFailed(cause, 'START TRANSACTION', url);
      }
      try {
        // WITH CONSISTENT SNAPSHOT only holds one view for the transaction under REPEATABLE READ;
        // SET TRANSACTION applies to the next transaction only, so the pool is left as it was.
        await conn.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
        await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      } catch (cause) {
        conn.destroy();
        throw queryFailed(cause, 'START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY', url);
      }
      let result: Awaited<ReturnType<typeof fn>>;
      try {
        result = await fn({ dialect: 'mysql', query: (sql, params) => run(conn, sql, params) });
      } catch (err) {
        // A connection whose transaction state is unknown must not go back to the pool.
        await conn.query('ROLLBACK').then(
          () => conn.release(),
          () => conn.destroy(),
        );
        throw err;
      }
      try {
        await conn.query('COMMIT');
      } catch (cause) {
        conn.destroy();
        throw queryFailed(cause, 'COMMIT', url);
      }
      conn.release();
      return result;
    },
    close: () => pool.end(),
  };
}
