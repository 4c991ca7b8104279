import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import mysql from 'mysql2/promise';
import { afterAll, describe, expect, it } from 'vitest';
import { MysqlBinlogSource } from '../../connectors/binlog/source.js';
import { readCatalog } from '../../connectors/catalog/index.js';
import type { ChangeEvent, Row, SourceTransaction } from '../../connectors/change-event.js';
import { openLegacyDb } from '../../connectors/legacy/index.js';
import { mapTransaction } from '../../connectors/mapping/mapper.js';
import { PgoutputSource } from '../../connectors/pgoutput/source.js';
import { renderDefinitionWithSummary } from '../../definition/init/render.js';
import type { Migration } from '../../definition/migration.js';
import { silentLogger } from '../../lib/logger.js';
import { REPO_INDEX, removeTempDirs, tempDir } from '../support/typecheck.js';
import { GAPS_MYSQL_CASCADES, GAPS_MYSQL_SCHEMA, GAPS_PG_SCHEMA } from './support/init-gaps-schema.js';
import { dropPgState, LEGACY_PG, pgQuery, pgReachable } from './support/postgres.js';

/**
 * What change-data-capture really delivers for the two things `init` must not get wrong, checked
 * on the project's MariaDB 10.11 (binlog) and PostgreSQL 15 (pgoutput) through the adapter's own
 * sources, with the definition `init` writes translating every change:
 * - generated columns: PostgreSQL streams rows without them (so `init` leaves them out of the row
 *   schema), MariaDB's ROW binlog carries STORED and VIRTUAL ones (so `init` keeps them); either
 *   way no change is dead-lettered;
 * - foreign-key actions: MariaDB writes no row event for what ON DELETE SET NULL / CASCADE and
 *   ON UPDATE CASCADE change (the read models diverge; `init` warns), PostgreSQL's logical
 *   decoding streams those changes in the parent's transaction.
 */

const MYSQL = {
  host: '127.0.0.1',
  port: Number(process.env.CQRS_LEGACY_DB_PORT ?? 3307),
  user: 'cqrs',
  password: 'cqrs',
};
const suffix = `${process.pid}_${Date.now().toString(36)}`;
const DB = `init_gaps_${suffix}`;

/** The writes, one transaction each; the comments say what the engine cascades. */
const WRITES = [
  `UPDATE film SET length = 120, title = 'Academy Dinosaur II' WHERE film_id = 1`,
  `INSERT INTO film (film_id, title, length) VALUES (3, 'Adaptation Holes', 50)`,
  // payment 2: rental_id 2 → NULL (ON DELETE SET NULL)
  `DELETE FROM rental WHERE rental_id = 2`,
  // film_category (1,1) → (1,11) and (2,1) → (2,11) (ON UPDATE CASCADE)
  `UPDATE category SET category_id = 11 WHERE category_id = 1`,
  // film_category (2,11) and (2,2) deleted (ON DELETE CASCADE)
  `DELETE FROM film WHERE film_id = 2`,
];

const KEYS: Record<string, string[]> = {
  category: ['category_id'],
  film: ['film_id'],
  film_category: ['film_id', 'category_id'],
  payment: ['payment_id'],
  rental: ['rental_id'],
};
const keyOf = (table: string, row: Row) => `${table}:${(KEYS[table] ?? []).map((k) => row[k]).join(',')}`;

afterAll(removeTempDirs);

