import { describe, expect, it } from 'vitest';
import { GtidPosition } from '../../connectors/binlog/gtid-position.js';
import { columnFromType } from '../../connectors/binlog/normalize.js';
import {
  type AssemblerContext,
  TransactionAssembler,
} from '../../connectors/binlog/transaction-assembler.js';

const account = [columnFromType('id', 'bigint(20)'), columnFromType('balance', 'decimal(19,4)')];
const entry = [columnFromType('id', 'bigint(20)'), columnFromType('at', 'datetime(6)')];

function assembler(gtid: string | null = '0-1-10', flavor: 'mariadb' | 'mysql' = 'mariadb') {
  const ctx: AssemblerContext = {
    source: { version: '0.1.0', connector: flavor, name: 'legacy', db: 'bank' },
    serverId: 7,
    gtids: GtidPosition.start(flavor, gtid),
    now: () => 1_700_000_000_000,
  };
  return new TransactionAssembler(ctx);
}

const at = (pos: number) => ({ file: 'binlog.000004', pos, tsMs: 1_600_000_000_000 });

describe('transaction assembly', () => {
  it('turns one event group into one transaction with Debezium ordering and the commit offset', () => {
    const a = assembler();
    a.begin({ gtid: '0-1-11', serverId: 1, file: 'binlog.000004', pos: 100 });
    a.rows({
      op: 'c',
      table: 'account',
      columns: account,
      rows: [
        { id: 1, balance: '5' },
        { id: 2, balance: '0.5' },
      ],
      ...at(200),
    });
    a.rows({
      op: 'c',
      table: 'entry',
      columns: entry,
      rows: [{ id: 9, at: '2024-01-02 03:04:05' }],
      ...at(300),
    });
    a.rows({
      op: 'u',
      table: 'account',
      columns: account,
      rows: [{ before: { id: 1, balance: '5' }, after: { id: 1, balance: '4.25' } }],
      ...at(400),
    });
    a.rows({ op: 'd', table: 'account', columns: account, rows: [{ id: 2, balance: '0.5' }], ...at(500) });
    expect(a.open).toBe(true);
    const tx = a.commit({ file: 'binlog.000004', pos: 650 });
    expect(a.open).toBe(false);
    expect(tx?.id).toBe('0-1-11');
    expect(tx?.snapshot).toBe(false);
    expect(tx?.offset).toEqual({
      phase: 'stream',
      snapshotCompleted: true,
      file: 'binlog.000004',
      pos: 650,
      gtid: '0-1-11',
    });
    expect(tx?.events.map((e) => [e.op, e.source.table, e.transaction])).toEqual([
      ['c', 'account', { id: '0-1-11', total_order: 1, data_collection_order: 1 }],
      ['c', 'account', { id: '0-1-11', total_order: 2, data_collection_order: 2 }],
      ['c', 'entry', { id: '0-1-11', total_order: 3, data_collection_order: 1 }],
      ['u', 'account', { id: '0-1-11', total_order: 4, data_collection_order: 3 }],
      ['d', 'account', { id: '0-1-11', total_order: 5, data_collection_order: 4 }],
    ]);
    const [first, , third, update, del] = tx?.events ?? [];
    expect(first?.after).toEqual({ id: 1, balance: '5.0000' });
    expect(first?.before).toBeNull();
    expect(third?.after).toEqual({ id: 9, at: '2024-01-02 03:04:05.000000' });
    expect(update?.before).toEqual({ id: 1, balance: '5.0000' });
    expect(update?.after).toEqual({ id: 1, balance: '4.2500' });
    expect(del?.before).toEqual({ id: 2, balance: '0.5000' });
    expect(del?.after).toBeNull();
    expect(first?.source).toEqual({
      version: '0.1.0',
      connector: 'mariadb',
      name: 'legacy',
      db: 'bank',
      table: 'account',
      ts_ms: 1_600_000_000_000,
      snapshot: 'false',
      server_id: 1,
      gtid: '0-1-11',
      file: 'binlog.000004',
      pos: 200,
      row: 0,
    });
    expect(tx?.events[1]?.source.row).toBe(1);
    expect(first?.ts_ms).toBe(1_700_000_000_000);
  });

  it('delivers nothing for a group without captured rows, but still advances the GTID position', () => {
    const a = assembler('0-1-10,1-3-5');
    a.begin({ gtid: '0-1-11', serverId: 1, file: 'f', pos: 1 });
    expect(a.commit({ file: 'f', pos: 2 })).toBeNull();
    // A DDL group has no commit marker: the next group start closes it.
    a.begin({ gtid: '1-3-6', serverId: 3, file: 'f', pos: 3 });
    a.begin({ gtid: '0-1-12', serverId: 1, file: 'f', pos: 4 });
    a.rows({
      op: 'c',
      table: 'account',
      columns: account,
      rows: [{ id: 1, balance: '1' }],
      file: 'f',
      pos: 5,
      tsMs: 0,
    });
    expect(a.commit({ file: 'f', pos: 6 })?.offset.gtid).toBe('0-1-12,1-3-6');
  });

  it('names a transaction by its start position when the server logs no GTIDs', () => {
    const a = assembler(null, 'mysql');
    a.begin({ gtid: null, serverId: null, file: 'mysql-bin.000002', pos: 4711 });
    a.rows({
      op: 'c',
      table: 'account',
      columns: account,
      rows: [{ id: 1, balance: '1' }],
      file: 'mysql-bin.000002',
      pos: 4800,
      tsMs: 0,
    });
    const tx = a.commit({ file: 'mysql-bin.000002', pos: 4900 });
    expect(tx?.id).toBe('mysql-bin.000002:4711');
    expect(tx?.offset.gtid).toBeNull();
    expect(tx?.events[0]?.source.server_id).toBe(7);
    expect(tx?.events[0]?.source.gtid).toBeNull();
  });

  it('tracks a MySQL GTID set', () => {
    const uuid = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
    const a = assembler(`${uuid}:1-5`, 'mysql');
    a.begin({ gtid: `${uuid}:6`, serverId: null, file: 'f', pos: 1 });
    a.rows({
      op: 'c',
      table: 'account',
      columns: account,
      rows: [{ id: 1, balance: '1' }],
      file: 'f',
      pos: 2,
      tsMs: 0,
    });
    expect(a.commit({ file: 'f', pos: 3 })?.offset.gtid).toBe(`${uuid}:1-6`);
  });
});

