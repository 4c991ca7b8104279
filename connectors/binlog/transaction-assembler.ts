import type { Op, Row, SourceInfo, SourceSchemaChange, SourceTransaction } from '../change-event.js';
import { FragmentBuffer } from '../transaction-fragments.js';
import type { StreamOffset } from './config.js';
import type { GtidPosition } from './gtid-position.js';
import { type ColumnInfo, normalizeRow } from './normalize.js';

/** The start of a binlog event group (GTID event, or BEGIN where the server logs no GTIDs). */
export interface GroupStart {
  gtid: string | null;
  /** Originating server of the group, when the event says (MariaDB GTID events do). */
  serverId: number | null;
  file: string;
  /** Where the group's first event starts. */
  pos: number;
}

/** One decoded rows event of a captured table. */
export interface RowsInput {
  op: Exclude<Op, 'r'>;
  table: string;
  columns: readonly ColumnInfo[];
  /** Row images as decoded (updates: { before, after }). */
  rows: ReadonlyArray<Record<string, unknown>>;
  file: string;
  /** Where the rows event starts. */
  pos: number;
  /** Event time, epoch ms. */
  tsMs: number;
}

/** A streamed transaction, its offset typed. */
export type StreamedTransaction = SourceTransaction & { offset: StreamOffset };

export interface AssemblerContext {
  source: Omit<SourceInfo, 'table' | 'snapshot' | 'ts_ms'>;
  /** server_id to report when a group does not name its origin (MySQL). */
  serverId: number;
  gtids: GtidPosition;
  /**
   * Row changes one delivery holds at most: a bigger transaction leaves in fragments of this
   * many rows (see SourceTransaction.fragment), so memory does not grow with its size.
   */
  maxTransactionRows?: number;
  now?: () => number;
}

function image(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

/**
 * Pure core of the binlog reader: buffers the row events of one event group and, at its commit,
 * turns them into one SourceTransaction with Debezium's transaction block and the offset just
 * past the commit. A group with more rows than maxTransactionRows leaves in fragments instead,
 * each handed out by `rows` once full and the last by `commit`. Groups that touched no captured
 * table still advance the GTID position.
 */
export class TransactionAssembler {
  private group: GroupStart | null = null;
  private readonly buffer: FragmentBuffer;
  private readonly now: () => number;

  constructor(private readonly ctx: AssemblerContext) {
    this.now = ctx.now ?? Date.now;
    this.buffer = new FragmentBuffer(ctx.maxTransactionRows);
  }

  /** True while an event group is open (its rows not yet committed). */
  get open(): boolean {
    return this.group !== null;
  }

  /** The open group has handed out fragments the event store stages until its commit. */
  get staging(): boolean {
    return this.group !== null && this.buffer.split;
  }

  begin(start: GroupStart): void {
    // A group without a commit marker (DDL) ends where the next one begins.
    if (this.group) this.ctx.gtids.commit(this.group.gtid);
    this.group = start;
    this.buffer.reset();
  }

  /**
   * Adds the rows of one rows event; returns the fragments that filled up meanwhile (none for
   * a transaction that stays within maxTransactionRows). A full fragment is handed out only
   * when a further row arrives, so a transaction of exactly that many rows stays whole.
   */
  rows(input: RowsInput): StreamedTransaction[] {
    this.group ??= { gtid: null, serverId: null, file: input.file, pos: input.pos };
    const group = this.group;
    const full: StreamedTransaction[] = [];
    input.rows.forEach((raw, row) => {
      if (this.buffer.full) full.push(this.fragment(group, false, this.startOffset(group)));
      let before: Row | null = null;
      let after: Row | null = null;
      if (input.op === 'u') {
        before = normalizeRow(image(raw.before), input.columns);
        after = normalizeRow(image(raw.after), input.columns);
      } else if (input.op === 'd') before = normalizeRow(raw, input.columns);
      else after = normalizeRow(raw, input.columns);
      this.buffer.add({
        before,
        after,
        op: input.op,
        ts_ms: this.now(),
        source: {
          ...this.ctx.source,
          table: input.table,
          ts_ms: input.tsMs,
          snapshot: 'false',
          server_id: group.serverId ?? this.ctx.serverId,
          gtid: group.gtid,
          file: input.file,
          pos: input.pos,
          row,
        },
        transaction: null,
      });
    });
    return full;
  }

  /**
   * Where the open group started, which an unfinished fragment carries as its offset: resuming
   * there replays the whole transaction. The event store does not save it (it stages the
   * fragment), so the stored offset stays at the last committed transaction.
   */
  private startOffset(group: GroupStart): StreamOffset {
    return {
      phase: 'stream',
      snapshotCompleted: true,
      file: group.file,
      pos: group.pos,
      gtid: this.ctx.gtids.toString(),
    };
  }

  /** Hands out the buffered events, numbered on from the group's earlier fragments. */
  private fragment(group: GroupStart, last: boolean, offset: StreamOffset): StreamedTransaction {
    const id = transactionId(group);
    return { id, ...this.buffer.take(id, last), offset, snapshot: false };
  }

  /**
   * Closes a DDL group (it has no commit marker) as a transaction without rows that carries the
   * schema changes, so they are stored in order with the rows around them, and a restart after
   * it does not see the statement again.
   */
  ddl(end: { file: string; pos: number }, changes: SourceSchemaChange[]): StreamedTransaction {
    const group = this.group;
    this.group = null;
    this.buffer.reset();
    this.ctx.gtids.commit(group?.gtid ?? null);
    return {
      id: group?.gtid ?? `ddl:${end.file}:${end.pos}`,
      events: [],
      offset: {
        phase: 'stream',
        snapshotCompleted: true,
        file: end.file,
        pos: end.pos,
        gtid: this.ctx.gtids.toString(),
      },
      snapshot: false,
      schemaChanges: changes,
    };
  }

  /**
   * Closes the open group at its commit marker; `end` is the position just past the marker.
   * Returns the transaction to deliver, or null when the group captured no rows. A group the
   * binlog ends with ROLLBACK closes here too: its rows are changes to non-transactional tables,
   * which a rollback does not undo (transactional changes of a rolled-back transaction are
   * never written).
   */
  commit(end: { file: string; pos: number }): StreamedTransaction | null {
    const group = this.group;
    this.group = null;
    this.ctx.gtids.commit(group?.gtid ?? null);
    if (!group || this.buffer.size === 0) {
      this.buffer.reset();
      return null;
    }
    const offset: StreamOffset = {
      phase: 'stream',
      snapshotCompleted: true,
      file: end.file,
      pos: end.pos,
      gtid: this.ctx.gtids.toString(),
    };
    return this.fragment(group, true, offset);
  }
}

function transactionId(group: GroupStart): string {
  return group.gtid ?? `${group.file}:${group.pos}`;
}
