import mysql from 'mysql2/promise';
import pg from 'pg';
import { AdapterError } from '../index.js';

/**
 * Which databases a sample created: a database comment naming the sample. `create` replaces a
 * database only when it carries that mark, or when the user says --force: pointing legacy.url
 * at a database of one's own must never get it dropped by a demo.
 */
const markOf = (sample: string) => `created by cqrs-migrate sample ${sample}`;

interface Target {
  url: URL;
  database: string;
}

function target(url: string): Target {
  const parsed = new URL(url);
  return { url: parsed, database: decodeURIComponent(parsed.pathname.replace(/^\//, '')) };
}

const isPostgres = (u: URL) => /^postgres(ql)?:$/.test(u.protocol);

async function onServer<T>(
  t: Target,
  fn: (query: (sql: string, params: unknown[]) => Promise<unknown[]>) => Promise<T>,
) {
  if (isPostgres(t.url)) {
    const client = new pg.Client({
      host: t.url.hostname,
      port: t.url.port === '' ? 5432 : Number(t.url.port),
      user: decodeURIComponent(t.url.username),
      password: decodeURIComponent(t.url.password),
      database: 'postgres',
    });
    await client.connect();
    try {
      return await fn(async (sql, params) => (await client.query(sql, params)).rows);
    } finally {
      await client.end();
    }
  }
  const c = await mysql.createConnection({
    host: t.url.hostname,
    port: t.url.port === '' ? 3306 : Number(t.url.port),
    user: decodeURIComponent(t.url.username),
    password: decodeURIComponent(t.url.password),
  });
  try {
    return await fn(async (sql, params) => (await c.query(sql, params))[0] as unknown[]);
  } finally {
    await c.end();
  }
}

/**
 * Refuses to go on when `url`'s database exists, was not created by `sample`, and `force` is
 * not set. MySQL (no database comments) has no mark: an existing database needs --force there.
 */
export async function guardExisting(url: string, sample: string, force: boolean): Promise<void> {
  if (force) return;
  const t = target(url);
  const found = await onServer(t, async (query) => {
    if (isPostgres(t.url)) {
      const rows = (await query(
        "SELECT shobj_description(oid, 'pg_database') AS mark FROM pg_database WHERE datname = $1",
        [t.database],
      )) as Array<{ mark: string | null }>;
      return rows.length === 0 ? null : (rows[0]?.mark ?? '');
    }
    const exists =
      (await query('SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [t.database])).length >
      0;
    if (!exists) return null;
    try {
      const rows = (await query(
        'SELECT SCHEMA_COMMENT AS mark FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?',
        [t.database],
      )) as Array<{ mark: string | null }>;
      return rows[0]?.mark ?? '';
    } catch {
      return '';
    }
  });
  if (found === null || found === markOf(sample)) return;
  throw new AdapterError(
    'SAMPLE_DB_FOREIGN',
    `database ${t.database} exists and was not created by the ${sample} sample`,
    {
      hint: `point legacy.url at another database, or pass --force to drop ${t.database} and everything in it`,
    },
  );
}

/** Marks `url`'s database as the sample's, so a later create may replace it without --force. */
export async function markCreated(url: string, sample: string): Promise<void> {
  const t = target(url);
  const mark = markOf(sample);
  await onServer(t, async (query) => {
    if (isPostgres(t.url))
      await query(`COMMENT ON DATABASE "${t.database.replaceAll('"', '""')}" IS '${mark}'`, []);
    else {
      // Kept out of the binlog: Debezium's MySQL DDL parser cannot parse ALTER DATABASE … COMMENT
      // (DBZ-5621) and a connector reading past it fails. Without the privilege to do so the
      // database stays unmarked, and replacing it later needs --force.
      await query('SET SESSION sql_log_bin = 0', [])
        .then(() => query(`ALTER DATABASE \`${t.database.replaceAll('`', '``')}\` COMMENT = ?`, [mark]))
        .catch(() => undefined);
    }
  });
}
