import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resnapshotTable, showSchemaChanges } from '../../cli/operations.js';
import { type EmbeddedPipeline, startEmbeddedPipeline } from '../../cli/pipeline.js';
import { type Config, loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { ITEMS_DDL, itemsMigration, pgItemsDatabase } from './support/items.js';
import { dropPgState, pgQuery, pgReachable } from './support/postgres.js';

/**
 * A TRUNCATE of a captured table on a real server, on both embedded readers. The change log
 * carries no row deletes for it (Debezium skips it too), so the read models keep the rows it
 * removed: it must be recorded where `schema-changes` shows it with the way out, and
 * `resnapshot` must then bring the read model back to the table.
 */
const migration = itemsMigration();
const dir = mkdtempSync(join(tmpdir(), 'cqrs-truncate-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function viewKeys(pipeline: EmbeddedPipeline): string[] {
  const rows = pipeline.readDb.prepare('SELECT key FROM rm_doc__item ORDER BY key').pluck().all();
  return rows as string[];
}

async function start(config: Config): Promise<EmbeddedPipeline> {
  return startEmbeddedPipeline({ config, migration, logger: silentLogger });
}

/**
 * Captures items 1-3, truncates the table and inserts 4 in `truncate` (one SQL text per
 * statement), checks the record and the listing, then re-captures the table.
 */
async function truncateThenResnapshot(config: Config, truncate: () => Promise<void>, ddl: RegExp) {
  let pipeline = await start(config);
  try {
    expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
    expect(viewKeys(pipeline)).toEqual(['1', '2', '3']);
    await truncate();
    await pipeline.waitForCatchUp(60_000);
    await expect.poll(() => viewKeys(pipeline), { timeout: 30_000 }).toContain('4');
    // What CDC cannot say: the truncated rows are still there.
    expect(viewKeys(pipeline)).toEqual(['1', '2', '3', '4']);
    const changes = pipeline.eventStore.listSchemaChanges();
    expect(changes.map((c) => [c.table, c.breaks])).toEqual([['items', null]]);
    expect(changes[0]?.ddl).toMatch(ddl);
  } finally {
    await pipeline.stop();
  }

  const listed: string[] = [];
  expect(showSchemaChanges(config, { json: false }, (l) => listed.push(l))).toBe(0);
  expect(listed.join('\n')).toMatch(/items at .*TRUNCATE.*resnapshot --table items --force/);

  const out: string[] = [];
  const options = { table: 'items', force: true };
  expect(await resnapshotTable(config, migration, options, silentLogger, (l) => out.push(l))).toBe(0);
  expect(out.join('\n')).toMatch(/3 aggregates removed/);

  pipeline = await start(config);
  try {
    expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
    expect(viewKeys(pipeline)).toEqual(['4']);
  } finally {
    await pipeline.stop();
  }
}

describe('TRUNCATE of a captured table (MariaDB binlog)', () => {
  const db = `t_trunc_${randomBytes(4).toString('hex')}`;
  const config = loadConfig({
    env: {
      CQRS_LEGACY_URL: `mysql://cqrs:cqrs@127.0.0.1:3307/${db}`,
      CQRS_DATA_DIR: join(dir, 'mariadb'),
      CQRS_CDC_SERVER_ID: String(80_001 + Math.floor(Math.random() * 20_000) * 10),
    },
  });
  let admin: mysql.Connection;

  beforeAll(async () => {
    admin = await mysql.createConnection({ host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' });
    await admin.query(`CREATE DATABASE ${db}`);
    await admin.query(`USE ${db}`);
    await admin.query(ITEMS_DDL);
    await admin.query("INSERT INTO items VALUES (1, 'one', 1), (2, 'two', 2), (3, 'three', 3)");
  });

  afterAll(async () => {
    await admin?.query(`DROP DATABASE IF EXISTS ${db}`);
    await admin?.end();
  });

  it('records it with the way out, and resnapshot removes the rows it emptied', async () => {
    await truncateThenResnapshot(
      config,
      async () => {
        await admin.query('TRUNCATE TABLE items');
        await admin.query("INSERT INTO items VALUES (4, 'four', 4)");
      },
      /^TRUNCATE TABLE items$/,
    );
  });
});

const pgUp = await pgReachable();

describe.skipIf(!pgUp)('TRUNCATE of a captured table (PostgreSQL pgoutput)', () => {
  const suffix = randomBytes(4).toString('hex');
  const database = `t_trunc_${suffix}`;
  const name = `trunc_${suffix}`;
  let config: Config;

  beforeAll(async () => {
    config = await pgItemsDatabase(database, "(1, 'one', 1), (2, 'two', 2), (3, 'three', 3)", {
      dataDir: join(dir, 'postgres'),
      name,
    });
  });

  afterAll(async () => {
    await dropPgState(database, [`cqrs_${name}`]);
  });

  it('records it with the way out, alone in its transaction, and resnapshot removes the rows it emptied', async () => {
    await truncateThenResnapshot(
      config,
      // Separate transactions: the TRUNCATE's own changes no row, and is recorded all the same.
      async () => {
        await pgQuery(database, 'TRUNCATE items', "INSERT INTO items VALUES (4, 'four', 4)");
      },
      /^TRUNCATE public\.items$/,
    );
  });
});
