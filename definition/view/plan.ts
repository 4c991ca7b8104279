import { isName, isObject } from '../../lib/guards.js';
import type {
  Aggregate,
  Aggregates,
  ChildrenJoin,
  IndexFields,
  Joins,
  LookupJoin,
  Scalar,
  SortDirection,
  ViewDefinition,
  Where,
} from '../read-models.js';
import type { AggregateFn } from './reads.js';
import { isScalar } from './rows.js';

/**
 * A view checked once against the captured tables and turned into a tree the engine walks:
 * every name resolved, every key arity matched, children ordered totally. A definition that
 * cannot run is refused here, at start, with the place and the fix.
 */

export interface PlanOrder {
  readonly field: string;
  readonly direction: SortDirection;
}

export type PlanRelation =
  | { readonly kind: 'root' }
  /** `on`: fields of the parent row holding this row's key, in key order. */
  | { readonly kind: 'lookup'; readonly on: readonly string[]; readonly required: boolean }
  /**
   * `by`: fields of this row holding the parent's key, in key order. `orderBy` ends with this
   * table's key fields, so top-N and child order are the same on every store.
   */
  | {
      readonly kind: 'children';
      readonly by: readonly string[];
      readonly where: Where;
      readonly orderBy: readonly PlanOrder[];
      readonly limit: number | undefined;
    };

/** An aggregate over the rows of one children join of its node. */
export interface PlanAggregate {
  readonly name: string;
  readonly fn: AggregateFn;
  /** Name of the children join it runs over. */
  readonly join: string;
  readonly table: string;
  /** Fields of `table` holding the node's key (the join's `by`). */
  readonly by: readonly string[];
  /** The join's `where` narrowed by the aggregate's own. */
  readonly where: Where;
  readonly field: string | undefined;
  readonly scale: number | undefined;
}

export interface PlanJoin {
  readonly name: string;
  readonly node: PlanNode;
}

export interface PlanNode {
  readonly table: string;
  readonly keyFields: readonly string[];
  readonly relation: PlanRelation;
  readonly joins: readonly PlanJoin[];
  readonly aggregates: readonly PlanAggregate[];
  /** The node this one hangs from; null at the root. */
  readonly parent: PlanNode | null;
  /** Where the node is declared, as messages name it: '' at the root, else e.g. 'join.recent.join.merchant'. */
  readonly path: string;
}

export interface ViewPlan {
  name: string;
  view: ViewDefinition;
  root: PlanNode;
  tables: ReadonlySet<string>;
  /**
   * Every (table, fields) the engine finds rows by; a field list that prefixes another is dropped.
   * `covering`: a join reads whole rows through it (a joined list, not only aggregates), so the
   * store keeps the row in the index too and reads the list in index order.
   */
  indexes: ReadonlyArray<ViewIndex>;
  /** Every node, root first, depth first: fan-out starts from each node of a changed row's table. */
  nodes: readonly PlanNode[];
}

export interface ViewIndex {
  readonly table: string;
  readonly fields: readonly string[];
  readonly covering: boolean;
}

const FNS: readonly AggregateFn[] = ['count', 'sum', 'min', 'max'];

type KeyFieldsOf = (table: string) => readonly string[] | undefined;

interface MutableNode extends PlanNode {
  readonly joins: PlanJoin[];
  readonly aggregates: PlanAggregate[];
}

const quote = (s: unknown) => JSON.stringify(s);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const at = (path: string, part: string) => (path === '' ? part : `${path}.${part}`);

/** The values a where entry allows, as a list. */
const allowed = (value: Scalar | readonly Scalar[]): readonly Scalar[] =>
  Array.isArray(value) ? (value as readonly Scalar[]) : [value as Scalar];

class Compiler {
  readonly problems: string[] = [];
  readonly nodes: PlanNode[] = [];

  constructor(
    private readonly keyFieldsOf: KeyFieldsOf,
    private readonly captured: readonly string[] | undefined,
  ) {}

  problem(where: string, message: string): void {
    this.problems.push(`${where}: ${message}`);
  }

  keyOf(table: unknown, where: string): readonly string[] | undefined {
    if (!isName(table)) {
      this.problem(where, 'give the name of a captured table');
      return undefined;
    }
    const key = this.keyFieldsOf(table);
    if (key === undefined) {
      const list =
        this.captured === undefined ? 'add a capture rule for it' : `captured: ${this.captured.join(', ')}`;
      this.problem(where, `${quote(table)} is not a captured table (${list})`);
    } else if (key.length === 0) {
      this.problem(where, `${quote(table)} has no key fields; give its capture rule a key`);
      return undefined;
    }
    return key;
  }

