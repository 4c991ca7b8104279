import { describe, expect, it } from 'vitest';
import { type ChangeEvent, sourceOrderOf } from '../../connectors/change-event.js';

function event(
  source: Partial<ChangeEvent['source']>,
  op: ChangeEvent['op'],
  totalOrder?: number,
): ChangeEvent {
  return {
    before: null,
    after: { id: 1 },
    op,
    ts_ms: 0,
    source: {
      version: 't',
      connector: source.lsn === undefined ? 'mariadb' : 'postgresql',
      name: 'legacy',
      ts_ms: 0,
      snapshot: op === 'r' ? 'true' : 'false',
      db: 'bank',
      table: 't',
      ...source,
    },
    transaction:
      totalOrder === undefined ? null : { id: 'x', total_order: totalOrder, data_collection_order: 1 },
  };
}

describe('sourceOrderOf', () => {
  it('sorts binlog changes by file sequence, then position, then order in the transaction', () => {
    const keys = [
      sourceOrderOf(event({ file: 'bin.000002', pos: 4 }, 'u', 1)),
      sourceOrderOf(event({ file: 'bin.000001', pos: 90_000 }, 'u', 2)),
      sourceOrderOf(event({ file: 'bin.000001', pos: 90_000 }, 'u', 1)),
      sourceOrderOf(event({ file: 'bin.000001', pos: 120 }, 'c', 7)),
      sourceOrderOf(event({ file: 'bin.000010', pos: 4 }, 'd', 1)),
    ];
    expect([...keys].sort()).toEqual([keys[3], keys[2], keys[1], keys[0], keys[4]]);
  });

  it('puts a snapshot read before a change streamed at the same position', () => {
    const read = sourceOrderOf(event({ file: 'bin.000003', pos: 500 }, 'r'));
    const streamed = sourceOrderOf(event({ file: 'bin.000003', pos: 500 }, 'u', 0));
    expect(read < streamed).toBe(true);
  });

  it('sorts PostgreSQL changes by LSN numerically, not by the text of its halves', () => {
    const small = sourceOrderOf(event({ lsn: '0/FFFFFF' }, 'u', 3));
    const large = sourceOrderOf(event({ lsn: '0/1000000' }, 'u', 1));
    const nextSegment = sourceOrderOf(event({ lsn: '1/0' }, 'c', 1));
    expect(small < large && large < nextSegment).toBe(true);
  });
});
