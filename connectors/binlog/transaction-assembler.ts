import type {
  ChangeEvent,
  Op,
  Row,
  SourceInfo,
  SourceSchemaChange,
  SourceTransaction,
} from '../change-event.js';
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
  now?: () => number;
}

function image(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

/**
 * Pure core of the binlog reader: buffers the row events of one event group and, at its commit,
 * turns them into one SourceTransaction with Debezium's transaction block and the offset just
 * past the commit. Groups that touched no captured table still advance the GTID position.
 */
export class TransactionAssembler {
  private group: GroupStart | null = null;
  private events: ChangeEvent[] = [];
  private readonly now: () => number;

  constructor(private readonly ctx: AssemblerContext) {
    this.now = ctx.now ?? Date.now;
  }

  /** True while an event group is open (its rows not yet committed). */
  get open(): boolean {
    return this.group !== null;
  }

  begin(start: GroupStart): void {
    // A group without a commit marker (DDL) ends where the next one begins.
    if (this.group) this.ctx.gtids.commit(this.group.gtid);
    this.group = start;
    this.events = [];
  }

  rows(input: RowsInput): void {
    this.group ??= { gtid: null, serverId: null, file: input.file, pos: input.pos };
    const group = this.group;
    input.rows.forEach((raw, row) => {
      let before: Row | null = null;
      let after: Row | null = null;
      if (input.op === 'u') {
        before = normalizeRow(image(raw.before), input.columns);
        after = normalizeRow(image(raw.after), input.columns);
      } else if (input.op === 'd') before = normalizeRow(raw, input.columns);
      else after = normalizeRow(raw, input.columns);
      this.events.push({
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
  }

  /**
   * Closes a DDL group (it has no commit marker) as a transaction without rows that carries the
   * schema changes, so they are stored in order with the rows around them, and a restart after
   * it does not see the statement again.
   */
  ddl(end: { file: string; pos: number }, changes: SourceSchemaChange[]): StreamedTransaction {
    const group = this.group;
    this.group = null;
    this.events = [];
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
    const events = this.events;
    this.group = null;
    this.events = [];
    this.ctx.gtids.commit(group?.gtid ?? null);
    if (!group || events.length === 0) return null;
    const id = group.gtid ?? `${group.file}:${group.pos}`;
    const perTable = new Map<string, number>();
    events.forEach((event, i) => {
      const n = (perTable.get(event.source.table) ?? 0) + 1;
      perTable.set(event.source.table, n);
      event.transaction = { id, total_order: i + 1, data_collection_order: n };
    });
    const offset: StreamOffset = {
      phase: 'stream',
      snapshotCompleted: true,
      file: end.file,
      pos: end.pos,
      gtid: this.ctx.gtids.toString(),
    };
    return { id, events, offset, snapshot: false };
  }
}
