import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { startRetention } from '../../cli/retention.js';
import type { ComparisonRecord } from '../../compare/ports.js';
import { SqliteComparisonRecorder } from '../../compare/recorder.js';
import type { ChangeEvent } from '../../connectors/change-event.js';
import { deadLetterMask } from '../../eventstore/dead-letter-mask.js';
import type { DeadLetter } from '../../eventstore/ports.js';
import { SqliteEventStore } from '../../eventstore/sqlite.js';
import { loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { maskValue } from '../../lib/masking.js';

/** Retention and masking on the real SQLite stores: what is pruned, what stays, what is stored. */
const dir = mkdtempSync(join(tmpdir(), 'cqrs-retention-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DAY = 86_400_000;
const NOW = new Date('2026-06-01T12:00:00Z');

function comparison(i: number, recordedAt: Date): ComparisonRecord {
  return {
    recordedAt,
    endpoint: 'accounts.summary',
    requestKey: `accountId=${i}`,
    subject: String(i),
    mode: 'shadow',
    servedBy: 'legacy',
    outcome: i % 2 === 0 ? 'mismatch' : 'match',
    differences:
      i % 2 === 0 ? [{ path: 'balance.available', kind: 'changed', legacy: '1', readModel: '2' }] : [],
    error: null,
    attempts: 1,
    legacyMs: 1,
    readModelMs: 1,
  };
}

function letter(i: number, email: string): DeadLetter {
  const change: ChangeEvent = {
    before: null,
    after: { id: i, email, first_name: 'Ada' },
    op: 'c',
    ts_ms: 1,
    transaction: null,
    source: {
      version: '1',
      connector: 'mariadb',
      name: 'legacy',
      ts_ms: 1,
      snapshot: 'false',
      db: 'bank',
      table: 'customers',
    },
  };
  return {
    reason: 'after row rejected',
    table: 'customers',
    op: 'c',
    sourcePosition: `binlog.000001:${i}:0`,
    sourceTxId: `tx-${i}`,
    change,
  };
}

describe('comparison retention', () => {
  it('prunes by age then by count in small batches, with their paths, and keeps the newest', async () => {
    const path = join(dir, 'compare.db');
    const recorder = new SqliteComparisonRecorder({ path });
    // 30 records, one per day, oldest first: days 29..0 before NOW.
    for (let i = 0; i < 30; i++) recorder.record(comparison(i, new Date(NOW.getTime() - (29 - i) * DAY)));
    expect(await recorder.prune({ maxAgeMs: 0, maxRows: 0, batchRows: 4 }, NOW)).toBe(0);

    expect(await recorder.prune({ maxAgeMs: 7 * DAY, maxRows: 0, batchRows: 4 }, NOW)).toBe(22);
    const kept = recorder.list({ limit: 100 });
    expect(kept).toHaveLength(8);
    expect(kept.every((c) => new Date(c.recordedAt).getTime() >= NOW.getTime() - 7 * DAY)).toBe(true);
    expect(await recorder.prune({ maxAgeMs: 7 * DAY, maxRows: 0, batchRows: 4 }, NOW)).toBe(0);

    expect(await recorder.prune({ maxAgeMs: 0, maxRows: 3, batchRows: 2 }, NOW)).toBe(5);
    expect(recorder.list({ limit: 100 }).map((c) => c.requestKey)).toEqual([
      'accountId=29',
      'accountId=28',
      'accountId=27',
    ]);
    // The report's path ranking forgot the pruned comparisons too (ON DELETE CASCADE).
    expect(recorder.stats().endpoints[0]?.topPaths).toMatchObject([{ path: 'balance.available', count: 1 }]);
    recorder.close();
    const raw = new Database(path, { readonly: true });
    expect(raw.prepare('SELECT COUNT(*) AS n FROM comparison_paths').get()).toEqual({ n: 1 });
    raw.close();
  });
});

describe('dead letters', () => {
  it('are stored with sensitive columns masked and pruned by age and count', async () => {
    const store = new SqliteEventStore(join(dir, 'events.db'), {
      maskDeadLetter: deadLetterMask(new Map([['customers', ['email', 'first_name']]])),
    });
    for (let i = 1; i <= 12; i++) {
      await store.append({
        sourceName: 'legacy',
        sourceTxId: `tx-${i}`,
        offset: { i },
        events: [],
        deadLetters: [letter(i, `user${i}@example.test`)],
      });
      // Distinct recorded_at per letter, so an age cutoff can fall between two of them.
      await new Promise((r) => setTimeout(r, 5));
    }
    const stored = await store.listDeadLetters(100);
    expect(stored).toHaveLength(12);
    expect(stored[0]?.change.after).toEqual({
      id: 1,
      email: maskValue('user1@example.test'),
      first_name: maskValue('Ada'),
    });
    expect(JSON.stringify(stored)).not.toContain('@example.test');

    // As if 30 days had passed since the fifth letter was recorded: the first four are older.
    const fifth = new Date(stored[4]?.recordedAt as string).getTime();
    const policy = { maxAgeMs: 30 * DAY, maxRows: 0, batchRows: 3 };
    expect(await store.pruneDeadLetters(policy, new Date(fifth + 30 * DAY))).toBe(4);
    expect((await store.listDeadLetters(100)).map((d) => d.sourceTxId)[0]).toBe('tx-5');
    expect(await store.pruneDeadLetters({ maxAgeMs: 0, maxRows: 5, batchRows: 2 })).toBe(3);
    expect((await store.listDeadLetters(100)).map((d) => d.sourceTxId)).toEqual([
      'tx-8',
      'tx-9',
      'tx-10',
      'tx-11',
      'tx-12',
    ]);
    expect(await store.countDeadLetters()).toBe(5);
    // Everything is older than the age limit: all go.
    expect(
      await store.pruneDeadLetters(
        { maxAgeMs: DAY, maxRows: 0, batchRows: 2 },
        new Date(Date.now() + 2 * DAY),
      ),
    ).toBe(5);
    expect(await store.countDeadLetters()).toBe(0);
    await store.close();
  });
});

describe('startRetention', () => {
  it('prunes on its interval until stopped', async () => {
    writeFileSync(join(dir, 'config.json'), '{}');
    const config = loadConfig({
      env: {},
      file: join(dir, 'config.json'),
      overrides: { retention: { intervalSec: 1, comparisonsMaxRows: 2, deadLettersMaxRows: 1 } },
    });
    const recorder = new SqliteComparisonRecorder({ path: ':memory:' });
    for (let i = 0; i < 5; i++) recorder.record(comparison(i, new Date()));
    const store = new SqliteEventStore(':memory:');
    for (let i = 1; i <= 3; i++)
      await store.append({
        sourceName: 'legacy',
        sourceTxId: `tx-${i}`,
        offset: { i },
        events: [],
        deadLetters: [letter(i, 'x@y')],
      });
    const retention = startRetention(config, { comparisons: recorder, deadLetters: store }, silentLogger);
    const deadline = Date.now() + 20_000;
    while (recorder.list().length > 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await retention.stop();
    expect(recorder.list()).toHaveLength(2);
    expect(await store.countDeadLetters()).toBe(1);
    recorder.close();
    await store.close();
  });
});
