import type { ChangeEvent, Op, SourceOffset } from '../connectors/change-event.js';

/** A domain event produced by the row→event mapping, before it has a position. */
export interface NewDomainEvent {
  /** Aggregate type, e.g. "account". */
  streamType: string;
  /** Aggregate id, e.g. "account-42": ordering is guaranteed per stream. */
  streamId: string;
  /** e.g. "AccountOpened". */
  type: string;
  data: Record<string, unknown>;
  metadata: EventMetadata;
}

export interface EventMetadata {
  op: Op;
  table: string;
  /** sourcePositionOf(changeEvent): binlog file:pos:row or LSN. */
  sourcePosition: string;
  /** sourceOrderOf(changeEvent): sorts in the source's commit order per row. */
  sourceOrder: string;
  /** Source transaction id (GTID / xid); shared by every event of one source transaction. */
  sourceTxId: string;
  /** Source commit time, epoch ms. */
  sourceTsMs: number;
  snapshot: boolean;
}

export interface StoredEvent extends NewDomainEvent {
  /** Global, gap-free, strictly increasing position in the store. */
  position: number;
  /** 1-based version within the stream. */
  version: number;
  /** ISO time the store recorded it. */
  recordedAt: string;
}

export interface DeadLetter {
  /** Why the row was rejected, readable by an operator. */
  reason: string;
  table: string;
  op: Op;
  sourcePosition: string;
  sourceTxId: string;
  /** The whole change event as received. */
  change: ChangeEvent;
}

export interface StoredDeadLetter extends DeadLetter {
  id: number;
  recordedAt: string;
}

/**
 * Appended with the last snapshot chunk of a table: every live aggregate of `streamType` whose
 * last event came from `table` and that received no event from snapshot run `run` is gone from
 * the source (deleted while no change was read, e.g. in a purged binlog gap), so the store
 * appends its `deleteType` event, in the same transaction as the chunk.
 */
export interface SnapshotSweep {
  table: string;
  run: string;
  streamType: string;
  deleteType: string;
}

/**
 * A batch with nothing to store but its offset: the sources' heartbeats, which move the resume
 * point past changes to tables nobody captures. Not a stored transaction.
 */
export function movesOffsetOnly(batch: {
  events: readonly unknown[];
  deadLetters: readonly unknown[];
  sweep?: unknown;
  schemaChanges?: readonly unknown[];
  fragment?: unknown;
}): boolean {
  // A big transaction's last fragment publishes what was staged, however little it adds.
  return (
    batch.fragment === undefined &&
    batch.events.length === 0 &&
    batch.deadLetters.length === 0 &&
    batch.sweep === undefined &&
    (batch.schemaChanges ?? []).length === 0
  );
}

/** One source transaction's mapped output, stored atomically with the source offset. */
export interface AppendBatch {
  /** Which CDC source the offset belongs to. */
  sourceName: string;
  sourceTxId: string;
  offset: SourceOffset;
  events: NewDomainEvent[];
  deadLetters: DeadLetter[];
  sweep?: SnapshotSweep;
  /** Schema changes the batch carries, recorded with it (so a replay does not record them twice). */
  schemaChanges?: SchemaChange[];
  /**
   * One fragment of a big source transaction (SourceTransaction.fragment): an unfinished one is
   * staged out of readers' sight and its offset is not stored; the last one appends every
   * staged fragment and its own output in one transaction, as one append of the whole would.
   */
  fragment?: { index: number; last: boolean };
}

export interface AppendResult {
  /** Positions of the appended events, or null when the batch held none. */
  firstPosition: number | null;
  lastPosition: number | null;
  /** True when the store had already recorded this source transaction (idempotent replay). */
  duplicate: boolean;
  /** Aggregates the batch's sweep removed; only on a batch with a sweep. */
  swept?: number;
  /** The batch was an unfinished fragment: staged, nothing visible appended yet. */
  staged?: boolean;
}

/**
 * Append-only event store. `append` writes events, dead letters and the source offset in one
 * transaction, so after a crash the offset never runs ahead of or behind the stored events.
 */
export interface EventStore {
  append(batch: AppendBatch): Promise<AppendResult>;
  loadOffset(sourceName: string): Promise<SourceOffset | null>;
  /** Events with position > afterPosition, ascending, at most `limit`. */
  readAfter(afterPosition: number, limit: number): Promise<StoredEvent[]>;
  readStream(streamId: string): Promise<StoredEvent[]>;
  headPosition(): Promise<number>;
  listDeadLetters(limit: number, afterId?: number): Promise<StoredDeadLetter[]>;
  countDeadLetters(): Promise<number>;
  close(): Promise<void>;
}

/** Filters of `dead-letters list` / `redrive`; absent fields match everything. */
export interface DeadLetterFilter {
  table?: string;
  /** ISO time: only letters recorded at or after it. */
  since?: string;
  /** Only letters whose reason contains this text. */
  reason?: string;
  /** Only letters not re-driven yet. */
  pendingOnly?: boolean;
  limit: number;
  afterId?: number;
}

/** A stored dead letter and, once re-driven, what came of it. */
export interface DeadLetterStatus extends StoredDeadLetter {
  redrive: { outcome: 'appended' | 'superseded'; streamId: string; redrivenAt: string } | null;
}

/** DDL seen on a captured table (see migrations/sqlite/002_operations.sql). */
export interface SchemaChange {
  sourceName: string;
  table: string;
  ddl: string;
  sourcePosition: string;
  /** The table's columns after the change, in order. */
  columns: string[];
  /** Why the table's capture rule no longer reads the table; null when it still does. */
  breaks: string | null;
}

export interface StoredSchemaChange extends SchemaChange {
  id: number;
  detectedAt: string;
  resolvedAt: string | null;
}
