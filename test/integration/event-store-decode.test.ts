import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NewDomainEvent } from '../../eventstore/ports.js';
import { openSqliteEventStore, type SqliteEventStore } from '../../eventstore/sqlite.js';
import { StoreError } from '../../lib/errors.js';

/**
 * The store trusts its own event rows on read (no schema pass): what it wrote comes back equal,
 * and a row changed behind its back still fails loudly, with its position, instead of reaching
 * a projector.
 */

let dir: string;
let file: string;
let store: SqliteEventStore;

const event = (streamId: string, txId: string, n: number): NewDomainEvent => ({
  streamType: 'account',
  streamId,
  type: 'AccountOpened',
  data: { state: { id: n, name: `a${n}`, nested: [1, { x: null }] }, changes: {} },
  metadata: {
    op: 'c',
    table: 'accounts',
    sourcePosition: `b:1:${n}`,
    sourceOrder: `0001:${n}`,
    sourceTxId: txId,
    sourceTsMs: 1_700_000_000_000 + n,
    snapshot: false,
  },
});

/** Rewrites one stored column the way a foreign tool would: past the append-only trigger and CHECKs. */
function tamper(position: number, column: 'data' | 'metadata', text: string): void {
  const raw = new BetterSqlite3(file);
  try {
    raw.exec('DROP TRIGGER events_append_only_update');
    raw.pragma('ignore_check_constraints = 1');
    raw.prepare(`UPDATE events SET ${column} = ? WHERE position = ?`).run(text, position);
  } finally {
    raw.close();
  }
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 't_event_decode_'));
  file = join(dir, 'events.db');
  store = openSqliteEventStore(file);
  await store.append({
    sourceName: 'legacy',
    sourceTxId: 'tx-1',
    offset: { pos: 1 },
    events: [event('account-1', 'tx-1', 1), event('account-2', 'tx-1', 2)],
    deadLetters: [],
  });
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('SqliteEventStore decoding its own rows', () => {
  it('reads back exactly what it appended', async () => {
    const [first, second] = await store.readAfter(0, 10);
    expect(first).toMatchObject({ position: 1, version: 1, ...event('account-1', 'tx-1', 1) });
    expect(second).toMatchObject({ position: 2, version: 1, ...event('account-2', 'tx-1', 2) });
    expect(await store.readStream('account-2')).toEqual([second]);
  });

  it('fails on a row that is not JSON with a STORE_CORRUPT error naming its position and column', async () => {
    tamper(2, 'data', '{"state": {');
    await expect(store.readAfter(0, 10)).rejects.toSatisfy(
      (err) =>
        err instanceof StoreError &&
        err.code === 'STORE_CORRUPT' &&
        /position=2: data: not valid JSON/.test(err.message) &&
        err.cause instanceof SyntaxError,
    );
    // The rows before it still read.
    expect((await store.readAfter(0, 1)).map((e) => e.position)).toEqual([1]);
  });

  it('fails on metadata that is JSON but not an object', async () => {
    tamper(1, 'metadata', '[1, 2]');
    expect(() => store.readStreamSync('account-1')).toThrow(/position=1: metadata: not a JSON object/);
  });

  it('gives consecutive events with the same metadata text one parsed object, and events with other metadata their own', async () => {
    // A snapshot chunk: every event carries its chunk's metadata.
    const chunk = { ...event('account-3', 'tx-2', 3).metadata, op: 'r' as const, snapshot: true };
    await store.append({
      sourceName: 'legacy',
      sourceTxId: 'tx-2',
      offset: { pos: 2 },
      events: [
        { ...event('account-3', 'tx-2', 3), metadata: chunk },
        { ...event('account-4', 'tx-2', 4), metadata: chunk },
        { ...event('account-5', 'tx-2', 5), metadata: chunk },
        event('account-6', 'tx-2', 6),
      ],
      deadLetters: [],
    });
    const [first, second, third, fourth, fifth, sixth] = await store.readAfter(0, 10);
    expect(third?.metadata).toEqual(chunk);
    expect(fourth?.metadata).toBe(third?.metadata);
    expect(fifth?.metadata).toBe(third?.metadata);
    expect(sixth?.metadata).toEqual(event('account-6', 'tx-2', 6).metadata);
    expect(sixth?.metadata).not.toBe(fifth?.metadata);
    expect(second?.metadata).not.toBe(first?.metadata);
    expect(third?.metadata).not.toBe(second?.metadata);
  });

  it("reads an event stored before sourceOrder existed with '' as its order", async () => {
    const { sourceOrder: _, ...old } = event('account-1', 'tx-1', 1).metadata;
    tamper(1, 'metadata', JSON.stringify(old));
    const [stored] = await store.readStream('account-1');
    expect(stored?.metadata.sourceOrder).toBe('');
  });
});
