import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import { expect } from 'vitest';
import { positionAtLeast } from '../../../connectors/binlog/server-position.js';
import type { MysqlBinlogSource } from '../../../connectors/binlog/source.js';
import type { SourceTransaction } from '../../../connectors/change-event.js';
import { mapTransaction } from '../../../connectors/mapping/mapper.js';
import type { ChangeSource } from '../../../connectors/ports.js';
import type { LegacyDb } from '../../../definition/endpoints.js';
import type { Migration } from '../../../definition/migration.js';
import type { SqliteEventStore } from '../../../eventstore/sqlite.js';
import { MYSQL_TYPE_OPTIONS } from '../../../lib/mysql-types.js';
import { ProjectionRunner } from '../../../projectors/runner.js';
import { SqliteReadModels } from '../../../projectors/stores/sqlite-read-models.js';
import { ITEMS_DDL } from './items.js';

/** The embedded pipeline's sink (map, then append with the offset), as cli/pipeline.ts wires it. */
export function storeSink(
  store: SqliteEventStore,
  migration: Migration,
  sourceName: string,
  after?: (tx: SourceTransaction) => void,
): (tx: SourceTransaction) => Promise<void> {
  return async (tx) => {
    const { events, deadLetters, sweep } = mapTransaction(tx, migration.rules);
    await store.append({
      sourceName,
      sourceTxId: tx.id,
      offset: tx.offset,
      events,
      deadLetters,
      ...(sweep === undefined ? {} : { sweep }),
    });
    after?.(tx);
  };
}

/**
 * Starts `make()`'s source from the store's offset and stops it after `chunks` snapshot chunks
 * were stored, as a crash between two chunks would. Resolves once it has stopped.
 */
export async function interruptSnapshot(
  make: () => ChangeSource,
  store: SqliteEventStore,
  migration: Migration,
  chunks: number,
): Promise<number> {
  const source = make();
  let stored = 0;
  const sink = storeSink(store, migration, source.name, (tx) => {
    if (tx.snapshot && ++stored === chunks) void source.stop();
  });
  await source.start(await store.loadOffset(source.name), sink);
  await source.stop();
  return stored;
}

/** Projects every stored event into the item view; returns the view's rows by key. */
export async function projectItems(
  store: SqliteEventStore,
  db: Database.Database,
  migration: Migration,
): Promise<Map<string, unknown>> {
  const models = new SqliteReadModels(migration);
  const runner = new ProjectionRunner({ eventStore: store, db, projections: [models], batchSize: 500 });
  await runner.catchUp();
  const rows = db.prepare('SELECT key, doc FROM rm_doc__item').all() as Array<{ key: string; doc: string }>;
  return new Map(rows.map((r) => [r.key, JSON.parse(r.doc)]));
}

/** Every key of the read model equals the legacy row, and no other key exists. */
export async function expectItemsEqualLegacy(
  admin: mysql.Connection | Pick<LegacyDb, 'query'>,
  table: string,
  view: Map<string, unknown>,
): Promise<number> {
  const sql = `SELECT id, name, qty FROM ${table} ORDER BY id`;
  const rows = 'execute' in admin ? (await admin.query(sql))[0] : await admin.query(sql);
  const legacy = new Map(
    (rows as Array<{ id: number; name: string; qty: number }>).map((r) => [
      String(r.id),
      { name: r.name, qty: r.qty },
    ]),
  );
  const wrong = [...new Set([...legacy.keys(), ...view.keys()])].filter(
    (k) => JSON.stringify(legacy.get(k) ?? null) !== JSON.stringify(view.get(k) ?? null),
  );
  expect(wrong.slice(0, 10).map((k) => ({ key: k, legacy: legacy.get(k), view: view.get(k) }))).toEqual([]);
  return legacy.size;
}

/** The project's MariaDB (scripts/legacy-db.sh), as the items tests reach it. */
export const MARIADB = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };

/**
 * A database of its own holding the empty `items` table, and a temp dir: `create` in beforeAll,
 * `drop` in afterAll. `admin` is a connection on the database once created.
 */
export function itemsDatabase(prefix: string) {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), `cqrs-${prefix}-`));
  let admin: mysql.Connection | undefined;
  return {
    name,
    dir,
    get admin(): mysql.Connection {
      if (admin === undefined) throw new Error('itemsDatabase.create() first');
      return admin;
    },
    async create(): Promise<void> {
      admin = await mysql.createConnection({ ...MARIADB, ...MYSQL_TYPE_OPTIONS });
      await admin.query(`CREATE DATABASE ${name}`);
      await admin.query(`USE ${name}`);
      await admin.query(ITEMS_DDL);
    },
    async drop(): Promise<void> {
      await admin?.query(`DROP DATABASE IF EXISTS ${name}`);
      await admin?.end();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs `source` from the store's offset until it has delivered everything the binlog holds now, then stops it. */
export async function captureToBinlogEnd(
  admin: mysql.Connection,
  source: MysqlBinlogSource,
  store: SqliteEventStore,
  migration: Migration,
): Promise<void> {
  try {
    await source.start(await store.loadOffset(source.name), storeSink(store, migration, source.name));
    const [rows] = await admin.query('SHOW MASTER STATUS');
    const end = (rows as Array<{ File: string; Position: number }>)[0];
    if (!end) throw new Error('no binlog');
    const deadline = Date.now() + 60_000;
    for (;;) {
      const seen = source.seenPosition();
      if (seen && positionAtLeast(seen, { file: end.File, pos: Number(end.Position) }) && source.idle())
        break;
      if (Date.now() > deadline) throw new Error('the source did not catch up');
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await source.stop();
  }
}
