import type { ChangeEvent, SourceTransaction } from './change-event.js';

/** What both engines' snapshot readers yield per chunk, as far as a re-snapshot needs it. */
interface ResnapshotChunk {
  id: string;
  chunkNo: number;
  events: ChangeEvent[];
  rowsDone: number;
  tableDone: boolean;
}

/**
 * Delivers the chunks of a one-table re-snapshot to `sink` under their own offset (the live
 * source's resume point stays untouched). Read whole, the table's last chunk carries
 * completesTable, so the event store removes aggregates the source no longer has; read through a
 * `where`, absence proves nothing and nothing is removed.
 */
export async function deliverResnapshot(
  chunks: AsyncIterable<ResnapshotChunk>,
  sink: (tx: SourceTransaction) => Promise<void>,
  target: { db: string; table: string; run: string; where: string | undefined },
): Promise<{ rows: number; chunks: number }> {
  const { db, table, run, where } = target;
  let delivered = 0;
  let rows = 0;
  for await (const chunk of chunks) {
    delivered++;
    rows = chunk.rowsDone;
    await sink({
      id: chunk.id,
      events: chunk.events,
      offset: { resnapshot: table, run, chunk: chunk.chunkNo, rows: chunk.rowsDone },
      snapshot: true,
      ...(chunk.tableDone && where === undefined ? { completesTable: { db, table, run } } : {}),
    });
  }
  return { rows, chunks: delivered };
}
