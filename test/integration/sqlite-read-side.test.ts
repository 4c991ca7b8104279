import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { getMany, type ReadModels } from '../../definition/read-models.js';
import type { StoredEvent } from '../../eventstore/ports.js';
import bank from '../../examples/bank/migration.js';
import { ensureVersionRegistry, VersionRegistry } from '../../projectors/stores/read-model-versions.js';
import { openReadModelDb } from '../../projectors/stores/sqlite.js';
import { SqliteReadModels } from '../../projectors/stores/sqlite-read-models.js';
import { VersionedReadModels } from '../../projectors/stores/versioned-read-models.js';
import { applyBatch, category, merchant } from '../support/stored-events.js';

/** The embedded read models as a read-only serving connection sees them, next to the writer's. */

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('embedded read models on a read-only connection', () => {
  let dir: string;
  let writer: Database.Database;
  let reader: Database.Database;
  let store: SqliteReadModels;
  let readModels: ReadModels;
  const apply = (events: StoredEvent[]) => applyBatch(store, writer, events);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sqlite-read-side-'));
    writer = openReadModelDb(join(dir, 'read-models.db'));
    store = new SqliteReadModels(bank);
    store.migrate(writer);
    apply([category(1, 'Food'), category(2, 'Travel'), merchant(1, 1), merchant(2, 2), merchant(3, 1)]);
    reader = new Database(join(dir, 'read-models.db'), { readonly: true, fileMustExist: true });
    readModels = new SqliteReadModels(bank).readModels(reader);
  });
  afterEach(() => {
    reader.close();
    writer.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads many keys by one getMany as get reads each, in the keys order, null where there is none', async () => {
    const handle = readModels['merchant-category']!;
    expect(handle.getMany).toBeDefined();
    const keys = ['3', '404', '1', '3', '2'];
    const each = await Promise.all(keys.map((k) => handle.get(k)));
    expect(each[0]).toEqual({ merchantId: 3, categoryId: 1, category: 'Food' });
    expect(each[1]).toBeNull();
    expect(await getMany(handle, keys)).toEqual(each);
    expect(await getMany(handle, [])).toEqual([]);
    expect(await getMany(handle, ['404'])).toEqual([null]);
  });

  it('answers the reads of one event-loop turn from one snapshot, and the next turn sees later commits', async () => {
    const handle = readModels['merchant-category']!;
    await turn();
    expect(await handle.get('1')).toMatchObject({ category: 'Food' });
    apply([category(1, 'Groceries')]);
    // Same turn: the commit came after this turn's first read.
    expect(await handle.get('1')).toMatchObject({ category: 'Food' });
    expect(await getMany(handle, ['3'])).toEqual([{ merchantId: 3, categoryId: 1, category: 'Food' }]);
    await turn();
    expect(await handle.get('1')).toMatchObject({ category: 'Groceries' });
    expect(await getMany(handle, ['3', '1'])).toEqual([
      { merchantId: 3, categoryId: 1, category: 'Groceries' },
      { merchantId: 1, categoryId: 1, category: 'Groceries' },
    ]);
    // The snapshot is let go at the turn's end: the writer can checkpoint the whole log.
    await turn();
    expect(reader.inTransaction).toBe(false);
    const [checkpoint] = writer.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
    expect(checkpoint?.busy).toBe(0);
  });

  it('leaves a writable connection without a snapshot: its reads see its own writes at once', async () => {
    const handle = new SqliteReadModels(bank).readModels(writer)['merchant-category']!;
    expect(await handle.get('2')).toMatchObject({ category: 'Travel' });
    expect(writer.inTransaction).toBe(false);
    apply([category(2, 'Trips')]);
    expect(await handle.get('2')).toMatchObject({ category: 'Trips' });
  });

  it('serves a switched version at once, even to a turn whose snapshot began before the switch', async () => {
    const model = 'merchant-category';
    ensureVersionRegistry(writer);
    const v2 = new SqliteReadModels(bank, { readModel: model, version: 2 });
    v2.migrate(writer);
    applyBatch(v2, writer, [category(1, 'Version two'), merchant(1, 1)]);
    const registry = new VersionRegistry(writer);
    registry.create(model, { fromPosition: null, toPosition: null });
    registry.markReady(model, 2, 0);
    const versions = new VersionedReadModels(bank, reader);
    const handle = versions.readModels[model]!;
    await turn();
    expect(await handle.get('1')).toMatchObject({ category: 'Food' });
    // In the same turn, as the admin route does it: the switch on the writer, then refresh.
    registry.switchTo(model, 2);
    versions.refresh();
    expect(versions.liveVersion(model)).toBe(2);
    expect(await handle.get('1')).toMatchObject({ category: 'Version two' });
  });
});
