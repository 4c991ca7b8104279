import type { Pgoutput } from 'pg-logical-replication';
import type { ChangeEvent, Row, SourceInfo, SourceTransaction } from '../change-event.js';
import type { PgoutputStreamOffset } from './config.js';
import { canonicalLsn } from './lsn.js';
import { pgTextValue } from './values.js';

/** A streamed transaction, its offset typed. */
export type StreamedTransaction = SourceTransaction & { offset: PgoutputStreamOffset };

export type ChangeMessage = Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete;

/**
 * What Debezium puts in a column whose value the WAL does not carry: an unchanged TOASTed value
 * of an update when the table's replica identity does not log it.
 */
export const UNAVAILABLE_VALUE = '__debezium_unavailable_value';

export interface AssemblerContext {
  source: Omit<SourceInfo, 'table' | 'snapshot' | 'ts_ms' | 'schema' | 'lsn' | 'txId'>;
  now?: () => number;
}

type Tuple = Record<string, unknown> | null;

/** A decoded tuple (text values; null for SQL NULL) → a normalised row with every column. */
export function rowOf(relation: Pgoutput.MessageRelation, tuple: Tuple, onlyKey = false): Row | null {
  if (tuple === null) return null;
  const row: Row = {};
  for (const column of relation.columns) {
    const raw = tuple[column.name];
    if (onlyKey && !relation.keyColumns.includes(column.name)) row[column.name] = null;
    else if (raw === undefined) row[column.name] = UNAVAILABLE_VALUE;
    else row[column.name] = pgTextValue(typeof raw === 'string' ? raw : null, column);
  }
  return row;
}

/**
 * Pure core of the pgoutput reader: collects the changes between a Begin and its Commit and
 * turns them into one SourceTransaction with Debezium's transaction block (id: the xid, which
 * is what connectors/debezium/record.ts makes of Debezium's "<txId>:<LSN>"; total and
 * per-table order) and the offset of the commit's end.
 */
export class TransactionAssembler {
  private open: { xid: number; tsMs: number } | null = null;
  private events: ChangeEvent[] = [];
  private readonly now: () => number;

  constructor(private readonly ctx: AssemblerContext) {
    this.now = ctx.now ?? Date.now;
  }

  /** True between a Begin and its Commit. */
  get inTransaction(): boolean {
    return this.open !== null;
  }

  begin(msg: Pgoutput.MessageBegin): void {
    this.open = { xid: msg.xid, tsMs: Number(BigInt(msg.commitTime.toString()) / 1000n) };
    this.events = [];
  }

  /** One row change; `lsn` is where its WAL record starts. */
  change(lsn: string, msg: ChangeMessage): void {
    const tx = this.open;
    if (tx === null) throw new Error(`pgoutput ${msg.tag} outside a transaction at ${lsn}`);
    const relation = msg.relation;
    let before: Row | null = null;
    let after: Row | null = null;
    if (msg.tag === 'insert') after = rowOf(relation, msg.new);
    else if (msg.tag === 'update') {
      after = rowOf(relation, msg.new);
      before = msg.old !== null ? rowOf(relation, msg.old) : rowOf(relation, msg.key, true);
    } else before = msg.old !== null ? rowOf(relation, msg.old) : rowOf(relation, msg.key, true);
    this.events.push({
      before,
      after,
      op: msg.tag === 'insert' ? 'c' : msg.tag === 'update' ? 'u' : 'd',
      ts_ms: this.now(),
      source: {
        ...this.ctx.source,
        ts_ms: tx.tsMs,
        snapshot: 'false',
        schema: relation.schema,
        table: relation.name,
        lsn: canonicalLsn(lsn),
        txId: tx.xid,
      },
      transaction: null,
    });
  }

  /** Closes the open transaction; null when it changed no captured row. */
  commit(msg: Pgoutput.MessageCommit): StreamedTransaction | null {
    const tx = this.open;
    const events = this.events;
    this.open = null;
    this.events = [];
    if (tx === null || events.length === 0) return null;
    const id = String(tx.xid);
    const perTable = new Map<string, number>();
    events.forEach((event, i) => {
      const collection = `${event.source.schema}.${event.source.table}`;
      const n = (perTable.get(collection) ?? 0) + 1;
      perTable.set(collection, n);
      event.transaction = { id, total_order: i + 1, data_collection_order: n };
    });
    const end = msg.commitEndLsn ?? msg.commitLsn;
    if (end === null) throw new Error(`pgoutput commit of transaction ${tx.xid} without an LSN`);
    const offset: PgoutputStreamOffset = {
      phase: 'stream',
      snapshotCompleted: true,
      lsn: canonicalLsn(end),
      txId: tx.xid,
    };
    return { id, events, offset, snapshot: false };
  }
}
