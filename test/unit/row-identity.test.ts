import { describe, expect, it } from 'vitest';
import type { ChangeEvent } from '../../connectors/change-event.js';
import { inSourceOrder, rowIdentity } from '../../connectors/kafka/row-identity.js';

function pgRow(id: number, lsn: string, order: number): ChangeEvent {
  return {
    before: null,
    after: { id, note: `n${id}` },
    op: 'c',
    ts_ms: 1,
    source: {
      version: '3.1',
      connector: 'postgresql',
      name: 'shop',
      ts_ms: 1,
      snapshot: 'false',
      db: 'shop',
      schema: 'public',
      table: 'lines',
      lsn,
    },
    transaction: { id: '4442', total_order: order, data_collection_order: order },
  };
}

const binlogRow = (id: number, pos: number, row: number, order: number): ChangeEvent => {
  const e = pgRow(id, '', order);
  const { lsn: _lsn, schema: _schema, ...source } = e.source;
  return { ...e, source: { ...source, connector: 'mariadb', file: 'binlog.000003', pos, row } };
};

describe('rowIdentity', () => {
  it('is the same for a row re-sent with another total_order (Debezium numbers a resumed transaction anew)', () => {
    expect(rowIdentity(pgRow(7, '0/16B3748', 1))).toBe(rowIdentity(pgRow(7, '0/16B3748', 5)));
    expect(rowIdentity(binlogRow(7, 1234, 2, 1))).toBe(rowIdentity(binlogRow(7, 1234, 2, 9)));
  });

  it('tells apart rows sharing an LSN (one multi-row WAL record) by their image', () => {
    expect(rowIdentity(pgRow(1, '0/16B3748', 1))).not.toBe(rowIdentity(pgRow(2, '0/16B3748', 2)));
  });

  it('tells apart the same image at two positions (insert, delete, insert again)', () => {
    expect(rowIdentity(pgRow(1, '0/10', 1))).not.toBe(rowIdentity(pgRow(1, '0/30', 3)));
    expect(rowIdentity(binlogRow(1, 100, 0, 1))).not.toBe(rowIdentity(binlogRow(1, 300, 0, 3)));
  });

  it('falls back to total_order without a source position', () => {
    const { lsn: _lsn, ...source } = pgRow(1, '', 1).source;
    const at = (order: number): ChangeEvent => ({ ...pgRow(1, '', order), source });
    expect(rowIdentity(at(1))).toBe(rowIdentity(at(1)));
    expect(rowIdentity(at(1))).not.toBe(rowIdentity(at(2)));
  });
});

describe('inSourceOrder', () => {
  it('orders by position, whatever total_order a re-send gave', () => {
    const events = [pgRow(3, '0/30', 1), pgRow(1, '0/A', 1), pgRow(2, '0/1F', 2)];
    expect(inSourceOrder(events).map((e) => e.after?.id)).toEqual([1, 2, 3]);
    const binlog = [binlogRow(2, 300, 0, 1), binlogRow(1, 100, 1, 2)];
    expect(inSourceOrder(binlog).map((e) => e.after?.id)).toEqual([1, 2]);
  });
});
