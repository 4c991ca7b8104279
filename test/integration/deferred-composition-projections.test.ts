import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { NewDomainEvent, StoredEvent } from '../../eventstore/ports.js';
import { SqliteEventStore } from '../../eventstore/sqlite.js';
import { defineMigration, defineProjection, z } from '../../index.js';
import type { SqliteProjection, TouchedDocument } from '../../projectors/ports.js';
import { ProjectionRunner } from '../../projectors/runner.js';
import { openReadModelDb } from '../../projectors/stores/sqlite.js';
import { SqliteReadModels } from '../../projectors/stores/sqlite-read-models.js';
import { failingOnce } from '../support/failing-projection.js';
import { accountsCapture, accountsDomains, accountView } from './support/accounts-definition.js';

/**
 * Code projections under deferred composition (real SQLite): a document many events of a batch
 * fold is parsed once and written once, equal to folding every event from nothing; while a
 * catch-up defers, projection documents are still written each batch (ahead of the checkpoint,
 * never behind) and named to `onCommitted` with the unchanged checkpoint, then named again with
 * the composed views under the checkpoint that covers them.
 */
const dir = mkdtempSync(join(tmpdir(), 'h1_deferred-projections-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const migration = defineMigration({
  name: 'deferred-projections',
  capture: { tables: [accountsCapture] },
  readModels: [
    accountView,
    defineProjection({
      name: 'owner_total',
      schema: z.object({ changes: z.number(), total: z.number() }),
      indexes: [['total']],
      canHandle: ['AccountOpened', 'AccountChanged', 'AccountClosed'],
      documentId: (e) => String((e.data.state as { ownerId: number }).ownerId),
      evolve: (doc, e) => {
        const state = e.data.state as { balance: number };
        // Deleted at 7 changes, then started again: a null inside a batch is kept in memory too.
        if ((doc?.changes ?? 0) === 7) return null;
        return { changes: (doc?.changes ?? 0) + 1, total: (doc?.total ?? 0) + state.balance };
      },
    }),
  ],
  domains: accountsDomains,
});

const OWNERS = 5;
function event(tx: number, n: number, balance: number): NewDomainEvent {
  return {
    streamType: 'account',
    streamId: `account-${n}`,
    type: balance === 0 ? 'AccountOpened' : 'AccountChanged',
    data: { state: { accountId: n, ownerId: n % OWNERS, balance }, changes: {} },
    metadata: {
      op: balance === 0 ? 'c' : 'u',
      table: 'accounts',
      sourcePosition: `${tx}:${n}`,
      sourceOrder: `${String(tx).padStart(6, '0')}:${String(n).padStart(6, '0')}`,
      sourceTxId: `tx-${tx}`,
      sourceTsMs: 0,
      snapshot: false,
    },
  };
}

const docs = (db: Database.Database, table: string) =>
  db.prepare(`SELECT key, doc FROM "${table}" ORDER BY key`).raw().all();

/** The definitions of owner_total's document indexes, as sqlite_master holds them. */
const ownerTotalIndexes = (db: Database.Database) =>
  db
    .prepare(
      "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'rm_doc__owner_total' AND sql IS NOT NULL",
    )
    .pluck()
    .all();

