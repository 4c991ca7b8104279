import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { NewDomainEvent } from '../../eventstore/ports.js';
import { SqliteEventStore } from '../../eventstore/sqlite.js';
import { defineMigration } from '../../index.js';
import { ProjectionRunner } from '../../projectors/runner.js';
import { openReadModelDb } from '../../projectors/stores/sqlite.js';
import { SqliteReadModels } from '../../projectors/stores/sqlite-read-models.js';
import { accountsCapture, accountsDomains, accountView } from './support/accounts-definition.js';

/**
 * A first start builds its read models in bulk through the source's initial snapshot (real
 * SQLite): while the stored offset is in its snapshot phase nothing is composed, even caught up;
 * the chunk that ends the snapshot has every view composed once, equal to a runner that composed
 * batch by batch; from then on batches compose as a live runner's do. A restart mid-snapshot goes
 * on in bulk.
 */
const dir = mkdtempSync(join(tmpdir(), 'h1_initial-build-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const migration = defineMigration({
  name: 'initial-build',
  capture: { tables: [accountsCapture] },
  readModels: [accountView],
  domains: accountsDomains,
});

const ACCOUNTS = 60;
function event(tx: number, n: number, balance: number, snapshot: boolean): NewDomainEvent {
  return {
    streamType: 'account',
    streamId: `account-${n}`,
    type: snapshot ? 'AccountOpened' : 'AccountChanged',
    data: { state: { accountId: n, ownerId: n % 3, balance }, changes: {} },
    metadata: {
      op: snapshot ? 'r' : 'u',
      table: 'accounts',
      sourcePosition: `${tx}:${n}`,
      sourceOrder: `${String(tx).padStart(6, '0')}:${String(n).padStart(6, '0')}`,
      sourceTxId: `tx-${tx}`,
      sourceTsMs: 0,
      snapshot,
    },
  };
}

/** A snapshot chunk of 10 accounts; its offset is in the stream phase when it ends the snapshot. */
function appendChunk(store: SqliteEventStore, chunk: number, last: boolean): void {
  store.appendSync({
    sourceName: 'legacy',
    sourceTxId: `tx-${chunk}`,
    offset: last ? { phase: 'stream', pos: chunk } : { phase: 'snapshot', chunk },
    events: Array.from({ length: 10 }, (_, i) =>
      event(chunk, (chunk - 1) * 10 + i + 1, chunk * 100 + i, true),
    ),
    deadLetters: [],
  });
}

const docs = (db: Database.Database) =>
  db.prepare('SELECT key, doc FROM rm_doc__account ORDER BY key').raw().all();

function runner(
  store: SqliteEventStore,
  db: Database.Database,
  bulkInitialBuild: boolean,
  awaitInitialSnapshot = false,
) {
  return new ProjectionRunner({
    eventStore: store,
    db,
    projections: [new SqliteReadModels(migration)],
    batchSize: 7,
    // A live catch-up composes at least every millisecond: the bulk build ignores it.
    deferMaxMs: 1,
    bulkInitialBuild,
    awaitInitialSnapshot,
  });
}

