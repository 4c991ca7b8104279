import { describe, expect, it } from 'vitest';
import type { ChangeEvent } from '../../connectors/change-event.js';
import type { TransactionMarker } from '../../connectors/debezium/record.js';
import {
  type Dropped,
  type RecordRef,
  TransactionReassembler,
} from '../../connectors/kafka/transaction-reassembler.js';

const TX = 'bank.transaction';
const ACC = 'bank.bank.accounts';
const BAL = 'bank.bank.balances';

function change(
  table: string,
  id: number,
  tx: { id: string; order: number } | null,
  snapshot: ChangeEvent['source']['snapshot'] = 'false',
): ChangeEvent {
  return {
    before: null,
    after: { id },
    op: snapshot === 'false' ? 'c' : 'r',
    ts_ms: 1,
    source: { version: '3.1', connector: 'mariadb', name: 'bank', ts_ms: 1, snapshot, db: 'bank', table },
    transaction: tx ? { id: tx.id, total_order: tx.order, data_collection_order: 1 } : null,
  };
}

function end(id: string, counts: Record<string, number>): TransactionMarker {
  return {
    status: 'END',
    id,
    ts_ms: 1,
    event_count: Object.values(counts).reduce((a, b) => a + b, 0),
    data_collections: Object.entries(counts).map(([data_collection, event_count]) => ({
      data_collection,
      event_count,
    })),
  };
}

const ref = (topic: string, offset: number): RecordRef => ({ topic, partition: 0, offset: String(offset) });

function reassembler(chunk = 100, clock = { ms: 0 }, drops: Dropped[] = []) {
  return new TransactionReassembler({
    collections: new Map([
      ['bank.accounts', ACC],
      ['bank.balances', BAL],
    ]),
    snapshotChunkRows: chunk,
    offsetOf: (records) => ({ n: records.length }),
    onDrop: (d) => drops.push(d),
    now: () => clock.ms,
  });
}

const points = (r: TransactionReassembler) =>
  Object.fromEntries(r.commitPoints().map((p) => [p.topic, p.offset]));

function drain(r: TransactionReassembler, endOfBatch = false) {
  const out = [];
  for (let u = r.next(endOfBatch); u; u = r.next(endOfBatch)) out.push(u.tx);
  return out;
}

