import type { z } from 'zod';
import type { Row } from '../change-event.js';

/**
 * The declarative row→domain-event mapping of one legacy table. A rule is written against
 * the typed output of its zod row schema (field names in `when`, the stream-id function),
 * then compiled into an erased `TableRule` so rules of different tables fit in one rule set.
 */

/** What a row schema turns a captured row into: the aggregate's state. */
export type DomainState = Record<string, unknown>;

type FieldOf<S> = Extract<keyof S, string>;

export interface UpdateClause<S, E extends string> {
  /** Domain field names (after the schema's transform); the clause matches when any of them changed. */
  when: readonly [FieldOf<S>, ...FieldOf<S>[]];
  emit: E;
}

export interface TableRuleSpec<S extends DomainState, E extends string> {
  table: string;
  /** Restrict the rule to one source database; without it the rule matches the table in any database. */
  db?: string;
  /** Parses a raw CDC row into domain state; a row it rejects becomes a dead letter. */
  row: z.ZodType<S>;
  /**
   * The domain field(s) that identify one row (the table's primary key, after the schema's
   * renames): read models keep and look up rows by it.
   */
  key: FieldOf<S> | readonly [FieldOf<S>, ...FieldOf<S>[]];
  stream: { type: string; id: (state: S) => string };
  /** Event of an insert (op "c"). */
  onCreate: E;
  /** Event of a snapshot read (op "r"); defaults to onCreate. */
  onSnapshot?: E;
  /** Every clause whose fields changed emits its event (once per event name). */
  onUpdate?: readonly UpdateClause<S, E>[];
  /** Event of an update that changed fields but matched no clause. */
  otherwise: E;
  onDelete: E;
}

export type ParsedRow = { ok: true; state: DomainState; streamId: string } | { ok: false; reason: string };

/** A compiled rule: plain data plus `parse`, which closes over the typed schema and stream id. */
export interface TableRule<E extends string = string> {
  readonly table: string;
  readonly db: string | undefined;
  readonly streamType: string;
  /** Domain fields of the row key, in order. */
  readonly keyFields: readonly string[];
  readonly onCreate: E;
  readonly onSnapshot: E;
  readonly onUpdate: readonly { readonly when: readonly string[]; readonly emit: E }[];
  readonly otherwise: E;
  readonly onDelete: E;
  parse(row: Row): ParsedRow;
  /** The row key of a parsed state: the field's text, or a JSON array for a compound key. */
  rowKey(state: DomainState): string;
}

/** Text form of a row key: one field's value as text, several as a JSON array of the values. */
export function rowKeyOf(values: readonly unknown[]): string {
  return values.length === 1 ? String(values[0]) : JSON.stringify(values);
}

/** "path: message; path: message" for an operator reading a dead letter. */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.map(String).join('.') : '(row)'}: ${issue.message}`)
    .join('; ');
}

export function defineTableRule<S extends DomainState, E extends string>(
  spec: TableRuleSpec<S, E>,
): TableRule<E> {
  const { row: schema, stream } = spec;
  const keyFields: readonly string[] = typeof spec.key === 'string' ? [spec.key] : [...spec.key];
  return {
    table: spec.table,
    db: spec.db,
    streamType: stream.type,
    keyFields,
    onCreate: spec.onCreate,
    onSnapshot: spec.onSnapshot ?? spec.onCreate,
    onUpdate: (spec.onUpdate ?? []).map((clause) => ({ when: [...clause.when], emit: clause.emit })),
    otherwise: spec.otherwise,
    onDelete: spec.onDelete,
    parse(row: Row): ParsedRow {
      const parsed = schema.safeParse(row);
      if (!parsed.success) return { ok: false, reason: describeIssues(parsed.error.issues) };
      const streamId = stream.id(parsed.data);
      // An empty id would merge unrelated rows into one stream.
      if (streamId.length === 0) return { ok: false, reason: 'stream id is empty' };
      const missing = keyFields.filter((f) => parsed.data[f] === undefined || parsed.data[f] === null);
      if (missing.length > 0) return { ok: false, reason: `row key field(s) ${missing.join(', ')} missing` };
      return { ok: true, state: parsed.data, streamId };
    },
    rowKey: (state) => rowKeyOf(keyFields.map((f) => state[f])),
  };
}

/**
 * Names of the events in a catalog whose payload type is exactly S, so a rule can only emit
 * events that carry its own table's state.
 */
export type EventNamesFor<Events, S> = {
  [K in Extract<keyof Events, string>]: [S] extends [Events[K]]
    ? [Events[K]] extends [S]
      ? K
      : never
    : never;
}[Extract<keyof Events, string>];

/**
 * `defineTableRule` bound to an event catalog (event name → state type): the type checker
 * then rejects event names that are not in the catalog or that carry another table's state.
 */
export function tableRuleBuilder<Events>() {
  return <S extends DomainState>(
    spec: TableRuleSpec<S, EventNamesFor<Events, S>>,
  ): TableRule<EventNamesFor<Events, S>> => defineTableRule(spec);
}
