import { rowKeyOf } from '../../connectors/mapping/rules.js';
import type { DomainState, Scalar } from '../read-models.js';
import type { PlanNode, ViewPlan } from './plan.js';
import type { Reads } from './reads.js';
import { fieldValue, matchesWhere, toScalar } from './rows.js';
import { findRows, getRow } from './run.js';

/**
 * Which documents a row change touches. The store calls `affectedKeys` twice per change:
 * with the row's previous state before it writes its mirror, and with the new state after.
 * The first call finds the documents that read the old row (through the mirror as it was),
 * the second those that read the new one, so a row that moves between parents, or appears,
 * or goes, marks both sides. The answer may include documents whose content does not change
 * (a child beyond a top-N, a row a required lookup drops); never does it miss one.
 */

const keyOf = (node: PlanNode, row: DomainState) => rowKeyOf(node.keyFields.map((f) => row[f]));

/** The rows of `node`'s parent that read these rows of `node`, deduplicated by key. */
function* parentsOf(node: PlanNode, parent: PlanNode, rows: readonly DomainState[]): Reads<DomainState[]> {
  const { relation } = node;
  const found = new Map<string, DomainState>();
  for (const row of rows) {
    if (relation.kind === 'lookup') {
      const where: Record<string, Scalar> = {};
      relation.on.forEach((field, i) => {
        const keyField = node.keyFields[i] as string;
        where[field] = toScalar(row[keyField], `key field ${keyField} of ${node.table}`);
      });
      for (const p of yield* findRows(parent.table, where)) found.set(keyOf(parent, p), p);
    } else if (relation.kind === 'children') {
      const by = relation.by.map((field) => fieldValue(row, field) ?? null);
      if (by.some((v) => v === null)) continue;
      const p = yield* getRow(parent.table, rowKeyOf(by));
      if (p !== null) found.set(keyOf(parent, p), p);
    }
  }
  return [...found.values()];
}

function* rootKeysFrom(start: PlanNode, state: DomainState): Reads<string[]> {
  let node = start;
  let rows: DomainState[] = [state];
  for (;;) {
    const { relation, parent } = node;
    // A child outside its join's where is read by no document (aggregates narrow it further).
    if (relation.kind === 'children') rows = rows.filter((row) => matchesWhere(row, relation.where));
    if (parent === null || rows.length === 0) return rows.map((row) => keyOf(node, row));
    rows = yield* parentsOf(node, parent, rows);
    node = parent;
  }
}

/** Root keys of every document that reads `state` as a row of `table` (none if the view does not). */
export function* affectedKeys(plan: ViewPlan, table: string, state: DomainState): Reads<string[]> {
  const keys = new Set<string>();
  for (const node of plan.nodes) {
    if (node.table !== table) continue;
    for (const key of yield* rootKeysFrom(node, state)) keys.add(key);
  }
  return [...keys];
}
