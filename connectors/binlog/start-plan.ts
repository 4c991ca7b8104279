import { SourceError } from '../../lib/errors.js';
import type { BinlogOffset, BinlogPosition, BinlogSourceConfig } from './config.js';

export type StartPlan =
  /** Take a snapshot, then stream from `streamFrom`, or from the snapshot's own position when null. */
  | { kind: 'snapshot'; streamFrom: BinlogPosition | null; reason: string }
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
      : { kind: 'snapshot', streamFrom: null, reason: 'no offset: initial snapshot' };
  }
  const at: BinlogPosition = { file: offset.file, pos: offset.pos, gtid: offset.gtid };
  const available = fileAvailable(offset.file);
  if (offset.phase === 'stream' || mode === 'never') {
    if (available) return { kind: 'stream', from: at, reason: 'resuming from the stored offset' };
    if (mode === 'when_needed')
      return { kind: 'snapshot', streamFrom: null, reason: `binlog ${offset.file} was purged: new snapshot` };
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
  // An interrupted snapshot is redone in a new read view, but streaming starts from the
  // position recorded by the first attempt. Streaming from the new view would lose deletes: a
  // row the first attempt delivered and that was deleted before the new view is neither in the
  // new snapshot nor in the binlog after it. Replaying from the earlier position re-delivers the
  // changes between the two views on top of the newer rows; every event carries full row images
  // and consumers apply them idempotently, so their state converges to the source's.
  if (available) return { kind: 'snapshot', streamFrom: at, reason: 'snapshot was interrupted: redoing it' };
  return {
    kind: 'snapshot',
    streamFrom: null,
    reason: `snapshot was interrupted and binlog ${offset.file} was purged: redoing it from a new position`,
  };
}
