import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NewDomainEvent } from '../../eventstore/ports.js';
import { openSqliteEventStore, type SqliteEventStore } from '../../eventstore/sqlite.js';
import type { SqliteProjection } from '../../projectors/ports.js';
import { BULK_WAL_AUTOCHECKPOINT_PAGES, ProjectionRunner } from '../../projectors/runner.js';
import { openReadModelDb } from '../../projectors/stores/sqlite.js';

/**
 * A bulk build (a rebuild, a version's replay) commits its batches with checkpoints far apart,
 * and hands the connection back with its own wal_autocheckpoint after every batch: a version
 * replayed in a live process shares the live runner's connection, whose batches must keep
 * checkpointing as configured.
 */

/** Not SQLite's default (1000), so a restore to the default would not pass for one to this. */
const OWN_PAGES = 123;
const TRANSACTIONS = 4;

let dir: string;
let store: SqliteEventStore;
let db: Database.Database;

const walPages = () => db.pragma('wal_autocheckpoint', { simple: true }) as number;

const event = (n: number): NewDomainEvent => ({
  streamType: 'account',
  streamId: `account-${n}`,
  type: 'AccountOpened',
  data: { state: { id: n }, changes: {} },
  metadata: {
    op: 'c',
    table: 'accounts',
    sourcePosition: `b:1:${n}`,
    sourceOrder: `0001:${n}`,
    sourceTxId: `tx-${n}`,
    sourceTsMs: 1_700_000_000_000 + n,
    snapshot: false,
  },
});

/** Notes the connection's setting each event is applied under; throws at `failAt` if given. */
function recording(seen: number[], failAt?: number): SqliteProjection {
  return {
    name: 'recorder',
    handles: new Set(['AccountOpened']),
    apply: (conn, stored) => {
      seen.push(conn.pragma('wal_autocheckpoint', { simple: true }) as number);
      if (stored.position === failAt) throw new Error('projection failed');
    },
    reset: () => {},
  };
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'h1_bulk_wal_'));
  store = openSqliteEventStore(join(dir, 'events.db'));
  for (let n = 1; n <= TRANSACTIONS; n++)
    await store.append({
      sourceName: 'legacy',
      sourceTxId: `tx-${n}`,
      offset: { pos: n },
      events: [event(n)],
      deadLetters: [],
    });
  db = openReadModelDb(join(dir, 'read-models.db'));
  db.pragma(`wal_autocheckpoint = ${OWN_PAGES}`);
});

afterEach(async () => {
  db.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('bulk builds and the connection WAL checkpoint setting', () => {
  it('a rebuild applies its batches with checkpoints far apart and restores the setting after each one', async () => {
    const seen: number[] = [];
    const afterBatch: number[] = [];
    const runner = new ProjectionRunner({
      eventStore: store,
      db,
      projections: [recording(seen)],
      batchSize: 1,
      onCommitted: () => afterBatch.push(walPages()),
    });
    // Each batch's count reaches the caller as it lands (the rebuild command's progress).
    const batches: number[] = [];
    expect(await runner.rebuild((n) => batches.push(n))).toBe(TRANSACTIONS);
    expect(batches).toEqual(Array(TRANSACTIONS).fill(1));
    expect(seen).toEqual(Array(TRANSACTIONS).fill(BULK_WAL_AUTOCHECKPOINT_PAGES));
    expect(afterBatch.length).toBeGreaterThanOrEqual(TRANSACTIONS);
    expect(new Set(afterBatch)).toEqual(new Set([OWN_PAGES]));
    expect(walPages()).toBe(OWN_PAGES);
  });

  it('a bulk runner restores the setting after a batch that fails', async () => {
    const seen: number[] = [];
    const runner = new ProjectionRunner({
      eventStore: store,
      db,
      projections: [recording(seen, 2)],
      batchSize: 1,
      bulk: true,
    });
    expect(await runner.step()).toBe(1);
    expect(walPages()).toBe(OWN_PAGES);
    await expect(runner.step()).rejects.toThrow(/projection recorder failed on event 2/);
    expect(seen).toEqual([BULK_WAL_AUTOCHECKPOINT_PAGES, BULK_WAL_AUTOCHECKPOINT_PAGES]);
    expect(walPages()).toBe(OWN_PAGES);
  });

  it('a live runner leaves the setting alone', async () => {
    const seen: number[] = [];
    const runner = new ProjectionRunner({
      eventStore: store,
      db,
      projections: [recording(seen)],
      batchSize: 1,
    });
    expect(await runner.catchUp()).toBe(TRANSACTIONS);
    expect(seen).toEqual(Array(TRANSACTIONS).fill(OWN_PAGES));
  });
});
