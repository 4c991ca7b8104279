import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { z } from 'zod';
import { AdapterError } from '../../../index.js';
import { databaseNameSchema } from '../db.js';
import {
  BANK_TABLES,
  type BankTable,
  bankRows,
  generateOptionsSchema,
  resolveScale,
  TABLE_COLUMNS,
} from '../generate.js';

/**
 * The sample bank on PostgreSQL: creating and dropping a database with the bank schema, and
 * loading the deterministic generator's rows into it. The rows are the generator's own SQL
 * tuples, so the values are byte for byte those the MariaDB path loads.
 */

export const pgConnSchema = z.object({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(1).max(65535).default(5433),
  user: z.string().min(1).default('cqrs'),
  password: z.string().default('cqrs'),
});
export type PgConnOptions = z.output<typeof pgConnSchema>;

/**
 * Every value comes back as the server's text: NUMERIC keeps its scale and TIMESTAMP(6) its
 * microseconds (node-postgres would otherwise turn them into floats and Dates).
 */
const textTypes = { getTypeParser: () => (value: string) => value };

export function pgClient(conn: PgConnOptions, database: string): pg.Client {
  return new pg.Client({ ...conn, database: databaseNameSchema.parse(database), types: textTypes });
}

export function pgPool(conn: PgConnOptions, database: string, max = 4): pg.Pool {
  return new pg.Pool({ ...conn, database: databaseNameSchema.parse(database), types: textTypes, max });
}

async function withClient<T>(
  conn: PgConnOptions,
  database: string,
  fn: (c: pg.Client) => Promise<T>,
): Promise<T> {
  const client = pgClient(conn, database);
  try {
    await client.connect();
  } catch (cause) {
    throw new AdapterError(
      'BANK_DB_UNREACHABLE',
      `cannot connect to PostgreSQL at ${conn.host}:${conn.port}`,
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
function readPgSchemaSql(): string {
  const candidates = [
    new URL('./schema.sql', import.meta.url),
    new URL('../../../../examples/bank/postgres/schema.sql', import.meta.url),
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

/** Creates `database` (owned by the connecting role) with the 13 bank tables. */
export async function createPgBankDatabase(
  conn: PgConnOptions,
  database: string,
  opts: { dropExisting?: boolean } = {},
): Promise<void> {
  const name = databaseNameSchema.parse(database);
  await withClient(conn, 'postgres', async (c) => {
    if (opts.dropExisting) await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    try {
      await c.query(`CREATE DATABASE "${name}" ENCODING 'UTF8' TEMPLATE template0`);
    } catch (cause) {
      throw new AdapterError('BANK_DB_CREATE_FAILED', `cannot create database ${name}`, {
        cause,
        hint: 'pass dropExisting to replace an existing database',
      });
    }
  });
  await withClient(conn, name, async (c) => {
    try {
      // One simple-protocol query runs the whole script.
      await c.query(readPgSchemaSql());
    } catch (cause) {
      throw new AdapterError('BANK_SCHEMA_FAILED', `the PostgreSQL bank schema failed on ${name}`, { cause });
    }
  });
}

/** Attempts of a drop refused while a server process (an autovacuum worker) is in the database. */
const DROP_ATTEMPTS = 20;

/**
 * Drops `database`, ending its sessions; replication slots on it must be dropped first. FORCE
 * may only end sessions of roles the caller belongs to: an autovacuum worker (a superuser's
 * process) that is in the database makes it fail with 42501 until the worker is done, so that
 * refusal is tried again.
 */
export async function dropPgDatabase(conn: PgConnOptions, database: string): Promise<void> {
  const name = databaseNameSchema.parse(database);
  await withClient(conn, 'postgres', async (c) => {
    for (let attempt = 1; ; attempt++) {
      try {
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        return;
      } catch (err) {
        if ((err as { code?: unknown }).code !== '42501' || attempt >= DROP_ATTEMPTS) throw err;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  });
}

export const loadOptionsSchema = z.object({
  seed: z.union([z.number().int(), z.string().min(1)]),
  scale: generateOptionsSchema.shape.scale,
  history: generateOptionsSchema.shape.history,
  skew: generateOptionsSchema.shape.skew,
  chunkRows: z.number().int().min(1).max(20_000).default(2_000),
});
export type PgLoadOptions = z.input<typeof loadOptionsSchema>;

/** Tables whose `id` is an identity column, moved past the loaded ids so later inserts fit. */
const IDENTITY_TABLES = BANK_TABLES.filter((t) => t !== 'currencies' && t !== 'balances');

/**
 * Loads the generator's rows for `seed` and `scale` into an empty bank database, in one
 * transaction: the generator emits a table's rows interleaved with others', and the deferred
 * foreign keys are checked once at the commit. The tuples are MariaDB literals (backslash
 * escapes), which PostgreSQL reads the same way with standard_conforming_strings off.
 */
export async function loadPgBank(
  conn: PgConnOptions,
  database: string,
  options: PgLoadOptions,
): Promise<Record<BankTable, number>> {
  const opts = loadOptionsSchema.parse(options);
  const scale = resolveScale(opts.scale);
  return withClient(conn, database, async (c) => {
    const counts = Object.fromEntries(BANK_TABLES.map((t) => [t, 0])) as Record<BankTable, number>;
    const buffers = new Map<BankTable, string[]>();
    const flush = async (table: BankTable) => {
      const tuples = buffers.get(table) ?? [];
      if (tuples.length === 0) return;
      buffers.set(table, []);
      await c.query(`INSERT INTO ${table} (${TABLE_COLUMNS[table].join(',')}) VALUES ${tuples.join(',')}`);
      counts[table] += tuples.length;
    };
    const full: BankTable[] = [];
    await c.query('BEGIN');
    try {
      await c.query('SET LOCAL standard_conforming_strings = off');
      await c.query('SET LOCAL escape_string_warning = off');
      const steps = bankRows(
        opts.seed,
        scale,
        {
          row(table, tuple) {
            const buffer = buffers.get(table) ?? [];
            buffers.set(table, buffer);
            buffer.push(tuple);
            if (buffer.length === opts.chunkRows) full.push(table);
          },
        },
        { history: opts.history, skew: opts.skew },
      );
      for (const _ of steps) {
        for (let t = full.shift(); t !== undefined; t = full.shift()) await flush(t);
      }
      for (const table of BANK_TABLES) await flush(table);
      for (const table of IDENTITY_TABLES) {
        await c.query(
          `SELECT setval(pg_get_serial_sequence('${table}', 'id'), GREATEST((SELECT max(id) FROM ${table}), 1))`,
        );
      }
      await c.query('COMMIT');
    } catch (cause) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw new AdapterError('BANK_LOAD_FAILED', `loading the bank into ${database} failed`, { cause });
    }
    return counts;
  });
}
