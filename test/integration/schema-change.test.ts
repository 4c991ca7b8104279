import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redriveDeadLetters } from '../../cli/operations.js';
import { type EmbeddedPipeline, startEmbeddedPipeline } from '../../cli/pipeline.js';
import type { Migration } from '../../definition/migration.js';
import { type Config, loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { ITEMS_DDL, itemsMigration, pgItemsDatabase } from './support/items.js';
import { dropPgState, pgQuery, pgReachable } from './support/postgres.js';

/**
 * A renamed column the capture rule reads (issue 11, item 6): the embedded pipeline detects the
 * DDL in the binlog, records it, counts it, and pauses the table's capture with an alert instead
 * of rejecting every later row in silence; re-driving with the fixed rule heals the read model.
 * Real MariaDB, a real ALTER TABLE … RENAME COLUMN.
 */
const SERVER = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const db = `t_ddl_${randomBytes(4).toString('hex')}`;
const dir = mkdtempSync(join(tmpdir(), 'cqrs-ddl-'));
const config = loadConfig({
  env: {
    CQRS_LEGACY_URL: `mysql://cqrs:cqrs@127.0.0.1:3307/${db}`,
    CQRS_DATA_DIR: join(dir, 'data'),
    CQRS_CDC_SERVER_ID: String(80_000 + Math.floor(Math.random() * 20_000) * 10),
  },
});
let admin: mysql.Connection;

async function start(migration: Migration, registry = new Registry()): Promise<EmbeddedPipeline> {
  return startEmbeddedPipeline({ config, migration, logger: silentLogger, registry });
}

async function caughtUp(pipeline: EmbeddedPipeline): Promise<void> {
  expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
}

function view(pipeline: EmbeddedPipeline): Map<string, unknown> {
  const rows = pipeline.readDb.prepare('SELECT key, doc FROM rm_doc__item').all() as Array<{
    key: string;
    doc: string;
  }>;
  return new Map(rows.map((r) => [r.key, JSON.parse(r.doc)]));
}

async function legacy(column: string): Promise<Map<string, unknown>> {
  const [rows] = await admin.query(`SELECT id, ${column} AS name, qty FROM items ORDER BY id`);
  return new Map(
    (rows as Array<{ id: number; name: string; qty: number }>).map((r) => [
      String(r.id),
      { name: r.name, qty: r.qty },
    ]),
  );
}

beforeAll(async () => {
  admin = await mysql.createConnection(SERVER);
  await admin.query(`CREATE DATABASE ${db}`);
  await admin.query(`USE ${db}`);
  await admin.query(ITEMS_DDL);
  await admin.query("INSERT INTO items VALUES (1, 'one', 1), (2, 'two', 2), (3, 'three', 3)");
});

afterAll(async () => {
  await admin?.query(`DROP DATABASE IF EXISTS ${db}`);
  await admin?.end();
  rmSync(dir, { recursive: true, force: true });
});

describe('schema change on a captured table (MariaDB)', () => {
  it('pauses the table with an alert on a column rename that breaks its rule; re-drive heals it', async () => {
    const registry = new Registry();
    let pipeline = await start(itemsMigration(), registry);
    try {
      await caughtUp(pipeline);
      expect(view(pipeline)).toEqual(await legacy('name'));

      // A harmless change is recorded, and capture goes on.
      await admin.query('ALTER TABLE items ADD COLUMN note VARCHAR(10) NULL');
      await admin.query('UPDATE items SET qty = 20 WHERE id = 2');
      await caughtUp(pipeline);
      expect(view(pipeline).get('2')).toEqual({ name: 'two', qty: 20 });

      await admin.query('ALTER TABLE items RENAME COLUMN name TO title');
      await admin.query("INSERT INTO items (id, title, qty) VALUES (4, 'four', 4)");
      await admin.query("UPDATE items SET title = 'uno', qty = 10 WHERE id = 1");
      await admin.query('DELETE FROM items WHERE id = 3');
      await caughtUp(pipeline);

      const changes = pipeline.eventStore.listSchemaChanges();
      expect(changes.map((c) => [c.table, c.ddl, c.breaks === null])).toEqual([
        ['items', 'ALTER TABLE items ADD COLUMN note VARCHAR(10) NULL', true],
        ['items', 'ALTER TABLE items RENAME COLUMN name TO title', false],
      ]);
      expect(changes[1]?.columns).toEqual(['id', 'title', 'qty', 'note']);
      expect(changes[1]?.breaks).toMatch(/rejects the table's rows since the change: title|name/);
      const metrics = await registry.metrics();
      expect(metrics).toMatch(/cqrs_capture_paused_tables 1/);
      expect(metrics).toMatch(/cqrs_schema_changes_total\{table="items",breaking="true"\} 1/);
      expect(metrics).toMatch(/cqrs_schema_changes_total\{table="items",breaking="false"\} 1/);
      const letters = pipeline.eventStore.listDeadLetterStatus({ limit: 10 });
      expect(
        letters.map((l) => [l.op, l.reason.startsWith('capture of items paused by a schema change')]),
      ).toEqual([
        ['c', true],
        ['u', true],
        ['d', true],
      ]);
    } finally {
      await pipeline.stop();
    }

    // Restarted with the broken rule, the table stays paused.
    const again = new Registry();
    pipeline = await start(itemsMigration(), again);
    try {
      await admin.query('UPDATE items SET qty = 40 WHERE id = 4');
      await caughtUp(pipeline);
      expect(await again.metrics()).toMatch(/cqrs_capture_paused_tables 1/);
      expect(pipeline.eventStore.listDeadLetterStatus({ limit: 10 })).toHaveLength(4);
    } finally {
      await pipeline.stop();
    }

    // The rule is fixed to read `title`; re-driving appends the held rows in order and lifts the pause.
    const fixed = itemsMigration({ nameColumn: 'title' });
    const out: string[] = [];
    const code = redriveDeadLetters(
      config,
      fixed,
      { config: undefined, definition: undefined, force: true },
      silentLogger,
      (l) => out.push(l),
    );
    expect(out.join('\n')).toMatch(
      /4 appended, 0 skipped .* 0 still rejected[\s\S]*capture resumes for items/,
    );
    expect(code).toBe(0);

    const healed = new Registry();
    pipeline = await start(fixed, healed);
    try {
      await admin.query("INSERT INTO items (id, title, qty) VALUES (5, 'five', 5)");
      await caughtUp(pipeline);
      expect(await healed.metrics()).toMatch(/cqrs_capture_paused_tables 0/);
      expect(view(pipeline)).toEqual(await legacy('title'));
      expect(pipeline.eventStore.listSchemaChanges({ unresolvedBreaking: true })).toEqual([]);
    } finally {
      await pipeline.stop();
    }
  });
});

const pgUp = await pgReachable();

describe.skipIf(!pgUp)('schema change on a captured table (PostgreSQL)', () => {
  const suffix = randomBytes(4).toString('hex');
  const database = `t_ddl_${suffix}`;
  const name = `ddl_${suffix}`;
  let pgConfig: Config;

  beforeAll(async () => {
    pgConfig = await pgItemsDatabase(database, "(1, 'one', 1), (2, 'two', 2)", {
      dataDir: join(dir, 'pg-data'),
      name,
    });
  });

  afterAll(async () => {
    await dropPgState(database, [`cqrs_${name}`]);
  });

  it('pauses the table when a renamed column breaks its rule (Relation message); re-drive heals it', async () => {
    const registry = new Registry();
    const legacyPg = async (column: string) => {
      const rows = await pgQuery(database, `SELECT id, ${column} AS name, qty FROM items ORDER BY id`);
      return new Map(rows.map((r) => [String(r.id), { name: r.name, qty: Number(r.qty) }]));
    };
    let pipeline = await startEmbeddedPipeline({
      config: pgConfig,
      migration: itemsMigration(),
      logger: silentLogger,
      registry,
    });
    try {
      await pgQuery(database, 'UPDATE items SET qty = 20 WHERE id = 2'); // the session learns the relation
      await caughtUp(pipeline);
      await pgQuery(
        database,
        'ALTER TABLE items RENAME COLUMN name TO title',
        "INSERT INTO items (id, title, qty) VALUES (3, 'three', 3)",
        'DELETE FROM items WHERE id = 1',
      );
      await caughtUp(pipeline);
      const changes = pipeline.eventStore.listSchemaChanges();
      expect(changes).toHaveLength(1);
      expect(changes[0]).toMatchObject({ table: 'items', columns: ['id', 'title', 'qty'] });
      expect(changes[0]?.breaks).toMatch(/rejects the table's rows/);
      expect(await registry.metrics()).toMatch(/cqrs_capture_paused_tables 1/);
      expect(pipeline.eventStore.listDeadLetterStatus({ limit: 10 }).map((l) => l.op)).toEqual(['c', 'd']);
    } finally {
      await pipeline.stop();
    }
    const fixed = itemsMigration({ nameColumn: 'title' });
    const out: string[] = [];
    redriveDeadLetters(
      pgConfig,
      fixed,
      { config: undefined, definition: undefined, force: true },
      silentLogger,
      (l) => out.push(l),
    );
    expect(out.join('\n')).toMatch(
      /2 appended, 0 skipped .* 0 still rejected[\s\S]*capture resumes for items/,
    );
    pipeline = await startEmbeddedPipeline({ config: pgConfig, migration: fixed, logger: silentLogger });
    try {
      await caughtUp(pipeline);
      expect(view(pipeline)).toEqual(await legacyPg('title'));
    } finally {
      await pipeline.stop();
    }
  });
});