  /** One field or a non-empty list of fields, as a list; undefined after reporting a problem. */
  fields(value: unknown, where: string): readonly string[] | undefined {
    const list = typeof value === 'string' ? [value] : value;
    if (!Array.isArray(list) || list.length === 0 || !list.every(isName)) {
      this.problem(where, 'give a field name or a non-empty list of field names');
      return undefined;
    }
    return list as string[];
  }

  arity(
    given: readonly string[],
    table: string,
    key: readonly string[],
    where: string,
    role: string,
  ): boolean {
    if (given.length === key.length) return true;
    this.problem(
      where,
      `${given.length} field(s) given but ${table} has a ${key.length}-field key (${key.join(', ')}); ` +
        `give one ${role} field per key field, in key order`,
    );
    return false;
  }

  where(value: unknown, where: string, byFields: readonly string[]): Where | undefined {
    if (value === undefined) return {};
    if (!isObject(value)) {
      this.problem(where, 'give an object of field: value (or field: [values])');
      return undefined;
    }
    let ok = true;
    for (const [field, expected] of Object.entries(value)) {
      const place = `${where}.${field}`;
      if (byFields.includes(field)) {
        this.problem(place, `${field} is a "by" field, which the parent's key already fixes; remove it`);
        ok = false;
      } else if (Array.isArray(expected)) {
        if (expected.length === 0 || !expected.every(isScalar)) {
          this.problem(place, 'give a non-empty list of strings, numbers, booleans or null');
          ok = false;
        }
      } else if (!isScalar(expected)) {
        this.problem(place, 'give a string, number, boolean or null (or a list of them)');
        ok = false;
      }
    }
    return ok ? (value as Where) : undefined;
  }

  orderBy(value: unknown, where: string, keyFields: readonly string[]): PlanOrder[] | undefined {
    const given = value ?? [];
    if (!Array.isArray(given)) {
      this.problem(where, "give a list like [{ field: 'postedAt', direction: 'desc' }]");
      return undefined;
    }
    const order: PlanOrder[] = [];
    given.forEach((entry: unknown, i) => {
      const place = `${where}[${i}]`;
      if (!isObject(entry) || !isName(entry.field)) {
        this.problem(place, "give { field: 'name', direction?: 'asc' | 'desc' }");
      } else if (entry.direction !== undefined && entry.direction !== 'asc' && entry.direction !== 'desc') {
        this.problem(`${place}.direction`, `${quote(entry.direction)} is not 'asc' or 'desc'`);
      } else {
        order.push({ field: entry.field, direction: entry.direction ?? 'asc' });
      }
    });
    if (order.length !== given.length) return undefined;
    // The key as last tie-breaker: without it, rows equal on the order could swap between stores.
    for (const field of keyFields) {
      if (!order.some((o) => o.field === field)) order.push({ field, direction: 'asc' });
    }
    return order;
  }

  node(
    spec: { join?: Joins; aggregate?: Aggregates },
    table: string,
    keyFields: readonly string[],
    relation: PlanRelation,
    parent: PlanNode | null,
    path: string,
    ancestors: readonly object[],
  ): PlanNode {
    const node: MutableNode = { table, keyFields, relation, joins: [], aggregates: [], parent, path };
    this.nodes.push(node);
    if (ancestors.includes(spec)) {
      this.problem(path, 'this join contains itself; a view is a finite tree of joins');
      return node;
    }
    const inside = [...ancestors, spec];
    const joins: unknown = spec.join ?? {};
    if (!isObject(joins)) this.problem(at(path, 'join'), 'give an object of join name: join');
    else {
      for (const [name, join] of Object.entries(joins)) {
        const child = this.join(join, node, at(path, `join.${name}`), inside);
        if (child !== undefined) node.joins.push({ name, node: child });
      }
    }
    const aggregates: unknown = spec.aggregate ?? {};
    if (!isObject(aggregates))
      this.problem(at(path, 'aggregate'), 'give an object of aggregate name: aggregate');
    else {
      const declared = isObject(joins) ? joins : {};
      for (const [name, aggregate] of Object.entries(aggregates)) {
        const place = at(path, `aggregate.${name}`);
        if (Object.hasOwn(declared, name)) {
          this.problem(place, `${quote(name)} is also a join of this node; give the aggregate another name`);
          continue;
        }
        const compiled = this.aggregate(aggregate, name, node, declared, place);
        if (compiled !== undefined) node.aggregates.push(compiled);
      }
    }
    return node;
  }

