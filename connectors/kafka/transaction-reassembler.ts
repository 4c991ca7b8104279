import type { ChangeEvent, SourceTransaction } from '../change-event.js';
import type { TransactionMarker } from '../debezium/record.js';

/**
 * Debezium writes each table to its own topic and the BEGIN/END markers of every source
 * transaction to `<prefix>.transaction`, so a transaction arrives in pieces, interleaved in
 * any order across topics. This pure state machine puts them back together: a streamed
 * transaction is ready once its END marker and all the events the marker counts (for the
 * tables consumed) are here, and transactions leave in END-marker order, i.e. commit order.
 * Snapshot rows carry no transaction and leave in chunks; streamed transactions wait until
 * every snapshot row before them has left (the snapshot barrier), as the embedded reader
 * delivers its whole snapshot before streaming.
 *
 * It also says how far each topic-partition may be committed: up to, not including, the
 * oldest record still buffered, so a restart re-reads exactly what was not yet delivered.
 */

export interface RecordRef {
  topic: string;
  partition: number;
  /** Kafka offset (kafkajs gives them as decimal strings). */
  offset: string;
}

export interface CommitPoint {
  topic: string;
  partition: number;
  /** The next offset to read after a restart. */
  offset: string;
}

export interface ReadyUnit {
  tx: SourceTransaction;
  records: RecordRef[];
}

interface Buffered<E = ChangeEvent> {
  ref: RecordRef;
  event: E;
}

interface PendingEnd {
  ref: RecordRef;
  marker: TransactionMarker;
  expected: number;
}

const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export interface ReassemblerOptions {
  /** Debezium data-collection names consumed ("db.table", PostgreSQL "schema.table"). */
  collections: ReadonlySet<string>;
  snapshotChunkRows: number;
  /** Resume point recorded in each delivered unit. */
  offsetOf: (unit: RecordRef[]) => Record<string, unknown>;
}

export class TransactionReassembler {
  /** Streamed records by transaction id; null stands for a counted record that could not be parsed. */
  private readonly streamed = new Map<string, Buffered<ChangeEvent | null>[]>();
  private readonly ends: PendingEnd[] = [];
  private snapshotRows: Buffered[] = [];
  /** Streamed records of no transaction (metadata off): each is its own unit. */
  private readonly loose: Buffered[] = [];
  /** Next offset to read, per topic-partition: everything below was seen. */
  private readonly position = new Map<string, { topic: string; partition: number; next: bigint }>();
  private snapshotSeen = false;
  private snapshotLastSeen = false;
  private barrier: Map<string, bigint> | null = null;
  /** Re-read records of transactions already delivered (a rebalance mid-batch) are dropped. */
  private readonly recentlyDelivered = new Set<string>();
  private readonly recentOrder: string[] = [];

  constructor(private readonly options: ReassemblerOptions) {}

  /** True between the first snapshot row and the moment the barrier is known to be passed. */
  get holdingForSnapshot(): boolean {
    if (!this.snapshotSeen) return false;
    if (!this.snapshotLastSeen || this.barrier === null) return true;
    for (const [key, high] of this.barrier) {
      if ((this.position.get(key)?.next ?? 0n) < high) return true;
    }
    this.snapshotSeen = false;
    this.snapshotLastSeen = false;
    this.barrier = null;
    return false;
  }

  /** The snapshot's last row has been read: the caller fetches the topics' end offsets next. */
  get needsBarrier(): boolean {
    return this.snapshotLastSeen && this.barrier === null;
  }

  /** End offsets of every table topic-partition once the last snapshot row was read. */
  setBarrier(ends: CommitPoint[]): void {
    this.barrier = new Map(ends.map((e) => [tpKey(e.topic, e.partition), BigInt(e.offset)]));
    for (const e of ends) this.touch(e.topic, e.partition);
  }

  /** A record that carries nothing to deliver (BEGIN marker, tombstone): only the position moves. */
  skip(ref: RecordRef): void {
    this.advance(ref);
  }

  addChange(ref: RecordRef, event: ChangeEvent): void {
    this.advance(ref);
    if (event.source.snapshot !== 'false' && event.source.snapshot !== 'incremental') {
      this.snapshotSeen = true;
      if (event.source.snapshot === 'last') this.snapshotLastSeen = true;
      this.snapshotRows.push({ ref, event });
      return;
    }
    const txId = event.transaction?.id;
    if (txId === undefined) {
      this.loose.push({ ref, event });
      return;
    }
    if (this.recentlyDelivered.has(txId)) return;
    const list = this.streamed.get(txId);
    if (list) list.push({ ref, event });
    else this.streamed.set(txId, [{ ref, event }]);
  }

  /** A record whose transaction is known but whose value could not be parsed still counts. */
  addUnreadable(ref: RecordRef, txId: string | null): void {
    this.advance(ref);
    if (txId === null || this.recentlyDelivered.has(txId)) return;
    // Counted towards the END marker but not delivered: the caller dead-letters it.
    const list = this.streamed.get(txId) ?? [];
    list.push({ ref, event: null });
    this.streamed.set(txId, list);
  }

