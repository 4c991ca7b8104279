import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ChangeEvent } from '../../connectors/change-event.js';
import { AppendThread, WriterLostError } from '../../eventstore/append-thread.js';
import { encodeBatch } from '../../eventstore/event-encoding.js';
import type { AppendBatch, DeadLetter, NewDomainEvent } from '../../eventstore/ports.js';
import { openSqliteEventStore, type SqliteEventStore } from '../../eventstore/sqlite.js';

/**
 * The embedded pipeline's event store writer thread: what it appends is what a reader on its
 * own connection sees once the append resolved, the store's own refusals come back with their
 * code, and a thread that dies fails the append in flight as retriable and is replaced.
 */
let dir: string;
let thread: AppendThread;
let reader: SqliteEventStore;

const posting = (txId: string, id: string, extra: Record<string, unknown> = {}): NewDomainEvent => ({
  streamType: 'account',
  streamId: `account-${id}`,
  type: 'PostingRecorded',
  data: { state: { id, amount: '1.0000', card: '4111111111111111', ...extra }, changes: {} },
  metadata: {
    op: 'c',
    table: 'transactions',
    sourcePosition: `${txId}:${id}`,
    sourceOrder: `${txId}:${id}`,
    sourceTxId: txId,
    sourceTsMs: 1_700_000_000_000,
    snapshot: false,
  },
});

const batch = (txId: string, pos: number, events: NewDomainEvent[]): AppendBatch => ({
  sourceName: 'legacy',
  sourceTxId: txId,
  offset: { file: 'binlog.000001', pos, gtid: txId },
  events,
  deadLetters: [],
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 't_append_thread_'));
  const path = join(dir, 'events.db');
  reader = openSqliteEventStore(path);
  thread = new AppendThread({ path, sensitiveColumns: new Map([['transactions', ['card']]]) });
});

afterEach(async () => {
  await thread.close();
  await reader.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the event store writer thread', () => {
  it('appends on its own connection: a reader sees the transaction and its offset once the append resolved', async () => {
    const result = await thread.append(batch('0-1-1', 10, [posting('0-1-1', '1'), posting('0-1-1', '2')]));
    expect(result).toMatchObject({ firstPosition: 1, lastPosition: 2, duplicate: false });
    expect(reader.readAfterSync(0, 10).map((e) => e.streamId)).toEqual(['account-1', 'account-2']);
    expect(await reader.loadOffset('legacy')).toEqual({ file: 'binlog.000001', pos: 10, gtid: '0-1-1' });
    // Delivered again (a source restarted from an older offset): recognised, not stored twice.
    expect(await thread.append(batch('0-1-1', 10, [posting('0-1-1', '1')]))).toMatchObject({
      duplicate: true,
    });
    expect(reader.headPositionSync()).toBe(2);
  });

  it('appends several transactions in one write transaction: in order with their own results, or none of them', async () => {
    const first = await thread.appendEncodedMany([
      encodeBatch(batch('0-1-5', 50, [posting('0-1-5', '1')])),
      encodeBatch(batch('0-1-6', 60, [posting('0-1-6', '2'), posting('0-1-6', '3')])),
    ]);
    expect(first).toEqual([
      expect.objectContaining({ firstPosition: 1, lastPosition: 1, duplicate: false }),
      expect.objectContaining({ firstPosition: 2, lastPosition: 3, duplicate: false }),
    ]);
    expect(await reader.loadOffset('legacy')).toEqual({ file: 'binlog.000001', pos: 60, gtid: '0-1-6' });
    // Delivered again from an older offset (a restarted source) and on: repeats recognised.
    const again = await thread.appendEncodedMany([
      encodeBatch(batch('0-1-6', 60, [posting('0-1-6', '2'), posting('0-1-6', '3')])),
      encodeBatch(batch('0-1-7', 70, [posting('0-1-7', '4')])),
    ]);
    expect(again).toEqual([
      expect.objectContaining({ duplicate: true }),
      expect.objectContaining({ firstPosition: 4, lastPosition: 4, duplicate: false }),
    ]);
    expect(reader.readAfterSync(0, 10).map((e) => e.streamId)).toEqual([
      'account-1',
      'account-2',
      'account-3',
      'account-4',
    ]);
    expect(await reader.loadOffset('legacy')).toEqual({ file: 'binlog.000001', pos: 70, gtid: '0-1-7' });
    // A group with a transaction the store refuses stores none of it, nor its offsets.
    await expect(
      thread.appendEncodedMany([
        encodeBatch(batch('0-1-8', 80, [posting('0-1-8', '5')])),
        encodeBatch(batch('0-1-9', 90, [posting('0-1-10', '6')])),
      ]),
    ).rejects.toMatchObject({ code: 'STORE_BAD_BATCH' });
    expect(reader.headPositionSync()).toBe(4);
    expect(await reader.loadOffset('legacy')).toEqual({ file: 'binlog.000001', pos: 70, gtid: '0-1-7' });
  });

  it("returns the store's refusal with its code, and masks dead letters' sensitive columns in the thread", async () => {
    const wrongTx = batch('0-1-2', 20, [posting('0-1-9', '3')]);
    await expect(thread.append(wrongTx)).rejects.toMatchObject({ code: 'STORE_BAD_BATCH' });
    const change: ChangeEvent = {
      before: null,
      after: { id: 4, amount: 'not money', card: '4111111111111111' },
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
        table: 'transactions',
        file: 'binlog.000001',
        pos: 30,
        row: 0,
      },
    };
    const letter: DeadLetter = {
      reason: 'amount is not a decimal',
      table: 'transactions',
      op: 'c',
      sourcePosition: '0-1-3',
      sourceTxId: '0-1-3',
      change,
    };
    await thread.append({ ...batch('0-1-3', 30, []), deadLetters: [letter] });
    const [stored] = await reader.listDeadLetters(10);
    expect(stored?.reason).toBe('amount is not a decimal');
    expect(JSON.stringify(stored)).not.toContain('4111111111111111');
  });

  it('fails the append in flight as retriable when the thread dies, and starts a new one for the next', async () => {
    await thread.start();
    const worker = (thread as unknown as { worker: Worker }).worker;
    const inFlight = thread.append(batch('0-1-4', 40, [posting('0-1-4', '5')]));
    await worker.terminate();
    const err = await inFlight.then(
      () => null,
      (e: unknown) => e,
    );
    // Either the thread committed before it died, or the append failed as retriable: never a silent loss.
    if (err !== null) {
      expect(err).toBeInstanceOf(WriterLostError);
      expect((err as WriterLostError).retriable).toBe(true);
    }
    await thread.append(batch('0-1-4', 40, [posting('0-1-4', '5')]));
    await thread.append(batch('0-1-5', 50, [posting('0-1-5', '6')]));
    expect(reader.readAfterSync(0, 10).map((e) => e.metadata.sourceTxId)).toEqual(['0-1-4', '0-1-5']);
  });
});