describe('code projections with deferred composition', () => {
  const store = new SqliteEventStore(join(dir, 'events.db'));
  afterAll(() => store.close());
  // 120 transactions of 10 events over 40 accounts: every batch folds each owner's document many times.
  for (let tx = 1; tx <= 120; tx++) {
    store.appendSync({
      sourceName: 'test',
      sourceTxId: `tx-${tx}`,
      offset: { tx },
      events: Array.from({ length: 10 }, (_, i) =>
        event(tx, ((tx * 10 + i) % 40) + 1, tx === 1 ? 0 : tx + i),
      ),
      deadLetters: [],
    });
  }

  it('folds each document once per batch, equal to every event folded from nothing', async () => {
    const head = store.headPositionSync();
    const all = store.readAfterSync(0, head) as StoredEvent[];
    const truth = openReadModelDb(join(dir, 'truth.db'));
    const folded = new SqliteReadModels(migration);
    folded.migrate(truth);
    for (let owner = 0; owner < OWNERS; owner++) {
      const mine = all.filter((e) => (e.data.state as { ownerId: number }).ownerId === owner);
      folded.refold(truth, 'owner_total', String(owner), mine);
    }
    for (const [name, options] of [
      ['per-batch', { deferMaxDocuments: 0 }],
      ['deferred', { deferMaxMs: 600_000 }],
    ] as const) {
      const db = openReadModelDb(join(dir, `${name}.db`));
      const runner = new ProjectionRunner({
        eventStore: store,
        db,
        projections: [new SqliteReadModels(migration)],
        batchSize: 50,
        ...options,
      });
      await runner.catchUp();
      expect(runner.checkpoint()).toBe(head);
      expect(docs(db, 'rm_doc__owner_total'), name).toEqual(docs(truth, 'rm_doc__owner_total'));
      db.close();
    }
    truth.close();
  });

  it('lets the event loop turn between the batches of a rebuild, so its progress lines and timers are not held back', async () => {
    const db = openReadModelDb(join(dir, 'turns.db'));
    const runner = new ProjectionRunner({
      eventStore: store,
      db,
      projections: [new SqliteReadModels(migration)],
      batchSize: 50,
    });
    // Queued before the rebuild starts: runs at the event loop's first turn after it.
    let turned = false;
    setImmediate(() => {
      turned = true;
    });
    const heard: boolean[] = [];
    expect(await runner.rebuild(() => heard.push(turned))).toBe(store.headPositionSync());
    expect(heard.length).toBeGreaterThan(2);
    // Every batch after the first ran after a turn of the loop.
    expect(heard.slice(1).every(Boolean)).toBe(true);
    db.close();
  });

  it('writes projection documents each deferred batch and names them again when the checkpoint covers them', async () => {
    const db = openReadModelDb(join(dir, 'reported.db'));
    const reports: Array<{ position: number; touched: TouchedDocument[] }> = [];
    const runner = new ProjectionRunner({
      eventStore: store,
      db,
      projections: [new SqliteReadModels(migration)],
      batchSize: 50,
      deferMaxMs: 600_000,
      onCommitted: (position, touched) => reports.push({ position, touched }),
    });
    const head = store.headPositionSync();
    expect(await runner.step()).toBe(50);
    // Deferred: the checkpoint stays, the projection's documents are written, no view document is.
    expect(runner.checkpoint()).toBe(0);
    expect(runner.appliedPosition()).toBe(50);
    expect(docs(db, 'rm_doc__account')).toEqual([]);
    expect((docs(db, 'rm_doc__owner_total') as unknown[]).length).toBeGreaterThan(0);
    expect(reports[0]?.position).toBe(0);
    expect(reports[0]?.touched.every(([model]) => model === 'owner_total')).toBe(true);
    expect(reports[0]?.touched.length).toBeGreaterThan(0);
    await runner.catchUp();
    expect(runner.checkpoint()).toBe(head);
    const last = reports.at(-1);
    expect(last?.position).toBe(head);
    const named = new Set(last?.touched.map(([model, key]) => `${model}:${key}`));
    for (const [model, key] of reports[0]?.touched ?? []) expect(named.has(`${model}:${key}`)).toBe(true);
    expect([...named].filter((n) => n.startsWith('account:')).length).toBe(40);
    // Every report but the last kept the checkpoint at 0: composing waited for the catch-up's end.
    expect(reports.slice(0, -1).every((r) => r.position === 0)).toBe(true);
    db.close();
  });

  it('notes no written document when nothing hears of them, in a bulk build or a deferred catch-up', async () => {
    for (const bulk of [true, false]) {
      const db = openReadModelDb(join(dir, `untracked-${bulk}.db`));
      const projection = new SqliteReadModels(migration);
      const runner = new ProjectionRunner({
        eventStore: store,
        db,
        projections: [projection],
        batchSize: 50,
        bulk,
      });
      await runner.catchUp();
      expect(runner.checkpoint()).toBe(store.headPositionSync());
      expect((docs(db, 'rm_doc__account') as unknown[]).length).toBe(40);
      // The runner has no listener: the projection notes nothing it writes, in a flush of
      // thousands of documents (a whole composition) or of one.
      const key = String(
        (db.prepare('SELECT key FROM rm_doc__account LIMIT 1').get() as { key: string }).key,
      );
      const recompose = () => {
        projection.markDocument('account', key);
        db.transaction(() => projection.flush(db))();
      };
      recompose();
      expect(projection.drainTouched()).toEqual([]);
      // Told to note them (a listener), it names what the next writes touch.
      projection.trackTouched(true);
      recompose();
      expect(projection.drainTouched()).toEqual([['account', key]]);
      db.close();
    }
  });

  it('builds the document indexes of a projection once, at the end of a bulk build, also after a failed batch or a restart', async () => {
    const head = store.headPositionSync();
    const reference = openReadModelDb(join(dir, 'indexed-reference.db'));
    await new ProjectionRunner({
      eventStore: store,
      db: reference,
      projections: [new SqliteReadModels(migration)],
      batchSize: 50,
      deferMaxDocuments: 0,
    }).catchUp();
    const indexes = ownerTotalIndexes(reference);
    expect(indexes).toHaveLength(1);
    const expected = docs(reference, 'rm_doc__owner_total');
    reference.close();
    const db = openReadModelDb(join(dir, 'indexed-bulk.db'));
    const bulk = (projection: SqliteProjection) =>
      new ProjectionRunner({ eventStore: store, db, projections: [projection], batchSize: 50, bulk: true });
    // Fails in its fourth batch: three deferred batches committed their documents without the index.
    const failing = bulk(failingOnce(new SqliteReadModels(migration), 180));
    for (let i = 0; i < 3; i++) expect(await failing.step()).toBe(50);
    expect(failing.checkpoint()).toBe(0);
    expect((docs(db, 'rm_doc__owner_total') as unknown[]).length).toBe(OWNERS);
    expect(ownerTotalIndexes(db)).toEqual([]);
    await expect(failing.step()).rejects.toThrow(/projection read-models failed on event/);
    // The same runner goes on after the rolled-back batch: its last flush builds the index.
    await failing.catchUp();
    expect(failing.checkpoint()).toBe(head);
    expect(ownerTotalIndexes(db)).toEqual(indexes);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(docs(db, 'rm_doc__owner_total')).toEqual(expected);
    db.close();
    // A build stopped between its batches: the next process's migrate creates the index again.
    const stopped = openReadModelDb(join(dir, 'indexed-stopped.db'));
    const first = new ProjectionRunner({
      eventStore: store,
      db: stopped,
      projections: [new SqliteReadModels(migration)],
      batchSize: 50,
      bulk: true,
    });
    expect(await first.step()).toBe(50);
    expect(ownerTotalIndexes(stopped)).toEqual([]);
    const restarted = new ProjectionRunner({
      eventStore: store,
      db: stopped,
      projections: [new SqliteReadModels(migration)],
      batchSize: 50,
    });
    expect(ownerTotalIndexes(stopped)).toEqual(indexes);
    await restarted.catchUp();
    expect(restarted.checkpoint()).toBe(head);
    expect(stopped.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(docs(stopped, 'rm_doc__owner_total')).toEqual(expected);
    stopped.close();
  });

  it('composes within the time bound while a backlog lasts', async () => {
    const db = openReadModelDb(join(dir, 'timed.db'));
    const runner = new ProjectionRunner({
      eventStore: store,
      db,
      projections: [new SqliteReadModels(migration)],
      batchSize: 50,
      deferMaxMs: 30,
    });
    expect(await runner.step()).toBe(50);
    expect(runner.checkpoint()).toBe(0);
    await new Promise((r) => setTimeout(r, 40));
    // Still behind, but the first deferred batch is older than the bound: this one composes.
    expect(await runner.step()).toBe(50);
    expect(runner.checkpoint()).toBe(100);
    expect(runner.appliedPosition()).toBe(100);
    expect(db.prepare('SELECT COUNT(*) FROM rm_dirty').pluck().get()).toBe(0);
    db.close();
  });
});