describe('TransactionReassembler', () => {
  it('delivers a transaction once its END marker and every counted event are in, events in total_order', () => {
    const r = reassembler();
    r.addMarker(ref(TX, 0), { ...end('g1', {}), status: 'BEGIN', event_count: null, data_collections: null });
    r.addChange(ref(BAL, 0), change('balances', 1, { id: 'g1', order: 2 }));
    r.addMarker(ref(TX, 1), end('g1', { 'bank.accounts': 1, 'bank.balances': 1 }));
    expect(drain(r)).toEqual([]);
    r.addChange(ref(ACC, 0), change('accounts', 1, { id: 'g1', order: 1 }));
    const [tx, ...rest] = drain(r);
    expect(rest).toEqual([]);
    expect(tx?.id).toBe('g1');
    expect(tx?.snapshot).toBe(false);
    expect(tx?.events.map((e) => e.source.table)).toEqual(['accounts', 'balances']);
  });

  it('keeps commit order across transactions whose pieces arrive out of order', () => {
    const r = reassembler();
    r.addChange(ref(ACC, 0), change('accounts', 1, { id: 'g1', order: 1 }));
    r.addChange(ref(ACC, 1), change('accounts', 2, { id: 'g2', order: 1 }));
    r.addMarker(ref(TX, 0), end('g1', { 'bank.accounts': 1, 'bank.balances': 1 }));
    r.addMarker(ref(TX, 1), end('g2', { 'bank.accounts': 1 }));
    // g2 is complete, but g1 (committed first) still misses its balance row.
    expect(drain(r)).toEqual([]);
    r.addChange(ref(BAL, 0), change('balances', 1, { id: 'g1', order: 2 }));
    expect(drain(r).map((t) => t.id)).toEqual(['g1', 'g2']);
  });

  it('counts only the consumed tables of a marker (the signal table is not consumed)', () => {
    const r = reassembler();
    r.addChange(ref(ACC, 0), change('accounts', 1, { id: 'g1', order: 1 }));
    r.addMarker(ref(TX, 0), end('g1', { 'bank.accounts': 1, 'bank.debezium_signal': 1 }));
    expect(drain(r).map((t) => t.events.length)).toEqual([1]);
  });

  it('skips markers of transactions without events of the consumed tables (other databases)', () => {
    const r = reassembler();
    r.addMarker(ref(TX, 0), end('g0', { 'other.accounts': 3 }));
    r.addChange(ref(ACC, 0), change('accounts', 1, { id: 'g1', order: 1 }));
    r.addMarker(ref(TX, 1), end('g1', { 'bank.accounts': 1 }));
    expect(drain(r).map((t) => t.id)).toEqual(['g1']);
    expect(Object.fromEntries(r.commitPoints().map((p) => [p.topic, p.offset]))[TX]).toBe('2');
  });

  it('commits each partition only up to its oldest undelivered record', () => {
    const r = reassembler();
    r.addChange(ref(ACC, 0), change('accounts', 1, { id: 'g1', order: 1 }));
    r.addMarker(ref(TX, 0), end('g1', { 'bank.accounts': 1 }));
    drain(r);
    r.addChange(ref(ACC, 1), change('accounts', 2, { id: 'g2', order: 1 }));
    r.addChange(ref(BAL, 0), change('balances', 2, { id: 'g2', order: 2 }));
    const points = Object.fromEntries(r.commitPoints().map((p) => [p.topic, p.offset]));
    // g2 has no END marker yet: its records stay uncommitted; the marker topic is clear.
    expect(points).toEqual({ [ACC]: '1', [BAL]: '0', [TX]: '1' });
    r.addMarker(ref(TX, 1), end('g2', { 'bank.accounts': 1, 'bank.balances': 1 }));
    drain(r);
    const after = Object.fromEntries(r.commitPoints().map((p) => [p.topic, p.offset]));
    expect(after).toEqual({ [ACC]: '2', [BAL]: '1', [TX]: '2' });
  });

  it('commits up to the oldest undelivered record while far behind, one table topic ahead of the other', () => {
    const drops: Dropped[] = [];
    const far = reassembler(100, { ms: 0 }, drops);
    for (let i = 0; i < 1000; i++) {
      far.addChange(ref(ACC, i), change('accounts', i, { id: `g${i}`, order: 1 }));
      far.addMarker(ref(TX, i), end(`g${i}`, { 'bank.accounts': 1, 'bank.balances': 1 }));
    }
    expect(drain(far)).toEqual([]);
    expect(points(far)).toEqual({ [ACC]: '0', [TX]: '0' });
    for (let i = 0; i < 500; i++)
      far.addChange(ref(BAL, i), change('balances', i, { id: `g${i}`, order: 2 }));
    expect(drain(far).map((t) => t.id)).toEqual(Array.from({ length: 500 }, (_, i) => `g${i}`));
    expect(points(far)).toEqual({ [ACC]: '500', [BAL]: '500', [TX]: '500' });
    expect(far.buffered).toBe(500);
    expect(drops).toEqual([]);
  });

  it('sends snapshot rows in chunks and holds streamed transactions until the snapshot barrier is passed', () => {
    const r = reassembler(2);
    r.addChange(ref(ACC, 0), change('accounts', 1, null, 'first'));
    r.addChange(ref(ACC, 1), change('accounts', 2, null, 'true'));
    r.addChange(ref(ACC, 2), change('accounts', 3, { id: 'g9', order: 1 }));
    r.addMarker(ref(TX, 0), end('g9', { 'bank.accounts': 1 }));
    const first = drain(r);
    expect(first.map((t) => [t.snapshot, t.events.length])).toEqual([[true, 2]]);
    // The balances snapshot (the last table) is not all read yet: g9 must wait for it.
    r.addChange(ref(BAL, 0), change('balances', 1, null, 'last'));
    expect(r.needsBarrier).toBe(true);
    r.setBarrier([
      { topic: ACC, partition: 0, offset: '3' },
      { topic: BAL, partition: 0, offset: '2' },
    ]);
    expect(drain(r, true).map((t) => t.snapshot)).toEqual([true]);
    expect(r.holdingForSnapshot).toBe(true);
    r.skip(ref(BAL, 1));
    expect(drain(r, true).map((t) => t.id)).toEqual(['g9']);
  });

  describe("a table's snapshot tail that lands after a streamed END", () => {
    // Connect's producer orders records within a partition only: ACC's tail may land after
    // the END of a transaction streamed after the snapshot.
    function snapshotThenStreamed(options: { unclosed?: string[][]; clock?: { ms: number } } = {}) {
      const clock = options.clock ?? { ms: 0 };
      const r = new TransactionReassembler({
        collections: new Map([
          ['bank.accounts', ACC],
          ['bank.balances', BAL],
        ]),
        snapshotChunkRows: 100,
        offsetOf: (records) => ({ n: records.length }),
        snapshotTableGraceMs: 5000,
        onSnapshotTablesUnclosed: (topics) => options.unclosed?.push(topics),
        now: () => clock.ms,
      });
      r.addChange(ref(BAL, 0), change('balances', 1, null, 'first'));
      r.addChange(ref(ACC, 0), change('accounts', 1, null, 'true'));
      r.addChange(ref(ACC, 1), change('accounts', 2, null, 'true'));
      r.addChange(ref(BAL, 1), change('balances', 1, { id: 'g9', order: 1 }));
      r.addMarker(ref(TX, 0), end('g9', { 'bank.balances': 1 }));
      expect(r.needsBarrier).toBe(true);
      // Read when ACC's tail (offset 2) had not landed yet.
      r.setBarrier([
        { topic: ACC, partition: 0, offset: '2' },
        { topic: BAL, partition: 0, offset: '2' },
      ]);
      return r;
    }
    const units = (r: TransactionReassembler) =>
      drain(r, true).map((t) => (t.snapshot ? `snapshot ${t.events.length}` : t.id));

    it("holds streamed transactions until the table's last snapshot row is read", () => {
      const r = snapshotThenStreamed();
      expect(units(r)).toEqual(['snapshot 3']);
      expect(r.holdingForSnapshot).toBe(true);
      r.addChange(ref(ACC, 2), change('accounts', 3, null, 'true'), true);
      expect(units(r)).toEqual(['snapshot 1', 'g9']);
    });

    it('takes a streamed row of the table as the end of its snapshot (same partition, after it)', () => {
      const r = snapshotThenStreamed();
      expect(units(r)).toEqual(['snapshot 3']);
      r.addChange(ref(ACC, 2), change('accounts', 4, { id: 'g10', order: 1 }));
      r.addMarker(ref(TX, 1), end('g10', { 'bank.accounts': 1 }));
      expect(units(r)).toEqual(['g9', 'g10']);
    });

    it("lets streamed transactions go a grace after the barrier when a table's end never shows", () => {
      const unclosed: string[][] = [];
      const clock = { ms: 0 };
      const r = snapshotThenStreamed({ unclosed, clock });
      expect(units(r)).toEqual(['snapshot 3']);
      clock.ms = 4999;
      expect(units(r)).toEqual([]);
      clock.ms = 5000;
      expect(units(r)).toEqual(['g9']);
      expect(unclosed).toEqual([[ACC]]);
      expect(r.holdingForSnapshot).toBe(false);
    });
  });

  it('counts an unreadable record towards its transaction without delivering it', () => {
    const r = reassembler();
    r.addChange(ref(ACC, 0), change('accounts', 1, { id: 'g1', order: 1 }));
    r.addUnreadable(ref(ACC, 1), 'g1');
    r.addMarker(ref(TX, 0), end('g1', { 'bank.accounts': 2 }));
    const [tx] = drain(r);
    expect(tx?.events).toHaveLength(1);
  });

  it('delivers again a transaction whose delivery failed, once its records are read again', () => {
    const r = reassembler();
    const readG1 = () => {
      r.addChange(ref(ACC, 0), change('accounts', 1, { id: 'g1', order: 1 }));
      r.addMarker(ref(TX, 0), end('g1', { 'bank.accounts': 1 }));
    };
    readG1();
    expect(drain(r).map((t) => t.id)).toEqual(['g1']);
    // The sink failed: the source rewinds to the last safe points and reads g1 again.
    r.undeliver(['g1']);
    r.reset();
    readG1();
    expect(drain(r).map((t) => t.id)).toEqual(['g1']);
    // Delivered this time: read again after a rebalance, it is dropped.
    r.reset();
    readG1();
    expect(drain(r)).toEqual([]);
  });

  it('drops records of a transaction it already delivered (re-read after a rebalance)', () => {
    const r = reassembler();
    r.addChange(ref(ACC, 0), change('accounts', 1, { id: 'g1', order: 1 }));
    r.addMarker(ref(TX, 0), end('g1', { 'bank.accounts': 1 }));
    expect(drain(r)).toHaveLength(1);
    r.addChange(ref(ACC, 0), change('accounts', 1, { id: 'g1', order: 1 }));
    r.addMarker(ref(TX, 0), end('g1', { 'bank.accounts': 1 }));
    expect(drain(r)).toEqual([]);
    expect(r.buffered).toBe(0);
  });

  describe('duplicates Debezium re-sends (at-least-once) never block later transactions, and no row is lost', () => {
    // Offsets of a previous run: g1 and g2 were delivered and committed (ACC 0-1, BAL 0, TX 0-1).
    const committed = [
      { topic: ACC, partition: 0, offset: '2' },
      { topic: BAL, partition: 0, offset: '1' },
      { topic: TX, partition: 0, offset: '2' },
    ];

    it('drops a re-sent END alone once a later transaction gave rows on the table it misses', () => {
      const drops: Dropped[] = [];
      const r = reassembler(100, { ms: 0 }, drops);
      r.seed(committed);
      // After a restart (nothing remembered): g2's END again, its ACC row below the committed offset.
      r.addMarker(ref(TX, 2), end('g2', { 'bank.accounts': 1 }));
      r.addChange(ref(ACC, 2), change('accounts', 3, { id: 'g3', order: 1 }));
      expect(drain(r)).toEqual([]);
      r.addMarker(ref(TX, 3), end('g3', { 'bank.accounts': 1 }));
      expect(drain(r).map((t) => t.id)).toEqual(['g3']);
      expect(drops).toEqual([{ reason: 'stale-end', txId: 'g2', records: 0 }]);
      expect(points(r)).toEqual({ [ACC]: '3', [BAL]: '1', [TX]: '4' });
    });

    it('drops a re-sent END whose table topic stays read to its end for the grace period', () => {
      const clock = { ms: 1000 };
      const drops: Dropped[] = [];
      const r = reassembler(100, clock, drops);
      r.seed(committed);
      r.addMarker(ref(TX, 2), end('g2', { 'bank.accounts': 1 }));
      // A later transaction on the other table only: no row order to go by.
      r.addChange(ref(BAL, 1), change('balances', 3, { id: 'g3', order: 1 }));
      r.addMarker(ref(TX, 3), end('g3', { 'bank.balances': 1 }));
      expect(drain(r)).toEqual([]);
      expect(r.blockedHead()).toMatchObject({ txId: 'g2', missingTopics: [ACC], readAtMs: 1000 });
      const ends = [{ topic: ACC, partition: 0, offset: '2' }];
      clock.ms += 29_000;
      expect(r.dropExhausted(ends, 30_000)).toBe(false);
      clock.ms += 1000;
      // The topic has more than was read: its rows may still come.
      expect(r.dropExhausted([{ topic: ACC, partition: 0, offset: '3' }], 30_000)).toBe(false);
      expect(r.dropExhausted(ends, 30_000)).toBe(true);
      expect(drain(r).map((t) => t.id)).toEqual(['g3']);
      expect(drops.map((d) => d.reason)).toEqual(['exhausted-end']);
      expect(r.blockedHead()).toBeNull();
    });

    it('lets a partial re-send (some rows and the END) go, delivering the rows it buffered', () => {
      const drops: Dropped[] = [];
      const r = reassembler(100, { ms: 0 }, drops);
      r.seed(committed);
      // g2 touched both tables; only its balance row and END came again.
      r.addChange(ref(BAL, 1), change('balances', 2, { id: 'g2', order: 2 }));
      r.addMarker(ref(TX, 2), end('g2', { 'bank.accounts': 1, 'bank.balances': 1 }));
      r.addChange(ref(ACC, 2), change('accounts', 3, { id: 'g3', order: 1 }));
      r.addChange(ref(BAL, 2), change('balances', 3, { id: 'g3', order: 2 }));
      r.addMarker(ref(TX, 3), end('g3', { 'bank.accounts': 1, 'bank.balances': 1 }));
      // g2's row may be new (it is a duplicate here): delivered, before g3, which committed after it.
      const out = drain(r);
      expect(out.map((t) => [t.id, t.events.length])).toEqual([
        ['g2', 1],
        ['g3', 2],
      ]);
      expect(drops).toEqual([{ reason: 'stale-end', txId: 'g2', records: 1 }]);
      expect(r.buffered).toBe(0);
      expect(points(r)).toEqual({ [ACC]: '3', [BAL]: '3', [TX]: '4' });
      // A late straggler of the transaction let go is delivered on its own, not buffered.
      r.addChange(ref(ACC, 3), change('accounts', 2, { id: 'g2', order: 1 }));
      expect(points(r)[ACC]).toBe('3');
      expect(drain(r).map((t) => [t.id, t.events.length])).toEqual([['g2', 1]]);
      expect(r.buffered).toBe(0);
      expect(points(r)[ACC]).toBe('4');
    });

    it('delivers once a transaction whose rows and END were re-sent while it was still waiting', () => {
      const drops: Dropped[] = [];
      const r = reassembler(100, { ms: 0 }, drops);
      r.addChange(ref(ACC, 0), change('accounts', 1, { id: 'g1', order: 1 }));
      r.addChange(ref(ACC, 1), change('accounts', 1, { id: 'g1', order: 1 }));
      r.addMarker(ref(TX, 0), end('g1', { 'bank.accounts': 1, 'bank.balances': 1 }));
      r.addMarker(ref(TX, 1), end('g1', { 'bank.accounts': 1, 'bank.balances': 1 }));
      expect(drain(r)).toEqual([]);
      r.addChange(ref(BAL, 0), change('balances', 1, { id: 'g1', order: 2 }));
      const out = drain(r);
      expect(out.map((t) => [t.id, t.events.length])).toEqual([['g1', 2]]);
      expect(drops.map((d) => d.reason)).toEqual(['duplicate-row', 'duplicate-end']);
      expect(points(r)).toEqual({ [ACC]: '2', [BAL]: '1', [TX]: '2' });
    });

    it('delivers re-sent rows whose END never comes again before the later transaction above them', () => {
      const drops: Dropped[] = [];
      const r = reassembler(100, { ms: 0 }, drops);
      r.seed(committed);
      // g2's row again, without its END (that one lies below the committed offset), then g3.
      r.addChange(ref(ACC, 2), change('accounts', 2, { id: 'g2', order: 1 }));
      r.addChange(ref(ACC, 3), change('accounts', 3, { id: 'g3', order: 1 }));
      r.addMarker(ref(TX, 2), end('g3', { 'bank.accounts': 1 }));
      expect(drain(r).map((t) => t.id)).toEqual(['g2', 'g3']);
      expect(drops).toEqual([{ reason: 'orphan-rows', txId: 'g2', records: 1 }]);
      expect(points(r)).toEqual({ [ACC]: '4', [BAL]: '1', [TX]: '3' });
    });

    it('delivers rows without END once the transaction topic stays read to its end for the grace period', () => {
      const clock = { ms: 0 };
      const drops: Dropped[] = [];
      const r = reassembler(100, clock, drops);
      r.seed(committed);
      r.addChange(ref(BAL, 1), change('balances', 2, { id: 'g2', order: 2 }));
      expect(points(r)[BAL]).toBe('1');
      const txEnd = [{ topic: TX, partition: 0, offset: '2' }];
      clock.ms = 4000;
      expect(r.hasOldOrphans(5000)).toBe(false);
      clock.ms = 5000;
      expect(r.hasOldOrphans(5000)).toBe(true);
      // An END may still be on its way: the transaction topic has more than was read.
      expect(r.dropOrphansExhausted([{ topic: TX, partition: 0, offset: '3' }], 5000)).toBe(0);
      expect(r.dropOrphansExhausted(txEnd, 5000)).toBe(1);
      expect(drops).toEqual([{ reason: 'orphan-rows-exhausted', txId: 'g2', records: 1 }]);
      // Held until handed out: a commit never passes a row not yet delivered.
      expect(points(r)[BAL]).toBe('1');
      expect(drain(r).map((t) => [t.id, t.events.length])).toEqual([['g2', 1]]);
      expect(points(r)[BAL]).toBe('2');
      // Its END, late after all, is let go: the rows went already.
      r.addMarker(ref(TX, 2), end('g2', { 'bank.balances': 1 }));
      expect(drain(r)).toEqual([]);
      expect(drops.map((d) => d.reason)).toEqual(['orphan-rows-exhausted', 'duplicate-end']);
      expect(r.buffered).toBe(0);
    });

    it("loses no row when a broker restart holds a transaction's rows back past the grace period", () => {
      // The connector's producer wrote g1's END (and its balance row) while the accounts
      // partition was still unavailable: the END is let go as exhausted, the rows come later.
      const clock = { ms: 0 };
      const drops: Dropped[] = [];
      const r = reassembler(100, clock, drops);
      r.addChange(ref(BAL, 0), change('balances', 1, { id: 'g1', order: 3 }));
      r.addMarker(ref(TX, 0), end('g1', { 'bank.accounts': 2, 'bank.balances': 1 }));
      expect(drain(r)).toEqual([]);
      clock.ms = 5000;
      expect(r.dropExhausted([{ topic: ACC, partition: 0, offset: '0' }], 5000)).toBe(true);
      expect(drain(r).map((t) => [t.id, t.events.length])).toEqual([['g1', 1]]);
      r.addChange(ref(ACC, 0), change('accounts', 1, { id: 'g1', order: 1 }));
      r.addChange(ref(ACC, 1), change('accounts', 2, { id: 'g1', order: 2 }));
      r.addChange(ref(ACC, 2), change('accounts', 3, { id: 'g2', order: 1 }));
      r.addMarker(ref(TX, 1), end('g2', { 'bank.accounts': 1 }));
      const out = drain(r);
      expect(out.map((t) => [t.id, t.events.map((e) => e.after?.id)])).toEqual([
        ['g1', [1]],
        ['g1', [2]],
        ['g2', [3]],
      ]);
      expect(drops.map((d) => d.reason)).toEqual(['exhausted-end']);
      expect(points(r)).toEqual({ [ACC]: '3', [BAL]: '1', [TX]: '2' });
    });

    it('re-delivers a transaction re-sent in full after a restart (the projections skip it by sourceOrder)', () => {
      const r = reassembler();
      r.seed(committed);
      r.addChange(ref(ACC, 2), change('accounts', 2, { id: 'g2', order: 1 }));
      r.addMarker(ref(TX, 2), end('g2', { 'bank.accounts': 1 }));
      r.addChange(ref(ACC, 3), change('accounts', 3, { id: 'g3', order: 1 }));
      r.addMarker(ref(TX, 3), end('g3', { 'bank.accounts': 1 }));
      expect(drain(r).map((t) => t.id)).toEqual(['g2', 'g3']);
      expect(r.buffered).toBe(0);
    });

    it("passes the snapshot barrier after a restart that committed past the snapshot's last row", () => {
      const r = reassembler(100);
      // BAL's snapshot (with the last row) was delivered and committed; ACC's tail was not.
      r.seed([
        { topic: ACC, partition: 0, offset: '1' },
        { topic: BAL, partition: 0, offset: '2' },
      ]);
      r.addChange(ref(ACC, 1), change('accounts', 2, null, 'true'));
      r.addChange(ref(ACC, 2), change('accounts', 3, { id: 'g9', order: 1 }));
      expect(r.needsBarrier).toBe(false);
      r.addMarker(ref(TX, 0), end('g9', { 'bank.accounts': 1 }));
      // A streamed END proves the snapshot finished at the source.
      expect(r.needsBarrier).toBe(true);
      r.setBarrier([
        { topic: ACC, partition: 0, offset: '3' },
        { topic: BAL, partition: 0, offset: '2' },
      ]);
      expect(drain(r, true).map((t) => (t.snapshot ? 'snapshot' : t.id))).toEqual(['snapshot', 'g9']);
    });

    describe('a restart inside a transaction: Debezium replays its BEGIN and numbers the rows it re-sends from 1', () => {
      // An order (accounts) and its four lines (balances) at LSNs 0/10…0/50, the way the
      // PostgreSQL connector sends them: the first send got three rows out, no END.
      const row = (table: string, id: number, lsn: number, order: number) => {
        const e = change(table, id, { id: '4442', order });
        return { ...e, source: { ...e.source, connector: 'postgresql' as const, lsn: `0/${lsn}` } };
      };
      const firstSend = (r: TransactionReassembler) => {
        r.addChange(ref(ACC, 0), row('accounts', 1, 10, 1));
        r.addChange(ref(BAL, 0), row('balances', 11, 20, 2));
        r.addChange(ref(BAL, 1), row('balances', 12, 30, 3));
      };
      const ids = (r: TransactionReassembler) =>
        drain(r).map((t) => [t.id, t.events.map((e) => e.after?.id)]);

      it('keeps a re-sent row whose new total_order is that of another row already buffered', () => {
        const drops: Dropped[] = [];
        const r = reassembler(100, { ms: 0 }, drops);
        firstSend(r);
        // Resumed after the third row: the second line again (a duplicate), the last two as 1 and 2.
        r.addChange(ref(BAL, 2), row('balances', 12, 30, 1));
        r.addChange(ref(BAL, 3), row('balances', 13, 40, 1));
        r.addChange(ref(BAL, 4), row('balances', 14, 50, 2));
        r.addMarker(ref(TX, 0), end('4442', { 'bank.balances': 3 }));
        expect(ids(r)).toEqual([['4442', [1, 11, 12, 13, 14]]]);
        expect(drops).toEqual([{ reason: 'duplicate-row', txId: '4442', records: 1 }]);
        expect(r.buffered).toBe(0);
      });

      it('delivers the rows re-sent after an END whose smaller count the first send already met', () => {
        const drops: Dropped[] = [];
        const r = reassembler(100, { ms: 0 }, drops);
        firstSend(r);
        // Resumed after the third row: the END (counting the two rows re-sent) is read first.
        r.addMarker(ref(TX, 0), end('4442', { 'bank.balances': 2 }));
        expect(ids(r)).toEqual([['4442', [1, 11, 12]]]);
        r.addChange(ref(BAL, 2), row('balances', 13, 40, 1));
        r.addChange(ref(BAL, 3), row('balances', 14, 50, 2));
        // Re-read after a rebalance, a row delivered before stays dropped.
        r.addChange(ref(BAL, 1), row('balances', 12, 30, 3));
        expect(ids(r)).toEqual([
          ['4442', [13]],
          ['4442', [14]],
        ]);
        expect(drops).toEqual([]);
        expect(points(r)).toEqual({ [ACC]: '1', [BAL]: '4', [TX]: '1' });
      });
    });

    it('does not drop an END whose rows are merely late', () => {
      const drops: Dropped[] = [];
      const clock = { ms: 0 };
      const r = reassembler(100, clock, drops);
      r.addMarker(ref(TX, 0), end('g1', { 'bank.accounts': 1 }));
      r.addChange(ref(BAL, 0), change('balances', 2, { id: 'g2', order: 1 }));
      r.addMarker(ref(TX, 1), end('g2', { 'bank.balances': 1 }));
      clock.ms = 60_000;
      // ACC was never read: its end offset (1) is ahead of the position.
      expect(r.dropExhausted([{ topic: ACC, partition: 0, offset: '1' }], 30_000)).toBe(false);
      r.addChange(ref(ACC, 0), change('accounts', 1, { id: 'g1', order: 1 }));
      expect(drain(r).map((t) => t.id)).toEqual(['g1', 'g2']);
      expect(drops).toEqual([]);
    });
  });
});
