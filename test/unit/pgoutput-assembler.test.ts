import type { Pgoutput } from 'pg-logical-replication';
import { describe, expect, it } from 'vitest';
import { changeEventSchema } from '../../connectors/change-event.js';
import {
  type ChangeMessage,
  TransactionAssembler,
  UNAVAILABLE_VALUE,
} from '../../connectors/pgoutput/transaction-assembler.js';

const column = (name: string, typeOid: number, typeMod = -1, key = false): Pgoutput.RelationColumn => ({
  name,
  flags: key ? 1 : 0,
  typeOid,
  typeMod,
  typeSchema: null,
  typeName: null,
  parser: (raw: unknown) => raw,
});

const relation = (
  name: string,
  identity: Pgoutput.MessageRelation['replicaIdentity'] = 'full',
): Pgoutput.MessageRelation => ({
  tag: 'relation',
  relationOid: name.length,
  schema: 'public',
  name,
  replicaIdentity: identity,
  columns: [
    column('id', 23, -1, true),
    column('amount', 1700, ((19 << 16) | 4) + 4),
    column('at', 1114, 6),
    column('note', 25),
  ],
  keyColumns: ['id'],
});

const balances = relation('balances');
const cards = relation('cards', 'default');
// 2024-05-01T00:00:00.123456Z in µs since the Unix epoch, as the library decodes commit times.
const COMMIT_TIME = 1714521600123456n;

const begin = (xid: number): Pgoutput.MessageBegin => ({
  tag: 'begin',
  commitLsn: '00000000/0000A000',
  commitTime: COMMIT_TIME,
  xid,
});
const commit = (end: string): Pgoutput.MessageCommit => ({
  tag: 'commit',
  flags: 0,
  commitLsn: '00000000/0000A000',
  commitEndLsn: end,
  commitTime: COMMIT_TIME,
});

