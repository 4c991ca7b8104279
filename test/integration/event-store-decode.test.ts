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

  it("reads an event stored before sourceOrder existed with '' as its order", async () => {
    const { sourceOrder: _, ...old } = event('account-1', 'tx-1', 1).metadata;
    tamper(1, 'metadata', JSON.stringify(old));
    const [stored] = await store.readStream('account-1');
    expect(stored?.metadata.sourceOrder).toBe('');
  });
});
