import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '../../eventstore/sqlite.js';
import { AnalyticsRunner } from '../../projectors/analytics-runner.js';
import { DuckDbAnalytics } from '../../projectors/stores/duckdb-analytics.js';
import { noteEvent, notesAnalyticsMigration } from './support/notes.js';

/**
 * The analytics runner's first build with awaitInitialSnapshot (real SQLite event store, real
 * DuckDB file): it reads nothing while the source's stored offset is in its snapshot phase, nor
 * before anything is stored, and applies the whole snapshot once it is stored; without the
 * option it applies the chunks as they come.
 */
const dir = mkdtempSync(join(tmpdir(), 'analytics-await-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const migration = notesAnalyticsMigration('facts');

function appendChunk(store: SqliteEventStore, chunk: number, last: boolean): void {
  const txId = `snap-${chunk}`;
  store.appendSync({
    sourceName: 'test',
    sourceTxId: txId,
    offset: last ? { phase: 'stream', pos: chunk } : { phase: 'snapshot', chunk },
    events: [1, 2].map((i) => {
      const event = noteEvent(chunk * 10 + i, `note ${chunk}.${i}`, txId);
      return { ...event, metadata: { ...event.metadata, sourcePosition: `${txId}:${i}`, snapshot: !last } };
    }),
    deadLetters: [],
  });
}

async function counted(duck: DuckDbAnalytics): Promise<number> {
  const rows = await duck.handles().facts?.query('count');
  return Number(rows?.[0]?.n);
}

describe('analytics first build and the initial snapshot', () => {
  it('waits for the snapshot to be stored when asked to, and applies it as it comes otherwise', async () => {
    const store = new SqliteEventStore(join(dir, 'events.db'));
    const waitingStore = await DuckDbAnalytics.open(join(dir, 'waiting.duckdb'), migration);
    const eagerStore = await DuckDbAnalytics.open(join(dir, 'eager.duckdb'), migration);
    try {
      const waiting = new AnalyticsRunner({
        eventStore: store,
        store: waitingStore,
        awaitInitialSnapshot: true,
      });
      const eager = new AnalyticsRunner({ eventStore: store, store: eagerStore });
      // Before the source stored its first chunk.
      expect(await waiting.step()).toBe(0);
      appendChunk(store, 1, false);
      appendChunk(store, 2, false);
      expect(store.snapshotInProgressSync()).toBe(true);
      expect(await waiting.catchUp()).toBe(0);
      expect(waiting.checkpoint()).toBe(0);
      expect(await counted(waitingStore)).toBe(0);
      expect(await eager.catchUp()).toBe(4);
      expect(await counted(eagerStore)).toBe(4);

      appendChunk(store, 3, true);
      expect(store.snapshotInProgressSync()).toBe(false);
      expect(await waiting.catchUp()).toBe(6);
      expect(waiting.checkpoint()).toBe(store.headPositionSync());
      expect(await counted(waitingStore)).toBe(6);
      expect(await eager.catchUp()).toBe(2);
      expect(await counted(eagerStore)).toBe(6);
    } finally {
      await waitingStore.close();
      await eagerStore.close();
      await store.close();
    }
  });
});
