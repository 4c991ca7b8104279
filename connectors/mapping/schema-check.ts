import type { DeadLetter } from '../../eventstore/ports.js';
import {
  type ChangeEvent,
  type SourceSchemaChange,
  type SourceTransaction,
  sourcePositionOf,
} from '../change-event.js';
import type { MappedTransaction } from './mapper.js';
import { mapTransaction } from './mapper.js';
import type { RuleSet } from './rule-set.js';

/**
 * Pure: whether a schema change breaks its table's capture rule, and the mapping of a
 * transaction while some tables' capture is paused.
 */

/**
 * Why the table's rule can no longer read the table, or null. The rule is tried on a few of
 * the table's current rows: a rule is a parser, not a list of columns, so this is the one test
 * that holds for any rule. Broken when the table is gone, or when the rule rejects every
 * sampled row (one rejected row among good ones is a poison row, not a schema change). An empty
 * table, or a table without a rule, cannot break anything.
 */
export function schemaChangeBreaks(change: SourceSchemaChange, rules: RuleSet): string | null {
  const rule = rules.ruleFor(change.db, change.table);
  if (rule === undefined) return null;
  if (change.columns.length === 0) return `table ${change.table} no longer exists (dropped or renamed)`;
  if (change.sample.length === 0) return null;
  const results = change.sample.map((row) => rule.parse(row));
  const rejected = results.filter((r) => !r.ok);
  if (rejected.length < results.length) return null;
  const first = rejected[0];
  return `the capture rule rejects the table's rows since the change: ${first && !first.ok ? first.reason : ''}`;
}

/**
 * Whether a recorded schema change is a TRUNCATE (the binlog's statement, or the one the
 * pgoutput reader writes for a Truncate message). It empties the table without row changes in
 * the change log, so the read models keep the rows it removed until the table is re-captured.
 */
export function isTruncate(ddl: string): boolean {
  return /^\s*(?:\/\*.*?\*\/\s*)*TRUNCATE\b/is.test(ddl);
}

/** What to do after a TRUNCATE of `table`: re-capture it, which removes the keys it no longer has. */
export function truncateHint(table: string): string {
  return `the read models keep the rows it removed: stop run, then \`cqrs-migrate resnapshot --table ${table} --force\``;
}

/** The reason of a row held back because its table's capture is paused. */
export function pausedReason(table: string, breaks: string): string {
  return `capture of ${table} paused by a schema change: ${breaks}`;
}

/**
 * mapTransaction, except that the rows of a paused table are kept as dead letters (in order,
 * with the pause as reason), so `dead-letters redrive` applies them once the rule is fixed, and
 * a snapshot of a paused table removes nothing.
 */
export function mapWithPauses(
  tx: SourceTransaction,
  rules: RuleSet,
  paused: ReadonlyMap<string, string>,
): MappedTransaction {
  if (paused.size === 0) return mapTransaction(tx, rules);
  const isPaused = (e: ChangeEvent) => paused.has(e.source.table);
  const mapped = mapTransaction({ ...tx, events: tx.events.filter((e) => !isPaused(e)) }, rules);
  const held: DeadLetter[] = tx.events.filter(isPaused).map((change) => ({
    reason: pausedReason(change.source.table, paused.get(change.source.table) ?? ''),
    table: change.source.table,
    op: change.op,
    sourcePosition: sourcePositionOf(change),
    sourceTxId: tx.id,
    change,
  }));
  const deadLetters = [...mapped.deadLetters, ...held];
  const sweep = mapped.sweep !== undefined && paused.has(mapped.sweep.table) ? undefined : mapped.sweep;
  return sweep === undefined
    ? { events: mapped.events, deadLetters }
    : { events: mapped.events, deadLetters, sweep };
}
