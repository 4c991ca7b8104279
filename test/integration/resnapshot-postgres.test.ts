import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resnapshotTable } from '../../cli/operations.js';
import { startEmbeddedPipeline } from '../../cli/pipeline.js';
import { type OpenedLegacyDb, openLegacyDb } from '../../connectors/legacy/index.js';
import { SqliteEventStore } from '../../eventstore/sqlite.js';
import { loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { openReadModelDb } from '../../projectors/stores/sqlite.js';
import { ITEMS_DDL, itemsMigration } from './support/items.js';
import { expectItemsEqualLegacy, projectItems } from './support/items-harness.js';
import { dropPgState, LEGACY_PG, pgQuery, pgReachable } from './support/postgres.js';

/**
 * `resnapshot` on PostgreSQL (connectors/resnapshot-delivery.ts through the pgoutput reader's
 * snapshotTable): rows changed and deleted behind the pipeline's back are healed by a
 * resnapshot of some keys (--where) and of the whole table, which also removes the deleted row;
 * the live source's resume point is left alone.
 */
const pgUp = await pgReachable();
const database = `h4_rsnap_${process.pid}`;
const url = `postgres://${LEGACY_PG.user}:${LEGACY_PG.password}@${LEGACY_PG.host}:${LEGACY_PG.port}/${database}`;
const dir = mkdtempSync(join(tmpdir(), 'cqrs-h4-rsnap-'));
const dataDir = join(dir, 'data');
const migration = itemsMigration();
const config = loadConfig({
  env: {},
  overrides: { legacy: { url }, cdc: { name: database }, dataDir, projector: { pollIntervalMs: 20 } },
});
let legacy: OpenedLegacyDb;

async function resnapshot(where: string | undefined, force: boolean) {
  let out = '';
  const code = await resnapshotTable(
    config,
    migration,
    { config: undefined, definition: undefined, table: 'items', where, force },
    silentLogger,
    (line) => {
      out += `${line}\n`;
    },
  );
  return { code, out };
}

async function project(name: string) {
  const store = new SqliteEventStore(join(dataDir, 'events.db'));
  const readDb = openReadModelDb(join(dir, `${name}.db`));
  try {
    return await projectItems(store, readDb, migration);
  } finally {
    readDb.close();
    await store.close();
  }
}

beforeAll(async () => {
  if (!pgUp) return;
  await pgQuery('postgres', `DROP DATABASE IF EXISTS ${database}`, `CREATE DATABASE ${database}`);
  await pgQuery(
    database,
    ITEMS_DDL,
    'ALTER TABLE items REPLICA IDENTITY FULL',
    "INSERT INTO items VALUES (1, 'one', 1), (2, 'two', 2), (3, 'three', 3), (4, 'four', 4)",
  );
  legacy = openLegacyDb(url);
}, 60_000);

afterAll(async () => {
  await legacy?.close();
  if (pgUp) await dropPgState(database, [`cqrs_${database}`]).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!pgUp)('resnapshot on PostgreSQL', () => {
  it('heals rows changed and deleted behind the pipeline, by key and by whole table', async () => {
    const pipeline = await startEmbeddedPipeline({ config, migration, logger: silentLogger });
    try {
      expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
    } finally {
      await pipeline.stop();
    }
    await expectItemsEqualLegacy(legacy, 'items', await project('read-1'));
    const store = new SqliteEventStore(join(dataDir, 'events.db'));
    const offset = await store.loadOffset(database);
    await store.close();
    expect(offset).toMatchObject({ phase: 'stream' });

    // Behind the pipeline's back: nothing reads the slot until the next run.
    await pgQuery(
      database,
      'UPDATE items SET qty = 99 WHERE id IN (1, 3)',
      'DELETE FROM items WHERE id = 4',
      "INSERT INTO items VALUES (9, 'nine', 9)",
    );

    expect((await resnapshot('id = 1', false)).out).toMatch(/would re-capture 1 rows/);
    const some = await resnapshot('id = 1', true);
    expect(some.out).toMatch(/re-captured 1 rows .* 0 aggregates removed/);
    let view = await project('read-2');
    expect(view.get('1')).toEqual({ name: 'one', qty: 99 });
    expect(view.get('3')).toEqual({ name: 'three', qty: 3 }); // not in --where
    expect(view.get('4')).toEqual({ name: 'four', qty: 4 }); // a --where read removes nothing

    const whole = await resnapshot(undefined, true);
    expect(whole.out).toMatch(/re-captured 4 rows .* 1 aggregates removed/);
    view = await project('read-3');
    expect(view.has('4')).toBe(false);
    expect(view.get('9')).toEqual({ name: 'nine', qty: 9 });
    expect(await expectItemsEqualLegacy(legacy, 'items', view)).toBe(4);

    // The live source's resume point is untouched.
    const after = new SqliteEventStore(join(dataDir, 'events.db'));
    expect(await after.loadOffset(database)).toEqual(offset);
    await after.close();
  }, 300_000);
});
