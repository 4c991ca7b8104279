import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import mysql, { type Pool, type PoolConnection, type PoolOptions, type RowDataPacket } from 'mysql2/promise';
import { z } from 'zod';
import { AdapterError, ConfigError } from '../../index.js';

/**
 * How the bank's own connections read values: DECIMAL and date-times as exact text, as
 * change-data-capture and cqrs-migrate's legacy query path deliver them.
 */
const MYSQL_TYPE_OPTIONS = {
  dateStrings: true,
  decimalNumbers: false,
  supportBigNumbers: true,
  bigNumberStrings: false,
  jsonStrings: true,
  timezone: 'Z',
} as const;

/**
 * Creating, dropping and connecting to a sample-bank database. Everything the generator,
 * the workload and the legacy read path need to reach MariaDB goes through here, so every
 * connection shares MYSQL_TYPE_OPTIONS.
 */

export interface MysqlConnOptions {
  host: string;
  port: number;
  user: string;
  password: string;
}

export interface MysqlUrl extends MysqlConnOptions {
  /** Absent when the URL has no path. */
  database: string | undefined;
}

/** Database names we create or drop: identifiers we can quote without escaping games. */
export const databaseNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_]{1,64}$/, 'database name must be 1-64 letters, digits or underscores');

const mysqlUrlSchema = z
  .url({ protocol: /^(mysql|mariadb)$/, error: 'expected mysql://user:password@host:port/database' })
  .transform((text, ctx) => {
    const url = new URL(text);
    const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
    if (database !== '' && !databaseNameSchema.safeParse(database).success) {
      ctx.addIssue({ code: 'custom', message: `invalid database name "${database}" in URL` });
      return z.NEVER;
    }
    const port = url.port === '' ? 3306 : Number(url.port);
    return {
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port,
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      database: database === '' ? undefined : database,
    };
  });

/** Parses mysql://user:pass@host:port/db (mariadb:// accepted too); throws ConfigError. */
export function parseMysqlUrl(url: string): MysqlUrl {
  const parsed = mysqlUrlSchema.safeParse(url);
  if (!parsed.success) {
    const reason = parsed.error.issues.map((i) => i.message).join('; ');
    throw new ConfigError(`invalid MySQL URL "${redactUrl(url)}": ${reason}`, { cause: parsed.error });
  }
  return parsed.data;
}

/** The URL with its password replaced, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:@/]*:)[^@/]*@/i, '$1***@');
}

function connOf(target: string | MysqlConnOptions): MysqlConnOptions & { database?: string | undefined } {
  return typeof target === 'string' ? parseMysqlUrl(target) : target;
}

/**
 * A mysql2/promise pool on `database` (or the URL's database when omitted) with the adapter's
 * type options: DECIMAL and DATETIME come back as exact strings.
 */
export function openPool(
  target: string | MysqlConnOptions,
  database?: string,
  options: {
    connectionLimit?: number;
    /**
     * mysql2 captures a stack trace on every query (for errors that show the caller); false
     * saves that CPU where errors need no call site, as in a load generator.
     */
    trace?: boolean;
  } = {},
): Pool {
  const conn = connOf(target);
  const db = database ?? conn.database;
  if (db !== undefined) databaseNameSchema.parse(db);
  const poolOptions: PoolOptions = {
    host: conn.host,
    port: conn.port,
    user: conn.user,
    password: conn.password,
    ...(db === undefined ? {} : { database: db }),
    connectionLimit: options.connectionLimit ?? 8,
    charset: 'utf8mb4',
    ...MYSQL_TYPE_OPTIONS,
    ...(options.trace === undefined ? {} : { trace: options.trace }),
  };
  return mysql.createPool(poolOptions);
}

/** The bank's DDL as single statements, comments removed. */
export function schemaStatements(sql: string = readSchemaSql()): string[] {
  return sql
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n')
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/**
 * schema.sql sits next to this module in the source tree; the compiled module lives in
 * dist/examples/bank, which has no copy, so fall back to the source location.
 */
function readSchemaSql(): string {
  const candidates = [
    new URL('./schema.sql', import.meta.url),
    new URL('../../../examples/bank/schema.sql', import.meta.url),
  ].map((u) => fileURLToPath(u));
  const found = candidates.find((p) => existsSync(p));
  if (found === undefined) {
    throw new AdapterError(
      'BANK_SCHEMA_MISSING',
      `schema.sql not found (looked in ${candidates.join(', ')})`,
    );
  }
  return readFileSync(found, 'utf8');
}

async function withServerConnection<T>(
  conn: MysqlConnOptions,
  fn: (c: mysql.Connection) => Promise<T>,
): Promise<T> {
  let c: mysql.Connection;
  try {
    c = await mysql.createConnection({
      host: conn.host,
      port: conn.port,
      user: conn.user,
      password: conn.password,
      charset: 'utf8mb4',
      ...MYSQL_TYPE_OPTIONS,
    });
  } catch (cause) {
    throw new AdapterError('BANK_DB_UNREACHABLE', `cannot connect to ${conn.host}:${conn.port}`, {
      cause,
      hint: 'is MariaDB running? `bash scripts/legacy-db.sh up` starts the project instance',
    });
  }
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Creates `database` with the 13 bank tables. Fails if it exists unless dropExisting. */
export async function createBankDatabase(
  conn: MysqlConnOptions,
  database: string,
  opts: { dropExisting?: boolean } = {},
): Promise<void> {
  const name = databaseNameSchema.parse(database);
  const statements = schemaStatements();
  await withServerConnection(conn, async (c) => {
    if (opts.dropExisting) await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
    try {
      await c.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
    } catch (cause) {
      throw new AdapterError('BANK_DB_CREATE_FAILED', `cannot create database ${name}`, {
        cause,
        hint: 'pass dropExisting to replace an existing database',
      });
    }
    await c.query(`USE \`${name}\``);
    for (const statement of statements) {
      try {
        await c.query(statement);
      } catch (cause) {
        throw new AdapterError('BANK_SCHEMA_FAILED', `schema statement failed: ${statement.slice(0, 80)}…`, {
          cause,
        });
      }
    }
  });
}

export async function dropDatabase(conn: MysqlConnOptions, database: string): Promise<void> {
  const name = databaseNameSchema.parse(database);
  await withServerConnection(conn, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
  });
}

/** Runs a query and parses every row with `schema`: rows from the legacy database are checked, not cast. */
export async function queryRows<S extends z.ZodType>(
  conn: Pool | PoolConnection,
  schema: S,
  sql: string,
  params: unknown[],
): Promise<z.output<S>[]> {
  const [rows] = await conn.query<RowDataPacket[]>(sql, params);
  return rows.map((r) => schema.parse(r));
}