  join(join: unknown, parent: PlanNode, path: string, ancestors: readonly object[]): PlanNode | undefined {
    if (!isObject(join)) {
      this.problem(path, 'give { table, on } (a lookup) or { table, by } (children)');
      return undefined;
    }
    const hasOn = join.on !== undefined;
    const hasBy = join.by !== undefined;
    if (hasOn === hasBy) {
      this.problem(
        path,
        hasOn
          ? 'give either "on" (a lookup of one row) or "by" (child rows), not both'
          : 'give "on" (parent fields holding the looked-up row\'s key) or "by" (child fields holding this row\'s key)',
      );
      return undefined;
    }
    const key = this.keyOf(join.table, `${path}.table`);
    if (key === undefined) return undefined;
    const table = join.table as string;
    if (!hasBy) {
      const spec = join as unknown as LookupJoin;
      for (const option of ['where', 'orderBy', 'limit']) {
        if (join[option] !== undefined) {
          this.problem(
            `${path}.${option}`,
            `only children joins (with "by") take ${option}; a lookup reads one row`,
          );
        }
      }
      if (join.required !== undefined && typeof join.required !== 'boolean') {
        this.problem(`${path}.required`, 'give true or false');
      }
      const on = this.fields(join.on, `${path}.on`);
      if (on === undefined || !this.arity(on, table, key, `${path}.on`, 'parent')) return undefined;
      const relation: PlanRelation = { kind: 'lookup', on, required: join.required === true };
      return this.node(spec, table, key, relation, parent, path, ancestors);
    }
    const spec = join as unknown as ChildrenJoin;
    if (join.required !== undefined) {
      this.problem(`${path}.required`, 'only lookups (with "on") can be required; remove it');
    }
    const by = this.fields(join.by, `${path}.by`);
    if (by === undefined) return undefined;
    const arityOk = this.arity(by, parent.table, parent.keyFields, `${path}.by`, 'child');
    const where = this.where(spec.where, `${path}.where`, by);
    const orderBy = this.orderBy(spec.orderBy, `${path}.orderBy`, key);
    if (spec.limit !== undefined && !isCount(spec.limit)) {
      this.problem(
        `${path}.limit`,
        `${quote(spec.limit)} is not a non-negative integer; give a whole number (0 loads no rows, for aggregates only)`,
      );
      return undefined;
    }
    if (!arityOk || where === undefined || orderBy === undefined) return undefined;
    const relation: PlanRelation = { kind: 'children', by, where, orderBy, limit: spec.limit };
    return this.node(spec, table, key, relation, parent, path, ancestors);
  }

  aggregate(
    value: unknown,
    name: string,
    node: MutableNode,
    declaredJoins: Record<string, unknown>,
    path: string,
  ): PlanAggregate | undefined {
    const fns = isObject(value) ? FNS.filter((fn) => value[fn] !== undefined) : [];
    const fn = fns[0];
    if (!isObject(value) || fn === undefined || fns.length > 1) {
      this.problem(
        path,
        "give exactly one of count, sum, min, max, naming a children join: { count: 'cards' }",
      );
      return undefined;
    }
    const spec = value as Aggregate;
    const joinName = value[fn];
    const target = node.joins.find((j) => j.name === joinName)?.node;
    if (target === undefined && typeof joinName === 'string' && Object.hasOwn(declaredJoins, joinName)) {
      // The join itself failed to compile and was reported; one message is enough.
      const declared = declaredJoins[joinName];
      if (!isObject(declared) || declared.by !== undefined) return undefined;
    }
    if (target === undefined || target.relation.kind !== 'children') {
      const children = node.joins.filter((j) => j.node.relation.kind === 'children').map((j) => j.name);
      this.problem(
        `${path}.${fn}`,
        `${quote(joinName)} is not a children join of this node (${
          children.length === 0
            ? 'it has none; add a join with "by"'
            : `children joins: ${children.join(', ')}`
        })`,
      );
      return undefined;
    }
    const field = 'field' in spec ? spec.field : undefined;
    if (fn !== 'count' && !isName(field)) {
      this.problem(`${path}.field`, `${fn} needs the field of ${target.table} it reads`);
      return undefined;
    }
    const scale = 'scale' in spec ? spec.scale : undefined;
    if (scale !== undefined && (fn !== 'sum' || !isCount(scale))) {
      this.problem(
        `${path}.scale`,
        fn === 'sum' ? `${quote(scale)} is not a non-negative integer` : 'only sum takes a scale; remove it',
      );
      return undefined;
    }
    const { by, where: joinWhere } = target.relation;
    const own = this.where(spec.where, `${path}.where`, by);
    if (own === undefined) return undefined;
    const where = this.narrow(joinWhere, own, `${path}.where`);
    if (where === undefined) return undefined;
    return { name, fn, join: joinName as string, table: target.table, by, where, field, scale };
  }

