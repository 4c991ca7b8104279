import { join } from 'node:path';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BinlogSourceConfigInput } from '../../connectors/binlog/config.js';
import { MysqlBinlogSource } from '../../connectors/binlog/source.js';
import { SqliteEventStore } from '../../eventstore/sqlite.js';
import { openReadModelDb } from '../../projectors/stores/sqlite.js';
import { itemsMigration } from './support/items.js';
import {
  captureToBinlogEnd,
  expectItemsEqualLegacy,
  interruptSnapshot,
  itemsDatabase,
  MARIADB,
  projectItems,
  storeSink,
} from './support/items-harness.js';

/**
 * The initial snapshot survives interruptions without re-capturing what it already stored
 * (issue 11, item 3), and a snapshot taken again from scratch removes what the source deleted
 * in the gap (item 10). Real MariaDB, real event store and read models.
 */
const items = itemsDatabase('t_snapres');
const { name: db, dir } = items;
const migration = itemsMigration();
let nextServerId = 60_000 + Math.floor(Math.random() * 20_000) * 10;

function config(extra: Partial<BinlogSourceConfigInput> = {}): BinlogSourceConfigInput {
  return { ...MARIADB, database: db, serverId: nextServerId++, tables: ['items'], ...extra };
}

async function fill(from: number, to: number): Promise<void> {
  const values = [];
  for (let id = from; id <= to; id++) values.push([id, `n${id}`, id % 97]);
  await items.admin.query('INSERT INTO items (id, name, qty) VALUES ?', [values]);
}

/** Inserts, updates and deletes on their own connection until stopped. */
function writer(firstNewId: number) {
  let running = true;
  let next = firstNewId;
  let writes = 0;
  const done = (async () => {
    const c = await mysql.createConnection({ ...MARIADB, database: db });
    try {
      while (running) {
        const pick = 1 + Math.floor(Math.random() * (next - 1));
        const r = writes % 3;
        if (r === 0) await c.query('INSERT INTO items VALUES (?, ?, ?)', [next++, `w${writes}`, writes % 50]);
        else if (r === 1)
          await c.query('UPDATE items SET qty = qty + 1, name = ? WHERE id = ?', [`u${writes}`, pick]);
        else await c.query('DELETE FROM items WHERE id = ?', [pick]);
        writes++;
        await new Promise((res) => setTimeout(res, 2));
      }
    } finally {
      await c.end();
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      return writes;
    },
  };
}

/** Runs a source from the stored offset until it has delivered everything the binlog holds now. */
function catchUp(store: SqliteEventStore): Promise<void> {
  return captureToBinlogEnd(items.admin, new MysqlBinlogSource(config()), store, migration);
}

function count(store: SqliteEventStore, where: string): number {
  const raw = new Database(store.path, { readonly: true });
  try {
    return (raw.prepare(`SELECT COUNT(*) AS n FROM events WHERE ${where}`).get() as { n: number }).n;
  } finally {
    raw.close();
  }
}

beforeAll(() => items.create());
afterAll(() => items.drop());

describe('resumable initial snapshot (MariaDB)', () => {
  it('goes on after the last stored chunk under writes: no second copy, every key equal to legacy', async () => {
    await fill(1, 3000);
    const store = new SqliteEventStore(join(dir, 'resume-events.db'));
    const readDb = openReadModelDb(join(dir, 'resume-read.db'));
    const load = writer(3001);
    try {
      // Six crashes, each after 4 chunks of 100 rows: 24 of the 30 chunks, then the rest.
      for (let i = 0; i < 6; i++) {
        const stored = await interruptSnapshot(
          () => new MysqlBinlogSource(config({ snapshotChunkRows: 100 })),
          store,
          migration,
          4,
        );
        expect(stored).toBe(4);
        expect(await store.loadOffset('legacy')).toMatchObject({ phase: 'snapshot', chunk: 4 * (i + 1) - 1 });
      }
      await catchUp(store);
    } finally {
      const writes = await load.stop();
      expect(writes).toBeGreaterThan(0);
    }
    await catchUp(store);
    expect(await store.loadOffset('legacy')).toMatchObject({ phase: 'stream' });
    const rows = await expectItemsEqualLegacy(
      items.admin,
      'items',
      await projectItems(store, readDb, migration),
    );
    const snapshotEvents = count(store, 'snapshot = 1');
    // Restarted from the first row each time, the snapshot would have stored most rows twice or
    // more. Counted per key, not against the final row count: rows the writer deleted after they
    // were read leave their snapshot events behind, as many as the machine's pace allows.
    const copiedTwice = count(
      store,
      'snapshot = 1 AND stream_id IN (SELECT stream_id FROM events WHERE snapshot = 1 GROUP BY stream_id HAVING COUNT(*) > 1)',
    );
    expect(copiedTwice).toBe(0);
    expect(snapshotEvents).toBeGreaterThan(rows / 2);
    readDb.close();
    await store.close();
  });

  it('removes rows deleted in a purged gap when the snapshot is taken again from scratch', async () => {
    await items.admin.query('DELETE FROM items');
    await fill(1, 250);
    const store = new SqliteEventStore(join(dir, 'sweep-events.db'));
    const readDb = openReadModelDb(join(dir, 'sweep-read.db'));
    await catchUp(store);
    expect((await projectItems(store, readDb, migration)).size).toBe(250);

    // Changes made while nothing reads the binlog, and then the binlog position is gone: a
    // fresh snapshot (snapshotMode when_needed) is all that can bring them.
    await items.admin.query('DELETE FROM items WHERE id % 10 = 0 OR id > 240');
    await items.admin.query("UPDATE items SET name = 'changed' WHERE id = 7");
    await fill(300, 305);
    const lost = { phase: 'stream', snapshotCompleted: true, file: 'purged-bin.000001', pos: 4, gtid: null };
    const source = new MysqlBinlogSource(config({ snapshotMode: 'when_needed', snapshotChunkRows: 40 }));
    await source.start(lost, storeSink(store, migration, source.name));
    await source.stop();

    const view = await projectItems(store, readDb, migration);
    const rows = await expectItemsEqualLegacy(items.admin, 'items', view);
    expect(rows).toBe(250 - 25 - 9 + 6);
    expect(view.has('10')).toBe(false);
    expect(count(store, "type = 'ItemRemoved' AND snapshot = 1")).toBe(25 + 9);
    readDb.close();
    await store.close();
  });
});
