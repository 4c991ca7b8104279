import { rowKeyOf } from '../../connectors/mapping/rules.js';
import type { DomainState, Scalar, ViewNode, Where } from '../read-models.js';
import type { PlanNode, PlanRelation, ViewPlan } from './plan.js';
import type { Reads } from './reads.js';
import { fieldValue, toScalar } from './rows.js';
import { aggregateOf, findRows, getRow } from './run.js';

/**
 * Builds a view's document from the rows the store keeps, reading them only through the
 * RowRead protocol. A `required` lookup that finds no row removes the node that holds it:
 * the document at the root, the child in a collection, and the lookup itself (null)
 * elsewhere, which a required lookup passes on upward — INNER JOIN semantics at every level.
 * The schema is not checked here: the store validates what `select` returns.
 */

type ChildrenRelation = Extract<PlanRelation, { kind: 'children' }>;
type LookupRelation = Extract<PlanRelation, { kind: 'lookup' }>;

/** `{ by_i: key_i }`: the rows of a children join (or aggregate) that belong to `row`. */
export function parentKeyWhere(
  by: readonly string[],
  parent: PlanNode,
  row: DomainState,
): Record<string, Scalar> {
  const where: Record<string, Scalar> = {};
  by.forEach((field, i) => {
    const keyField = parent.keyFields[i] as string;
    where[field] = toScalar(row[keyField], `key field ${keyField} of ${parent.table}`);
  });
  return where;
}

function* lookup(node: PlanNode, relation: LookupRelation, parentRow: DomainState): Reads<ViewNode | null> {
  const values = relation.on.map((field) => fieldValue(parentRow, field) ?? null);
  // A null foreign key joins nothing, as in SQL.
  if (values.some((v) => v === null)) return null;
  const row = yield* getRow(node.table, rowKeyOf(values));
  return row === null ? null : yield* composeNode(node, row);
}

function* children(
  node: PlanNode,
  relation: ChildrenRelation,
  parent: PlanNode,
  parentRow: DomainState,
): Reads<ViewNode[]> {
  const { limit } = relation;
  if (limit === 0) return [];
  const where: Where = { ...parentKeyWhere(relation.by, parent, parentRow), ...relation.where };
  const nodes: ViewNode[] = [];
  let composed = 0;
  let want = limit;
  for (;;) {
    const rows = yield* findRows(node.table, where, relation.orderBy, want);
    // The order is total (it ends with the key), so a longer read starts with the rows already seen.
    for (const row of rows.slice(composed)) {
      const child = yield* composeNode(node, row);
      if (child !== null) nodes.push(child);
      if (nodes.length === limit) return nodes;
    }
    composed = rows.length;
    // Children dropped by a required lookup leave room for the next ones, as LIMIT after a JOIN does.
    if (want === undefined || rows.length < want) return nodes;
    want *= 2;
  }
}

function* composeNode(node: PlanNode, row: DomainState): Reads<ViewNode | null> {
  const joins: ViewNode['joins'] = {};
  // Lookups first: a missing required one makes the rest of the node unnecessary.
  for (const { name, node: child } of node.joins) {
    if (child.relation.kind !== 'lookup') continue;
    const found = yield* lookup(child, child.relation, row);
    if (found === null && child.relation.required) return null;
    joins[name] = found;
  }
  for (const { name, node: child } of node.joins) {
    if (child.relation.kind !== 'children') continue;
    joins[name] = yield* children(child, child.relation, node, row);
  }
  const aggregates: ViewNode['aggregates'] = {};
  for (const agg of node.aggregates) {
    const where: Where = { ...parentKeyWhere(agg.by, node, row), ...agg.where };
    aggregates[agg.name] = yield* aggregateOf(agg.table, where, agg.fn, agg.field, agg.scale);
  }
  return { row, joins, aggregates };
}

/** The document of the root row with this key; null when the row or a required lookup is missing. */
export function* composeDocument(plan: ViewPlan, key: string): Reads<unknown | null> {
  const row = yield* getRow(plan.root.table, key);
  return row === null ? null : yield* composeFromRow(plan, row);
}

/** The document of a root row already read (e.g. by a store's `find` over root rows). */
export function* composeFromRow(plan: ViewPlan, row: DomainState): Reads<unknown | null> {
  const root = yield* composeNode(plan.root, row);
  return root === null ? null : plan.view.select(root);
}
