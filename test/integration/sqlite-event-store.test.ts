import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ChangeEvent } from '../../connectors/change-event.js';
import { mapTransaction } from '../../connectors/mapping/mapper.js';
import type { AppendBatch, DeadLetter, NewDomainEvent } from '../../eventstore/ports.js';
import { openSqliteEventStore, type SqliteEventStore } from '../../eventstore/sqlite.js';
import bank from '../../examples/bank/migration.js';
import { StoreError } from '../../lib/errors.js';
import { applyMigrations, migrationFiles } from '../../migrations/sqlite.js';

let dir: string;
let file: string;
const open: SqliteEventStore[] = [];

function store(): SqliteEventStore {
  const s = openSqliteEventStore(file);
  open.push(s);
  return s;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 't_eventstore_'));
  file = join(dir, 'events.sqlite');
});

afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

function event(
  streamId: string,
  type: string,
  txId: string,
  sourcePosition: string,
  snapshot = false,
): NewDomainEvent {
  return {
    streamType: streamId.split('-')[0] ?? 'x',
    streamId,
    type,
    data: { state: { id: streamId, amount: '12.3400', at: '2024-05-01 09:30:00.000001' }, changes: {} },
    metadata: {
      op: snapshot ? 'r' : 'c',
      table: 't',
      sourcePosition,
      sourceOrder: sourcePosition,
      sourceTxId: txId,
      sourceTsMs: 1_700_000_000_000,
      snapshot,
    },
  };
}

function changeEvent(table: string, pos: number): ChangeEvent {
  return {
    before: null,
    after: { id: pos, amount: 'not money' },
    op: 'c',
    ts_ms: 1_700_000_000_500,
    transaction: null,
    source: {
      version: 'test',
      connector: 'mariadb',
      name: 'legacy',
      ts_ms: 1_700_000_000_000,
      snapshot: 'false',
      db: 'legacy',
      table,
      file: 'binlog.000001',
      pos,
      row: 0,
    },
  };
}

function deadLetter(txId: string, pos: number): DeadLetter {
  return {
    reason: `legacy.balances op c: after row rejected (${pos})`,
    table: 'balances',
    op: 'c',
    sourcePosition: `binlog.000001:${pos}:0`,
    sourceTxId: txId,
    change: changeEvent('balances', pos),
  };
}

function batch(txId: string, events: NewDomainEvent[], deadLetters: DeadLetter[] = [], pos = 0): AppendBatch {
  return {
    sourceName: 'legacy',
    sourceTxId: txId,
    offset: { file: 'binlog.000001', pos, gtid: txId },
    events,
    deadLetters,
  };
}

