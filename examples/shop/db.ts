import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { z } from 'zod';
import { AdapterError } from '../../index.js';

/**
 * The sample shop's PostgreSQL database: connection settings from a postgres:// URL, creating
 * and dropping the database (owned by the connecting role, which the CDC publication needs),
 * and pools whose values come back in the forms change-data-capture delivers.
 */

export const pgConnSchema = z.object({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(1).max(65535).default(5433),
  user: z.string().min(1).default('cqrs'),
  password: z.string().default('cqrs'),
});
export type PgConn = z.output<typeof pgConnSchema>;

/** A database name we are willing to put in DDL unquoted-safe: the example's own prefix rules. */
export const databaseNameSchema = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'use 1-63 lower-case letters, digits or "_", not starting with a digit');

/** postgres://user:password@host:port/database → connection settings and database name. */
export function parseShopUrl(url: string): { conn: PgConn; database: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new AdapterError('SHOP_URL_INVALID', `not a URL: ${url}`, {
      cause,
      hint: 'use postgres://cqrs:cqrs@127.0.0.1:5433/shop',
    });
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new AdapterError('SHOP_URL_INVALID', `the shop sample runs on PostgreSQL, not ${parsed.protocol}`, {
      hint: 'use postgres://cqrs:cqrs@127.0.0.1:5433/shop',
    });
  }
  const database = databaseNameSchema.parse(decodeURIComponent(parsed.pathname.replace(/^\//, '')) || 'shop');
  const conn = pgConnSchema.parse({
    host: parsed.hostname || undefined,
    port: parsed.port ? Number(parsed.port) : undefined,
    user: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
  });
  return { conn, database };
}

const asText = (value: string) => value;
const int8 = (value: string) => {
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : value;
};
// pg_type OIDs.
const INT8 = 20;
const DATE = 1082;
const TIMESTAMP = 1114;
const TIMESTAMPTZ = 1184;
const NUMERIC = 1700;

/**
 * Values as the server prints them where node-postgres would lose precision (NUMERIC keeps its
 * scale, timestamps stay text in the session's UTC, never a local-time Date), BIGINT as a
 * number when it is safe; booleans and 32-bit integers as node-postgres parses them.
 */
export const shopTypes = {
  getTypeParser(oid: number, format?: string): (value: string) => unknown {
    if (oid === INT8) return int8;
    if (oid === NUMERIC || oid === TIMESTAMP || oid === TIMESTAMPTZ || oid === DATE) return asText;
    return pg.types.getTypeParser(oid, format === 'binary' ? 'binary' : 'text') as (value: string) => unknown;
  },
} as pg.CustomTypesConfig;

/** Every session in UTC with ISO dates, so timestamp text never depends on the machine. */
const sessionOptions = '-c TimeZone=UTC -c DateStyle=ISO';

export function shopClient(conn: PgConn, database: string): pg.Client {
  return new pg.Client({
    ...conn,
    database: databaseNameSchema.parse(database),
    types: shopTypes,
    options: sessionOptions,
  });
}

export function shopPool(conn: PgConn, database: string, max = 4): pg.Pool {
  return new pg.Pool({
    ...conn,
    database: databaseNameSchema.parse(database),
    types: shopTypes,
    options: sessionOptions,
    max,
  });
}

export async function withShopClient<T>(
  conn: PgConn,
  database: string,
  fn: (c: pg.Client) => Promise<T>,
): Promise<T> {
  const client = shopClient(conn, database);
  try {
    await client.connect();
  } catch (cause) {
    throw new AdapterError(
      'SHOP_DB_UNREACHABLE',
      `cannot connect to PostgreSQL database ${database} at ${conn.host}:${conn.port}`,
      {
        cause,
        hint: 'is it running? `bash scripts/legacy-pg.sh up` starts the project instance',
      },
    );
  }
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** schema.sql next to this module; the compiled module in dist/ falls back to the source tree. */
export function readShopSchemaSql(): string {
  const candidates = [
    new URL('./schema.sql', import.meta.url),
    new URL('../../../examples/shop/schema.sql', import.meta.url),
  ].map((u) => fileURLToPath(u));
  const found = candidates.find((p) => existsSync(p));
  if (found === undefined) {
    throw new AdapterError(
      'SHOP_SCHEMA_MISSING',
      `schema.sql not found (looked in ${candidates.join(', ')})`,
    );
  }
  return readFileSync(found, 'utf8');
}

export async function shopDatabaseExists(conn: PgConn, database: string): Promise<boolean> {
  const name = databaseNameSchema.parse(database);
  return withShopClient(conn, 'postgres', async (c) => {
    const result = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    return result.rows.length > 0;
  });
}

/**
 * Creates `database`, owned by the connecting role (owning the tables is what a filtered
 * publication needs), with the shop's 11 tables. An existing database is an error unless
 * `force`, which drops it first (ending its sessions; its replication slots must be gone).
 */
export async function createShopDatabase(
  conn: PgConn,
  database: string,
  opts: { force?: boolean } = {},
): Promise<void> {
  const name = databaseNameSchema.parse(database);
  await withShopClient(conn, 'postgres', async (c) => {
    const exists = (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rows.length > 0;
    if (exists && !opts.force) {
      throw new AdapterError('SHOP_DB_EXISTS', `database ${name} already exists`, {
        hint: 'pick another database name, or pass force (demo: --force) to drop and re-create it',
      });
    }
    if (exists) await dropDatabase(c, name);
    try {
      await c.query(`CREATE DATABASE "${name}" ENCODING 'UTF8' TEMPLATE template0`);
    } catch (cause) {
      throw new AdapterError('SHOP_DB_CREATE_FAILED', `cannot create database ${name}`, {
        cause,
        hint: 'the role needs CREATEDB (scripts/legacy-pg.sh grants it to cqrs)',
      });
    }
  });
  await withShopClient(conn, name, async (c) => {
    try {
      // One simple-protocol query runs the whole script.
      await c.query(readShopSchemaSql());
    } catch (cause) {
      throw new AdapterError('SHOP_SCHEMA_FAILED', `the shop schema failed on ${name}`, { cause });
    }
  });
}

/**
 * Drops `name`, ending its sessions. Its inactive logical replication slots go first (a slot
 * keeps a database from being dropped, and a re-created database makes its position
 * meaningless); a slot still being read is an error naming it.
 */
async function dropDatabase(c: pg.Client, name: string): Promise<void> {
  const slots = await c.query('SELECT slot_name, active FROM pg_replication_slots WHERE database = $1', [
    name,
  ]);
  const active = slots.rows
    .filter((r: { active: boolean }) => r.active)
    .map((r: { slot_name: string }) => r.slot_name);
  if (active.length > 0) {
    throw new AdapterError(
      'SHOP_DB_IN_USE',
      `database ${name} is being replicated by slot(s) ${active.join(', ')}`,
      {
        hint: 'stop the pipeline or connector reading it first',
      },
    );
  }
  for (const row of slots.rows as { slot_name: string }[]) {
    await c.query('SELECT pg_drop_replication_slot($1)', [row.slot_name]);
  }
  await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
}

/** Drops `database`, ending its sessions and dropping its inactive replication slots. */
export async function dropShopDatabase(conn: PgConn, database: string): Promise<void> {
  const name = databaseNameSchema.parse(database);
  await withShopClient(conn, 'postgres', (c) => dropDatabase(c, name));
}
