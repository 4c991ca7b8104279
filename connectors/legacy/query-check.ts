import type { LegacyDialect, LegacySql } from '../../definition/endpoints.js';
import type { Migration } from '../../definition/migration.js';
import { AdapterError, DefinitionError, errorMessage } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import { silentLogger } from '../../lib/logger.js';
import { legacyQueryError } from './errors.js';
import { openMysqlLegacyDb } from './mysql.js';
import { bindNamedParams, namedParamsOf, sqlFor } from './named-params.js';
import { openPostgresLegacyDb } from './postgres.js';
import { parseLegacyUrl } from './url.js';

/**
 * Every endpoint's legacy SQL (its answer and its reconcile list) checked against the live
 * schema before anything starts: the server parses and resolves each statement without running
 * it (a server-side prepare), so a table or column the definition names but the database lacks
 * refuses the start instead of failing every request later. A legacy query written as a
 * function cannot be checked; the debug log says so.
 */

/** One SQL text of the definition, named for the operator. */
export interface LegacyQueryToCheck {
  /** e.g. "accounts.summary" or "accounts.summary (reconcile)". */
  what: string;
  sql: LegacySql;
}

export interface LegacyQueryProblem {
  what: string;
  message: string;
}

/** The SQL texts of a definition's endpoints; functions are listed apart, since only SQL can be checked. */
export function legacyQueriesOf(migration: Migration): { sql: LegacyQueryToCheck[]; functions: string[] } {
  const sql: LegacyQueryToCheck[] = [];
  const functions: string[] = [];
  for (const entry of migration.endpoints) {
    const { legacy, reconcile } = entry.definition;
    if (typeof legacy === 'function') functions.push(entry.key);
    else sql.push({ what: entry.key, sql: legacy.sql });
    if (typeof reconcile === 'function') functions.push(`${entry.key} (reconcile)`);
    else if (reconcile !== undefined) sql.push({ what: `${entry.key} (reconcile)`, sql: reconcile.sql });
  }
  return { sql, functions };
}

/** The statement the server is asked to prepare: named parameters as the dialect's placeholders. */
export function statementToPrepare(sql: LegacySql, dialect: LegacyDialect): string {
  const text = sqlFor(sql, dialect);
  const nulls = Object.fromEntries(namedParamsOf(text, dialect).map((name) => [name, null]));
  return bindNamedParams(text, nulls, dialect).text;
}

/** The one error that refuses the start, naming every endpoint whose SQL the database rejected. */
export function invalidQueriesError(
  problems: readonly LegacyQueryProblem[],
  definition: string,
): AdapterError {
  const list = problems.map((p) => `${p.what}: ${p.message}`).join('; ');
  return new AdapterError(
    'LEGACY_QUERY_INVALID',
    `${problems.length} legacy ${problems.length === 1 ? 'query does' : 'queries do'} not match the legacy database's schema: ${list}`,
    {
      hint: `fix the endpoint's legacy SQL in ${definition} (or the database); to start without this check, set legacy.checkQueries to false (CQRS_LEGACY_CHECK_QUERIES=false)`,
    },
  );
}

/** PostgreSQL could not infer a parameter's type (`SELECT :x`): the statement itself is sound. */
const PG_INDETERMINATE_TYPE = '42P18';

type Prepare = (text: string) => Promise<void>;

/** One connection of the legacy read path's own pool, for the check only. */
async function withConnection<C>(
  connect: () => Promise<C>,
  release: (conn: C) => void,
  close: () => Promise<void>,
  url: string,
  deniedCodes: readonly string[],
  fn: (conn: C) => Promise<void>,
): Promise<void> {
  try {
    let conn: C;
    try {
      conn = await connect();
    } catch (cause) {
      throw legacyQueryError(cause, 'connect', url, deniedCodes);
    }
    try {
      await fn(conn);
    } finally {
      release(conn);
    }
  } finally {
    await close().catch(() => undefined);
  }
}

function withMysql(url: string, fn: (prepare: Prepare) => Promise<void>): Promise<void> {
  const db = openMysqlLegacyDb(url, { poolSize: 1 });
  const denied = ['ER_ACCESS_DENIED_ERROR', 'ER_DBACCESS_DENIED_ERROR'];
  return withConnection(
    () => db.pool.getConnection(),
    (conn) => conn.release(),
    () => db.close(),
    url,
    denied,
    // COM_STMT_PREPARE resolves every table and column without running the statement.
    (conn) =>
      fn(async (text) => {
        const statement = await conn.prepare(text);
        await statement.close();
      }),
  );
}

function withPostgres(url: string, fn: (prepare: Prepare) => Promise<void>): Promise<void> {
  const db = openPostgresLegacyDb(url, { poolSize: 1 });
  return withConnection(
    () => db.pool.connect(),
    (client) => client.release(),
    () => db.close(),
    url,
    ['28P01', '28000'],
    // PREPARE parses and plans without executing; DEALLOCATE ALL keeps the session clean.
    (client) =>
      fn(async (text) => {
        try {
          await client.query(`PREPARE cqrs_check AS ${text}`);
        } catch (err) {
          if ((err as { code?: unknown }).code !== PG_INDETERMINATE_TYPE) throw err;
          return;
        }
        await client.query('DEALLOCATE ALL');
      }),
  );
}

/**
 * Asks the legacy database to prepare every SQL text of the definition's endpoints. Throws
 * LEGACY_QUERY_INVALID listing each one it rejected with the server's message; a server that
 * cannot be reached throws LEGACY_UNREACHABLE / LEGACY_ACCESS_DENIED.
 */
export async function checkLegacyQueries(
  url: string,
  migration: Migration,
  options: { definition: string; logger?: Logger },
): Promise<{ checked: number; unchecked: string[] }> {
  const logger = (options.logger ?? silentLogger).child({ component: 'legacy-query-check' });
  const { sql, functions } = legacyQueriesOf(migration);
  if (functions.length > 0)
    logger.debug(
      { endpoints: functions },
      'legacy queries written as functions cannot be checked before start',
    );
  const dialect = parseLegacyUrl(url).dialect;
  const problems: LegacyQueryProblem[] = [];
  const checkAll = async (prepare: Prepare) => {
    for (const query of sql) {
      let text: string;
      try {
        text = statementToPrepare(query.sql, dialect);
      } catch (err) {
        if (!(err instanceof DefinitionError)) throw err;
        problems.push({ what: query.what, message: err.message });
        continue;
      }
      try {
        await prepare(text);
      } catch (err) {
        problems.push({ what: query.what, message: errorMessage(err) });
      }
    }
  };
  await (dialect === 'mysql' ? withMysql(url, checkAll) : withPostgres(url, checkAll));
  if (problems.length > 0) throw invalidQueriesError(problems, options.definition);
  logger.debug({ checked: sql.length }, 'legacy queries match the legacy schema');
  return { checked: sql.length, unchecked: functions };
}
