import { setImmediate as yieldToIo } from 'node:timers/promises';
import type { Database } from 'better-sqlite3';

/** How much of an append-mostly table is kept: 0 turns a limit off. */
export interface RetentionPolicy {
  /** Rows recorded longer ago than this are deleted. */
  maxAgeMs: number;
  /** Only the newest this many rows are kept. */
  maxRows: number;
  /** Rows deleted per statement; the event loop runs between batches. */
  batchRows: number;
}

/**
 * Deletes the oldest rows of `table` beyond `policy`, in small batches, and returns how many
 * went. The table's INTEGER PRIMARY KEY `id` must grow with its ISO `recorded_at` (rows are
 * appended as they are recorded), so the boundary of each limit is found by walking the
 * primary key from one end and every delete is a primary-key range: the cost is the rows
 * deleted, not the table size.
 */
export async function pruneOldest(
  db: Database,
  table: 'comparisons' | 'dead_letters',
  policy: RetentionPolicy,
  now: Date = new Date(),
): Promise<number> {
  const keepFrom = Math.max(
    policy.maxAgeMs > 0 ? firstIdNewerThan(db, table, new Date(now.getTime() - policy.maxAgeMs)) : 0,
    policy.maxRows > 0 ? firstIdOfNewest(db, table, policy.maxRows) : 0,
  );
  if (keepFrom === 0) return 0;
  const batch = db.prepare(
    `DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} WHERE id < ? ORDER BY id LIMIT ?)`,
  );
  let deleted = 0;
  for (;;) {
    const { changes } = batch.run(keepFrom, policy.batchRows);
    deleted += changes;
    if (changes < policy.batchRows) return deleted;
    await yieldToIo();
  }
}

/** The first id recorded at or after `cutoff` (everything below it is older); 0 when none is older. */
function firstIdNewerThan(db: Database, table: string, cutoff: Date): number {
  const oldest = db.prepare(`SELECT id, recorded_at FROM ${table} ORDER BY id LIMIT 1`).get() as
    | { id: number; recorded_at: string }
    | undefined;
  if (oldest === undefined || oldest.recorded_at >= cutoff.toISOString()) return 0;
  // NOT INDEXED: walk the primary key from the oldest row; a recorded_at index would make the
  // planner visit every newer row to find the smallest id.
  const row = db
    .prepare(`SELECT id FROM ${table} NOT INDEXED WHERE recorded_at >= ? ORDER BY id LIMIT 1`)
    .get(cutoff.toISOString()) as { id: number } | undefined;
  if (row !== undefined) return row.id;
  const max = db.prepare(`SELECT MAX(id) AS id FROM ${table}`).get() as { id: number };
  return max.id + 1;
}

/** The id of the oldest of the newest `keep` rows; 0 when there are no more than `keep`. */
function firstIdOfNewest(db: Database, table: string, keep: number): number {
  const span = db.prepare(`SELECT MIN(id) AS lo, MAX(id) AS hi FROM ${table}`).get() as {
    lo: number | null;
    hi: number | null;
  };
  // The id span bounds the row count from above: no walk when it fits.
  if (span.lo === null || span.hi === null || span.hi - span.lo + 1 <= keep) return 0;
  const row = db.prepare(`SELECT id FROM ${table} ORDER BY id DESC LIMIT 1 OFFSET ?`).get(keep - 1) as
    | { id: number }
    | undefined;
  return row?.id ?? 0;
}
