import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3, { type Database, type Statement } from 'better-sqlite3';
import type { SourceOffset } from '../connectors/change-event.js';
import { AdapterError, errorMessage, StoreError } from '../lib/errors.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import { pruneOldest, type RetentionPolicy } from '../lib/retention.js';
import { applyMigrations, migrationFiles, sqliteMigrationsDir } from '../migrations/sqlite.js';
import type { DeadLetterMask } from './dead-letter-mask.js';
import {
  type EncodedAppendBatch,
  type EncodedEvent,
  encodeBatch,
  encodeEvent,
  eventJson,
} from './event-encoding.js';
import {
  type AppendBatch,
  type AppendResult,
  type DeadLetter,
  type DeadLetterFilter,
  type DeadLetterStatus,
  type EventStore,
  movesOffsetOnly,
  type NewDomainEvent,
  type SchemaChange,
  type SnapshotSweep,
  type StoredDeadLetter,
  type StoredEvent,
  type StoredSchemaChange,
} from './ports.js';
import {
  decodeDeadLetter,
  decodeEvents,
  decodeOffset,
  EVENT_COLUMNS,
  type EventRow,
} from './sqlite-codec.js';

/** The event store's own files in migrations/sqlite/, in order; append new ones here. */
export const EVENT_STORE_MIGRATIONS = [
  '001_event_store.sql',
  '002_operations.sql',
  '003_staging.sql',
  '004_commit_time.sql',
] as const;

/**
 * Staged items a publish reads at a time: enough to keep the statement overhead small, few
 * enough that memory stays flat whatever the transaction's size.
 */
const PUBLISH_PAGE_ROWS = 2000;

/** Transaction ids of snapshot chunks start with this: "snapshot:<table>:<n>". */
export const SNAPSHOT_TX_PREFIX = 'snapshot:';
/** The first text after every id that starts with SNAPSHOT_TX_PREFIX (':' + 1). */
const SNAPSHOT_TX_UPPER = 'snapshot;';

/**
 * Whether a batch is a snapshot chunk rather than a streamed transaction. Streamed ids (GTIDs,
 * xids) identify one committed transaction forever, so a repeat is a replay and is skipped.
 * Snapshot chunk ids only number the chunks of one snapshot run: a redone snapshot (after a
 * crash mid-snapshot, a lost binlog position or an operator's re-sync) re-sends the same ids
 * with the table's current content, which must be applied or the read models would keep
 * stale rows. Projections apply full-state events idempotently, so re-applying is safe.
 */
export function isSnapshotChunk(batch: AppendBatch | EncodedAppendBatch): boolean {
  return (
    batch.sourceTxId.startsWith(SNAPSHOT_TX_PREFIX) ||
    batch.events.some((e) =>
      typeof e.metadata === 'string' ? (e as EncodedEvent).snapshot : e.metadata.snapshot,
    )
  );
}

export interface SqliteEventStoreOptions {
  logger?: Logger;
  /** How long a writer waits for another connection's lock before failing. */
  busyTimeoutMs?: number;
  /** Applied to each dead letter before it is stored, e.g. deadLetterMask(migration.sensitiveColumns). */
  maskDeadLetter?: DeadLetterMask;
}

interface Statements {
  head: Statement<[], { head: number }>;
  streamVersion: Statement<[string], { version: number | null }>;
  seenTx: Statement<[string, string], { found: number }>;
  insertEvent: Statement<[EventParams]>;
  insertDeadLetter: Statement<[DeadLetterParams]>;
  recordTx: Statement<[TxParams]>;
  upsertOffset: Statement<[OffsetParams]>;
  /** A heartbeat's offset: the last transaction's id and time stay (readers date freshness by them). */
  moveOffset: Statement<[OffsetParams]>;
  loadOffset: Statement<[string], { offset: string }>;
  snapshotPhase: Statement<[], number>;
  readAfter: Statement<[number, number], EventRow>;
  readStream: Statement<[string], EventRow>;
  firstCommittedAfter: Statement<[number], { position: number | null }>;
  listDeadLetters: Statement<[number, number], unknown>;
  countDeadLetters: Statement<[], { count: number }>;
  eventOfRun: Statement<[string], number>;
  countOfRun: Statement<[string], number>;
  sweepCandidates: Statement<[SweepParams], SweepRow>;
  stagedFragment: Statement<[string, string], { fragment: number | null }>;
  insertStaged: Statement<[StagedParams]>;
  stagedPage: Statement<[string, string, number, number], StagedRow>;
  dropStagedTx: Statement<[string, string]>;
  dropStagedSource: Statement<[string]>;
}

