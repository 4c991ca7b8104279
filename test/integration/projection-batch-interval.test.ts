import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '../../eventstore/sqlite.js';
import { AnalyticsRunner } from '../../projectors/analytics-runner.js';
import type { AnalyticsStore } from '../../projectors/ports.js';
import { ProjectionRunner } from '../../projectors/runner.js';
import { DuckDbAnalytics } from '../../projectors/stores/duckdb-analytics.js';
import { openReadModelDb } from '../../projectors/stores/sqlite.js';
import { SqliteReadModels } from '../../projectors/stores/sqlite-read-models.js';
import { appendNote, notesAnalyticsMigration, notesMigration } from './support/notes.js';

/**
 * projector.minBatchIntervalMs on the real stores, and the analytics runner's interval on a
 * real DuckDB file: legacy transactions that arrive one by one while the runner is caught up,
 * or while a batch runs, are applied together, one batch and one checkpoint an interval.
 */
const dir = mkdtempSync(join(tmpdir(), 'batch-interval-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const migration = notesMigration('body');

function append(store: SqliteEventStore, n: number): void {
  appendNote(store, n, `note ${n}`, `tx-${n}`);
}

describe('a projector with a minimum batch interval', () => {
  it('applies the transactions that arrive within an interval in one batch', async () => {
    const store = new SqliteEventStore(join(dir, 'events.db'));
    const db = openReadModelDb(join(dir, 'read-models.db'));
    const commits: Array<{ position: number; documents: number }> = [];
    const runner = new ProjectionRunner({
      eventStore: store,
      db,
      projections: [new SqliteReadModels(migration)],
      batchSize: 100,
      pollIntervalMs: 10_000,
      minBatchIntervalMs: 500,
      onCommitted: (position, touched) => {
        commits.push({ position, documents: touched.length });
        // A transaction that arrives while the first batch is still in its step: it waits for the
        // interval too, not only those notified after the runner found the log's end.
        if (position === 1) append(store, 2);
      },
    });
    try {
      await runner.start();
      append(store, 1);
      runner.notify();
      for (let i = 0; i < 100 && commits.length === 0; i++) await sleep(10);
      expect(commits).toEqual([{ position: 1, documents: 1 }]);
      for (let n = 3; n <= 4; n++) {
        append(store, n);
        runner.notify();
        await sleep(20);
      }
      // Well within the interval of the first batch: nothing more applied yet.
      expect(commits).toHaveLength(1);
      for (let i = 0; i < 200 && commits.length < 2; i++) await sleep(10);
      expect(commits).toEqual([
        { position: 1, documents: 1 },
        { position: 4, documents: 3 },
      ]);
      expect(db.prepare('SELECT COUNT(*) FROM rm_doc__note').pluck().get()).toBe(4);
    } finally {
      await runner.stop();
      db.close();
      await store.close();
    }
  });
});

const analyticsMigration = notesAnalyticsMigration('notes_facts');

describe('the analytics runner with its minimum batch interval (DuckDB)', () => {
  it('applies the transactions that arrive within an interval in one DuckDB transaction', async () => {
    const store = new SqliteEventStore(join(dir, 'analytics-events.db'));
    const duck = await DuckDbAnalytics.open(join(dir, 'analytics.duckdb'), analyticsMigration);
    const commits: number[] = [];
    const failures: Error[] = [];
    // The DuckDB store itself, its write transactions observed: the checkpoint each committed.
    const observed: AnalyticsStore = {
      migrate: () => duck.migrate(),
      checkpoint: (runner) => duck.checkpoint(runner),
      reset: (runner) => duck.reset(runner),
      handles: () => duck.handles(),
      close: () => duck.close(),
      // Noted once duck.write resolved: tx.commit only writes the checkpoint row, and the DuckDB
      // transaction commits after it, so a read noted any earlier could see the batch before.
      write: async (runner, work) => {
        let position: number | null = null;
        await duck.write(runner, (tx) =>
          work({
            apply: (events) => tx.apply(events),
            commit: async (checkpoint) => {
              await tx.commit(checkpoint);
              position = checkpoint.position;
            },
          }),
        );
        if (position === null) return;
        commits.push(position);
        // Arrives while the first batch is still in its step.
        if (position === 1) append(store, 2);
      },
    };
    const runner = new AnalyticsRunner({
      eventStore: store,
      store: observed,
      batchSize: 100,
      pollIntervalMs: 10_000,
      minBatchIntervalMs: 500,
      onError: (err) => failures.push(err),
    });
    try {
      await runner.start();
      append(store, 1);
      runner.notify();
      for (let i = 0; i < 200 && commits.length === 0; i++) await sleep(10);
      expect(failures).toEqual([]);
      expect(commits).toEqual([1]);
      for (let n = 3; n <= 4; n++) {
        append(store, n);
        runner.notify();
        await sleep(20);
      }
      expect(commits).toEqual([1]);
      for (let i = 0; i < 200 && commits.length < 2; i++) await sleep(10);
      expect(commits).toEqual([1, 4]);
      expect(failures).toEqual([]);
      expect(await duck.handles().notes_facts?.query('count')).toEqual([{ n: 4 }]);
    } finally {
      await runner.stop();
      await duck.close();
      await store.close();
    }
  });
});