describe('SqliteEventStore', () => {
  it('assigns gap-free positions and per-stream versions in append order', async () => {
    const s = store();
    expect(await s.headPosition()).toBe(0);
    const r1 = await s.append(
      batch('0-1-1', [
        event('account-1', 'AccountOpened', '0-1-1', 'b:10:0'),
        event('account-2', 'AccountOpened', '0-1-1', 'b:10:1'),
      ]),
    );
    const r2 = await s.append(batch('0-1-2', [], [deadLetter('0-1-2', 20)]));
    const r3 = await s.append(
      batch('0-1-3', [
        event('account-1', 'BalanceChanged', '0-1-3', 'b:30:0'),
        event('account-1', 'TransactionPosted', '0-1-3', 'b:31:0'),
        event('account-2', 'AccountStatusChanged', '0-1-3', 'b:32:0'),
      ]),
    );
    expect([r1, r2, r3]).toEqual([
      { firstPosition: 1, lastPosition: 2, duplicate: false },
      { firstPosition: null, lastPosition: null, duplicate: false },
      { firstPosition: 3, lastPosition: 5, duplicate: false },
    ]);
    const all = await s.readAfter(0, 100);
    expect(all.map((e) => [e.position, e.streamId, e.version, e.type])).toEqual([
      [1, 'account-1', 1, 'AccountOpened'],
      [2, 'account-2', 1, 'AccountOpened'],
      [3, 'account-1', 2, 'BalanceChanged'],
      [4, 'account-1', 3, 'TransactionPosted'],
      [5, 'account-2', 2, 'AccountStatusChanged'],
    ]);
    expect(await s.headPosition()).toBe(5);
    expect((await s.readStream('account-1')).map((e) => [e.version, e.position])).toEqual([
      [1, 1],
      [2, 3],
      [3, 4],
    ]);
    expect(await s.readStream('account-404')).toEqual([]);
    // Data, metadata and exact decimal/datetime strings come back as appended.
    const stored = all[2]!;
    const appended = event('account-1', 'BalanceChanged', '0-1-3', 'b:30:0');
    expect(stored.data).toEqual(appended.data);
    expect(stored.metadata).toEqual(appended.metadata);
    expect(stored.streamType).toBe('account');
    expect(Number.isNaN(Date.parse(stored.recordedAt))).toBe(false);
  });

  it('pages through readAfter without gaps or repeats', async () => {
    const s = store();
    for (let i = 1; i <= 7; i++)
      await s.append(batch(`0-1-${i}`, [event(`loan-${i % 3}`, 'LoanUpdated', `0-1-${i}`, `b:${i}:0`)]));
    const seen: number[] = [];
    let after = 0;
    for (;;) {
      const page = s.readAfterSync(after, 3);
      if (page.length === 0) break;
      expect(page.length).toBeLessThanOrEqual(3);
      seen.push(...page.map((e) => e.position));
      after = page[page.length - 1]!.position;
    }
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(await s.readAfter(5, 10)).toHaveLength(2);
    await expect(s.readAfter(0, 0)).rejects.toThrow(StoreError);
  });

  it('stores the offset with the events and keeps everything across reopen', async () => {
    const s = store();
    expect(await s.loadOffset('legacy')).toBeNull();
    await s.append(batch('0-1-1', [event('card-1', 'CardIssued', '0-1-1', 'b:1:0')], [], 111));
    await s.append(
      batch('0-1-2', [event('card-1', 'CardStatusChanged', '0-1-2', 'b:2:0')], [deadLetter('0-1-2', 2)], 222),
    );
    const before = await s.readAfter(0, 100);
    await s.close();

    const reopened = store();
    expect(await reopened.loadOffset('legacy')).toEqual({ file: 'binlog.000001', pos: 222, gtid: '0-1-2' });
    expect(await reopened.loadOffset('other-source')).toBeNull();
    expect(await reopened.readAfter(0, 100)).toEqual(before);
    expect(await reopened.countDeadLetters()).toBe(1);
    // Versions continue from what the file holds.
    await reopened.append(batch('0-1-3', [event('card-1', 'CardUpdated', '0-1-3', 'b:3:0')], [], 333));
    expect((await reopened.readStream('card-1')).map((e) => e.version)).toEqual([1, 2, 3]);
    // Migrations ran once.
    const raw = new BetterSqlite3(file, { readonly: true });
    try {
      expect(raw.prepare('SELECT name FROM schema_migrations').all()).toEqual([
        { name: '001_event_store.sql' },
        { name: '002_operations.sql' },
        { name: '003_staging.sql' },
        { name: '004_commit_time.sql' },
      ]);
    } finally {
      raw.close();
    }
  });

  it('finds the last position committed at or before a time, as a prefix of the store', async () => {
    const s = store();
    const at = (e: NewDomainEvent, sourceTsMs: number): NewDomainEvent => ({
      ...e,
      metadata: { ...e.metadata, sourceTsMs },
    });
    expect(s.positionAtSync(2_000)).toBe(0);
    await s.append(batch('0-1-1', [at(event('account-1', 'AccountOpened', '0-1-1', 'b:1:0'), 1_000)]));
    await s.append(
      batch('0-1-2', [
        at(event('account-1', 'AccountUpdated', '0-1-2', 'b:2:0'), 2_000),
        at(event('account-2', 'AccountOpened', '0-1-2', 'b:2:1'), 2_000),
      ]),
    );
    await s.append(batch('0-1-3', [at(event('account-2', 'AccountUpdated', '0-1-3', 'b:3:0'), 3_000)]));
    // Stamped earlier but stored last (a re-driven dead letter): it does not pull T=2000 forward.
    await s.append(batch('0-1-4', [at(event('account-3', 'AccountOpened', '0-1-4', 'b:4:0'), 1_500)]));
    expect(s.positionAtSync(999)).toBe(0);
    expect(s.positionAtSync(1_000)).toBe(1);
    expect(s.positionAtSync(1_999)).toBe(1);
    expect(s.positionAtSync(2_000)).toBe(3);
    expect(s.positionAtSync(2_999)).toBe(3);
    expect(s.positionAtSync(3_000)).toBe(5);
    expect(s.positionAtSync(9_000)).toBe(5);
  });

  it('rolls back events, dead letters and offset together when an append fails', async () => {
    const s = store();
    await s.append(batch('0-1-1', [event('payment-1', 'PaymentCreated', '0-1-1', 'b:1:0')], [], 100));
    // Same binlog row and event type under another transaction id: the idempotency key rejects it,
    // after the first event of the batch has already been inserted.
    const failing = batch(
      '0-1-2',
      [
        event('payment-2', 'PaymentCreated', '0-1-2', 'b:9:0'),
        event('payment-1', 'PaymentCreated', '0-1-2', 'b:1:0'),
      ],
      [deadLetter('0-1-2', 9)],
      200,
    );
    await expect(s.append(failing)).rejects.toThrow(StoreError);
    await s.close();

    const reopened = store();
    expect(await reopened.headPosition()).toBe(1);
    expect(await reopened.readStream('payment-2')).toEqual([]);
    expect(await reopened.countDeadLetters()).toBe(0);
    expect(await reopened.loadOffset('legacy')).toMatchObject({ pos: 100 });
    // The transaction was not recorded as seen: a corrected retry goes through.
    const retry = await reopened.append(
      batch('0-1-2', [event('payment-2', 'PaymentCreated', '0-1-2', 'b:9:0')], [], 200),
    );
    expect(retry).toEqual({ firstPosition: 2, lastPosition: 2, duplicate: false });
  });

  it('treats a replayed streamed transaction as a no-op that still advances the offset', async () => {
    const s = store();
    const first = batch(
      '0-1-7',
      [event('transfer-1', 'TransferInitiated', '0-1-7', 'b:7:0')],
      [deadLetter('0-1-7', 7)],
      700,
    );
    await s.append(first);
    const replay = { ...first, offset: { file: 'binlog.000001', pos: 701, gtid: '0-1-7' } };
    expect(await s.append(replay)).toEqual({ firstPosition: null, lastPosition: null, duplicate: true });
    expect(await s.headPosition()).toBe(1);
    expect(await s.countDeadLetters()).toBe(1);
    expect(await s.loadOffset('legacy')).toMatchObject({ pos: 701 });
    // The same transaction id from another source is a different transaction.
    const elsewhere = await s.append({
      ...first,
      sourceName: 'other',
      events: [event('transfer-9', 'TransferInitiated', '0-1-7', 'b2:7:0')],
    });
    expect(elsewhere.duplicate).toBe(false);
  });

  it('always appends snapshot chunks, so a redone snapshot is applied', async () => {
    const s = store();
    const chunk = (amount: string) =>
      batch('snapshot:balances:1', [
        {
          ...event('account-1', 'BalanceInitialized', 'snapshot:balances:1', 'b:4:0', true),
          data: { state: { amount }, changes: {} },
        },
      ]);
    expect(await s.append(chunk('1.0000'))).toEqual({ firstPosition: 1, lastPosition: 1, duplicate: false });
    expect(await s.append(chunk('2.0000'))).toEqual({ firstPosition: 2, lastPosition: 2, duplicate: false });
    const stream = await s.readStream('account-1');
    expect(stream.map((e) => [e.version, e.data])).toEqual([
      [1, { state: { amount: '1.0000' }, changes: {} }],
      [2, { state: { amount: '2.0000' }, changes: {} }],
    ]);
  });

  it('lists dead letters in id order with paging and counts them', async () => {
    const s = store();
    await s.append(batch('0-1-1', [], [deadLetter('0-1-1', 1), deadLetter('0-1-1', 2)]));
    await s.append(
      batch('0-1-2', [event('account-1', 'AccountOpened', '0-1-2', 'b:3:0')], [deadLetter('0-1-2', 4)]),
    );
    expect(await s.countDeadLetters()).toBe(3);
    const all = await s.listDeadLetters(10);
    expect(all.map((d) => [d.id, d.sourceTxId, d.sourcePosition])).toEqual([
      [1, '0-1-1', 'binlog.000001:1:0'],
      [2, '0-1-1', 'binlog.000001:2:0'],
      [3, '0-1-2', 'binlog.000001:4:0'],
    ]);
    const original = deadLetter('0-1-1', 2);
    expect(all[1]).toMatchObject({
      reason: original.reason,
      table: 'balances',
      op: 'c',
      change: original.change,
    });
    expect((await s.listDeadLetters(1, 1)).map((d) => d.id)).toEqual([2]);
    expect(await s.listDeadLetters(10, 3)).toEqual([]);
  });

  it('stores what the bank mapping produces, dead letters included', async () => {
    const s = store();
    const row = {
      account_id: 3,
      available: '5.0000',
      ledger: '5.0000',
      updated_at: '2024-05-01 09:30:00.000001',
    };
    const good = { ...changeEvent('balances', 50), after: row };
    const bad = { ...changeEvent('balances', 51), after: { ...row, account_id: 4, available: '5.5' } };
    const mapped = mapTransaction(
      { id: '0-1-50', events: [good, bad], offset: { pos: 52 }, snapshot: false },
      bank.rules,
    );
    await s.append({ sourceName: 'legacy', sourceTxId: '0-1-50', offset: { pos: 52 }, ...mapped });
    const [stored] = await s.readStream('account-3');
    expect(stored).toMatchObject({
      type: 'BalanceInitialized',
      version: 1,
      data: { state: { available: '5.0000' } },
    });
    const [letter] = await s.listDeadLetters(10);
    expect(letter?.reason).toContain('available: expected a DECIMAL(19,4) string');
  });

  it('rejects a batch whose events name another source transaction', async () => {
    const s = store();
    await expect(s.append(batch('0-1-1', [event('a-1', 'X', '0-1-9', 'b:1:0')]))).rejects.toThrow(
      /carries source transaction 0-1-9/,
    );
    expect(await s.headPosition()).toBe(0);
  });

  it('refuses updates and deletes of stored events', async () => {
    const s = store();
    await s.append(batch('0-1-1', [event('a-1', 'X', '0-1-1', 'b:1:0')]));
    const raw = new BetterSqlite3(file);
    try {
      expect(() => raw.prepare("UPDATE events SET type = 'Y'").run()).toThrow(/append-only/);
      expect(() => raw.prepare('DELETE FROM events').run()).toThrow(/append-only/);
    } finally {
      raw.close();
    }
    expect((await s.readAfter(0, 10)).map((e) => e.type)).toEqual(['X']);
  });
});