  /** The rows both filters allow; refused when a field allows no value, which no row would match. */
  narrow(outer: Where, inner: Where, path: string): Where | undefined {
    const merged: Record<string, Scalar | readonly Scalar[]> = { ...outer };
    for (const [field, value] of Object.entries(inner)) {
      const before = merged[field];
      if (before === undefined) {
        merged[field] = value;
        continue;
      }
      const both = allowed(value).filter((v) => allowed(before).includes(v));
      if (both.length === 0) {
        this.problem(
          `${path}.${field}`,
          "no value is allowed by both this and the join's where; the aggregate would always be empty",
        );
        return undefined;
      }
      merged[field] = both.length === 1 ? (both[0] as Scalar) : both;
    }
    return merged;
  }
}

/**
 * The fields of a join's `where` an index seeks by after its `by` fields: without them a
 * pending-transfers count reads every transfer of the account and checks each (a busy
 * account's 37,400 payments and 17,100 transfers took 69 ms to count none pending). A list of
 * values (IN) seeks once per value and loses the index's order, so ahead of an order only
 * single values are taken.
 */
function seekFields(where: Where, ordered: boolean): string[] {
  return Object.entries(where)
    .filter(([, value]) => !ordered || !Array.isArray(value))
    .map(([field]) => field);
}

function indexesOf(plan: { nodes: readonly PlanNode[]; view: ViewDefinition }): ViewIndex[] {
  const wanted: ViewIndex[] = [];
  for (const node of plan.nodes) {
    const { relation, parent } = node;
    for (const agg of node.aggregates) {
      const seek = seekFields(agg.where, false);
      if (seek.length > 0)
        wanted.push({ table: agg.table, fields: [...new Set([...agg.by, ...seek])], covering: false });
    }
    if (relation.kind === 'children') {
      // A limit-0 join is only aggregated, which needs no order and no whole rows.
      const listed = relation.limit !== 0;
      const order = listed ? relation.orderBy.map((o) => o.field) : [];
      const seek = seekFields(relation.where, order.length > 0);
      wanted.push({
        table: node.table,
        fields: [...new Set([...relation.by, ...seek, ...order])],
        covering: listed,
      });
    } else if (relation.kind === 'lookup' && parent !== null) {
      // Fan-out walks up from a looked-up row to the parents whose `on` holds its key.
      wanted.push({ table: parent.table, fields: relation.on, covering: false });
    }
  }
  const root = plan.nodes[0];
  for (const fields of plan.view.indexes ?? []) {
    if (root !== undefined) wanted.push({ table: root.table, fields, covering: false });
  }
  return keptIndexes(wanted);
}

/**
 * The indexes that serve every wanted one: an index serves equality on any prefix of its fields,
 * so a prefix index adds nothing, and the one kept covers where any it stands in for would.
 */
export function keptIndexes(wanted: readonly ViewIndex[]): ViewIndex[] {
  const covers = (long: readonly string[], short: readonly string[]) => short.every((f, i) => long[i] === f);
  const kept: ViewIndex[] = [];
  wanted.forEach((index, i) => {
    const redundant = wanted.some(
      (other, j) =>
        other.table === index.table &&
        covers(other.fields, index.fields) &&
        (other.fields.length > index.fields.length || j < i),
    );
    if (redundant) return;
    const covering = wanted.some(
      (w) => w.covering && w.table === index.table && covers(index.fields, w.fields),
    );
    kept.push({ ...index, covering });
  });
  return kept;
}

/**
 * Checks a view against the captured tables and compiles it; throws an Error naming each
 * problem's place (`join.recent.join.merchant.table: …`) and its fix. `captured` (the table
 * names) only improves the message for an unknown table.
 */
export function compileView(
  view: ViewDefinition,
  keyFieldsOf: KeyFieldsOf,
  captured?: readonly string[],
): ViewPlan {
  const compiler = new Compiler(keyFieldsOf, captured);
  const key = compiler.keyOf(view.from, 'from');
  if (typeof view.select !== 'function') compiler.problem('select', 'give a function (root) => document');
  (view.indexes ?? []).forEach((fields: IndexFields, i) => {
    if (!Array.isArray(fields) || fields.length === 0 || !fields.every(isName)) {
      compiler.problem(`indexes[${i}]`, "give a non-empty list of root-row field names, e.g. ['accountId']");
    }
  });
  if (key === undefined) throw new Error(compiler.problems.join('; '));
  const root = compiler.node(view, view.from, key, { kind: 'root' }, null, '', []);
  if (compiler.problems.length > 0) throw new Error(compiler.problems.join('; '));
  const nodes = compiler.nodes;
  return {
    name: view.name,
    view,
    root,
    tables: new Set(nodes.map((n) => n.table)),
    indexes: indexesOf({ nodes, view }),
    nodes,
  };
}