interface StagedParams {
  sourceName: string;
  sourceTxId: string;
  fragment: number;
  kind: StagedRow['kind'];
  body: string;
}

interface StagedRow {
  id: number;
  kind: 'event' | 'dead_letter' | 'schema_change';
  body: string;
}

type Fragment = NonNullable<AppendBatch['fragment']>;
type Batch = EncodedAppendBatch;

interface SweepParams {
  streamType: string;
  deleteType: string;
  table: string;
  pattern: string;
}

interface SweepRow {
  streamId: string;
  data: string;
  metadata: string;
}

/** `text` matched literally by LIKE … ESCAPE '\'. */
function likeLiteral(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

interface EventParams {
  position: number;
  streamId: string;
  streamType: string;
  version: number;
  type: string;
  data: string;
  metadata: string;
  sourceTxId: string;
  sourcePosition: string;
  snapshot: number;
  recordedAt: string;
}

interface DeadLetterParams {
  sourceName: string;
  reason: string;
  table: string;
  op: string;
  sourcePosition: string;
  sourceTxId: string;
  change: string;
  recordedAt: string;
}

interface TxParams {
  sourceName: string;
  sourceTxId: string;
  firstPosition: number | null;
  lastPosition: number | null;
  deadLetterCount: number;
  recordedAt: string;
}

interface OffsetParams {
  sourceName: string;
  offset: string;
  sourceTxId: string;
  updatedAt: string;
}

/**
 * EventStore on one SQLite file (better-sqlite3). The async port methods run synchronously
 * underneath; the *Sync variants let a projector in the same process read without awaiting.
 * One process appends; any number of connections may read (WAL).
 */
export class SqliteEventStore implements EventStore {
  readonly path: string;
  private readonly db: Database;
  private readonly log: Logger;
  private readonly sql: Statements;
  private readonly appendTx: (batch: Batch) => AppendResult;
  private readonly appendMany: (batches: readonly EncodedAppendBatch[]) => AppendResult[];
  private readonly maskDeadLetter: DeadLetterMask;

  constructor(path: string, options: SqliteEventStoreOptions = {}) {
    this.path = path;
    this.log = (options.logger ?? silentLogger).child({ component: 'sqlite-event-store' });
    const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    this.maskDeadLetter = options.maskDeadLetter ?? ((letter) => letter);
    try {
      if (path !== ':memory:' && !path.startsWith('file:')) mkdirSync(dirname(path), { recursive: true });
      this.db = new BetterSqlite3(path, { timeout: busyTimeoutMs });
    } catch (cause) {
      throw new StoreError('STORE_OPEN_FAILED', `cannot open event store ${path}: ${errorMessage(cause)}`, {
        cause,
        hint: 'check that the data directory exists and is writable',
      });
    }
    try {
      this.db.pragma('journal_mode = WAL');
      // NORMAL in WAL mode: a power loss may drop the last commits but never corrupts; the
      // offset is in the same transaction, so dropped commits are simply re-read from the source.
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma(`busy_timeout = ${busyTimeoutMs}`);
      applyMigrations(this.db, migrationFiles(sqliteMigrationsDir(), EVENT_STORE_MIGRATIONS), this.log);
      this.sql = this.prepareStatements();
    } catch (cause) {
      this.db.close();
      if (cause instanceof AdapterError) throw cause;
      throw new StoreError(
        'STORE_OPEN_FAILED',
        `cannot initialise event store ${path}: ${errorMessage(cause)}`,
        {
          cause,
        },
      );
    }
    this.appendTx = this.db.transaction((batch: Batch) => {
      const fragment = batch.fragment;
      // A fragment both first and last is a whole transaction.
      if (fragment === undefined || (fragment.index === 0 && fragment.last)) return this.writeBatch(batch);
      return fragment.last ? this.publish(batch, fragment) : this.stage(batch, fragment);
    }).immediate;
    this.appendMany = this.db.transaction((batches: readonly EncodedAppendBatch[]) =>
      batches.map((batch) => this.appendEncodedSync(batch)),
    ).immediate;
    this.log.debug({ path, head: this.headPositionSync() }, 'event store opened');
  }

  async append(batch: AppendBatch): Promise<AppendResult> {
    return this.appendSync(batch);
  }

  appendSync(batch: AppendBatch): AppendResult {
    return this.appendEncodedSync(encodeBatch(batch));
  }

  /**
   * Several batches in one SQLite write transaction, in order: all of them or none (the first
   * failure rolls every one back and is thrown). A commit costs about as much as the rows it
   * writes: under a stream of small source transactions, one per batch was most of the writer's
   * time.
   */
  appendEncodedManySync(batches: readonly EncodedAppendBatch[]): AppendResult[] {
    return this.appendMany(batches);
  }

  /** appendSync of a batch whose events were encoded already (the writer thread's input). */
  appendEncodedSync(batch: EncodedAppendBatch): AppendResult {
    for (const event of batch.events) {
      // Every event of a batch must come from the batch's transaction: replay detection and
      // the source_tx_id index rely on it.
      if (event.sourceTxId !== batch.sourceTxId)
        throw new StoreError(
          'STORE_BAD_BATCH',
          `event ${event.type} of stream ${event.streamId} carries source transaction ${event.sourceTxId}, batch is ${batch.sourceTxId}`,
        );
    }
    if (batch.fragment !== undefined && (isSnapshotChunk(batch) || batch.sweep !== undefined))
      throw new StoreError(
        'STORE_BAD_BATCH',
        `snapshot chunk ${batch.sourceTxId} came as a fragment: only streamed transactions are delivered in fragments`,
      );
    try {
      const result = this.appendTx(batch);
      if (result.duplicate)
        this.log.debug(
          { source: batch.sourceName, sourceTxId: batch.sourceTxId },
          'skipped replayed source transaction',
        );
      return result;
    } catch (cause) {
      throw new StoreError(
        'STORE_APPEND_FAILED',
        `append of source transaction ${batch.sourceTxId} from ${batch.sourceName} failed: ${errorMessage(cause)}`,
        { cause },
      );
    }
  }

  async loadOffset(sourceName: string): Promise<SourceOffset | null> {
    return this.loadOffsetSync(sourceName);
  }

  loadOffsetSync(sourceName: string): SourceOffset | null {
    const row = this.sql.loadOffset.get(sourceName);
    return row === undefined ? null : decodeOffset(sourceName, row.offset);
  }

  async readAfter(afterPosition: number, limit: number): Promise<StoredEvent[]> {
    return this.readAfterSync(afterPosition, limit);
  }

  /** Events with position > afterPosition, ascending, at most `limit`. */
  readAfterSync(afterPosition: number, limit: number): StoredEvent[] {
    return decodeEvents(this.sql.readAfter.all(afterPosition, checkLimit(limit)));
  }

  async readStream(streamId: string): Promise<StoredEvent[]> {
    return this.readStreamSync(streamId);
  }

  readStreamSync(streamId: string): StoredEvent[] {
    return decodeEvents(this.sql.readStream.all(streamId));
  }

  async headPosition(): Promise<number> {
    return this.headPositionSync();
  }

  /**
   * Whether a source's stored offset is in its snapshot phase: a snapshot under way (or
   * interrupted, to be resumed). The offset of its last chunk, appended with that chunk's events,
   * is in the stream phase.
   */
  snapshotInProgressSync(): boolean {
    return this.sql.snapshotPhase.get() !== undefined;
  }

  headPositionSync(): number {
    return this.sql.head.get()?.head ?? 0;
  }

  /**
   * The end of the longest prefix of the store whose events the source committed at or before
   * `commitMs` (epoch ms): the position before the first event stamped later, or the head when
   * none is. A prefix, not "every event stamped at or before": an event appended late with an
   * old stamp (a re-driven dead letter) must not pull the state forward past later events.
   */
  positionAtSync(commitMs: number): number {
    const next = this.sql.firstCommittedAfter.get(commitMs)?.position ?? null;
    return next === null ? this.headPositionSync() : next - 1;
  }

  async listDeadLetters(limit: number, afterId = 0): Promise<StoredDeadLetter[]> {
    return this.sql.listDeadLetters.all(afterId, checkLimit(limit)).map(decodeDeadLetter);
  }

  async countDeadLetters(): Promise<number> {
    return this.countDeadLettersSync();
  }

  countDeadLettersSync(): number {
    return this.sql.countDeadLetters.get()?.count ?? 0;
  }

  /** Deletes the oldest dead letters beyond the retention policy; returns how many. */
  pruneDeadLetters(policy: RetentionPolicy, now?: Date): Promise<number> {
    return pruneOldest(this.db, 'dead_letters', policy, now);
  }

  /** Dead letters matching `filter`, oldest first, each with its re-drive outcome if any. */
  listDeadLetterStatus(filter: DeadLetterFilter): DeadLetterStatus[] {
    const where = ['d.id > @afterId'];
    if (filter.table !== undefined) where.push('d.table_name = @table');
    if (filter.since !== undefined) where.push('d.recorded_at >= @since');
    if (filter.reason !== undefined) where.push('instr(d.reason, @reason) > 0');
    if (filter.pendingOnly) where.push('r.dead_letter_id IS NULL');
    const rows = this.db
      .prepare(
        `SELECT d.id, d.reason, d.table_name, d.op, d.source_position, d.source_tx_id, d.change, d.recorded_at,
                r.outcome AS redrive_outcome, r.stream_id AS redrive_stream, r.redriven_at AS redriven_at
           FROM dead_letters d LEFT JOIN dead_letter_redrives r ON r.dead_letter_id = d.id
          WHERE ${where.join(' AND ')} ORDER BY d.id LIMIT @limit`,
      )
      .all({
        afterId: filter.afterId ?? 0,
        table: filter.table ?? null,
        since: filter.since ?? null,
        reason: filter.reason ?? null,
        limit: checkLimit(filter.limit),
      }) as Array<Record<string, unknown>>;
    return rows.map((row) => {
      const { redrive_outcome: outcome, redrive_stream: streamId, redriven_at: at, ...letter } = row;
      return {
        ...decodeDeadLetter(letter),
        redrive:
          typeof outcome === 'string'
            ? {
                outcome: outcome as 'appended' | 'superseded',
                streamId: String(streamId),
                redrivenAt: String(at),
              }
            : null,
      };
    });
  }

  /**
   * Re-drives one dead letter with the events its row maps to now, in one transaction: each
   * event is appended unless its aggregate already holds a change the source made after the
   * letter's (`sourceOrder`), since that later change carries the aggregate's whole newer state
   * and appending the older one after it would move the read model back. Records the outcome,
   * so a letter is re-driven once.
   */
  redriveSync(letterId: number, events: NewDomainEvent[]): 'appended' | 'superseded' {
    const run = this.db.transaction(() => {
      const done = this.db
        .prepare('SELECT outcome FROM dead_letter_redrives WHERE dead_letter_id = ?')
        .get(letterId) as { outcome: 'appended' | 'superseded' } | undefined;
      if (done !== undefined) return done.outcome;
      const newer = this.db.prepare(
        `SELECT 1 FROM events WHERE stream_id = ? AND json_extract(metadata, '$.sourceOrder') > ? LIMIT 1`,
      );
      const fresh = events.filter((e) => newer.get(e.streamId, e.metadata.sourceOrder) === undefined);
      const outcome = fresh.length > 0 || events.length === 0 ? 'appended' : 'superseded';
      const positions = this.insertEvents(fresh.map(encodeEvent), new Date().toISOString());
      this.db
        .prepare(
          `INSERT INTO dead_letter_redrives
               (dead_letter_id, outcome, stream_id, first_position, last_position, redriven_at)
             VALUES (?, ?, ?, ?, ?, ?)`,
        )
        .run(
          letterId,
          outcome,
          events[0]?.streamId ?? '',
          positions.first,
          positions.last,
          new Date().toISOString(),
        );
      return outcome;
    }).immediate;
    try {
      return run();
    } catch (cause) {
      throw new StoreError(
        'STORE_APPEND_FAILED',
        `re-drive of dead letter ${letterId} failed: ${errorMessage(cause)}`,
        {
          cause,
        },
      );
    }
  }

  /** Records DDL seen on a captured table. */
  recordSchemaChangeSync(change: SchemaChange): StoredSchemaChange {
    const detectedAt = new Date().toISOString();
    const info = this.db
      .prepare(
        `INSERT INTO schema_changes (source_name, table_name, ddl, source_position, columns, breaks, detected_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        change.sourceName,
        change.table,
        change.ddl,
        change.sourcePosition,
        JSON.stringify(change.columns),
        change.breaks,
        detectedAt,
      );
    return { ...change, id: Number(info.lastInsertRowid), detectedAt, resolvedAt: null };
  }

  /** Schema changes, oldest first; `unresolvedBreaking`: only those pausing a table now. */
  listSchemaChanges(options: { unresolvedBreaking?: boolean } = {}): StoredSchemaChange[] {
    const where = options.unresolvedBreaking ? 'WHERE breaks IS NOT NULL AND resolved_at IS NULL' : '';
    const rows = this.db
      .prepare(
        `SELECT id, source_name, table_name, ddl, source_position, columns, breaks, detected_at, resolved_at
           FROM schema_changes ${where} ORDER BY id`,
      )
      .all() as Array<Record<string, unknown>>;
    return rows.map((r) => ({
      id: Number(r.id),
      sourceName: String(r.source_name),
      table: String(r.table_name),
      ddl: String(r.ddl),
      sourcePosition: String(r.source_position),
      columns: JSON.parse(String(r.columns)) as string[],
      breaks: r.breaks === null ? null : String(r.breaks),
      detectedAt: String(r.detected_at),
      resolvedAt: r.resolved_at === null ? null : String(r.resolved_at),
    }));
  }

  /** Marks the breaking schema changes of `table` resolved (its rule reads the table again). */
  resolveSchemaChangesSync(table: string): number {
    return this.db
      .prepare(
        'UPDATE schema_changes SET resolved_at = ? WHERE table_name = ? AND breaks IS NOT NULL AND resolved_at IS NULL',
      )
      .run(new Date().toISOString(), table).changes;
  }

  async close(): Promise<void> {
    this.closeSync();
  }

  closeSync(): void {
    if (this.db.open) this.db.close();
  }

  private writeBatch(batch: Batch): AppendResult {
    const now = new Date().toISOString();
    const snapshot = isSnapshotChunk(batch);
    const offsetOnly = movesOffsetOnly(batch);
    const duplicate = !snapshot && this.sql.seenTx.get(batch.sourceName, batch.sourceTxId) !== undefined;
    let firstPosition: number | null = null;
    let lastPosition: number | null = null;
    let swept: number | undefined;

    if (!duplicate) {
      const written = this.insertEvents(batch.events, now);
      firstPosition = written.first;
      lastPosition = written.last;
      if (batch.sweep !== undefined) {
        const removals = this.sweepRemovals(batch.sweep, batch.sourceTxId);
        const removed = this.insertEvents(removals.map(encodeEvent), now);
        firstPosition ??= removed.first;
        lastPosition = removed.last ?? lastPosition;
        swept = removals.length;
        if (swept > 0)
          this.log.info(
            { table: batch.sweep.table, run: batch.sweep.run, removed: swept },
            'snapshot removed aggregates gone from the source',
          );
      }
      for (const change of batch.schemaChanges ?? []) this.recordSchemaChangeSync(change);
      for (const letter of batch.deadLetters)
        this.insertDeadLetter(batch.sourceName, this.maskDeadLetter(letter), now);
      // A transaction with nothing to store (the sources' heartbeats) only moves the offset: a
      // row for each would grow the table every heartbeat interval for no duplicate to catch.
      if (!snapshot && !offsetOnly)
        this.sql.recordTx.run({
          sourceName: batch.sourceName,
          sourceTxId: batch.sourceTxId,
          firstPosition,
          lastPosition,
          deadLetterCount: batch.deadLetters.length,
          recordedAt: now,
        });
    }
    // A replay still moves the offset: the source has delivered past this transaction.
    (offsetOnly ? this.sql.moveOffset : this.sql.upsertOffset).run({
      sourceName: batch.sourceName,
      offset: JSON.stringify(batch.offset),
      sourceTxId: batch.sourceTxId,
      updatedAt: now,
    });
    return swept === undefined
      ? { firstPosition, lastPosition, duplicate }
      : { firstPosition, lastPosition, duplicate, swept };
  }

  private insertDeadLetter(sourceName: string, letter: DeadLetter, now: string): void {
    this.sql.insertDeadLetter.run({
      sourceName,
      reason: letter.reason,
      table: letter.table,
      op: letter.op,
      sourcePosition: letter.sourcePosition,
      sourceTxId: letter.sourceTxId,
      change: JSON.stringify(letter.change),
      recordedAt: now,
    });
  }

  /**
   * Keeps an unfinished fragment's output out of readers' sight, without its offset: the stored
   * offset stays before the transaction, so a restart delivers it again from fragment 0, which
   * clears what an interrupted delivery left. A fragment of a transaction already stored is a
   * replay and is skipped.
   */
  private stage(batch: Batch, fragment: Fragment): AppendResult {
    if (this.sql.seenTx.get(batch.sourceName, batch.sourceTxId) !== undefined)
      return { firstPosition: null, lastPosition: null, duplicate: true };
    // One source delivers one transaction at a time: anything staged before its first fragment
    // is left over from an interrupted delivery.
    if (fragment.index === 0) this.sql.dropStagedSource.run(batch.sourceName);
    else this.expectStaged(batch, fragment);
    const stage = (kind: StagedRow['kind'], body: string) =>
      this.sql.insertStaged.run({
        sourceName: batch.sourceName,
        sourceTxId: batch.sourceTxId,
        fragment: fragment.index,
        kind,
        body,
      });
    for (const event of batch.events) stage('event', eventJson(event));
    for (const letter of batch.deadLetters) stage('dead_letter', JSON.stringify(this.maskDeadLetter(letter)));
    for (const change of batch.schemaChanges ?? []) stage('schema_change', JSON.stringify(change));
    return { firstPosition: null, lastPosition: null, duplicate: false, staged: true };
  }

  /**
   * The last fragment: appends the staged fragments in order, a page at a time, then its own
   * output, records the transaction and stores the offset, all in the caller's one transaction,
   * so readers see the whole transaction or none of it.
   */
  private publish(batch: Batch, fragment: Fragment): AppendResult {
    const now = new Date().toISOString();
    const duplicate = this.sql.seenTx.get(batch.sourceName, batch.sourceTxId) !== undefined;
    let firstPosition: number | null = null;
    let lastPosition: number | null = null;
    if (!duplicate) {
      this.expectStaged(batch, fragment);
      let deadLetterCount = 0;
      const write = (events: EncodedEvent[], letters: DeadLetter[], changes: SchemaChange[]) => {
        const written = this.insertEvents(events, now);
        firstPosition ??= written.first;
        lastPosition = written.last ?? lastPosition;
        for (const change of changes) this.recordSchemaChangeSync(change);
        for (const letter of letters) this.insertDeadLetter(batch.sourceName, letter, now);
        deadLetterCount += letters.length;
      };
      // .all() per page rather than one iterator: better-sqlite3 runs no other statement on a
      // connection while an iterator is open on it.
      for (let after = 0; ; ) {
        const page = this.sql.stagedPage.all(batch.sourceName, batch.sourceTxId, after, PUBLISH_PAGE_ROWS);
        const last = page.at(-1);
        if (last === undefined) break;
        after = last.id;
        const events: EncodedEvent[] = [];
        const letters: DeadLetter[] = [];
        const changes: SchemaChange[] = [];
        for (const row of page) {
          const body: unknown = JSON.parse(row.body);
          if (row.kind === 'event') events.push(encodeEvent(body as NewDomainEvent));
          else if (row.kind === 'dead_letter') letters.push(body as DeadLetter);
          else changes.push(body as SchemaChange);
        }
        write(events, letters, changes);
      }
      write(
        batch.events,
        batch.deadLetters.map((letter) => this.maskDeadLetter(letter)),
        batch.schemaChanges ?? [],
      );
      this.sql.recordTx.run({
        sourceName: batch.sourceName,
        sourceTxId: batch.sourceTxId,
        firstPosition,
        lastPosition,
        deadLetterCount,
        recordedAt: now,
      });
    }
    this.sql.dropStagedTx.run(batch.sourceName, batch.sourceTxId);
    this.sql.upsertOffset.run({
      sourceName: batch.sourceName,
      offset: JSON.stringify(batch.offset),
      sourceTxId: batch.sourceTxId,
      updatedAt: now,
    });
    return { firstPosition, lastPosition, duplicate };
  }

  /** Fragment n may only follow fragment n-1 of the same transaction, staged. */
  private expectStaged(batch: Batch, fragment: Fragment): void {
    const staged = this.sql.stagedFragment.get(batch.sourceName, batch.sourceTxId)?.fragment ?? null;
    if (staged !== fragment.index - 1)
      throw new StoreError(
        'STORE_BAD_BATCH',
        `fragment ${fragment.index} of source transaction ${batch.sourceTxId} arrived after ${staged === null ? 'no staged fragment' : `fragment ${staged}`}`,
        {
          hint: 'a transaction must be delivered again from its first fragment: restart the source from its stored offset',
        },
      );
  }

  /** Appends events at the head (caller holds the write transaction); returns their positions. */
  private insertEvents(
    events: readonly EncodedEvent[],
    now: string,
  ): { first: number | null; last: number | null } {
    let position = this.headPositionSync();
    let first: number | null = null;
    const versions = new Map<string, number>();
    for (const event of events) {
      const version =
        (versions.get(event.streamId) ?? this.sql.streamVersion.get(event.streamId)?.version ?? 0) + 1;
      versions.set(event.streamId, version);
      position += 1;
      first ??= position;
      this.sql.insertEvent.run({
        position,
        streamId: event.streamId,
        streamType: event.streamType,
        version,
        type: event.type,
        data: event.data,
        metadata: event.metadata,
        sourceTxId: event.sourceTxId,
        sourcePosition: event.sourcePosition,
        snapshot: event.snapshot ? 1 : 0,
        recordedAt: now,
      });
    }
    return { first, last: first === null ? null : position };
  }

  /**
   * The removal events of a sweep: one per live aggregate of the table that snapshot run
   * `sweep.run` did not deliver (its chunk ids end in "@<run>"), carrying its last state, as
   * the mapping's own delete events do. Ordered after the aggregate's last event.
   */
  private sweepRemovals(sweep: SnapshotSweep, sourceTxId: string): NewDomainEvent[] {
    const pattern = `${SNAPSHOT_TX_PREFIX}%@${likeLiteral(sweep.run)}`;
    if (this.onlyEventsOfRun(pattern)) return [];
    const rows = this.sql.sweepCandidates.all({
      streamType: sweep.streamType,
      deleteType: sweep.deleteType,
      table: sweep.table,
      pattern,
    });
    return rows.map((row) => {
      const data = JSON.parse(row.data) as { state?: unknown };
      const last = JSON.parse(row.metadata) as { sourceOrder?: unknown };
      return {
        streamType: sweep.streamType,
        streamId: row.streamId,
        type: sweep.deleteType,
        data: { state: data.state ?? {}, changes: {} },
        metadata: {
          op: 'd',
          table: sweep.table,
          sourcePosition: `sweep@${sweep.run}`,
          // Sorts right after the last change the store knows for the row ('~' follows every
          // character a source order uses), and before any change streamed later.
          sourceOrder: `${String(last.sourceOrder ?? '')}~`,
          sourceTxId,
          sourceTsMs: Date.now(),
          snapshot: true,
        },
      };
    });
  }

  /**
   * Whether every stored event is one of the snapshot run's (its chunk ids match `pattern`): then
   * every aggregate has an event the run delivered and a sweep has nothing to remove. An initial
   * snapshot into an empty store always is, and the candidates query scans the whole store at
   * each table's end (1.3-1.6 s at 560k events, ~10% of the writer thread's snapshot time);
   * this counts entries of the source-transaction index (~0.2 s), and only when the store's
   * first event is the run's. Every event a run's chunks append is flagged snapshot (rows read
   * by the snapshot, and the sweep's own removals), as the candidates query asks of them.
   */
  private onlyEventsOfRun(pattern: string): boolean {
    const head = this.headPositionSync();
    if (head === 0) return true;
    if (this.sql.eventOfRun.get(pattern) === undefined) return false;
    return this.sql.countOfRun.get(pattern) === head;
  }

  private prepareStatements(): Statements {
    const db = this.db;
    return {
      head: db.prepare('SELECT COALESCE(MAX(position), 0) AS head FROM events'),
      streamVersion: db.prepare('SELECT MAX(version) AS version FROM events WHERE stream_id = ?'),
      seenTx: db.prepare(
        'SELECT 1 AS found FROM source_transactions WHERE source_name = ? AND source_tx_id = ?',
      ),
      insertEvent: db.prepare(`INSERT INTO events
        (position, stream_id, stream_type, version, type, data, metadata, source_tx_id, source_position, snapshot, recorded_at)
        VALUES (@position, @streamId, @streamType, @version, @type, @data, @metadata, @sourceTxId, @sourcePosition, @snapshot, @recordedAt)`),
      insertDeadLetter: db.prepare(`INSERT INTO dead_letters
        (source_name, reason, table_name, op, source_position, source_tx_id, change, recorded_at)
        VALUES (@sourceName, @reason, @table, @op, @sourcePosition, @sourceTxId, @change, @recordedAt)`),
      recordTx: db.prepare(`INSERT INTO source_transactions
        (source_name, source_tx_id, first_position, last_position, dead_letter_count, recorded_at)
        VALUES (@sourceName, @sourceTxId, @firstPosition, @lastPosition, @deadLetterCount, @recordedAt)`),
      upsertOffset: db.prepare(`INSERT INTO source_offsets (source_name, "offset", source_tx_id, updated_at)
        VALUES (@sourceName, @offset, @sourceTxId, @updatedAt)
        ON CONFLICT (source_name) DO UPDATE SET
          "offset" = excluded."offset", source_tx_id = excluded.source_tx_id, updated_at = excluded.updated_at`),
      moveOffset: db.prepare(`INSERT INTO source_offsets (source_name, "offset", source_tx_id, updated_at)
        VALUES (@sourceName, @offset, @sourceTxId, @updatedAt)
        ON CONFLICT (source_name) DO UPDATE SET "offset" = excluded."offset"`),
      loadOffset: db.prepare('SELECT "offset" AS offset FROM source_offsets WHERE source_name = ?'),
      snapshotPhase: db
        .prepare<[], number>(
          `SELECT 1 FROM source_offsets WHERE json_extract("offset", '$.phase') = 'snapshot' LIMIT 1`,
        )
        .pluck(),
      readAfter: db
        .prepare<[number, number], EventRow>(
          // `+?`: SQLite re-prepares a statement whose LIMIT is a bare parameter at every run
          // after a bind (~5 µs of parse and planning per read); an expression over it it does not.
          `SELECT ${EVENT_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT +?`,
        )
        .raw(true),
      readStream: db
        .prepare<[string], EventRow>(
          `SELECT ${EVENT_COLUMNS} FROM events WHERE stream_id = ? ORDER BY version`,
        )
        .raw(true),
      // Through ix_events_commit_time (migration 004), its expression verbatim: left to itself the
      // planner walks positions upwards and parses each event's JSON until one matches.
      firstCommittedAfter: db.prepare(
        `SELECT MIN(position) AS position FROM events INDEXED BY ix_events_commit_time
          WHERE json_extract(metadata, '$.sourceTsMs') > ?`,
      ),
      listDeadLetters:
        db.prepare(`SELECT id, reason, table_name, op, source_position, source_tx_id, change, recorded_at
        FROM dead_letters WHERE id > ? ORDER BY id LIMIT ?`),
      countDeadLetters: db.prepare('SELECT COUNT(*) AS count FROM dead_letters'),
      eventOfRun: db
        .prepare<[string], number>(
          "SELECT 1 FROM events WHERE position = 1 AND source_tx_id LIKE ? ESCAPE '\\'",
        )
        .pluck(),
      // A range of the index (positions are gap-free, so the count of the run's events equals
      // the head exactly when no other event exists); LIKE alone would read every row.
      countOfRun: db
        .prepare<[string], number>(
          `SELECT COUNT(*) FROM events INDEXED BY ix_events_source_tx
            WHERE source_tx_id >= '${SNAPSHOT_TX_PREFIX}' AND source_tx_id < '${SNAPSHOT_TX_UPPER}'
              AND source_tx_id LIKE ? ESCAPE '\\'`,
        )
        .pluck(),
      sweepCandidates: db.prepare(`SELECT e.stream_id AS streamId, e.data AS data, e.metadata AS metadata
        FROM events e
        JOIN (SELECT stream_id, MAX(version) AS version FROM events
               WHERE stream_type = @streamType GROUP BY stream_id) latest
          ON latest.stream_id = e.stream_id AND latest.version = e.version
       WHERE e.type <> @deleteType
         AND json_extract(e.metadata, '$.table') = @table
         AND NOT EXISTS (SELECT 1 FROM events seen
                          WHERE seen.stream_id = e.stream_id AND seen.snapshot = 1
                            AND seen.source_tx_id LIKE @pattern ESCAPE '\\')
       ORDER BY e.position`),
      stagedFragment: db.prepare(
        'SELECT MAX(fragment) AS fragment FROM staged_items WHERE source_name = ? AND source_tx_id = ?',
      ),
      insertStaged: db.prepare(`INSERT INTO staged_items (source_name, source_tx_id, fragment, kind, body)
        VALUES (@sourceName, @sourceTxId, @fragment, @kind, @body)`),
      stagedPage: db.prepare(`SELECT id, kind, body FROM staged_items
        WHERE source_name = ? AND source_tx_id = ? AND id > ? ORDER BY id LIMIT +?`),
      dropStagedTx: db.prepare('DELETE FROM staged_items WHERE source_name = ? AND source_tx_id = ?'),
      dropStagedSource: db.prepare('DELETE FROM staged_items WHERE source_name = ?'),
    };
  }
}

function checkLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1)
    throw new StoreError('STORE_BAD_ARGUMENT', `read limit must be a positive integer, got ${limit}`);
  return limit;
}

/** Opens (creating and migrating if needed) the event store at `path`, or ':memory:'. */
export function openSqliteEventStore(path: string, logger?: Logger): SqliteEventStore {
  return new SqliteEventStore(path, logger === undefined ? {} : { logger });
}