describe('pgoutput TransactionAssembler', () => {
  it('turns Begin…Commit into one transaction with Debezium’s source and transaction blocks', () => {
    const assembler = new TransactionAssembler({
      source: { version: '0.1.0', connector: 'postgresql', name: 'legacy', db: 'bank' },
      from: '0/9000',
      now: () => 99,
    });
    assembler.begin(begin(771));
    assembler.change('0/9F00', {
      tag: 'insert',
      relation: balances,
      new: { id: '1', amount: '5.5', at: '2024-05-01 00:00:00.1', note: null },
    });
    assembler.change('0/9F80', {
      tag: 'update',
      relation: balances,
      key: null,
      old: { id: '1', amount: '5.5000', at: '2024-05-01 00:00:00.1', note: null },
      new: { id: '1', amount: '6.0000', at: '2024-05-01 00:00:01', note: 'x' },
    });
    // Replica identity DEFAULT: a delete carries the key only, an update no old image at all,
    // and an unchanged TOASTed value is absent from the new image.
    assembler.change('0/9FC0', {
      tag: 'update',
      relation: cards,
      key: null,
      old: null,
      new: { id: '7', amount: '1', at: '2024-05-01 00:00:00', note: undefined },
    });
    assembler.change('0/9FF0', { tag: 'delete', relation: cards, key: { id: '8' }, old: null });
    const tx = assembler.commit(commit('00000000/0000A030'));

    expect(tx?.id).toBe('771');
    expect(tx?.offset).toEqual({ phase: 'stream', snapshotCompleted: true, lsn: '0/A030', txId: 771 });
    const events = tx?.events ?? [];
    for (const e of events) changeEventSchema.parse(e);
    expect(events.map((e) => e.op)).toEqual(['c', 'u', 'u', 'd']);
    expect(events.map((e) => e.source.lsn)).toEqual(['0/9F00', '0/9F80', '0/9FC0', '0/9FF0']);
    expect(events.map((e) => e.transaction)).toEqual([
      { id: '771', total_order: 1, data_collection_order: 1 },
      { id: '771', total_order: 2, data_collection_order: 2 },
      { id: '771', total_order: 3, data_collection_order: 1 },
      { id: '771', total_order: 4, data_collection_order: 2 },
    ]);
    expect(events[0]?.source).toEqual({
      version: '0.1.0',
      connector: 'postgresql',
      name: 'legacy',
      db: 'bank',
      schema: 'public',
      table: 'balances',
      ts_ms: 1714521600123,
      snapshot: 'false',
      lsn: '0/9F00',
      txId: 771,
    });
    expect(events[0]?.ts_ms).toBe(99);
    expect(events[0]?.after).toEqual({
      id: 1,
      amount: '5.5000',
      at: '2024-05-01 00:00:00.100000',
      note: null,
    });
    expect(events[1]?.before).toEqual({
      id: 1,
      amount: '5.5000',
      at: '2024-05-01 00:00:00.100000',
      note: null,
    });
    expect(events[1]?.after).toEqual({
      id: 1,
      amount: '6.0000',
      at: '2024-05-01 00:00:01.000000',
      note: 'x',
    });
    expect(events[2]?.before).toBeNull();
    expect(events[2]?.after?.note).toBe(UNAVAILABLE_VALUE);
    expect(events[3]?.before).toEqual({ id: 8, amount: null, at: null, note: null });
    expect(events[3]?.after).toBeNull();
  });

  it('yields nothing for a transaction without captured rows, and starts afresh at the next Begin', () => {
    const assembler = new TransactionAssembler({
      source: { version: '0.1.0', connector: 'postgresql', name: 'l', db: 'bank' },
      from: '0/9000',
    });
    assembler.begin(begin(5));
    expect(assembler.commit(commit('0/B000'))).toBeNull();
    assembler.begin(begin(6));
    assembler.change('0/B100', {
      tag: 'insert',
      relation: balances,
      new: { id: '2', amount: '0', at: '2024-05-01 00:00:00', note: 'n' },
    });
    expect(assembler.commit(commit('0/B200'))?.events.map((e) => e.transaction?.id)).toEqual(['6']);
  });

  it('rejects a change outside a transaction', () => {
    const assembler = new TransactionAssembler({
      source: { version: '0.1.0', connector: 'postgresql', name: 'l', db: 'bank' },
      from: '0/9000',
    });
    expect(() =>
      assembler.change('0/1', { tag: 'delete', relation: balances, key: { id: '1' }, old: null }),
    ).toThrow(/outside a transaction/);
  });

  describe('transaction fragments', () => {
    const fragmenting = (maxTransactionRows: number) =>
      new TransactionAssembler({
        source: { version: '0.1.0', connector: 'postgresql', name: 'l', db: 'bank' },
        from: '0/9000',
        maxTransactionRows,
      });
    const insert = (rel: Pgoutput.MessageRelation, id: number): ChangeMessage => ({
      tag: 'insert',
      relation: rel,
      new: { id: String(id), amount: '1', at: '2024-05-01 00:00:00', note: null },
    });

    it('hands out a big transaction in fragments that keep its id and Debezium ordering, the last with the commit offset', () => {
      const a = fragmenting(2);
      // A transaction before it moves the point a restart would replay the big one from.
      a.begin(begin(40));
      a.change('0/A100', insert(balances, 1));
      expect(a.commit(commit('0/A200'))?.fragment).toBeUndefined();

      a.begin(begin(41));
      const handed = [
        a.change('0/B000', insert(balances, 2)),
        a.change('0/B100', insert(cards, 3)),
        a.change('0/B200', insert(balances, 4)),
        a.change('0/B300', insert(cards, 5)),
        a.change('0/B400', insert(balances, 6)),
      ];
      // A full fragment leaves only once a further row arrives.
      expect(handed.map((t) => t?.fragment ?? null)).toEqual([
        null,
        null,
        { index: 0, last: false },
        null,
        { index: 1, last: false },
      ]);
      const last = a.commit(commit('0/C000'));
      const all = [...handed.filter((t) => t !== null), last];
      expect(all.map((t) => [t?.id, t?.fragment, t?.events.length])).toEqual([
        ['41', { index: 0, last: false }, 2],
        ['41', { index: 1, last: false }, 2],
        ['41', { index: 2, last: true }, 1],
      ]);
      // Numbered as the whole transaction would be: total order and order per table run on.
      expect(all.flatMap((t) => t?.events.map((e) => [e.source.table, e.transaction]) ?? [])).toEqual([
        ['balances', { id: '41', total_order: 1, data_collection_order: 1 }],
        ['cards', { id: '41', total_order: 2, data_collection_order: 1 }],
        ['balances', { id: '41', total_order: 3, data_collection_order: 2 }],
        ['cards', { id: '41', total_order: 4, data_collection_order: 2 }],
        ['balances', { id: '41', total_order: 5, data_collection_order: 3 }],
      ]);
      // Unfinished fragments point before the transaction (the last commit's end): resuming
      // there replays it whole. Only the last one carries its commit's end.
      expect(all.map((t) => t?.offset)).toEqual([
        { phase: 'stream', snapshotCompleted: true, lsn: '0/A200', txId: null },
        { phase: 'stream', snapshotCompleted: true, lsn: '0/A200', txId: null },
        { phase: 'stream', snapshotCompleted: true, lsn: '0/C000', txId: 41 },
      ]);
      for (const e of all.flatMap((t) => t?.events ?? [])) changeEventSchema.parse(e);
    });

    it('keeps a transaction of exactly maxTransactionRows whole, and numbers the next one afresh', () => {
      const a = fragmenting(2);
      a.begin(begin(50));
      expect(a.change('0/D000', insert(balances, 1))).toBeNull();
      expect(a.change('0/D100', insert(balances, 2))).toBeNull();
      const whole = a.commit(commit('0/D200'));
      expect(whole?.fragment).toBeUndefined();
      expect(whole?.events.map((e) => e.transaction?.total_order)).toEqual([1, 2]);

      a.begin(begin(51));
      a.change('0/E000', insert(cards, 3));
      a.change('0/E100', insert(cards, 4));
      const first = a.change('0/E200', insert(cards, 5));
      expect(first?.offset).toEqual({ phase: 'stream', snapshotCompleted: true, lsn: '0/D200', txId: null });
      expect(first?.events.map((e) => e.transaction)).toEqual([
        { id: '51', total_order: 1, data_collection_order: 1 },
        { id: '51', total_order: 2, data_collection_order: 2 },
      ]);
      expect(a.commit(commit('0/E300'))?.events.map((e) => e.transaction?.total_order)).toEqual([3]);
    });

    it('moves the replay point past transactions without captured rows', () => {
      const a = fragmenting(1);
      a.begin(begin(70));
      expect(a.commit(commit('0/10000'))).toBeNull();
      a.begin(begin(71));
      a.change('0/10100', insert(balances, 1));
      expect(a.change('0/10200', insert(balances, 2))?.offset.lsn).toBe('0/10000');
    });
  });
});
