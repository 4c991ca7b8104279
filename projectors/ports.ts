import type Database from 'better-sqlite3';
import type { Analytics } from '../definition/analytics.js';
import type { NewDomainEvent, StoredEvent } from '../eventstore/ports.js';

/** Threads composing a bulk build's views while the projector's thread writes them. */
export interface ComposeThreadsOption {
  /** The module the definition was loaded from: each thread loads it again. */
  definition: string;
  threads: number;
  /** Roots a view needs before the threads compose it (default 20,000: fewer compose faster than the threads start). */
  minRoots?: number;
}

export interface FlushOptions {
  /**
   * Every row the flush composes from is committed (the flush ending a deferral): another
   * connection, a compose thread's, may read them.
   */
  rowsCommitted?: boolean;
  /**
   * Hears a whole composition's progress after each page of documents: the view, the roots
   * composed so far and how many it has (a bulk build's compose step runs for minutes at scale).
   */
  onComposed?: (view: string, done: number, total: number) => void;
  /**
   * Hears each index a bulk build creates again, before and after its one long statement
   * (minutes for a large table, with nothing else to report meanwhile).
   */
  onIndex?: (build: IndexBuild) => void;
}

/** An index a bulk build creates: `ms` once it is built, absent while it is being built. */
export interface IndexBuild {
  table: string;
  index: string;
  ms?: number;
}

/**
 * A projection into an embedded SQLite read model. The runner calls `apply` for each event of
 * a batch and `flush` (or, while it catches up, `defer`) at the end (and between the chunks of
 * a large source transaction), all inside one SQLite transaction that also writes the
 * checkpoint, so a read model is never behind its checkpoint, and ahead of it only by what a
 * deferral leaves written per batch (code projections' documents).
 */
export interface SqliteProjection {
  readonly name: string;
  readonly handles: ReadonlySet<string>;
  /**
   * Creates the projection's tables; returns the names of read models whose stored data no
   * longer matches their definition (it was dropped: the runner replays from the start).
   * `onIndex` hears of each index it builds (one statement, of minutes on a large table).
   */
  migrate?(db: Database.Database, onIndex?: (build: IndexBuild) => void): string[];
  apply(db: Database.Database, event: StoredEvent): void;
  /**
   * Materialise what the batch's events made stale (e.g. recompute touched documents), and
   * what earlier `defer`red batches left.
   */
  flush?(db: Database.Database, options?: FlushOptions): void;
  /**
   * Ends a batch of a catch-up without materialising: what must be written per batch is (a
   * code projection's documents), what `flush` would compose is kept in the database, in the
   * batch's transaction, for a later `flush`. A projection without it is flushed every batch.
   */
  defer?(db: Database.Database): void;
  /** Writes what the events applied so far hold in memory (between the chunks of a large source transaction). */
  writeHeld?(db: Database.Database): void;
  /** Drops what memory holds of rolled-back batches and reloads what `defer` kept (at start, after a failure). */
  restore?(db: Database.Database): void;
  /**
   * How many documents the next flush would write. The runner flushes between the chunks of a
   * large source transaction once this reaches its batch size (without it: after every chunk).
   */
  pending?(): number;
  /**
   * Told when the runner's bulk build starts and ends (a rebuild, a version's replay): nothing
   * reads the documents until it is done, so a projection may compose them all at its end.
   */
  setBulk?(bulk: boolean): void;
  /** Compose threads for a bulk build's views (projector.composeThreads); null: composed on this thread. */
  composeOffThread?(threads: ComposeThreadsOption | null): void;
  /** In a transaction of its own before a `flush` with rowsCommitted: what that flush's readers on other connections need committed. */
  prepareCompose?(db: Database.Database, options?: Pick<FlushOptions, 'onIndex'>): void;
  /** Empty every table (rebuild). */
  reset(db: Database.Database): void;
  /**
   * The documents written since the last call (flushes of committed and of rolled-back batches
   * alike: naming a document that did not change costs a cache miss, never a stale read).
   */
  drainTouched?(): TouchedDocument[];
  /**
   * Whether to note the documents written for drainTouched (on until told otherwise). The runner
   * turns it off when nothing hears of them: a whole composition writes every document of a
   * view, and noting each of millions of keys took gigabytes for nothing.
   */
  trackTouched?(on: boolean): void;
}