describe('initial build in bulk through the source snapshot', () => {
  it('composes nothing until the snapshot ends, then every view once, equal to batch-by-batch composing', async () => {
    const store = new SqliteEventStore(join(dir, 'events.db'));
    for (let chunk = 1; chunk <= 3; chunk++) appendChunk(store, chunk, false);
    expect(store.snapshotInProgressSync()).toBe(true);

    const db = openReadModelDb(join(dir, 'bulk.db'));
    const bulk = runner(store, db, true);
    expect(await bulk.catchUp()).toBe(30);
    // Caught up, but the snapshot goes on: applied, not composed.
    expect(bulk.appliedPosition()).toBe(30);
    expect(bulk.checkpoint()).toBe(0);
    expect(docs(db)).toEqual([]);

    // A restart mid-snapshot goes on in bulk.
    const restarted = runner(store, db, true);
    appendChunk(store, 4, false);
    expect(await restarted.catchUp()).toBe(10);
    expect(restarted.checkpoint()).toBe(0);
    expect(docs(db)).toEqual([]);

    // Without the bulk build, a catch-up composes while the snapshot is read.
    const liveDb = openReadModelDb(join(dir, 'live.db'));
    const live = runner(store, liveDb, false);
    await live.catchUp();
    expect(live.checkpoint()).toBe(40);
    expect((docs(liveDb) as unknown[]).length).toBe(40);

    // The last chunk ends the snapshot: everything is composed, once.
    for (let chunk = 5; chunk <= ACCOUNTS / 10; chunk++) appendChunk(store, chunk, chunk === ACCOUNTS / 10);
    expect(store.snapshotInProgressSync()).toBe(false);
    await restarted.catchUp();
    await live.catchUp();
    expect(restarted.checkpoint()).toBe(ACCOUNTS);
    expect((docs(db) as unknown[]).length).toBe(ACCOUNTS);
    expect(docs(db)).toEqual(docs(liveDb));

    // Streamed changes after it: composed batch by batch again (the time bound of 1 ms holds).
    store.appendSync({
      sourceName: 'legacy',
      sourceTxId: 'tx-99',
      offset: { phase: 'stream', pos: 99 },
      events: [event(99, 1, 5, false)],
      deadLetters: [],
    });
    expect(await restarted.step()).toBe(1);
    expect(restarted.checkpoint()).toBe(ACCOUNTS + 1);
    expect(docs(db).find((row) => (row as unknown[])[0] === '1')).toEqual(['1', '{"owner":1,"balance":5}']);
    db.close();
    liveDb.close();
    await store.close();
  });

  it('with awaitInitialSnapshot, applies nothing until the snapshot is stored, then builds it whole', async () => {
    const store = new SqliteEventStore(join(dir, 'await-events.db'));
    const db = openReadModelDb(join(dir, 'await-rm.db'));
    const waiting = runner(store, db, true, true);
    // Nothing stored yet, then the snapshot's first chunks: the runner reads none of them.
    expect(await waiting.catchUp()).toBe(0);
    for (let chunk = 1; chunk <= 3; chunk++) appendChunk(store, chunk, false);
    expect(await waiting.catchUp()).toBe(0);
    expect(waiting.appliedPosition()).toBe(0);
    // A restart mid-snapshot waits too.
    const restarted = runner(store, db, true, true);
    expect(await restarted.catchUp()).toBe(0);
    for (let chunk = 4; chunk <= ACCOUNTS / 10; chunk++) appendChunk(store, chunk, chunk === ACCOUNTS / 10);
    expect(await restarted.catchUp()).toBe(ACCOUNTS);
    expect(restarted.checkpoint()).toBe(ACCOUNTS);
    expect((docs(db) as unknown[]).length).toBe(ACCOUNTS);
    // The same documents as a runner composing batch by batch.
    const liveDb = openReadModelDb(join(dir, 'await-live.db'));
    await runner(store, liveDb, false).catchUp();
    expect(docs(db)).toEqual(docs(liveDb));
    liveDb.close();
    db.close();
    await store.close();
  });

  it('composes at once when no snapshot is under way (streaming only, or a source that records no phase)', async () => {
    const store = new SqliteEventStore(join(dir, 'stream-only.db'));
    store.appendSync({
      sourceName: 'legacy',
      sourceTxId: 'tx-1',
      offset: { pos: 1 },
      events: [event(1, 1, 10, false), event(1, 2, 20, false)],
      deadLetters: [],
    });
    const db = openReadModelDb(join(dir, 'stream-only-rm.db'));
    const bulk = runner(store, db, true);
    expect(await bulk.catchUp()).toBe(2);
    expect(bulk.checkpoint()).toBe(2);
    expect((docs(db) as unknown[]).length).toBe(2);
    db.close();
    await store.close();
  });
});
