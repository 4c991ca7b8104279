import type Database from 'better-sqlite3';
import type { StoredEvent } from '../../eventstore/ports.js';
import type { SqliteReadModels } from '../../projectors/stores/sqlite-read-models.js';

let position = 0;

/**
 * A stored create event of `table`'s row `state`, as the mapper and the event store would
 * write it: positions and source orders increase with each call, so events apply in call order.
 */
export function storedCreate(type: string, table: string, state: Record<string, unknown>): StoredEvent {
  position++;
  return {
    position,
    version: 1,
    recordedAt: '2024-01-01T00:00:00Z',
    streamId: `${table}-x`,
    streamType: table,
    type,
    data: { state, changes: {} },
    metadata: {
      op: 'c',
      table,
      sourcePosition: `f:${position}:0`,
      sourceOrder: String(position).padStart(10, '0'),
      sourceTxId: `tx${position}`,
      sourceTsMs: 0,
      snapshot: false,
    },
  };
}

/** The bank's category row as a stored event (its merchant-category read model joins it). */
export const category = (categoryId: number, name: string) =>
  storedCreate('CategoryUpserted', 'categories', {
    categoryId,
    code: name.toLowerCase(),
    name,
    parentId: null,
  });

/** A bank merchant of `categoryId` as a stored event. */
export const merchant = (merchantId: number, categoryId: number) =>
  storedCreate('MerchantUpserted', 'merchants', {
    merchantId,
    name: `M${merchantId}`,
    categoryId,
    mcc: '5812',
    city: 'X',
    country: 'DE',
  });

/** One batch as the projection runner drives the embedded store: applied, then flushed, in one transaction. */
export function applyBatch(
  store: SqliteReadModels,
  db: Database.Database,
  events: readonly StoredEvent[],
): void {
  db.transaction(() => {
    for (const e of events) if (store.handles.has(e.type)) store.apply(db, e);
    store.flush(db);
  })();
}