/**
 * A cache of a projection's documents, told about each batch (shadow-api/distributed-cache.ts):
 * `begin` before its writes with the documents it will address, `end` once they are durable and
 * before the batch is committed, with those and every document it addressed.
 */
export interface BatchInvalidation {
  begin(documents: readonly TouchedDocument[]): Promise<void>;
  end(begun: readonly TouchedDocument[], touched: readonly TouchedDocument[]): Promise<void>;
}

/** A read-model document a batch wrote: [read model, document key]. */
export type TouchedDocument = [readModel: string, key: string];

/**
 * A projection into a server store (MongoDB, OpenSearch) fed by a Kafka consumer group. Each
 * row's document is written only when the event's `metadata.sourceOrder` is newer than the
 * one the document holds (removals leave a tombstone that keeps it), so a batch redelivered
 * after a crash, or by another group member after a rebalance, changes nothing. Every row
 * belongs to one stream, and a stream to one partition, so one writer at a time owns it.
 */
export interface DocumentProjection {
  readonly name: string;
  /** Stream types whose domain topics it consumes. */
  readonly streamTypes: readonly string[];
  /** Event types it applies; the rest of a batch is skipped. */
  readonly handles: ReadonlySet<string>;
  /** Creates indexes and mappings (migrations/); safe to call on every start. */
  migrate(): Promise<void>;
  /** Applies a batch in order; resolves once the writes are durable. */
  apply(events: readonly NewDomainEvent[]): Promise<void>;
  /** Deletes every document and applied mark (rebuild). */
  reset(): Promise<void>;
  /**
   * The documents (named by the stored version) the batches applied since the last call
   * addressed, rewritten or not: a redelivered batch names them again, for a cache whose
   * invalidation the first delivery may not have reached. Tracking may start with the first call.
   */
  drainTouched?(): TouchedDocument[];
  /**
   * The documents a batch will address, as the store stands before its writes (a view's
   * fan-out through the rows it reads); drainTouched after the writes names them too.
   */
  addressedBy?(events: readonly NewDomainEvent[]): Promise<TouchedDocument[]>;
  /**
   * The store's own record of how far it got: for each partition asked (`topic:partition`),
   * the next offset after the last batch whose writes it holds; absent when it has no mark.
   * Read in real time (not through a search refresh), since a projector compares it with the
   * consumer group's offsets to notice a store that lost its data.
   */
  appliedMarks(partitions: readonly TopicPartition[]): Promise<Map<string, bigint>>;
  /** Records that the store holds a partition's events below `next`; called after `apply` resolved and before the offsets are committed. */
  markApplied(partition: TopicPartition, next: bigint): Promise<void>;
  /** markApplied of several partitions in one store write (a store without it gets one call each). */
  markAppliedMany?(marks: readonly AppliedMark[]): Promise<void>;
  close(): Promise<void>;
}

/** A partition's applied mark: the store holds its events below `next`. */
export interface AppliedMark {
  partition: TopicPartition;
  next: bigint;
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

export const partitionKey = (p: TopicPartition) => `${p.topic}:${p.partition}`;

/**
 * An analytics store: the columnar tables of a migration's analytics read models (see
 * definition/analytics.ts), fed from the event store by AnalyticsRunner. An implementer keeps
 * the runner's checkpoint in the store itself and commits it in the same transaction as the
 * rows `write` applies, so the tables never run ahead of or behind it; rows are replaced by
 * their captured row's key, so events applied twice change nothing.
 */
export interface AnalyticsStore {
  /** Creates the tables; true when stored data was built by another definition (it was dropped: replay). */
  migrate(): Promise<boolean>;
  /** Position of the last event `runner` committed (0: none). */
  checkpoint(runner: string): Promise<number>;
  /**
   * Runs `work` in one transaction: each `apply` writes a chunk of events (in store order),
   * `commit` records the checkpoint; nothing is kept when `work` throws.
   */
  write(runner: string, work: (tx: AnalyticsTransaction) => Promise<void>): Promise<void>;
  /** Empties every table and removes `runner`'s checkpoint, in one transaction (rebuild). */
  reset(runner: string): Promise<void>;
  /** Query handles by analytics model name. */
  handles(): Analytics;
  close(): Promise<void>;
}

export interface AnalyticsTransaction {
  apply(events: readonly StoredEvent[]): Promise<void>;
  commit(checkpoint: { position: number; sourceTxId: string }): Promise<void>;
}
