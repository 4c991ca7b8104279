import type { ChangeEvent, SourceTransaction } from '../change-event.js';
import type { TransactionMarker } from '../debezium/record.js';
import { HeldOffsets } from './held-offsets.js';
import { inSourceOrder, rowIdentity } from './row-identity.js';

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
 * The barrier is the table topics' end offsets, fetched once the snapshot is known finished at
 * the source (its last row or a streamed END was read). Kafka orders records within a
 * partition only: Connect's producer sends one batch per partition per request, so a big
 * table's snapshot tail can land after the END of a transaction streamed later (a CI run
 * delivered a streamed transaction before an order_items snapshot tail that way). So a table
 * whose snapshot rows were read is also held open until its last row (Debezium marks it
 * last_in_data_collection, or last) or a streamed record of it (after its snapshot in the
 * same partition) is read; one whose end never shows (a connector that does not mark
 * tables) is let go `snapshotTableGraceMs` after the barrier was passed.
 *
 * It also says how far each topic-partition may be committed: up to, not including, the
 * oldest record still buffered, so a restart re-reads exactly what was not yet delivered.
 * Hence every record below a committed offset belongs to a transaction already delivered.
 *
 * Debezium is at-least-once: after a task restart, a rebalance or a broker hiccup it re-sends
 * what followed its last flushed offset, all of it or only part (an END marker whose rows it
 * had marked processed). Only what is certainly a duplicate is dropped:
 * - an END of a transaction delivered recently, or an END already queued;
 * - a row already buffered or delivered with its transaction lately, told by its source
 *   position and image, not its total_order, which a re-send may start again (row-identity.ts).
 * A row of a transaction delivered lately that was not delivered with it goes on its own.
 * What is probably a re-send is let go instead of blocking every later transaction behind an
 * END whose rows will never come, but its rows are delivered, never dropped:
 * - a head END missing rows of a table whose topic already gave rows of a transaction
 *   committed later (an END queued behind it): one partition per topic keeps commit order, so
 *   its rows were read before, i.e. below the committed offset, i.e. delivered already;
 * - a head END missing rows of a table whose topic has been read to its end a grace period
 *   after the END was read (`dropExhausted`, fed by the caller with the topics' end offsets);
 * - rows of a transaction without END lying below rows of a transaction whose END was read
 *   (orphans: their END was read before, so they were delivered or will never complete).
 * "Probably" because a broker restart can hold one partition's records back in the
 * connector's producer while another's (the END's) are written: the rows of a transaction
 * let go then arrive late, and are delivered as they come (dropping them lost data; a CI
 * run lost an order's lines after a broker restart). A transaction let go is delivered in parts, and a duplicate
 * delivered so is harmless: projections keep each row's sourceOrder and skip anything not
 * newer.
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

/** Why records were dropped as a duplicate of what was already delivered. */
export const DROP_REASONS = [
  'duplicate-end',
  'duplicate-row',
  'stale-end',
  'exhausted-end',
  'orphan-rows',
  'orphan-rows-exhausted',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export interface Dropped {
  reason: DropReason;
  txId: string;
  /**
   * Records that were buffered (or read, for a single row) and are now let go: a duplicate
   * row is dropped, the rows of a transaction let go without its END or all its rows are
   * delivered as they are (see the class comment).
   */
  records: number;
}

/** The head END marker and what it still waits for. */
export interface BlockedHead {
  txId: string;
  ref: RecordRef;
  readAtMs: number;
  expected: number;
  buffered: number;
  /** Table topics that miss rows (all consumed topics when the marker names no tables). */
  missingTopics: string[];
}

interface Buffered<E = ChangeEvent> {
  ref: RecordRef;
  event: E;
}

interface TxBuffer {
  records: Buffered<ChangeEvent | null>[];
  /** When its first record was read. */
  readAtMs: number;
  /** Identities of the rows buffered (row-identity.ts), so a re-sent row is not counted twice. */
  rows: Set<string>;
  /** Per topic: records buffered and the lowest offset. */
  topics: Map<string, { count: number; lowest: bigint }>;
}

interface PendingEnd {
  ref: RecordRef;
  marker: TransactionMarker;
  expected: number;
  /** Rows expected per table topic; null when the marker names no tables. */
  perTopic: Map<string, number> | null;
  readAtMs: number;
}

const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export interface ReassemblerOptions {
  /** Debezium data-collection names consumed ("db.table", PostgreSQL "schema.table") → their topic. */
  collections: ReadonlyMap<string, string>;
  snapshotChunkRows: number;
  /** Resume point recorded in each delivered unit. */
  offsetOf: (unit: RecordRef[]) => Record<string, unknown>;
  /** Told about every duplicate dropped (log it, count it). */
  onDrop?: (dropped: Dropped) => void;
  /** How long tables whose snapshot end was not read hold streamed transactions past the barrier. */
  snapshotTableGraceMs?: number;
  /** Told about the tables let go that way (log it, count it). */
  onSnapshotTablesUnclosed?: (topics: string[]) => void;
  now?: () => number;
}

export class TransactionReassembler {
  /** Streamed records by transaction id; null stands for a counted record that could not be parsed. */
  private readonly streamed = new Map<string, TxBuffer>();
  /** Transaction ids with buffered records, per topic. */
  private readonly byTopic = new Map<string, Set<string>>();
  /**
   * The same, of transactions whose END is not queued (orphan candidates): few, the ones
   * at the reading front, where byTopic holds every transaction queued when far behind.
   */
  private readonly endless = new Map<string, Set<string>>();
  /** Offsets of every record buffered (rows, markers, snapshot rows): the commit points. */
  private readonly held = new HeldOffsets();
  private streamedRecords = 0;
  private readonly ends: PendingEnd[] = [];
  private readonly endIds = new Set<string>();
  private snapshotRows: Buffered[] = [];
  /** Streamed records of no transaction (metadata off): each is its own unit. */
  private readonly loose: Buffered[] = [];
  /** Next offset to read, per topic-partition: everything below was seen (or committed). */
  private readonly position = new Map<string, { topic: string; partition: number; next: bigint }>();
  private snapshotSeen = false;
  private snapshotLastSeen = false;
  private barrier: Map<string, bigint> | null = null;
  /** Table topics with snapshot rows read whose table's last snapshot row is not read yet. */
  private readonly openTables = new Set<string>();
  /** When the read positions passed the barrier while tables were still open. */
  private barrierPassedAtMs: number | null = null;
  /**
   * Transactions delivered lately, with the identities of the rows delivered: a re-read or
   * re-sent one of those is dropped, any other is delivered on its own (a re-send numbered
   * anew can complete a transaction by its END's count before all its rows are read).
   */
  private readonly recentlyDelivered = new RecentTransactions();
  /**
   * Transactions let go without their END or all their rows: a re-sent END of one is
   * dropped, a row of one that comes later is delivered on its own (it may be new).
   */
  private readonly letGo = new RecentTransactions();
  /** Units ready ahead of the END queue: rows of transactions let go, then the head they preceded. */
  private readonly released: ReadyUnit[] = [];
  private readonly topics: ReadonlySet<string>;
  private readonly now: () => number;

  constructor(private readonly options: ReassemblerOptions) {
    this.topics = new Set(options.collections.values());
    this.now = options.now ?? Date.now;
  }

  /** True between the first snapshot row and the moment the barrier is known to be passed. */
  get holdingForSnapshot(): boolean {
    if (!this.snapshotSeen) return false;
    if (this.barrier === null) return true;
    for (const [key, high] of this.barrier) {
      if ((this.position.get(key)?.next ?? 0n) < high) return true;
    }
    if (this.openTables.size > 0) {
      this.barrierPassedAtMs ??= this.now();
      if (this.now() - this.barrierPassedAtMs < (this.options.snapshotTableGraceMs ?? 30_000)) return true;
      this.options.onSnapshotTablesUnclosed?.([...this.openTables]);
    }
    this.clearSnapshotHold();
    return false;
  }

  private clearSnapshotHold(): void {
    this.snapshotSeen = false;
    this.snapshotLastSeen = false;
    this.barrier = null;
    this.openTables.clear();
    this.barrierPassedAtMs = null;
  }

  /**
   * The caller fetches the table topics' end offsets next: the snapshot's last row has been
   * read, or a streamed END has (the connector streams only after its snapshot, so every
   * snapshot row is in the topics by then). The second case matters after a restart whose
   * committed offsets already passed the snapshot's last row but not all of its other rows.
   */
  get needsBarrier(): boolean {
    return this.snapshotSeen && this.barrier === null && (this.snapshotLastSeen || this.ends.length > 0);
  }

  /** End offsets of every table topic-partition once the snapshot is known complete. */
  setBarrier(ends: CommitPoint[]): void {
    this.barrier = new Map(ends.map((e) => [tpKey(e.topic, e.partition), BigInt(e.offset)]));
    for (const e of ends) this.touch(e.topic, e.partition);
  }

  /**
   * The group's committed offsets after a (re)join: everything below them was delivered, so a
   * topic without new records still counts as read up to there (snapshot barrier, exhaustion).
   */
  seed(committed: CommitPoint[]): void {
    for (const c of committed) {
      const next = BigInt(c.offset);
      if (next < 0n) continue;
      const key = tpKey(c.topic, c.partition);
      const p = this.position.get(key);
      if (p === undefined) this.position.set(key, { topic: c.topic, partition: c.partition, next });
      else if (next > p.next) p.next = next;
    }
  }

  /**
   * A record that carries nothing to deliver (BEGIN marker, tombstone): only the position moves.
   * A tombstone follows a streamed delete, so its table's snapshot rows were all read before it.
   */
  skip(ref: RecordRef): void {
    this.advance(ref);
    this.openTables.delete(ref.topic);
  }

  /**
   * `lastOfTable`: the connector marked the row its table's last snapshot row (Debezium's
   * last_in_data_collection; the snapshot's very last row is `snapshot: 'last'` anyway).
   */
  addChange(ref: RecordRef, event: ChangeEvent, lastOfTable = false): void {
    this.advance(ref);
    const snapshot = event.source.snapshot;
    if (snapshot !== 'false' && snapshot !== 'incremental') {
      this.snapshotSeen = true;
      if (snapshot === 'last') this.snapshotLastSeen = true;
      // The snapshot's first row opens nothing: a one-row first table gets no other mark.
      if (snapshot === 'last' || lastOfTable) this.openTables.delete(ref.topic);
      else if (snapshot === 'true') this.openTables.add(ref.topic);
      this.snapshotRows.push({ ref, event });
      this.holdRef(ref);
      return;
    }
    this.openTables.delete(ref.topic);
    const txId = event.transaction?.id;
    if (txId === undefined) {
      this.loose.push({ ref, event });
      this.holdRef(ref);
      return;
    }
    const identity = rowIdentity(event);
    const delivered = this.recentlyDelivered.rowsOf(txId);
    if (delivered?.has(identity)) return;
    if (delivered !== undefined || this.letGo.has(txId)) {
      this.recentlyDelivered.addRow(txId, identity);
      this.holdRef(ref);
      this.released.push(this.partialUnit(txId, [{ ref, event }], []));
      return;
    }
    const buffer = this.bufferOf(txId);
    if (buffer.rows.has(identity)) {
      this.options.onDrop?.({ reason: 'duplicate-row', txId, records: 1 });
      return;
    }
    buffer.rows.add(identity);
    this.hold(txId, buffer, { ref, event });
  }

  /** A record whose transaction is known but whose value could not be parsed still counts. */
  addUnreadable(ref: RecordRef, txId: string | null): void {
    this.advance(ref);
    if (txId === null || this.recentlyDelivered.has(txId) || this.letGo.has(txId)) return;
    // Counted towards the END marker but not delivered: the caller dead-letters it.
    this.hold(txId, this.bufferOf(txId), { ref, event: null });
  }

  addMarker(ref: RecordRef, marker: TransactionMarker): void {
    this.advance(ref);
    if (marker.status !== 'END' || this.recentlyDelivered.has(marker.id)) return;
    if (this.letGo.has(marker.id)) {
      this.options.onDrop?.({ reason: 'duplicate-end', txId: marker.id, records: 0 });
      return;
    }
    let perTopic: Map<string, number> | null = null;
    let counted = marker.event_count ?? 0;
    if (marker.data_collections) {
      perTopic = new Map();
      counted = 0;
      for (const c of marker.data_collections) {
        const topic = this.options.collections.get(c.data_collection);
        if (topic === undefined || c.event_count === 0) continue;
        perTopic.set(topic, (perTopic.get(topic) ?? 0) + c.event_count);
        counted += c.event_count;
      }
    }
    // Debezium writes markers for every transaction in the binlog, those of other databases too.
    if (counted === 0) return;
    if (this.endIds.has(marker.id)) {
      // A re-sent END of a transaction still waiting: the first one completes it.
      this.options.onDrop?.({ reason: 'duplicate-end', txId: marker.id, records: 0 });
      return;
    }
    this.endIds.add(marker.id);
    this.ends.push({ ref, marker, expected: counted, perTopic, readAtMs: this.now() });
    this.holdRef(ref);
    for (const topic of this.streamed.get(marker.id)?.topics.keys() ?? []) {
      removeFrom(this.endless, topic, marker.id);
    }
  }

  /**
   * The next unit to deliver, or null. `endOfBatch` lets a partial snapshot chunk go: more
   * rows may not come soon, and holding them would stall the snapshot's tail.
   */
  next(endOfBatch: boolean): ReadyUnit | null {
    if (this.snapshotRows.length >= this.options.snapshotChunkRows) return this.takeSnapshotChunk();
    if (this.snapshotRows.length > 0 && endOfBatch) return this.takeSnapshotChunk();
    if (this.holdingForSnapshot) return null;
    const released = this.released.shift();
    if (released !== undefined) {
      for (const r of released.records) this.releaseRef(r);
      return released;
    }
    for (let head = this.ends[0]; head; head = this.ends[0]) {
      const buffer = this.streamed.get(head.marker.id);
      if ((buffer?.records.length ?? 0) >= head.expected) {
        this.deliverHead(head, buffer);
        return this.next(endOfBatch);
      }
      if (this.laterRowsRead(head, buffer) === null) return null;
      this.letHeadGo(head, 'stale-end');
      if (this.released.length > 0) return this.next(endOfBatch);
    }
    const single = this.loose.shift();
    if (single) {
      this.releaseRef(single.ref);
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

  /** The head END when it still misses rows, with the topics they would come from. */
  blockedHead(): BlockedHead | null {
    if (this.holdingForSnapshot) return null;
    const head = this.ends[0];
    if (head === undefined) return null;
    const buffer = this.streamed.get(head.marker.id);
    const buffered = buffer?.records.length ?? 0;
    if (buffered >= head.expected) return null;
    return {
      txId: head.marker.id,
      ref: head.ref,
      readAtMs: head.readAtMs,
      expected: head.expected,
      buffered,
      missingTopics: this.missingTopics(head, buffer),
    };
  }

  /**
   * Drops the head END when, `graceMs` after it was read, a topic it misses rows of has been
   * read up to `ends` (its end offsets, fetched just now): the rows were below the committed
   * offsets, i.e. delivered before. Returns whether it dropped one.
   */
  dropExhausted(ends: CommitPoint[], graceMs: number): boolean {
    const blocked = this.blockedHead();
    const head = this.ends[0];
    if (blocked === null || head === undefined || this.now() - blocked.readAtMs < graceMs) return false;
    const exhausted = blocked.missingTopics.some((topic) => {
      const points = ends.filter((e) => e.topic === topic);
      return (
        points.length > 0 &&
        points.every((e) => (this.position.get(tpKey(e.topic, e.partition))?.next ?? 0n) >= BigInt(e.offset))
      );
    });
    if (exhausted) this.letHeadGo(head, 'exhausted-end');
    return exhausted;
  }

  /** Whether rows without a queued END were read more than `graceMs` ago (see dropOrphansExhausted). */
  hasOldOrphans(graceMs: number): boolean {
    const now = this.now();
    for (const txId of this.orphanCandidates()) {
      const buffer = this.streamed.get(txId);
      if (buffer !== undefined && now - buffer.readAtMs >= graceMs) return true;
    }
    return false;
  }

  /**
   * Drops rows without a queued END read more than `graceMs` ago when the transaction topic
   * has been read up to `txEnds` (its end offsets, fetched just now): Debezium writes a
   * transaction's END right after its rows, so an END not there by then was read before (the
   * rows are a re-send of a delivered transaction) or will never come. Without this, such
   * rows would hold their topic's commit point, and the group's lag, forever.
   */
  dropOrphansExhausted(txEnds: CommitPoint[], graceMs: number): number {
    const read = txEnds.every(
      (e) => (this.position.get(tpKey(e.topic, e.partition))?.next ?? 0n) >= BigInt(e.offset),
    );
    if (!read || txEnds.length === 0) return 0;
    const now = this.now();
    const orphans = [...this.orphanCandidates()].flatMap((txId) => {
      const buffer = this.streamed.get(txId);
      return buffer !== undefined && now - buffer.readAtMs >= graceMs ? [[txId, buffer] as const] : [];
    });
    for (const [txId, buffer] of orphans) {
      this.letOrphanGo(txId, buffer);
      this.options.onDrop?.({ reason: 'orphan-rows-exhausted', txId, records: buffer.records.length });
    }
    return orphans.length;
  }

  /** Where each topic-partition may be committed, given what is still buffered. */
  commitPoints(): CommitPoint[] {
    const points: CommitPoint[] = [];
    for (const p of this.position.values()) {
      if (p.next === 0n) continue;
      const offset = this.held.lowest(p.topic, p.partition) ?? p.next;
      points.push({ topic: p.topic, partition: p.partition, offset: String(offset) });
    }
    return points;
  }

  /**
   * Transactions handed out (next) whose delivery then failed: no longer taken for delivered,
   * so their records, read again, make them whole again instead of being dropped.
   */
  undeliver(txIds: readonly string[]): void {
    for (const id of txIds) {
      this.recentlyDelivered.delete(id);
      this.letGo.delete(id);
    }
  }

  /** Forget everything buffered (after a rebalance the consumer re-reads from committed offsets). */
  reset(): void {
    this.streamed.clear();
    this.byTopic.clear();
    this.endless.clear();
    this.held.clear();
    this.streamedRecords = 0;
    this.ends.length = 0;
    this.endIds.clear();
    this.snapshotRows = [];
    this.loose.length = 0;
    this.released.length = 0;
    this.position.clear();
    this.clearSnapshotHold();
  }

  get buffered(): number {
    return (
      this.snapshotRows.length +
      this.loose.length +
      this.streamedRecords +
      this.released.reduce((n, u) => n + u.records.length, 0)
    );
  }

  /** What the reassembler holds, for a diagnosis of a pipeline that stopped moving. */
  describe(): Record<string, unknown> {
    const head = this.ends[0];
    return {
      buffered: this.buffered,
      transactionsBuffered: this.streamed.size,
      endsQueued: this.ends.length,
      snapshotRows: this.snapshotRows.length,
      holdingForSnapshot: this.holdingForSnapshot,
      barrier: this.barrier === null ? null : Object.fromEntries(this.barrier),
      openSnapshotTables: [...this.openTables],
      head:
        head === undefined
          ? null
          : {
              txId: head.marker.id,
              at: `${head.ref.topic}@${head.ref.offset}`,
              expected: head.expected,
              perTopic: head.perTopic === null ? null : Object.fromEntries(head.perTopic),
              buffered: this.streamed.get(head.marker.id)?.records.length ?? 0,
              waitingMs: this.now() - head.readAtMs,
            },
      positions: Object.fromEntries([...this.position.values()].map((p) => [p.topic, String(p.next)])),
    };
  }

  /** Queues the complete head, after the orphans lying below its rows (they committed before it). */
  private deliverHead(head: PendingEnd, buffer: TxBuffer | undefined): void {
    const list = buffer?.records ?? [];
    this.removeHead(head);
    this.recentlyDelivered.add(head.marker.id, buffer?.rows ?? new Set());
    this.letOrphansBelowGo(list);
    this.holdAll([...list.map((b) => b.ref), head.ref]);
    this.released.push(this.partialUnit(head.marker.id, list, [head.ref]));
  }

  /** Lets the head go without the rows it misses: what it buffered is queued for delivery. */
  private letHeadGo(head: PendingEnd, reason: DropReason): void {
    const list = this.streamed.get(head.marker.id)?.records ?? [];
    this.removeHead(head);
    this.letGo.add(head.marker.id);
    this.options.onDrop?.({ reason, txId: head.marker.id, records: list.length });
    this.letOrphansBelowGo(list);
    if (list.length > 0) {
      this.holdAll(list.map((b) => b.ref));
      this.released.push(this.partialUnit(head.marker.id, list, []));
    }
  }

  private removeHead(head: PendingEnd): void {
    this.ends.shift();
    this.releaseRef(head.ref);
    this.endIds.delete(head.marker.id);
    this.forget(head.marker.id);
  }

  /** Rows of a transaction without its END, queued for delivery as they are. */
  private letOrphanGo(txId: string, buffer: TxBuffer): void {
    const list = buffer.records;
    this.forget(txId);
    this.letGo.add(txId);
    this.holdAll(list.map((b) => b.ref));
    this.released.push(this.partialUnit(txId, list, []));
  }

  /** A unit of `list`'s events in source order; its records stay held until next() hands it out. */
  private partialUnit(txId: string, list: Buffered<ChangeEvent | null>[], extra: RecordRef[]): ReadyUnit {
    const events = inSourceOrder(list.flatMap((b) => (b.event === null ? [] : [b.event])));
    const records = [...list.map((b) => b.ref), ...extra];
    return { tx: { id: txId, events, offset: this.options.offsetOf(records), snapshot: false }, records };
  }

  private holdAll(refs: readonly RecordRef[]): void {
    for (const r of refs) this.holdRef(r);
  }

  /**
   * The topic where the head misses rows although a transaction committed after it (its END
   * is queued behind) already gave rows there; null when there is none.
   */
  private laterRowsRead(head: PendingEnd, buffer: TxBuffer | undefined): string | null {
    if (head.perTopic === null) return null;
    for (const topic of this.missingTopics(head, buffer)) {
      const ids = this.byTopic.get(topic);
      if (ids === undefined) continue;
      // Transactions with rows here whose END is queued, the head's own aside (its END is queued).
      const queued = ids.size - (this.endless.get(topic)?.size ?? 0) - (ids.has(head.marker.id) ? 1 : 0);
      if (queued > 0) return topic;
    }
    return null;
  }

  private missingTopics(head: PendingEnd, buffer: TxBuffer | undefined): string[] {
    if (head.perTopic === null) return [...this.topics];
    return [...head.perTopic]
      .filter(([topic, count]) => (buffer?.topics.get(topic)?.count ?? 0) < count)
      .map(([topic]) => topic);
  }

  /**
   * Rows of a transaction whose END is not queued, lying below rows of a transaction whose END
   * was read: its END came before on the transaction topic, so it was delivered already (by a
   * previous run) or will never come.
   */
  private letOrphansBelowGo(list: Buffered<ChangeEvent | null>[]): void {
    const highest = new Map<string, bigint>();
    for (const b of list) {
      const offset = BigInt(b.ref.offset);
      if ((highest.get(b.ref.topic) ?? -1n) < offset) highest.set(b.ref.topic, offset);
    }
    const orphans = new Set<string>();
    for (const [topic, offset] of highest) {
      for (const txId of this.endless.get(topic) ?? []) {
        const lowest = this.streamed.get(txId)?.topics.get(topic)?.lowest;
        if (lowest !== undefined && lowest < offset) orphans.add(txId);
      }
    }
    for (const txId of orphans) {
      const buffer = this.streamed.get(txId);
      if (buffer === undefined) continue;
      this.options.onDrop?.({ reason: 'orphan-rows', txId, records: buffer.records.length });
      this.letOrphanGo(txId, buffer);
    }
  }

  private bufferOf(txId: string): TxBuffer {
    let buffer = this.streamed.get(txId);
    if (buffer === undefined) {
      buffer = { records: [], rows: new Set(), topics: new Map(), readAtMs: this.now() };
      this.streamed.set(txId, buffer);
    }
    return buffer;
  }

  private hold(txId: string, buffer: TxBuffer, record: Buffered<ChangeEvent | null>): void {
    buffer.records.push(record);
    this.streamedRecords++;
    this.holdRef(record.ref);
    const { topic } = record.ref;
    const offset = BigInt(record.ref.offset);
    const seen = buffer.topics.get(topic);
    if (seen === undefined) buffer.topics.set(topic, { count: 1, lowest: offset });
    else {
      seen.count++;
      if (offset < seen.lowest) seen.lowest = offset;
    }
    addTo(this.byTopic, topic, txId);
    if (!this.endIds.has(txId)) addTo(this.endless, topic, txId);
  }

  private forget(txId: string): void {
    const buffer = this.streamed.get(txId);
    if (buffer === undefined) return;
    this.streamed.delete(txId);
    this.streamedRecords -= buffer.records.length;
    for (const b of buffer.records) this.releaseRef(b.ref);
    for (const topic of buffer.topics.keys()) {
      removeFrom(this.byTopic, topic, txId);
      removeFrom(this.endless, topic, txId);
    }
  }

  /** Transactions with rows buffered and no END queued. */
  private orphanCandidates(): Set<string> {
    const ids = new Set<string>();
    for (const set of this.endless.values()) for (const txId of set) ids.add(txId);
    return ids;
  }

  private holdRef(ref: RecordRef): void {
    this.held.hold(ref.topic, ref.partition, BigInt(ref.offset));
  }

  private releaseRef(ref: RecordRef): void {
    this.held.release(ref.topic, ref.partition, BigInt(ref.offset));
  }

  private takeSnapshotChunk(): ReadyUnit {
    const chunk = this.snapshotRows.slice(0, this.options.snapshotChunkRows);
    this.snapshotRows = this.snapshotRows.slice(chunk.length);
    for (const b of chunk) this.releaseRef(b.ref);
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
}

/**
 * The newest transactions (10,000, and rows remembered of them up to 100,000), oldest
 * forgotten first: a record of one forgotten is taken for new, buffered as an orphan and
 * delivered again, which the projections skip by sourceOrder.
 */
class RecentTransactions {
  private readonly byId = new Map<string, Set<string>>();
  private rows = 0;

  has(txId: string): boolean {
    return this.byId.has(txId);
  }

  rowsOf(txId: string): Set<string> | undefined {
    return this.byId.get(txId);
  }

  add(txId: string, rows: Set<string> = new Set()): void {
    if (this.byId.has(txId)) return;
    this.byId.set(txId, rows);
    this.rows += rows.size;
    for (const [oldest, oldRows] of this.byId) {
      if (this.byId.size <= 10_000 && this.rows <= 100_000) break;
      this.byId.delete(oldest);
      this.rows -= oldRows.size;
    }
  }

  /** Remembers one more row delivered with a transaction still remembered. */
  addRow(txId: string, identity: string): void {
    const rows = this.byId.get(txId);
    if (rows === undefined || rows.has(identity)) return;
    rows.add(identity);
    this.rows++;
  }

  delete(txId: string): void {
    const rows = this.byId.get(txId);
    if (rows === undefined) return;
    this.byId.delete(txId);
    this.rows -= rows.size;
  }
}

function addTo(index: Map<string, Set<string>>, topic: string, txId: string): void {
  let ids = index.get(topic);
  if (ids === undefined) {
    ids = new Set();
    index.set(topic, ids);
  }
  ids.add(txId);
}

function removeFrom(index: Map<string, Set<string>>, topic: string, txId: string): void {
  const ids = index.get(topic);
  ids?.delete(txId);
  if (ids?.size === 0) index.delete(topic);
}