describe('SqliteEventStore, a transaction in fragments', () => {
  const fragmentOf = (
    txId: string,
    index: number,
    last: boolean,
    events: NewDomainEvent[],
    deadLetters: DeadLetter[] = [],
    pos = 0,
  ): AppendBatch => ({ ...batch(txId, events, deadLetters, pos), fragment: { index, last } });
  const rows = (txId: string, from: number, n: number) =>
    Array.from({ length: n }, (_v, i) =>
      event(`account-${(from + i) % 3}`, 'BalanceChanged', txId, `b:${from + i}:0`),
    );
  const offsetOf = (s: SqliteEventStore) => s.loadOffsetSync('legacy');

  it('stages unfinished fragments out of sight, then publishes them all with the last one', async () => {
    const s = store();
    await s.append(batch('0-1-1', [event('account-0', 'AccountOpened', '0-1-1', 'b:1:0')], [], 10));
    const r0 = await s.append(
      fragmentOf('0-1-2', 0, false, rows('0-1-2', 100, 3), [deadLetter('0-1-2', 103)], 99),
    );
    const r1 = await s.append(fragmentOf('0-1-2', 1, false, rows('0-1-2', 200, 3), [], 99));
    expect([r0, r1]).toEqual([
      { firstPosition: null, lastPosition: null, duplicate: false, staged: true },
      { firstPosition: null, lastPosition: null, duplicate: false, staged: true },
    ]);
    // Nothing of the transaction is visible, and the offset stays before it.
    expect(await s.headPosition()).toBe(1);
    expect(await s.readAfter(1, 100)).toEqual([]);
    expect(await s.countDeadLetters()).toBe(0);
    expect(offsetOf(s)).toMatchObject({ pos: 10 });

    const r2 = await s.append(
      fragmentOf('0-1-2', 2, true, rows('0-1-2', 300, 2), [deadLetter('0-1-2', 302)], 400),
    );
    expect(r2).toEqual({ firstPosition: 2, lastPosition: 9, duplicate: false });
    const all = await s.readAfter(1, 100);
    expect(all.map((e) => e.metadata.sourcePosition)).toEqual([
      'b:100:0',
      'b:101:0',
      'b:102:0',
      'b:200:0',
      'b:201:0',
      'b:202:0',
      'b:300:0',
      'b:301:0',
    ]);
    // Versions count on across fragments per stream, as one append of the whole would.
    expect((await s.readStream('account-0')).map((e) => [e.version, e.position])).toEqual([
      [1, 1],
      [2, 4],
      [3, 6],
      [4, 8],
    ]);
    expect((await s.listDeadLetters(10)).map((d) => d.sourcePosition)).toEqual([
      'binlog.000001:103:0',
      'binlog.000001:302:0',
    ]);
    expect(offsetOf(s)).toMatchObject({ pos: 400 });
    const raw = new BetterSqlite3(file, { readonly: true });
    try {
      expect(raw.prepare('SELECT COUNT(*) AS n FROM staged_items').get()).toEqual({ n: 0 });
      expect(
        raw
          .prepare(
            "SELECT first_position, last_position, dead_letter_count FROM source_transactions WHERE source_tx_id = '0-1-2'",
          )
          .get(),
      ).toEqual({ first_position: 2, last_position: 9, dead_letter_count: 2 });
    } finally {
      raw.close();
    }
  });

  it('publishes more staged rows than one page holds, in order', async () => {
    const s = store();
    const total = 5003;
    await s.append(fragmentOf('0-1-5', 0, false, rows('0-1-5', 0, 2500)));
    await s.append(fragmentOf('0-1-5', 1, false, rows('0-1-5', 2500, 2500)));
    await s.append(fragmentOf('0-1-5', 2, true, rows('0-1-5', 5000, 3), [], 9));
    const all = await s.readAfter(0, 10_000);
    expect(all.map((e) => e.metadata.sourcePosition)).toEqual(
      Array.from({ length: total }, (_v, i) => `b:${i}:0`),
    );
    expect(all.map((e) => e.position)).toEqual(Array.from({ length: total }, (_v, i) => i + 1));
  });

  it('starts over when a transaction interrupted mid-way is delivered again from its first fragment', async () => {
    const first = store();
    await first.append(fragmentOf('0-1-7', 0, false, rows('0-1-7', 0, 3)));
    await first.append(fragmentOf('0-1-7', 1, false, rows('0-1-7', 3, 3)));
    // kill -9 here: the staged rows stay on disk, the offset before the transaction.
    await first.close();
    const s = store();
    expect(offsetOf(s)).toBeNull();
    await s.append(fragmentOf('0-1-7', 0, false, rows('0-1-7', 0, 3)));
    await s.append(fragmentOf('0-1-7', 1, false, rows('0-1-7', 3, 3)));
    await s.append(fragmentOf('0-1-7', 2, true, rows('0-1-7', 6, 1), [], 70));
    expect((await s.readAfter(0, 100)).map((e) => e.metadata.sourcePosition)).toEqual(
      Array.from({ length: 7 }, (_v, i) => `b:${i}:0`),
    );
  });

  it('skips every fragment of a transaction already stored, yet moves the offset at its last one', async () => {
    const s = store();
    await s.append(fragmentOf('0-1-8', 0, false, rows('0-1-8', 0, 2)));
    await s.append(fragmentOf('0-1-8', 1, true, rows('0-1-8', 2, 2), [], 50));
    expect(await s.headPosition()).toBe(4);
    const again = [
      await s.append(fragmentOf('0-1-8', 0, false, rows('0-1-8', 0, 2))),
      await s.append(fragmentOf('0-1-8', 1, true, rows('0-1-8', 2, 2), [], 60)),
    ];
    expect(again).toEqual([
      { firstPosition: null, lastPosition: null, duplicate: true },
      { firstPosition: null, lastPosition: null, duplicate: true },
    ]);
    expect(await s.headPosition()).toBe(4);
    expect(offsetOf(s)).toMatchObject({ pos: 60 });
    // A whole-transaction replay of it is a duplicate too.
    expect((await s.append(batch('0-1-8', rows('0-1-8', 0, 4), [], 61))).duplicate).toBe(true);
  });

  it('refuses a fragment that does not follow the one staged before it', async () => {
    const s = store();
    await s.append(fragmentOf('0-1-9', 0, false, rows('0-1-9', 0, 2)));
    await expect(s.append(fragmentOf('0-1-9', 2, false, rows('0-1-9', 4, 2)))).rejects.toThrow(
      /fragment 2 of source transaction 0-1-9 arrived after fragment 0/,
    );
    await expect(s.append(fragmentOf('0-1-10', 1, true, rows('0-1-10', 0, 2)))).rejects.toThrow(
      /arrived after no staged fragment/,
    );
    expect(await s.headPosition()).toBe(0);
  });
});

