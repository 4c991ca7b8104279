import { type ChangeEvent, sourceOrderOf, sourcePositionOf } from '../change-event.js';

/**
 * What tells a re-sent row change from a new one in a transaction Debezium sent twice.
 *
 * Not its total_order: on a restart inside a transaction Debezium replays the BEGIN (the
 * PostgreSQL connector always reprocesses BEGIN and COMMIT; the binlog connectors restart from
 * the transaction's first event), which resets its counters, skips the rows it had processed
 * and numbers the rest from 1 again. A row re-sent that way carries the total_order of a
 * different row of the first send, and its END counts only the rows re-sent. A CI run dropped
 * an order's last line as a "duplicate" of its first that way, after a broker restart.
 *
 * The source position (binlog file:pos:row, or the LSN) stays, but PostgreSQL gives every
 * tuple of one multi-row WAL record (COPY) the same LSN, so the row image goes with it, as a
 * hash to keep remembered identities small. Without a position (not a Debezium record),
 * total_order stands in for it.
 */
export function rowIdentity(event: ChangeEvent): string {
  const s = event.source;
  const position =
    s.lsn !== undefined || s.file !== undefined
      ? sourcePositionOf(event)
      : `#${event.transaction?.total_order ?? ''}`;
  return `${position}|${hash52(`${event.op}${JSON.stringify(event.before)}${JSON.stringify(event.after)}`)}`;
}

/** Sorts a transaction's events in source order (position first: total_order may restart, see above). */
export function inSourceOrder(events: ChangeEvent[]): ChangeEvent[] {
  return events
    .map((event) => ({ event, key: sourceOrderOf(event) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((e) => e.event);
}

/** FNV-1a over UTF-16 code units in two 32-bit lanes, 52 bits kept: an identity, not a secret. */
function hash52(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (a >>> 15);
  }
  return ((a >>> 0) * 2 ** 20 + ((b >>> 0) & 0xfffff)).toString(36);
}
