import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { Pool } from 'mysql2/promise';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPipeline } from '../../cli/pipeline.js';
import { SqliteEventStore } from '../../eventstore/sqlite.js';
import { createBankDatabase, dropDatabase, openPool } from '../../examples/bank/db.js';
import { generateBank } from '../../examples/bank/generate.js';
import bank from '../../examples/bank/migration.js';
import { runWorkload } from '../../examples/bank/workload.js';
import { loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import type { SqliteProjection } from '../../projectors/ports.js';
import { ProjectionRunner, type RunnerOptions } from '../../projectors/runner.js';
import { openReadModelDb } from '../../projectors/stores/sqlite.js';
import { SqliteReadModels } from '../../projectors/stores/sqlite-read-models.js';
import { failingOnce } from '../support/failing-projection.js';
import { DEFERRED_RUNNER_SCRIPT } from './support/deferred-runner.js';

/**
 * The bank's event store (a snapshot, then a workload's updates) projected per batch and with
 * deferred composition: the documents are byte-identical; while a catch-up defers, a reader's
 * checkpoint never covers a document not yet composed (the views a reader sees are exactly the
 * per-batch path's at that checkpoint); a throw or a kill -9 in the middle of a deferral, then a
 * restart, ends with the same documents (the marks were committed with the rows).
 */
const conn = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const database = `h1_dfc_${Math.random().toString(36).slice(2, 8)}`;
const legacyUrl = `mysql://cqrs:cqrs@127.0.0.1:3307/${database}`;
const dir = mkdtempSync(join(tmpdir(), 'h1_deferred-'));
const serverId = 9000 + Math.floor(Math.random() * 1000);
const eventsPath = join(dir, 'adapter', 'events.db');
const BATCH = 40;
let pool: Pool;
let store: SqliteEventStore;

const viewNames = new Set(bank.viewPlans.keys());
const BANK_DEFINITION = fileURLToPath(new URL('../../examples/bank/migration.ts', import.meta.url));
/** Compose threads for every view however small, so the tiny bank's views go to them (pages of 1000 roots, interleaved). */
const THREADED = { compose: { definition: BANK_DEFINITION, threads: 2, minRoots: 1 } };

/** Every document table as text (key, doc and root row), optionally only the views. */
function dump(db: Database.Database, only?: (readModel: string) => boolean): string {
  const tables = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'rm_doc__%' ORDER BY name")
    .pluck()
    .all() as string[];
  return JSON.stringify(
    tables
      .filter((t) => only === undefined || only(t.slice('rm_doc__'.length)))
      .map((t) => [t, db.prepare(`SELECT * FROM "${t}" ORDER BY key`).raw().all()]),
  );
}

function runnerOver(name: string, extra: Partial<RunnerOptions> = {}, projection?: SqliteProjection) {
  const db = openReadModelDb(join(dir, `${name}.db`));
  const runner = new ProjectionRunner({
    eventStore: store,
    db,
    projections: [projection ?? new SqliteReadModels(bank)],
    batchSize: BATCH,
    ...extra,
  });
  return { db, runner };
}

const positions = (db: Database.Database) =>
  db.prepare('SELECT position, applied_position AS applied FROM projector_checkpoints').get() as {
    position: number;
    applied: number | null;
  };

describe('deferred composition on the bank', () => {
  let perBatch: string;

  beforeAll(async () => {
    await createBankDatabase(conn, database, { dropExisting: true });
    pool = openPool(conn, database);
    await generateBank(pool, { seed: 9, scale: 'tiny' });
    const config = loadConfig({
      env: {},
      overrides: {
        legacy: { url: legacyUrl },
        cdc: { serverId },
        dataDir: join(dir, 'adapter'),
        projector: { pollIntervalMs: 20 },
      },
    });
    const pipeline = await startEmbeddedPipeline({ config, migration: bank, logger: silentLogger });
    try {
      await runWorkload(pool, { seed: 3, ratePerSec: 400, maxOps: 300, concurrency: 4 });
      expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
    } finally {
      await pipeline.stop();
    }
    store = new SqliteEventStore(eventsPath);
    const reference = runnerOver('per-batch', { deferMaxDocuments: 0 });
    await reference.runner.catchUp();
    perBatch = dump(reference.db);
    reference.db.close();
  }, 240_000);

  afterAll(async () => {
    await store?.close();
    await pool?.end();
    await dropDatabase(conn, database);
    rmSync(dir, { recursive: true, force: true });
  });

  it('builds byte-identical documents per catch-up as per batch, and as the live pipeline did', async () => {
    const head = store.headPositionSync();
    expect(head).toBeGreaterThan(20 * BATCH);
    const live = new Database(join(dir, 'adapter', 'read-models.db'), { readonly: true });
    expect(dump(live)).toBe(perBatch);
    live.close();
    for (const [name, extra] of [
      ['deferred', { deferMaxMs: 600_000 }],
      ['bounded', { deferMaxDocuments: 7, deferMaxMs: 600_000 }],
      ['rebuilt', {}],
    ] as const) {
      const { db, runner } = runnerOver(name, extra);
      if (name === 'rebuilt') await runner.rebuild();
      else await runner.catchUp();
      expect(runner.checkpoint()).toBe(head);
      expect(positions(db).applied).toBeNull();
      expect(db.prepare('SELECT COUNT(*) FROM rm_dirty').pluck().get()).toBe(0);
      expect(dump(db), name).toBe(perBatch);
      db.close();
    }
  });

  it('rebuilds byte-identical documents on compose threads, each composing every other page of roots', async () => {
    const projection = new SqliteReadModels(bank);
    // What the runner's compose progress log hears: each view's roots composed, page by page.
    const heard = new Map<string, Array<[number, number]>>();
    const flush = projection.flush.bind(projection);
    projection.flush = (db, options = {}) =>
      flush(db, {
        ...options,
        onComposed:
          options.onComposed &&
          ((view, done, total) => {
            heard.set(view, [...(heard.get(view) ?? []), [done, total]]);
            options.onComposed?.(view, done, total);
          }),
      });
    const { db, runner } = runnerOver('threaded', THREADED, projection);
    await runner.rebuild();
    expect(runner.checkpoint()).toBe(store.headPositionSync());
    // The history view's roots span three pages or more (1000 a page): both threads composed some.
    const roots = (table: string) => db.prepare(`SELECT COUNT(*) FROM "${table}"`).pluck().get() as number;
    expect(roots('rm_doc__transaction-history')).toBeGreaterThan(2000);
    expect(dump(db)).toBe(perBatch);
    expect([...heard.keys()].sort()).toEqual([...viewNames].sort());
    for (const [view, steps] of heard) {
      const total = roots(`rm_row__${bank.viewPlans.get(view)?.view.from}`);
      expect(steps.at(-1), view).toEqual([total, total]);
      expect(steps.every(([done], i) => i === 0 || done > (steps[i - 1] as [number, number])[0])).toBe(true);
    }
    db.close();
  });

  it('logs each index a rebuild creates again, before and after building it', async () => {
    const lines: Array<{ msg: string; table?: string; index?: string; ms?: number }> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const { db, runner } = runnerOver('indexes-logged', { logger });
    await runner.rebuild();
    expect(dump(db)).toBe(perBatch);
    // The engine's indexes on the read models: a rebuild drops every one and makes it again.
    const indexes = db
      .prepare(
        "SELECT name, tbl_name AS \"table\" FROM sqlite_master WHERE type = 'index' AND name LIKE 'ix\\_\\_%' ESCAPE '\\' ORDER BY name",
      )
      .all() as Array<{ name: string; table: string }>;
    expect(indexes.length).toBeGreaterThan(5);
    const steps = lines.filter((l) => l.msg === 'building an index' || l.msg === 'index built');
    const built = steps.filter((l) => l.msg === 'index built');
    expect(
      built
        .map((l) => ({ name: l.index, table: l.table }))
        .sort((a, b) => (String(a.name) < String(b.name) ? -1 : 1)),
    ).toEqual(indexes);
    for (const line of built) expect(line.ms, line.index).toBeGreaterThanOrEqual(0);
    // Each is announced right before it is built, and the compose step's lines enclose them all.
    for (let i = 0; i < steps.length; i += 2) {
      expect(steps[i]?.msg).toBe('building an index');
      expect(steps[i + 1]).toMatchObject({ msg: 'index built', index: steps[i]?.index });
    }
    const at = (msg: string) => lines.findIndex((l) => l.msg === msg);
    expect(at('composing the documents')).toBeLessThan(lines.indexOf(steps[0] as (typeof lines)[number]));
    expect(at('documents composed')).toBeGreaterThan(lines.indexOf(steps.at(-1) as (typeof lines)[number]));
    db.close();
  });

  it('rolls a rebuild back when a compose thread fails, and a rebuild on this thread then completes', async () => {
    const { db, runner } = runnerOver('threads-failing', {
      compose: { definition: join(dir, 'no-such-definition.ts'), threads: 2, minRoots: 1 },
    });
    await expect(runner.rebuild()).rejects.toMatchObject({
      code: 'DEFINITION_INVALID',
      message: expect.stringContaining('does not exist'),
    });
    // The rows are applied and committed; no document was, and the checkpoint did not move.
    expect(runner.checkpoint()).toBe(0);
    expect(positions(db).applied).toBe(store.headPositionSync());
    expect(db.prepare('SELECT COUNT(*) FROM "rm_doc__account-summary"').pluck().get()).toBe(0);
    db.close();
    const again = runnerOver('threads-failing');
    await again.runner.catchUp();
    expect(again.runner.checkpoint()).toBe(store.headPositionSync());
    expect(dump(again.db)).toBe(perBatch);
    again.db.close();
  });

  it('never lets the checkpoint cover a view document not composed yet', async () => {
    // The per-batch path's views at each checkpoint it commits (the same batches: same store, same size).
    const reference = runnerOver('reference', { deferMaxDocuments: 0 });
    const viewsAt = new Map<number, string>([[0, dump(reference.db, (m) => viewNames.has(m))]]);
    const allAt = new Map<number, string>([[0, dump(reference.db)]]);
    while ((await reference.runner.step()) > 0) {
      viewsAt.set(
        reference.runner.checkpoint(),
        dump(reference.db, (m) => viewNames.has(m)),
      );
      allAt.set(reference.runner.checkpoint(), dump(reference.db));
    }
    reference.db.close();

    const { db, runner } = runnerOver('polled', { deferMaxMs: 600_000, deferMaxDocuments: 150 });
    const reader = new Database(join(dir, 'polled.db'), { readonly: true });
    let deferredSteps = 0;
    let composedSteps = 0;
    for (;;) {
      const n = await runner.step();
      // What a reader on its own connection sees: one read transaction for checkpoint and documents.
      const seen = reader.transaction(() => ({
        at: positions(reader),
        views: dump(reader, (m) => viewNames.has(m)),
        all: dump(reader),
      }))();
      expect(viewsAt.has(seen.at.position)).toBe(true);
      expect(seen.views).toBe(viewsAt.get(seen.at.position));
      if (seen.at.applied !== null && seen.at.applied > seen.at.position) deferredSteps++;
      else {
        composedSteps++;
        expect(seen.all).toBe(allAt.get(seen.at.position));
      }
      if (n === 0) break;
    }
    expect(deferredSteps).toBeGreaterThan(5);
    expect(composedSteps).toBeGreaterThan(1);
    expect(dump(db)).toBe(perBatch);
    reader.close();
    db.close();
  });

  it('resumes a deferral after a throw mid-catch-up with the same documents', async () => {
    const failing = failingOnce(new SqliteReadModels(bank), Math.floor(store.headPositionSync() * 0.6), {
      bulk: false,
    });
    const first = runnerOver('thrown', { deferMaxMs: 600_000 }, failing);
    await expect(first.runner.catchUp()).rejects.toThrow(/projection read-models failed on event/);
    const stopped = positions(first.db);
    expect(stopped.applied ?? 0).toBeGreaterThan(stopped.position);
    expect(first.db.prepare('SELECT COUNT(*) FROM rm_dirty').pluck().get()).toBeGreaterThan(0);
    first.db.close();
    // A new process: new projection, new runner, on the same database.
    const second = runnerOver('thrown', { deferMaxMs: 600_000 });
    expect(second.runner.checkpoint()).toBe(stopped.position);
    await second.runner.catchUp();
    expect(dump(second.db)).toBe(perBatch);
    second.db.close();
  });

  it('composes a bulk build whole, and resumes one after a throw with the same documents', async () => {
    const failing = failingOnce(new SqliteReadModels(bank), Math.floor(store.headPositionSync() * 0.6));
    const first = runnerOver('bulk-thrown', { bulk: true }, failing);
    await expect(first.runner.catchUp()).rejects.toThrow(/projection read-models failed on event/);
    // No per-row marks: one mark per view, standing for all of its documents.
    const marks = first.db.prepare('SELECT view, key FROM rm_dirty ORDER BY view').all() as Array<{
      view: string;
      key: string;
    }>;
    expect(marks.map((m) => m.view)).toEqual([...viewNames].sort());
    expect(new Set(marks.map((m) => m.key)).size).toBe(1);
    first.db.close();
    // Resumed by a runner that is not bulk: the kept marks still compose every document.
    const second = runnerOver('bulk-thrown', { deferMaxMs: 600_000 });
    await second.runner.catchUp();
    expect(dump(second.db)).toBe(perBatch);
    second.db.close();
  });

  it('resumes a deferral after a kill -9 mid-catch-up with the same documents', async () => {
    const path = join(dir, 'killed.db');
    // Both runs in a process of its own, loaded alike (a definition's code is fingerprinted).
    const run = () => {
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          '--input-type=module',
          '-e',
          DEFERRED_RUNNER_SCRIPT,
          eventsPath,
          path,
          String(BATCH),
        ],
        { stdio: ['ignore', 'ignore', 'inherit'] },
      );
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      return { child, exited };
    };
    const first = run();
    // Killed once it committed deferred batches, before it composed (it does only once caught up).
    for (let i = 0; ; i++) {
      await new Promise((r) => setTimeout(r, 50));
      try {
        const probe = new Database(path, { readonly: true, fileMustExist: true });
        const at = probe.prepare('SELECT applied_position FROM projector_checkpoints').pluck().get() as
          | number
          | null
          | undefined;
        probe.close();
        if ((at ?? 0) > store.headPositionSync() / 3) break;
      } catch {
        // Not created, or its tables not yet.
      }
      expect(i).toBeLessThan(1200);
    }
    first.child.kill('SIGKILL');
    await first.exited;
    const killed = new Database(path, { readonly: true });
    const at = positions(killed);
    expect(at.applied ?? 0).toBeGreaterThan(at.position);
    expect(killed.prepare('SELECT COUNT(*) FROM rm_dirty').pluck().get()).toBeGreaterThan(0);
    killed.close();
    expect(await run().exited).toBe(0);
    const restarted = new Database(path, { readonly: true });
    expect(positions(restarted)).toEqual({ position: store.headPositionSync(), applied: null });
    expect(dump(restarted)).toBe(perBatch);
    restarted.close();
  }, 90_000);
});