describe('applyMigrations', () => {
  it('applies numbered files once each, in numeric order, and rolls back a failing one', () => {
    const folder = join(dir, 'migrations');
    mkdirSync(folder);
    const write = (name: string, sql: string) => writeFileSync(join(folder, name), sql);
    write('010_second.sql', 'INSERT INTO t (v) VALUES (2);');
    write('002_first.sql', 'CREATE TABLE t (v INTEGER); INSERT INTO t (v) VALUES (1);');
    write('notes.txt', 'ignored');
    const db = new BetterSqlite3(join(dir, 'm.sqlite'));
    try {
      const files = migrationFiles(folder);
      expect(files.map((f) => f.slice(folder.length + 1))).toEqual(['002_first.sql', '010_second.sql']);
      expect(applyMigrations(db, files)).toEqual(['002_first.sql', '010_second.sql']);
      expect(applyMigrations(db, files)).toEqual([]);
      expect(db.prepare('SELECT v FROM t ORDER BY v').all()).toEqual([{ v: 1 }, { v: 2 }]);

      write('011_broken.sql', 'INSERT INTO t (v) VALUES (3); INSERT INTO missing VALUES (1);');
      expect(() => applyMigrations(db, migrationFiles(folder))).toThrow(StoreError);
      expect(db.prepare('SELECT COUNT(*) AS n FROM t').get()).toEqual({ n: 2 });
      expect(db.prepare('SELECT COUNT(*) AS n FROM schema_migrations').get()).toEqual({ n: 2 });
      expect(migrationFiles(folder, ['010_second.sql'])).toEqual([join(folder, '010_second.sql')]);
    } finally {
      db.close();
    }
  });
});
