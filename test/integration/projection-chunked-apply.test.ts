import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { NewDomainEvent } from '../../eventstore/ports.js';
import { SqliteEventStore } from '../../eventstore/sqlite.js';
import { defineMigration, defineProjection, type Migration, z } from '../../index.js';
import { ProjectionError, ProjectionRunner } from '../../projectors/runner.js';
import { openReadModelDb } from '../../projectors/stores/sqlite.js';
import { SqliteReadModels } from '../../projectors/stores/sqlite-read-models.js';
import { accountsCapture, accountsDomains, accountView } from './support/accounts-definition.js';

/**
 * One source transaction far larger than a batch (an UPDATE of every row of a big table) is
 * applied in chunks of `batchSize` inside one read-model transaction: the result equals one
 * huge batch, another connection sees the read models before it or after it and never between,
 * and a failure half-way leaves the read models and the checkpoint as they were.
 */
const BIG = 50_000;
const SMALL_TXS = 20;
const dir = mkdtempSync(join(tmpdir(), 'h2-chunked-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Heap sampled from inside a projection: the apply is synchronous, no timer runs meanwhile. */
let peakHeap = 0;

function migrationFailingAt(failAt: number | null): Migration {
  return defineMigration({
    name: 'chunked',
    capture: { tables: [accountsCapture] },
    readModels: [
      accountView,
      defineProjection({
        name: 'owner_total',
        schema: z.object({ accounts: z.number(), total: z.number() }),
        canHandle: ['AccountOpened', 'AccountChanged'],
        documentId: (e) => String((e.data.state as { ownerId: number }).ownerId),
        evolve: (doc, e) => {
          const state = e.data.state as { accountId: number; balance: number };
          if (state.accountId === failAt && state.balance > 0)
            throw new Error(`injected failure on account ${failAt}`);
          if (state.accountId % 1000 === 0) peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
          return { accounts: (doc?.accounts ?? 0) + 1, total: (doc?.total ?? 0) + state.balance };
        },
      }),
    ],
    domains: accountsDomains,
  });
}

function event(txId: string, n: number, balance: number): NewDomainEvent {
  return {
    streamType: 'account',
    streamId: `account-${n}`,
    type: balance === 0 ? 'AccountOpened' : 'AccountChanged',
    data: { state: { accountId: n, ownerId: n % 97, balance }, changes: {} },
    metadata: {
      op: balance === 0 ? 'c' : 'u',
      table: 'accounts',
      sourcePosition: `${txId}:${n}`,
      sourceOrder: `${txId}:${String(n).padStart(8, '0')}`,
      sourceTxId: txId,
      sourceTsMs: 0,
      snapshot: false,
    },
  };
}

function append(store: SqliteEventStore, txId: string, events: NewDomainEvent[]): void {
  store.appendSync({ sourceName: 'test', sourceTxId: txId, offset: { tx: txId }, events, deadLetters: [] });
}

/** Every read-model table and the checkpoint, as text. */
function dump(db: Database.Database): string {
  const tables = (
    db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'rm_doc__%' ORDER BY name")
      .pluck()
      .all() as string[]
  ).map((t) => [t, db.prepare(`SELECT key, doc FROM "${t}" ORDER BY key`).all()]);
  const checkpoint = db.prepare('SELECT position FROM projector_checkpoints').pluck().all();
  return JSON.stringify({ tables, checkpoint });
}

const kib = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MiB`;
const maxRss = () => process.resourceUsage().maxRSS * 1024;

/** Polls (documents, checkpoint) in one statement on its own connection until told to stop. */
const READER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { readonly: true });
const read = db.prepare("SELECT (SELECT COUNT(*) FROM rm_doc__account) AS docs, (SELECT COALESCE(SUM(json_extract(doc, '$.balance')), 0) FROM rm_doc__account) AS sum, (SELECT position FROM projector_checkpoints) AS checkpoint");
const seen = new Map();
let stop = false;
parentPort.on('message', () => { stop = true; });
const loop = () => {
  const r = read.get();
  const k = JSON.stringify(r);
  seen.set(k, (seen.get(k) ?? 0) + 1);
  if (seen.size === 1 && seen.get(k) === 1) parentPort.postMessage({ started: true });
  if (stop) { parentPort.postMessage({ seen: [...seen] }); db.close(); return; }
  setImmediate(loop);
};
loop();
`;

describe('a source transaction larger than a batch', () => {
  const store = new SqliteEventStore(join(dir, 'events.db'));
  afterAll(() => store.close());
  const open = (name: string, migration: Migration, batchSize: number) => {
    const db = openReadModelDb(join(dir, `${name}.db`));
    const runner = new ProjectionRunner({
      eventStore: store,
      db,
      projections: [new SqliteReadModels(migration)],
      batchSize,
    });
    return { db, runner };
  };

  it('is applied in chunks, atomically, equal to one huge batch, and rolled back whole on a failure', async () => {
    for (let t = 0; t < SMALL_TXS; t++) {
      append(
        store,
        `small-${t}`,
        Array.from({ length: 30 }, (_, i) => event(`small-${t}`, BIG + 1 + t * 30 + i, 0)),
      );
    }
    const before = store.headPositionSync();
    // The opening of 50k accounts, then one UPDATE of all of them.
    append(
      store,
      'open-all',
      Array.from({ length: BIG }, (_, i) => event('open-all', i + 1, 0)),
    );
    append(
      store,
      'update-all',
      Array.from({ length: BIG }, (_, i) => event('update-all', i + 1, 2)),
    );
    append(store, 'after', [event('after', 1, 5)]);

    const chunked = open('chunked', migrationFailingAt(null), 500);
    // The small transactions, then the second batch reaches into open-all and takes all of it.
    expect(await chunked.runner.step()).toBe(510);
    expect(await chunked.runner.step()).toBe(SMALL_TXS * 30 - 510 + BIG);
    expect(chunked.runner.checkpoint()).toBe(before + BIG);

    const reader = new Worker(READER, {
      eval: true,
      workerData: {
        path: join(dir, 'chunked.db'),
        driver: createRequire(import.meta.url).resolve('better-sqlite3'),
      },
    });
    const started = new Promise<void>((resolve) => reader.once('message', () => resolve()));
    const report = new Promise<Array<[string, number]>>((resolve) =>
      reader.on('message', (m: { seen?: Array<[string, number]> }) => m.seen && resolve(m.seen)),
    );
    await started;
    const rssBefore = maxRss();
    peakHeap = 0;
    const t0 = performance.now();
    expect(await chunked.runner.step()).toBe(BIG); // update-all, whole, in 100 chunks
    const chunkedMs = performance.now() - t0;
    const chunkedHeap = peakHeap;
    const chunkedRss = maxRss() - rssBefore;
    // Let the reader see the committed state before it stops.
    await new Promise((r) => setTimeout(r, 100));
    reader.postMessage('stop');
    const seen = (await report).map(
      ([k]) => JSON.parse(k) as { docs: number; sum: number; checkpoint: number },
    );
    await reader.terminate();
    const head = store.headPositionSync();
    expect(seen).toEqual([
      { docs: BIG + SMALL_TXS * 30, sum: 0, checkpoint: before + BIG },
      { docs: BIG + SMALL_TXS * 30, sum: 2 * BIG, checkpoint: head - 1 },
    ]);
    await chunked.runner.catchUp();
    expect(chunked.runner.checkpoint()).toBe(head);

    const whole = open('whole', migrationFailingAt(null), 1_000_000);
    peakHeap = 0;
    const rssWhole = maxRss();
    expect(await whole.runner.catchUp()).toBe(head);
    const wholeHeap = peakHeap;
    const wholeRss = maxRss() - rssWhole;
    expect(dump(chunked.db)).toEqual(dump(whole.db));

    // A failure on the 30 000th event of the UPDATE: nothing of it stays.
    const failing = open('failing', migrationFailingAt(30_000), 500);
    while (failing.runner.checkpoint() < before + BIG) await failing.runner.step();
    const untouched = dump(failing.db);
    const error = await failing.runner.step().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProjectionError);
    expect((error as Error).message).toMatch(/projection read-models failed on event/);
    expect(failing.runner.checkpoint()).toBe(before + BIG);
    expect(dump(failing.db)).toEqual(untouched);

    process.stdout.write(
      `[h2] ${BIG}-event transaction: chunked (batch 500) ${Math.round(chunkedMs)} ms, peak heap ${kib(chunkedHeap)}, maxRSS growth ${kib(chunkedRss)}; ` +
        `one batch (whole store): peak heap ${kib(wholeHeap)}, maxRSS growth ${kib(wholeRss)}; reader states seen ${JSON.stringify(seen)}\n`,
    );
    for (const { db } of [chunked, whole, failing]) db.close();
  }, 240_000);
});
