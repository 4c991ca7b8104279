import { SourceError } from '../../lib/errors.js';
import type { BinlogOffset, BinlogPosition, BinlogSourceConfig } from './config.js';

/** Where an interrupted snapshot goes on: after the last chunk the sink accepted. */
export interface SnapshotResume {
  table: string;
  /** Primary key of that chunk's last row; null: the table is read again from its start. */
  after: ReadonlyArray<string | number> | null;
  /** Number of the next chunk of `table`. */
  nextChunk: number;
  rowsDone: number;
}

export type StartPlan =
  /**
   * Take a snapshot, then stream from `streamFrom`, or from the snapshot's own position when
   * null; with `resume`, only what the interrupted attempt had not delivered yet.
   */
  | { kind: 'snapshot'; streamFrom: BinlogPosition | null; resume: SnapshotResume | null; reason: string }
  /** Stream only, from `from`, or from the binlog's current end when null. */
  | { kind: 'stream'; from: BinlogPosition | null; reason: string };

/**
 * Pure: what `start` does for a stored offset, the configured snapshot mode and whether the
 * offset's binlog file is still on the server. Throws a SourceError when no choice is safe.
 */
export function planStart(
  offset: BinlogOffset | null,
  mode: BinlogSourceConfig['snapshotMode'],
  fileAvailable: (file: string) => boolean,
): StartPlan {
  if (offset === null) {
    return mode === 'never'
      ? {
          kind: 'stream',
          from: null,
          reason: 'no offset and snapshotMode never: streaming from the binlog end',
        }
      : { kind: 'snapshot', streamFrom: null, resume: null, reason: 'no offset: initial snapshot' };
  }
  const at: BinlogPosition = { file: offset.file, pos: offset.pos, gtid: offset.gtid };
  const available = fileAvailable(offset.file);
  if (offset.phase === 'stream' || mode === 'never') {
    if (available) return { kind: 'stream', from: at, reason: 'resuming from the stored offset' };
    if (mode === 'when_needed')
      return {
        kind: 'snapshot',
        streamFrom: null,
        resume: null,
        reason: `binlog ${offset.file} was purged: new snapshot`,
      };
    throw new SourceError(
      'BINLOG_PURGED',
      `the stored offset points into ${offset.file}, which the server no longer has: changes since then are lost`,
      {
        hint:
          "set cdc.snapshotMode to 'when_needed' in the config file to take a new snapshot, and keep " +
          'binlogs longer (expire_logs_days / binlog_expire_logs_seconds)',
      },
    );
  }
  // An interrupted snapshot goes on after the last chunk the sink accepted (those rows are in
  // the event store already), in a new read view, while streaming still starts from the
  // position of the first attempt. The rows read in the new view are newer than that position;
  // streaming from it replays the changes between the views on top of them (every event carries
  // full row images and consumers apply them idempotently, so their state converges), and it
  // covers every change made after the earlier chunks were read, deletes included. Streaming
  // from the new view instead would lose those.
  if (available)
    return {
      kind: 'snapshot',
      streamFrom: at,
      resume: {
        table: offset.table,
        after: offset.after,
        nextChunk: offset.chunk + 1,
        rowsDone: offset.rows,
      },
      reason: `snapshot was interrupted: resuming after chunk ${offset.chunk} of ${offset.table}`,
    };
  // Without the first attempt's position, the changes to rows it delivered are gone: a new
  // snapshot from scratch, whose completion also removes what the source no longer has.
  return {
    kind: 'snapshot',
    streamFrom: null,
    resume: null,
    reason: `snapshot was interrupted and binlog ${offset.file} was purged: redoing it from a new position`,
  };
}
