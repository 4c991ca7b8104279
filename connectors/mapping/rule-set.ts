import { z } from 'zod';
import { ConfigError } from '../../lib/errors.js';
import type { TableRule } from './rules.js';

/** The mapping rules of one source, looked up by the table a change came from. */
export interface RuleSet<E extends string = string> {
  readonly rules: readonly TableRule<E>[];
  /** The rule for a captured table: a rule naming this database wins over one for any database. */
  ruleFor(db: string, table: string): TableRule<E> | undefined;
}

export interface RuleSetOptions {
  /** The event catalog's names; any other name a rule emits is a configuration error. */
  knownEvents?: readonly string[];
}

const ANY_DB = '*';
const keyOf = (db: string | undefined, table: string) => `${db ?? ANY_DB}\u0000${table}`;

function ruleSetSchema(knownEvents: readonly string[] | undefined) {
  const known = knownEvents === undefined ? undefined : new Set(knownEvents);
  const eventName = z
    .string()
    .min(1)
    .refine((name) => known === undefined || known.has(name), {
      error: (issue) => `unknown event name ${JSON.stringify(issue.input)}`,
    });
  const rule = z
    .object({
      table: z.string().min(1),
      db: z.string().min(1).optional(),
      streamType: z.string().min(1),
      keyFields: z.array(z.string().min(1)).min(1, 'a rule needs a row key (key: the primary key field(s))'),
      onCreate: eventName,
      onSnapshot: eventName,
      onUpdate: z.array(z.object({ when: z.array(z.string().min(1)).min(1), emit: eventName })),
      otherwise: eventName,
      onDelete: eventName,
    })
    .superRefine((r, ctx) => {
      // Read models tell a removal from its event name, so it must name nothing else.
      const others = [r.onCreate, r.onSnapshot, r.otherwise, ...r.onUpdate.map((c) => c.emit)];
      if (others.includes(r.onDelete))
        ctx.addIssue({
          code: 'custom',
          path: ['onDelete'],
          message: `onDelete event ${JSON.stringify(r.onDelete)} is also emitted for inserts or updates; give deletes their own event name`,
        });
    });
  return z
    .array(rule)
    .min(1, 'a rule set needs at least one rule')
    .superRefine((rules, ctx) => {
      const seen = new Map<string, number>();
      rules.forEach((r, index) => {
        const key = keyOf(r.db, r.table);
        const first = seen.get(key);
        if (first === undefined) seen.set(key, index);
        else
          ctx.addIssue({
            code: 'custom',
            path: [index, 'table'],
            message: `duplicate rule for table ${r.db ?? ANY_DB}.${r.table} (first defined by rule ${first})`,
          });
      });
    });
}

/**
 * Validates rules once at startup, so a broken rule set (duplicate tables, event names not in
 * the catalog, empty clauses) stops the adapter with a ConfigError instead of mapping wrongly.
 */
export function defineRuleSet<E extends string>(
  rules: readonly TableRule<E>[],
  options: RuleSetOptions = {},
): RuleSet<E> {
  const checked = ruleSetSchema(options.knownEvents).safeParse(rules);
  if (!checked.success) {
    const lines = checked.error.issues.map((issue) => {
      const [index, ...rest] = issue.path;
      const rule = typeof index === 'number' ? rules[index] : undefined;
      const where = rule ? `rule ${String(index)} (${rule.table})` : 'rule set';
      return `  ${where}${rest.length > 0 ? ` ${rest.map(String).join('.')}` : ''}: ${issue.message}`;
    });
    throw new ConfigError(`invalid mapping rules:\n${lines.join('\n')}`, {
      cause: checked.error,
      hint: 'fix the capture rules of the migration definition (see "Migrate your own database" in README.md)',
    });
  }
  const byKey = new Map(rules.map((r) => [keyOf(r.db, r.table), r]));
  return {
    rules,
    ruleFor: (db, table) => byKey.get(keyOf(db, table)) ?? byKey.get(keyOf(undefined, table)),
  };
}
