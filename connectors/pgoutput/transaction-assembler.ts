import type { Pgoutput } from 'pg-logical-replication';
import type { Row, SourceInfo, SourceTransaction } from '../change-event.js';
import { FragmentBuffer } from '../transaction-fragments.js';
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
  /** Where streaming starts: everything that committed before it was delivered already. */
  from: string;
  /**
   * Row changes one delivery holds at most: a bigger transaction leaves in fragments of this
   * many rows (see SourceTransaction.fragment), so memory does not grow with its size.
   */
  maxTransactionRows?: number;
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
 * per-table order) and the offset of the commit's end. A transaction with more rows than
 * maxTransactionRows leaves in fragments instead, each handed out by `change` once full and
 * the last by `commit`.
 */
export class TransactionAssembler {
  private open: { xid: number; tsMs: number } | null = null;
  private readonly buffer: FragmentBuffer;
  /** End of the last commit passed: where a restart replays the open transaction from. */
  private committed: string;
  private readonly now: () => number;

  constructor(private readonly ctx: AssemblerContext) {
    this.now = ctx.now ?? Date.now;
    this.buffer = new FragmentBuffer(ctx.maxTransactionRows);
    this.committed = canonicalLsn(ctx.from);
  }

  /** True between a Begin and its Commit. */
  get inTransaction(): boolean {
    return this.open !== null;
  }

  begin(msg: Pgoutput.MessageBegin): void {
    this.open = { xid: msg.xid, tsMs: Number(BigInt(msg.commitTime.toString()) / 1000n) };
    this.buffer.reset();
  }

  /**
   * One row change; `lsn` is where its WAL record starts. Returns the fragment that filled up
   * before it, if any: a full fragment is handed out only when a further row arrives, so a
   * transaction of exactly maxTransactionRows rows stays whole.
   */
  change(lsn: string, msg: ChangeMessage): StreamedTransaction | null {
    const tx = this.open;
    if (tx === null) throw new Error(`pgoutput ${msg.tag} outside a transaction at ${lsn}`);
    const full = this.buffer.full ? this.unfinished(tx.xid) : null;
    const relation = msg.relation;
    let before: Row | null = null;
    let after: Row | null = null;
    if (msg.tag === 'insert') after = rowOf(relation, msg.new);
    else if (msg.tag === 'update') {
      after = rowOf(relation, msg.new);
      before = msg.old !== null ? rowOf(relation, msg.old) : rowOf(relation, msg.key, true);
    } else before = msg.old !== null ? rowOf(relation, msg.old) : rowOf(relation, msg.key, true);
    this.buffer.add({
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
    return full;
  }

  /**
   * A full fragment of the open transaction. Its offset is the end of the last commit before
   * it, where the stored offset stays: resuming there replays the whole transaction. The event
   * store does not save it (it stages the fragment), and the source acknowledges nothing to
   * the server for it.
   */
  private unfinished(xid: number): StreamedTransaction {
    const id = String(xid);
    return {
      id,
      ...this.buffer.take(id, false),
      offset: { phase: 'stream', snapshotCompleted: true, lsn: this.committed, txId: null },
      snapshot: false,
    };
  }

  /**
   * Closes the open transaction; null when it changed no captured row, unless `keepEmpty` (it
   * carries schema changes, e.g. a TRUNCATE alone).
   */
  commit(msg: Pgoutput.MessageCommit, keepEmpty = false): StreamedTransaction | null {
    const tx = this.open;
    this.open = null;
    const end = msg.commitEndLsn ?? msg.commitLsn;
    if (end !== null) this.committed = canonicalLsn(end);
    if (tx === null || (this.buffer.size === 0 && !keepEmpty)) {
      this.buffer.reset();
      return null;
    }
    if (end === null) throw new Error(`pgoutput commit of transaction ${tx.xid} without an LSN`);
    const id = String(tx.xid);
    const offset: PgoutputStreamOffset = {
      phase: 'stream',
      snapshotCompleted: true,
      lsn: canonicalLsn(end),
      txId: tx.xid,
    };
    return { id, ...this.buffer.take(id, true), offset, snapshot: false };
  }
}
