import { describe, expect, it } from 'vitest';
import { type BinlogOffset, binlogOffsetSchema } from '../../connectors/binlog/config.js';
import { planStart } from '../../connectors/binlog/start-plan.js';

const streamed: BinlogOffset = {
  phase: 'stream',
  snapshotCompleted: true,
  file: 'binlog.000004',
  pos: 1200,
  gtid: '0-1-42',
};
const interrupted: BinlogOffset = {
  phase: 'snapshot',
  snapshotCompleted: false,
  file: 'binlog.000003',
  pos: 800,
  gtid: '0-1-40',
  table: 'account',
  chunk: 2,
  rows: 15000,
  after: [15000],
};
const have = (file: string) => file === 'binlog.000003' || file === 'binlog.000004';
const purged = () => false;

describe('start plan', () => {
  it('snapshots without an offset unless told never to', () => {
    expect(planStart(null, 'initial', have)).toMatchObject({ kind: 'snapshot', streamFrom: null });
    expect(planStart(null, 'when_needed', have)).toMatchObject({ kind: 'snapshot', streamFrom: null });
    expect(planStart(null, 'never', have)).toMatchObject({ kind: 'stream', from: null });
  });

  it('streams from a completed offset', () => {
    expect(planStart(streamed, 'initial', have)).toMatchObject({
      kind: 'stream',
      from: { file: 'binlog.000004', pos: 1200, gtid: '0-1-42' },
    });
  });

  it('resumes an interrupted snapshot after its last chunk and streams from the first attempt position', () => {
    expect(planStart(interrupted, 'initial', have)).toMatchObject({
      kind: 'snapshot',
      streamFrom: { file: 'binlog.000003', pos: 800, gtid: '0-1-40' },
      resume: { table: 'account', after: [15000], nextChunk: 3, rowsDone: 15000 },
    });
  });

  it('only streams after an interrupted snapshot when snapshots are off', () => {
    expect(planStart(interrupted, 'never', have)).toMatchObject({ kind: 'stream', from: { pos: 800 } });
  });

  it('resnapshots a purged position only when allowed, and says how otherwise', () => {
    expect(planStart(streamed, 'when_needed', purged)).toMatchObject({ kind: 'snapshot', streamFrom: null });
    expect(() => planStart(streamed, 'initial', purged)).toThrow(
      expect.objectContaining({ code: 'BINLOG_PURGED', hint: expect.stringMatching(/when_needed/) }),
    );
    expect(planStart(interrupted, 'initial', purged)).toMatchObject({
      kind: 'snapshot',
      streamFrom: null,
      resume: null,
    });
  });
});

describe('stored offsets', () => {
  it('accepts stream offsets written before snapshotCompleted existed and rejects foreign ones', () => {
    expect(binlogOffsetSchema.parse({ phase: 'stream', file: 'binlog.000001', pos: 4, gtid: null })).toEqual({
      phase: 'stream',
      snapshotCompleted: true,
      file: 'binlog.000001',
      pos: 4,
      gtid: null,
    });
    expect(binlogOffsetSchema.safeParse({ lsn: '0/16B3748' }).success).toBe(false);
  });
});
