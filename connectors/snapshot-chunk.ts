import type { ChangeEvent } from './change-event.js';

/**
 * The unit both snapshot readers (binlog/snapshot.ts, pgoutput/snapshot.ts) deliver: one page of
 * a table's rows as `r` change events, with what a restart needs to go on after it. `K` is how
 * the reader keeps a primary-key value in an offset.
 */
export interface SnapshotChunk<K> {
  /**
   * `snapshot:<table>:<chunkNo>@<run>`, or `snapshot:done@<run>` for the marker of a snapshot
   * of no table. The run names one snapshot across its interruptions (see snapshotTxId).
   */
  id: string;
  table: string;
  chunkNo: number;
  events: ChangeEvent[];
  /** Rows read so far, this chunk included. */
  rowsDone: number;
  /** Primary key of the chunk's last row (null for a table without one, or an empty chunk). */
  after: K[] | null;
  /** True for the last chunk of its table: the run has read the whole table (or its --where range). */
  tableDone: boolean;
  /** True for the chunk carrying the snapshot's very last row (or the empty marker). */
  last: boolean;
}

/**
 * Transaction id of a snapshot chunk. `run` is the same for every attempt of one snapshot (where
 * its streaming starts from), so the event store can tell which aggregates this snapshot has
 * delivered, across restarts, when it looks for rows gone from the source.
 */
export function snapshotTxId(table: string | null, chunkNo: number, run: string): string {
  return table === null ? `snapshot:done@${run}` : `snapshot:${table}:${chunkNo}@${run}`;
}

/** Where a table's read ended, for its closing chunk. */
export interface TableEnd<K> {
  table: string;
  run: string;
  /** The chunk number the table's next chunk would have had. */
  chunkNo: number;
  rowsDone: number;
  /** The key the read went on after (a resumed read), kept in an empty closing chunk. */
  startAfter: readonly K[] | null;
  /** Whether the read delivered any row. */
  readAny: boolean;
}

/**
 * Closes a table's read: marks its last chunk `tableDone`. An empty read (an empty table, or
 * nothing left after the resume key) still gets a chunk of its own: it tells the event store the
 * table was read whole, so aggregates it still holds for the table are gone from the source.
 * Yields the chunk held before it, if any, and returns the new pending chunk.
 */
export function* endOfTable<K>(
  pending: SnapshotChunk<K> | null,
  end: TableEnd<K>,
): Generator<SnapshotChunk<K>, SnapshotChunk<K>> {
  let last = pending;
  if (!end.readAny || last === null) {
    if (last !== null) yield last;
    last = {
      id: snapshotTxId(end.table, end.chunkNo, end.run),
      table: end.table,
      chunkNo: end.chunkNo,
      events: [],
      rowsDone: end.rowsDone,
      after: end.startAfter === null ? null : [...end.startAfter],
      tableDone: false,
      last: false,
    };
  }
  last.tableDone = true;
  return last;
}

/**
 * The snapshot's closing chunk: the one held back (marked `last`, its last event the snapshot's
 * `last` row), or an empty marker when no table was read.
 */
export function finalChunk<K>(
  pending: SnapshotChunk<K> | null,
  rowsDone: number,
  run: string,
): SnapshotChunk<K> {
  const done: SnapshotChunk<K> = pending ?? {
    id: snapshotTxId(null, 0, run),
    table: '',
    chunkNo: 0,
    events: [],
    rowsDone,
    after: null,
    tableDone: false,
    last: true,
  };
  done.last = true;
  const lastEvent = done.events[done.events.length - 1];
  if (lastEvent) lastEvent.source.snapshot = 'last';
  return done;
}
