import type { ChangeEvent, TransactionFragment } from './change-event.js';

/** One fragment's events, numbered, and its place among the transaction's fragments. */
export interface TakenFragment {
  events: ChangeEvent[];
  /** Absent when the transaction never filled a fragment: it leaves whole, as it always did. */
  fragment?: TransactionFragment;
}

/**
 * The row changes of one open source transaction, what the binlog and the pgoutput assemblers
 * share: at most `maxRows` of them are held, then handed out as a fragment
 * (SourceTransaction.fragment), and Debezium's transaction block (total and per-table order)
 * counts on across fragments, so the pieces number their events exactly as the whole would.
 */
export class FragmentBuffer {
  private events: ChangeEvent[] = [];
  private fragments = 0;
  private total = 0;
  private perCollection = new Map<string, number>();

  constructor(private readonly maxRows: number = Number.POSITIVE_INFINITY) {}

  /** Row changes held now (those of fragments already taken are not). */
  get size(): number {
    return this.events.length;
  }

  /**
   * A full fragment is held: take it before adding a further row. Checked only when a row
   * arrives, so a transaction of exactly maxRows rows stays whole.
   */
  get full(): boolean {
    return this.events.length >= this.maxRows;
  }

  /** Fragments of the open transaction were handed out (and staged by the event store). */
  get split(): boolean {
    return this.fragments > 0;
  }

  add(event: ChangeEvent): void {
    this.events.push(event);
  }

  /**
   * Hands out the held events with their transaction block filled in. After the `last` one,
   * the next transaction is numbered from the start again.
   */
  take(id: string, last: boolean): TakenFragment {
    const events = this.events;
    this.events = [];
    for (const event of events) {
      const s = event.source;
      // Debezium numbers per data collection: db.table on MySQL, schema.table on PostgreSQL.
      const collection = `${s.db}.${s.schema ?? ''}.${s.table}`;
      const n = (this.perCollection.get(collection) ?? 0) + 1;
      this.perCollection.set(collection, n);
      this.total += 1;
      event.transaction = { id, total_order: this.total, data_collection_order: n };
    }
    const index = this.fragments++;
    if (last) this.reset();
    return index > 0 || !last ? { events, fragment: { index, last } } : { events };
  }

  /** Drops the open transaction: the next one starts empty and numbered from 1. */
  reset(): void {
    this.events = [];
    this.fragments = 0;
    this.total = 0;
    this.perCollection = new Map();
  }
}
