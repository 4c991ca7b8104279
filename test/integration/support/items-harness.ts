import type Database from 'better-sqlite3';
import type mysql from 'mysql2/promise';
import { expect } from 'vitest';
import type { SourceTransaction } from '../../../connectors/change-event.js';
import { mapTransaction } from '../../../connectors/mapping/mapper.js';
import type { ChangeSource } from '../../../connectors/ports.js';
import type { Migration } from '../../../definition/migration.js';
import type { SqliteEventStore } from '../../../eventstore/sqlite.js';
import { ProjectionRunner } from '../../../projectors/runner.js';
import { SqliteReadModels } from '../../../projectors/stores/sqlite-read-models.js';

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
  admin: mysql.Connection,
  table: string,
  view: Map<string, unknown>,
): Promise<number> {
  const [rows] = await admin.query(`SELECT id, name, qty FROM ${table} ORDER BY id`);
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
