import type { DeadLetterStatus, NewDomainEvent, StoredDeadLetter } from '../../eventstore/ports.js';
import { mapTransaction } from './mapper.js';
import type { RuleSet } from './rule-set.js';

/**
 * Pure core of acting on dead letters: what a stored letter maps to under the definition's
 * current rules, and how much drift the pending ones stand for.
 */

export type Remapped =
  | { ok: true; letter: StoredDeadLetter; events: NewDomainEvent[] }
  | { ok: false; letter: StoredDeadLetter; reason: string };

/** The letter's change mapped again, as the pipeline would map it now (same metadata, same order key). */
export function remapDeadLetter(letter: StoredDeadLetter, rules: RuleSet): Remapped {
  const change = letter.change;
  const mapped = mapTransaction(
    {
      id: letter.sourceTxId,
      events: [change],
      offset: {},
      snapshot: change.op === 'r' || change.source.snapshot !== 'false',
    },
    rules,
  );
  const rejected = mapped.deadLetters[0];
  if (rejected !== undefined) return { ok: false, letter, reason: rejected.reason };
  return { ok: true, letter, events: mapped.events };
}

export interface TableDrift {
  table: string;
  /** Letters not re-driven yet: rows whose change the read models do not have. */
  pending: number;
  /** When the oldest pending letter was recorded: the read models lag the source since then. */
  since: string | null;
  latest: string | null;
  /** Distinct aggregates (rows) those letters belong to. */
  aggregates: number;
  redriven: number;
  superseded: number;
  /** Pending letters per reason, most frequent first (at most 5). */
  reasons: Array<{ reason: string; count: number }>;
}

/**
 * Which aggregate a letter is about: its stream id when the current rule can read the row,
 * else the row's values of the rule's key fields when the columns carry those names, else the
 * whole row image (so distinct rows still count apart).
 */
function aggregateOf(letter: StoredDeadLetter, rules: RuleSet): string {
  const { change } = letter;
  const row = change.after ?? change.before ?? {};
  const rule = rules.ruleFor(change.source.db, change.source.table);
  if (rule !== undefined) {
    const parsed = rule.parse(row);
    if (parsed.ok) return parsed.streamId;
    if (rule.keyFields.every((f) => f in row))
      return `key:${JSON.stringify(rule.keyFields.map((f) => row[f]))}`;
  }
  return `row:${JSON.stringify(row)}`;
}

/** Drift per table, most pending first. */
export function driftReport(letters: readonly DeadLetterStatus[], rules: RuleSet): TableDrift[] {
  const tables = new Map<string, { all: DeadLetterStatus[] }>();
  for (const letter of letters) {
    const entry = tables.get(letter.table) ?? { all: [] };
    entry.all.push(letter);
    tables.set(letter.table, entry);
  }
  const report = [...tables.entries()].map(([table, { all }]): TableDrift => {
    const pending = all.filter((l) => l.redrive === null);
    const reasons = new Map<string, number>();
    for (const l of pending) reasons.set(l.reason, (reasons.get(l.reason) ?? 0) + 1);
    return {
      table,
      pending: pending.length,
      since: pending[0]?.recordedAt ?? null,
      latest: pending[pending.length - 1]?.recordedAt ?? null,
      aggregates: new Set(pending.map((l) => aggregateOf(l, rules))).size,
      redriven: all.filter((l) => l.redrive?.outcome === 'appended').length,
      superseded: all.filter((l) => l.redrive?.outcome === 'superseded').length,
      reasons: [...reasons.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 5)
        .map(([reason, count]) => ({ reason, count })),
    };
  });
  return report.sort((a, b) => b.pending - a.pending || a.table.localeCompare(b.table));
}
