import pg from 'pg';
import type { LegacyDb, LegacyRow, LegacySql } from '../../definition/endpoints.js';
import { ConfigError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import { pgTextValue } from '../pgoutput/values.js';
import { legacyQueryError } from './errors.js';
import { bindNamedParams, sqlFor } from './named-params.js';
import { parseLegacyUrl, redactUrl, requireDatabase } from './url.js';

/**
 * The legacy database as endpoints see it, on PostgreSQL. Every value is read as the server's
 * text (this pool's own type parsers, never node-postgres' process-wide ones) and converted by
 * connectors/pgoutput/values.ts from the result's column type and modifier, the very function
 * the pgoutput reader applies to the same row: NUMERIC exact text at its scale, int8 a number
 * while safe, TIMESTAMP(p) with p fractional digits, TIMESTAMPTZ in UTC, DATE as YYYY-MM-DD,
 * bytea as base64. Sessions print dates in ISO style and UTC, as values.ts expects.
 */

export interface PostgresLegacyDbOptions {
  /** Connections the legacy read path may hold at once. */
  poolSize?: number;
  /** Where errors of idle pooled connections are reported (they would crash the process otherwise). */
  logger?: Logger;
}

export interface PostgresLegacyDb extends LegacyDb {
  readonly dialect: 'postgres';
  /** The pool behind it; its clients return text, not node-postgres' parsed values. */
  readonly pool: pg.Pool;
  close(): Promise<void>;
}

/** Every column as text: values.ts does the conversion, with the typmod a parser never sees. */
const TEXT_TYPES = { getTypeParser: () => (value: string) => value };

type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

// 28P01 wrong password, 28000 no pg_hba entry, 3D000 no such database.
const queryFailed = (cause: unknown, sql: string, url: string) =>
  legacyQueryError(cause, sql, url, ['28P01', '28000', '3D000']);

function rowsOf(result: pg.QueryArrayResult<unknown[]>): LegacyRow[] {
  // A multi-statement text or a command without rows has no field list.
  if (!Array.isArray(result.fields)) return [];
  const columns = result.fields.map((f) => ({
    name: f.name,
    type: { typeOid: f.dataTypeID, typeMod: f.dataTypeModifier },
  }));
  return result.rows.map((values) => {
    const row: LegacyRow = {};
    columns.forEach((column, i) => {
      const text = values[i];
      row[column.name] = pgTextValue(typeof text === 'string' ? text : null, column.type);
    });
    return row;
  });
}

/** Opens a pool on the postgres:// or postgresql:// URL's database; connections are made on first use. */
export function openPostgresLegacyDb(url: string, options: PostgresLegacyDbOptions = {}): PostgresLegacyDb {
  const legacy = parseLegacyUrl(url);
  if (legacy.dialect !== 'postgres') {
    throw new ConfigError(`openPostgresLegacyDb needs a postgres:// URL, got "${redactUrl(url)}"`, {
      hint: 'openLegacyDb(url) picks the adapter from the scheme',
    });
  }
  const pool = new pg.Pool({
    host: legacy.host,
    port: legacy.port,
    user: legacy.user,
    password: legacy.password,
    database: requireDatabase(url, legacy),
    max: options.poolSize ?? 8,
    connectionTimeoutMillis: 10_000,
    // Unqualified names in the endpoints' SQL resolve in the URL's schema, then public (extensions).
    // Quoted: unquoted, the server folds `Sales` to `sales` (the URL's name has no space or quote).
    options: `-c TimeZone=UTC -c DateStyle=ISO -c extra_float_digits=1 -c lc_monetary=C -c IntervalStyle=postgres${legacy.schema === undefined ? '' : ` -c search_path="${legacy.schema}",public`}`,
    types: TEXT_TYPES,
  });
  // An idle client whose connection drops emits 'error' on the pool; unheard, it ends the process.
  pool.on('error', (err) => options.logger?.warn({ err }, 'idle legacy database connection failed'));

  const run = async (
    on: Queryable,
    sql: LegacySql,
    params: Readonly<Record<string, unknown>> = {},
  ): Promise<LegacyRow[]> => {
    const bound = bindNamedParams(sqlFor(sql, 'postgres'), params, 'postgres');
    try {
      const result = await on.query<unknown[]>({
        text: bound.text,
        values: bound.values,
        rowMode: 'array',
        types: TEXT_TYPES,
      });
      return rowsOf(result);
    } catch (cause) {
      throw queryFailed(cause, bound.text, url);
    }
  };

  return {
    dialect: 'postgres',
    pool,
    query: (sql, params) => run(pool, sql, params),
    async snapshot(fn) {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (cause) {
        throw queryFailed(cause, 'BEGIN', url);
      }
      try {
        // The view is taken at the first statement inside and holds for the whole transaction.
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      } catch (cause) {
        client.release(true);
        throw queryFailed(cause, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', url);
      }
      let result: Awaited<ReturnType<typeof fn>>;
      try {
        result = await fn({ dialect: 'postgres', query: (sql, params) => run(client, sql, params) });
      } catch (err) {
        // A client whose transaction state is unknown must not go back to the pool.
        await client.query('ROLLBACK').then(
          () => client.release(),
          () => client.release(true),
        );
        throw err;
      }
      try {
        await client.query('COMMIT');
      } catch (cause) {
        client.release(true);
        throw queryFailed(cause, 'COMMIT', url);
      }
      client.release();
      return result;
    },
    close: () => pool.end(),
  };
}