describe('transaction fragments', () => {
  function fragmenting(maxTransactionRows: number) {
    return new TransactionAssembler({
      source: { version: '0.1.0', connector: 'mariadb', name: 'legacy', db: 'bank' },
      serverId: 7,
      gtids: GtidPosition.start('mariadb', '0-1-10'),
      maxTransactionRows,
      now: () => 1_700_000_000_000,
    });
  }
  const accounts = (ids: number[]) => ids.map((id) => ({ id, balance: String(id) }));

  it('hands out a big group in fragments that keep its id and Debezium ordering, the last with the commit offset', () => {
    const a = fragmenting(2);
    a.begin({ gtid: '0-1-11', serverId: 1, file: 'binlog.000004', pos: 100 });
    const early = a.rows({
      op: 'c',
      table: 'account',
      columns: account,
      rows: accounts([1, 2, 3]),
      ...at(200),
    });
    const later = a.rows({
      op: 'c',
      table: 'entry',
      columns: entry,
      rows: [
        { id: 9, at: '2024-01-02 03:04:05' },
        { id: 10, at: '2024-01-02 03:04:06' },
      ],
      ...at(300),
    });
    const last = a.commit({ file: 'binlog.000004', pos: 650 });
    const all = [...early, ...later, ...(last ? [last] : [])];
    expect(all.map((t) => [t.id, t.fragment, t.events.length])).toEqual([
      ['0-1-11', { index: 0, last: false }, 2],
      ['0-1-11', { index: 1, last: false }, 2],
      ['0-1-11', { index: 2, last: true }, 1],
    ]);
    expect(all.flatMap((t) => t.events.map((e) => [e.source.table, e.transaction]))).toEqual([
      ['account', { id: '0-1-11', total_order: 1, data_collection_order: 1 }],
      ['account', { id: '0-1-11', total_order: 2, data_collection_order: 2 }],
      ['account', { id: '0-1-11', total_order: 3, data_collection_order: 3 }],
      ['entry', { id: '0-1-11', total_order: 4, data_collection_order: 1 }],
      ['entry', { id: '0-1-11', total_order: 5, data_collection_order: 2 }],
    ]);
    // Unfinished fragments point at the group's start, before the GTID it commits.
    const start = {
      phase: 'stream',
      snapshotCompleted: true,
      file: 'binlog.000004',
      pos: 100,
      gtid: '0-1-10',
    };
    expect(all[0]?.offset).toEqual(start);
    expect(all[1]?.offset).toEqual(start);
    expect(last?.offset).toEqual({
      phase: 'stream',
      snapshotCompleted: true,
      file: 'binlog.000004',
      pos: 650,
      gtid: '0-1-11',
    });
  });

  it('keeps a group of exactly maxTransactionRows whole, and numbers the next group afresh', () => {
    const a = fragmenting(2);
    a.begin({ gtid: '0-1-11', serverId: 1, file: 'binlog.000004', pos: 100 });
    expect(
      a.rows({ op: 'c', table: 'account', columns: account, rows: accounts([1, 2]), ...at(200) }),
    ).toEqual([]);
    const whole = a.commit({ file: 'binlog.000004', pos: 300 });
    expect(whole?.fragment).toBeUndefined();
    expect(whole?.events.length).toBe(2);

    a.begin({ gtid: '0-1-12', serverId: 1, file: 'binlog.000004', pos: 300 });
    const first = a.rows({
      op: 'c',
      table: 'account',
      columns: account,
      rows: accounts([3, 4, 5]),
      ...at(400),
    });
    const last = a.commit({ file: 'binlog.000004', pos: 500 });
    expect([...first, last].map((t) => [t?.id, t?.fragment, t?.events[0]?.transaction?.total_order])).toEqual(
      [
        ['0-1-12', { index: 0, last: false }, 1],
        ['0-1-12', { index: 1, last: true }, 3],
      ],
    );
    expect(last?.offset).toMatchObject({ pos: 500, gtid: '0-1-12' });
  });
});