async function waitFor(what: string, done: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `init`'s definition for the database, loaded as `run` would load it. */
async function initMigration(url: string): Promise<{ migration: Migration; cascades: string[] }> {
  const summary = renderDefinitionWithSummary(await readCatalog(url), { importFrom: REPO_INDEX });
  const dir = tempDir('cqrs-init-gaps-');
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  const file = join(dir, 'migration.ts');
  writeFileSync(file, summary.text);
  const migration = ((await import(pathToFileURL(file).href)) as { default: Migration }).default;
  return { migration, cascades: summary.cascades };
}

/** The tables' rows as a consumer applying the delivered changes would hold them. */
function image(txs: readonly SourceTransaction[]): Map<string, Row> {
  const rows = new Map<string, Row>();
  for (const e of txs.flatMap((t) => t.events)) {
    if (e.before !== null) rows.delete(keyOf(e.source.table, e.before));
    if (e.after !== null) rows.set(keyOf(e.source.table, e.after), e.after);
  }
  return rows;
}

/** The same rows read from the legacy database, in the CDC representation. */
async function legacyImage(url: string): Promise<Map<string, Row>> {
  const db = openLegacyDb(url);
  try {
    const rows = new Map<string, Row>();
    for (const table of Object.keys(KEYS))
      for (const row of await db.query(`SELECT * FROM ${table}`))
        rows.set(keyOf(table, row as Row), row as Row);
    return rows;
  } finally {
    await db.close();
  }
}

const ops = (t: SourceTransaction) => t.events.map((e: ChangeEvent) => `${e.source.table}:${e.op}`);

/** Every delivered change (snapshot and stream) translates: nothing would be dead-lettered. */
function expectNoDeadLetters(txs: readonly SourceTransaction[], migration: Migration): void {
  for (const t of txs) expect(mapTransaction(t, migration.rules).deadLetters, t.id).toEqual([]);
}

const myUp = await mysql
  .createConnection(MYSQL)
  .then(async (c) => {
    await c.end();
    return true;
  })
  .catch(() => false);
const pgUp = await pgReachable();

describe.skipIf(!myUp)('MariaDB binlog: generated columns and foreign-key actions', () => {
  const url = `mysql://${MYSQL.user}:${MYSQL.password}@${MYSQL.host}:${MYSQL.port}/${DB}`;
  let admin: mysql.Connection | undefined;
  afterAll(async () => {
    await admin?.query(`DROP DATABASE IF EXISTS \`${DB}\``);
    await admin?.end();
  });

  it('carries STORED and VIRTUAL generated columns, and no row event for cascaded changes', async () => {
    admin = await mysql.createConnection(MYSQL);
    await admin.query(`CREATE DATABASE \`${DB}\``);
    await admin.query(`USE \`${DB}\``);
    for (const sql of GAPS_MYSQL_SCHEMA) await admin.query(sql);
    const { migration, cascades } = await initMigration(url);
    expect(cascades).toEqual(GAPS_MYSQL_CASCADES);

    const txs: SourceTransaction[] = [];
    const source = new MysqlBinlogSource(
      { ...MYSQL, database: DB, serverId: 60_000 + Math.floor(Math.random() * 20_000), name: 'gaps' },
      { logger: silentLogger },
    );
    try {
      await source.start(null, async (t) => {
        txs.push(t);
      });
      for (const sql of WRITES) await admin.query(sql);
      await waitFor('the streamed writes', () => txs.filter((t) => !t.snapshot).length >= WRITES.length);
      // Past the last write, nothing more comes (a late cascade event would show up here).
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      await source.stop();
    }
    const streamed = txs.filter((t) => !t.snapshot);

    // One row event per statement, on the statement's own table: nothing for payment or film_category.
    expect(streamed.map(ops)).toEqual([['film:u'], ['film:c'], ['rental:d'], ['category:u'], ['film:d']]);
    // ... although the engine did change them.
    const legacy = await legacyImage(url);
    expect(legacy.get('payment:2')).toEqual({ payment_id: 2, rental_id: null, amount: '0.99' });
    expect([...legacy.keys()].filter((k) => k.startsWith('film_category:'))).toEqual(['film_category:1,11']);

    // Generated columns: both STORED and VIRTUAL values are in the before and after images.
    const update = streamed[0]?.events[0];
    expect(update?.before).toMatchObject({ length_hours: '1.43', title_upper: 'ACADEMY DINOSAUR' });
    expect(update?.after).toMatchObject({ length_hours: '2.00', title_upper: 'ACADEMY DINOSAUR II' });
    expectNoDeadLetters(txs, migration);

    // So a consumer's image diverges from the database exactly where the engine cascaded.
    const cdc = image(txs);
    const differs = [...new Set([...cdc.keys(), ...legacy.keys()])]
      .filter((k) => JSON.stringify(cdc.get(k)) !== JSON.stringify(legacy.get(k)))
      .sort();
    expect(differs).toEqual([
      'film_category:1,1', // still there; the database has (1,11)
      'film_category:1,11',
      'film_category:2,1', // deleted with film 2 (after becoming (2,11)), still in the image
      'film_category:2,2',
      'payment:2', // rental_id still 2
    ]);
    expect(cdc.get('payment:2')).toMatchObject({ rental_id: 2 });
  });
});

describe.skipIf(!pgUp)('PostgreSQL pgoutput: generated columns and foreign-key actions', () => {
  const slotName = `t_gaps_${suffix}`.toLowerCase();
  afterAll(async () => {
    await dropPgState(DB, [slotName]);
  });

  it('streams rows without the generated column, and the cascaded changes in the same transaction', async () => {
    await pgQuery('postgres', `CREATE DATABASE "${DB}"`);
    await pgQuery(DB, ...GAPS_PG_SCHEMA);
    // As capture requires (README; the source's preflight): full before images.
    await pgQuery(DB, ...Object.keys(KEYS).map((t) => `ALTER TABLE ${t} REPLICA IDENTITY FULL`));
    const url = `postgres://${LEGACY_PG.user}:${LEGACY_PG.password}@${LEGACY_PG.host}:${LEGACY_PG.port}/${DB}`;
    const { migration, cascades } = await initMigration(url);
    expect(cascades).toEqual([]);

    const txs: SourceTransaction[] = [];
    const source = new PgoutputSource({ ...LEGACY_PG, database: DB, slotName }, { logger: silentLogger });
    try {
      await source.start(null, async (t) => {
        txs.push(t);
      });
      for (const sql of WRITES) await pgQuery(DB, sql);
      await waitFor('the streamed writes', () => txs.filter((t) => !t.snapshot).length >= WRITES.length);
    } finally {
      await source.stop();
    }
    const streamed = txs.filter((t) => !t.snapshot);

    // The statement's own change first, then the rows the foreign-key actions changed.
    const sortedTail = (t: SourceTransaction) => [ops(t)[0], ...ops(t).slice(1).sort()];
    expect(streamed.map(sortedTail)).toEqual([
      ['film:u'],
      ['film:c'],
      ['rental:d', 'payment:u'],
      ['category:u', 'film_category:u', 'film_category:u'],
      ['film:d', 'film_category:d', 'film_category:d'],
    ]);

    // Streamed rows lack the generated column (the snapshot's SELECT * has it: both must parse).
    const update = streamed[0]?.events[0];
    expect(update?.after).toEqual({ film_id: 1, title: 'Academy Dinosaur II', length: 120 });
    // Translated without a dead letter, to the state the legacy read gives.
    expectNoDeadLetters(txs, migration);
    const legacy = await legacyImage(url);
    const rule = migration.ruleOf('film');
    expect(rule?.parse(update?.after as Row)).toEqual(rule?.parse(legacy.get('film:1') as Row));

    // A consumer's image equals the database, generated column aside.
    const drop = (rows: Map<string, Row>) =>
      new Map([...rows].map(([k, { length_hours: _omitted, ...rest }]) => [k, rest]));
    expect(drop(image(txs))).toEqual(drop(legacy));
  });
});
