import { isDeepStrictEqual } from 'node:util';
import type { DeadLetter, EventMetadata, NewDomainEvent, SnapshotSweep } from '../../eventstore/ports.js';
import type { ChangeEvent, Row, SourceTransaction } from '../change-event.js';
import { sourceOrderOf, sourcePositionOf } from '../change-event.js';
import type { RuleSet } from './rule-set.js';
import type { DomainState, TableRule } from './rules.js';

/**
 * Pure row→domain-event mapping of one source transaction. Each row change is mapped on its
 * own: a row that cannot be mapped becomes a dead letter and the others still map, so one
 * bad legacy row never blocks a transaction.
 */

export type FieldChanges = Record<string, { from: unknown; to: unknown }>;

/** `data` of every mapped event: the full state after the change (before it, for a delete). */
export type RowEventPayload = {
  state: DomainState;
  /** Changed fields of an update; empty for creates, snapshot reads and deletes. */
  changes: FieldChanges;
};

export interface MappedTransaction {
  events: NewDomainEvent[];
  deadLetters: DeadLetter[];
  /** Set on the chunk that completes a table's snapshot, when the table has a rule. */
  sweep?: SnapshotSweep;
}

type RowOutcome = { ok: true; events: NewDomainEvent[] } | { ok: false; reason: string };

export function mapTransaction(tx: SourceTransaction, rules: RuleSet): MappedTransaction {
  const events: NewDomainEvent[] = [];
  const deadLetters: DeadLetter[] = [];
  const shared = new SharedMetadata(tx);
  for (const change of tx.events) {
    const outcome = mapChange(change, rules, shared);
    if (outcome.ok) events.push(...outcome.events);
    else
      deadLetters.push({
        reason: outcome.reason,
        table: change.source.table,
        op: change.op,
        sourcePosition: sourcePositionOf(change),
        sourceTxId: tx.id,
        change,
      });
  }
  const sweep = sweepOf(tx, rules);
  return sweep === undefined ? { events, deadLetters } : { events, deadLetters, sweep };
}

function sweepOf(tx: SourceTransaction, rules: RuleSet): SnapshotSweep | undefined {
  const done = tx.completesTable;
  if (done === undefined) return undefined;
  const rule = rules.ruleFor(done.db, done.table);
  if (rule === undefined) return undefined;
  return { table: done.table, run: done.run, streamType: rule.streamType, deleteType: rule.onDelete };
}

/** Domain fields whose values differ; a field missing on one side reads as null, as it would in JSON. */
export function changedFields(before: DomainState, after: DomainState): FieldChanges {
  const changes: FieldChanges = {};
  for (const field of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const from = before[field] ?? null;
    const to = after[field] ?? null;
    if (!isDeepStrictEqual(from, to)) changes[field] = { from, to };
  }
  return changes;
}

/** Event names an update emits: every matching clause once, in rule order, else `otherwise`. */
export function updateEventNames(rule: TableRule, changes: FieldChanges): string[] {
  const names: string[] = [];
  for (const clause of rule.onUpdate) {
    if (clause.when.some((field) => field in changes) && !names.includes(clause.emit))
      names.push(clause.emit);
  }
  return names.length > 0 ? names : [rule.otherwise];
}

/**
 * The metadata of a transaction's events, one object for consecutive changes that carry the same
 * source block, op and transaction block: a snapshot page's rows share theirs (binlog/snapshot.ts), so its metadata
 * is derived (and encodeBatch serialises it) once per page instead of once per row. Every
 * metadata field comes from those and the source transaction, so sharing changes no value. Nothing writes to an event's metadata once mapped.
 */
class SharedMetadata {
  private source: ChangeEvent['source'] | null = null;
  private op: ChangeEvent['op'] | null = null;
  private block: ChangeEvent['transaction'] = null;
  private metadata: EventMetadata | null = null;

  constructor(private readonly tx: SourceTransaction) {}

  of(change: ChangeEvent): EventMetadata {
    if (
      this.metadata !== null &&
      change.source === this.source &&
      change.op === this.op &&
      change.transaction === this.block
    )
      return this.metadata;
    this.source = change.source;
    this.op = change.op;
    this.block = change.transaction;
    this.metadata = {
      op: change.op,
      table: change.source.table,
      sourcePosition: sourcePositionOf(change),
      sourceOrder: sourceOrderOf(change),
      sourceTxId: this.tx.id,
      sourceTsMs: change.source.ts_ms,
      snapshot: this.tx.snapshot || change.op === 'r',
    };
    return this.metadata;
  }
}

function mapChange(change: ChangeEvent, rules: RuleSet, shared: SharedMetadata): RowOutcome {
  const { db, table } = change.source;
  const rule = rules.ruleFor(db, table);
  if (rule === undefined) return { ok: false, reason: `no mapping rule for table ${db}.${table}` };
  const where = `${db}.${table} op ${change.op}`;
  const metadata = shared.of(change);
  const event = (
    type: string,
    streamId: string,
    state: DomainState,
    changes: FieldChanges,
  ): NewDomainEvent => {
    const data: RowEventPayload = { state, changes };
    return { streamType: rule.streamType, streamId, type, data, metadata };
  };

  const parse = (image: 'before' | 'after', row: Row | null) => {
    if (row === null) return { ok: false as const, reason: `${where}: no ${image} row` };
    const parsed = rule.parse(row);
    return parsed.ok
      ? parsed
      : { ok: false as const, reason: `${where}: ${image} row rejected: ${parsed.reason}` };
  };

  switch (change.op) {
    case 'c':
    case 'r': {
      const after = parse('after', change.after);
      if (!after.ok) return after;
      const type = change.op === 'r' ? rule.onSnapshot : rule.onCreate;
      return { ok: true, events: [event(type, after.streamId, after.state, {})] };
    }
    case 'd': {
      const before = parse('before', change.before);
      if (!before.ok) return before;
      return { ok: true, events: [event(rule.onDelete, before.streamId, before.state, {})] };
    }
    case 'u': {
      const after = parse('after', change.after);
      if (!after.ok) return after;
      const before = parse('before', change.before);
      if (!before.ok) {
        // Without a valid before image (a legacy row the schema rejected, now corrected, or a
        // minimal row image) the previous values are unknown: the new state still has to reach
        // the read models, so it goes out as the generic update with every field "from null".
        return {
          ok: true,
          events: [event(rule.otherwise, after.streamId, after.state, changedFields({}, after.state))],
        };
      }
      if (before.streamId !== after.streamId) {
        // The aggregate's key changed: to every consumer the old aggregate is gone and a new one exists.
        return {
          ok: true,
          events: [
            event(rule.onDelete, before.streamId, before.state, {}),
            event(rule.onCreate, after.streamId, after.state, {}),
          ],
        };
      }
      const changes = changedFields(before.state, after.state);
      if (Object.keys(changes).length === 0) return { ok: true, events: [] };
      return {
        ok: true,
        events: updateEventNames(rule, changes).map((type) =>
          event(type, after.streamId, after.state, changes),
        ),
      };
    }
  }
}