  addMarker(ref: RecordRef, marker: TransactionMarker): void {
    this.advance(ref);
    if (marker.status !== 'END' || this.recentlyDelivered.has(marker.id)) return;
    const counted = marker.data_collections
      ? marker.data_collections
          .filter((c) => this.options.collections.has(c.data_collection))
          .reduce((n, c) => n + c.event_count, 0)
      : (marker.event_count ?? 0);
    // Debezium writes markers for every transaction in the binlog, those of other databases too.
    if (counted === 0) return;
    this.ends.push({ ref, marker, expected: counted });
  }

  /**
   * The next unit to deliver, or null. `endOfBatch` lets a partial snapshot chunk go: more
   * rows may not come soon, and holding them would stall the snapshot's tail.
   */
  next(endOfBatch: boolean): ReadyUnit | null {
    if (this.snapshotRows.length >= this.options.snapshotChunkRows) return this.takeSnapshotChunk();
    if (this.snapshotRows.length > 0 && endOfBatch) return this.takeSnapshotChunk();
    if (this.holdingForSnapshot) return null;
    const head = this.ends[0];
    if (head) {
      const list = this.streamed.get(head.marker.id) ?? [];
      if (list.length < head.expected) return null;
      this.ends.shift();
      this.streamed.delete(head.marker.id);
      this.remember(head.marker.id);
      const events = list
        .flatMap((b) => (b.event === null ? [] : [b.event]))
        .sort((a, b) => (a.transaction?.total_order ?? 0) - (b.transaction?.total_order ?? 0));
      const records = [...list.map((b) => b.ref), head.ref];
      return {
        tx: {
          id: head.marker.id,
          events,
          offset: this.options.offsetOf(records),
          snapshot: false,
        },
        records,
      };
    }
    const single = this.loose.shift();
    if (single) {
      const records = [single.ref];
      return {
        tx: {
          id: `${single.ref.topic}:${single.ref.partition}:${single.ref.offset}`,
          events: [single.event],
          offset: this.options.offsetOf(records),
          snapshot: false,
        },
        records,
      };
    }
    return null;
  }

  /** Where each topic-partition may be committed, given what is still buffered. */
  commitPoints(): CommitPoint[] {
    const oldest = new Map<string, bigint>();
    const hold = (ref: RecordRef) => {
      const key = tpKey(ref.topic, ref.partition);
      const offset = BigInt(ref.offset);
      const seen = oldest.get(key);
      if (seen === undefined || offset < seen) oldest.set(key, offset);
    };
    for (const list of this.streamed.values()) for (const b of list) hold(b.ref);
    for (const b of this.snapshotRows) hold(b.ref);
    for (const b of this.loose) hold(b.ref);
    for (const e of this.ends) hold(e.ref);
    const points: CommitPoint[] = [];
    for (const [key, p] of this.position) {
      if (p.next === 0n) continue;
      points.push({ topic: p.topic, partition: p.partition, offset: String(oldest.get(key) ?? p.next) });
    }
    return points;
  }

  /** Forget everything buffered (after a rebalance the consumer re-reads from committed offsets). */
  reset(): void {
    this.streamed.clear();
    this.ends.length = 0;
    this.snapshotRows = [];
    this.loose.length = 0;
    this.position.clear();
    this.snapshotSeen = false;
    this.snapshotLastSeen = false;
    this.barrier = null;
  }

  get buffered(): number {
    let n = this.snapshotRows.length + this.loose.length;
    for (const list of this.streamed.values()) n += list.length;
    return n;
  }

  private takeSnapshotChunk(): ReadyUnit {
    const chunk = this.snapshotRows.slice(0, this.options.snapshotChunkRows);
    this.snapshotRows = this.snapshotRows.slice(chunk.length);
    const records = chunk.map((b) => b.ref);
    const first = chunk[0]?.ref;
    return {
      tx: {
        id: `snapshot:${first?.topic}:${first?.partition}:${first?.offset}`,
        events: chunk.map((b) => b.event),
        offset: this.options.offsetOf(records),
        snapshot: true,
      },
      records,
    };
  }

  private touch(topic: string, partition: number): void {
    const key = tpKey(topic, partition);
    if (!this.position.has(key)) this.position.set(key, { topic, partition, next: 0n });
  }

  private advance(ref: RecordRef): void {
    const key = tpKey(ref.topic, ref.partition);
    const next = BigInt(ref.offset) + 1n;
    const p = this.position.get(key);
    if (p === undefined) this.position.set(key, { topic: ref.topic, partition: ref.partition, next });
    else if (next > p.next) p.next = next;
  }

  private remember(txId: string): void {
    this.recentlyDelivered.add(txId);
    this.recentOrder.push(txId);
    if (this.recentOrder.length > 10_000) {
      const old = this.recentOrder.shift();
      if (old !== undefined) this.recentlyDelivered.delete(old);
    }
  }
}
