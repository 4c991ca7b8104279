import { z } from 'zod';
import { defineRuleSet, type RuleSet } from '../connectors/mapping/rule-set.js';
import type { TableRule } from '../connectors/mapping/rules.js';
import type { NewDomainEvent } from '../eventstore/ports.js';
import { type CompareRules, compileCompareRules } from '../lib/compare-rules.js';
import { DefinitionError, errorMessage } from '../lib/errors.js';
import { sensitivePathSchema } from '../lib/masking.js';
import { ANALYTICS_IDENTIFIER, type AnalyticsDefinition } from './analytics.js';
import { routeParams } from './endpoint-calls.js';
import { type DomainDefinition, type EndpointDefinition, TIME_TRAVEL_PARAM } from './endpoints.js';
import type { DomainEvent, ReadModelDefinition, ViewDefinition } from './read-models.js';
import { compileView, type ViewPlan } from './view/plan.js';

/**
 * A whole migration in one value: what to capture from the legacy database, the read models
 * built from it, and the endpoints served and compared, grouped by domain. `defineMigration`
 * validates it once, so a definition that cannot run is refused at start with the rule, the
 * field and the fix, never half-way through a run.
 */

/** Optional sample data for `demo`: how to create a legacy database and drive writes on it. */
export interface SampleHooks {
  /** Creates (or, with `force`, re-creates) the sample database `url` names. */
  create(ctx: SampleCreateContext): Promise<{ rows: number }>;
  /** Writes at about `ratePerSec` operations per second for `durationMs`. */
  load(ctx: SampleLoadContext): Promise<{ ops: number; rowChanges: number; errors: number }>;
  /** Read requests (paths with query) the demo sends to the shadow API, e.g. '/accounts/7/summary'. */
  readPaths(ctx: { url: string; count: number; seed: number }): Promise<string[]>;
  /** Scale names `create` accepts; the first is the default. */
  scales: readonly [string, ...string[]];
  /** Where the sample database lives when the configuration leaves legacy.url at its default. */
  url?: string;
}

export interface SampleCreateContext {
  url: string;
  scale: string;
  seed: number;
  /** Drop an existing database of that name first. */
  force: boolean;
  progress(line: string): void;
}

export interface SampleLoadContext {
  url: string;
  ratePerSec: number;
  durationMs: number;
  seed: number;
  signal?: AbortSignal;
}

export interface MigrationSpec {
  name: string;
  capture: {
    /** One rule per captured table (captureTable / tableRuleBuilder). */
    tables: readonly TableRule[];
    /** The event catalog: any other event name a rule emits is refused. */
    knownEvents?: readonly string[];
    /**
     * Columns holding personal data, by captured table, e.g. `{ customers: ['email', 'name'] }`:
     * masked in stored dead-letter row images.
     */
    sensitive?: Readonly<Record<string, readonly string[]>>;
  };
  readModels: readonly ReadModelDefinition[];
  /** Analytics read models (columnar tables queried with SQL), kept beside the document ones. */
  analytics?: readonly AnalyticsDefinition[];
  domains: Readonly<Record<string, DomainDefinition>>;
  sample?: SampleHooks;
}

export interface EndpointEntry {
  domain: string;
  name: string;
  /** Flag key: `<domain>.<endpoint>`. */
  key: string;
  definition: EndpointDefinition;
  /** The endpoint's `compare` rules, checked and compiled. */
  compareRules?: CompareRules;
}

export interface Migration {
  readonly kind: 'migration';
  readonly name: string;
  readonly rules: RuleSet;
  /** Captured table names, in definition order. */
  readonly tables: readonly string[];
  readonly readModels: readonly ReadModelDefinition[];
  readonly analytics: readonly AnalyticsDefinition[];
  /** Compiled plans of the views, by read-model name. */
  readonly viewPlans: ReadonlyMap<string, ViewPlan>;
  readonly endpoints: readonly EndpointEntry[];
  readonly domains: readonly string[];
  readonly sample: SampleHooks | undefined;
  /** Sensitive answer fields by endpoint key (only endpoints that have some). */
  readonly sensitiveFields: ReadonlyMap<string, readonly string[]>;
  /** Sensitive columns by captured table (only tables that have some). */
  readonly sensitiveColumns: ReadonlyMap<string, readonly string[]>;
  /** The rule of a captured table (by table name, any database). */
  ruleOf(table: string): TableRule | undefined;
  /** The event as projections see it: with `removed` set from its table's onDelete name. */
  toDomainEvent(event: NewDomainEvent): DomainEvent;
}

const nameSchema = z
  .string()
  .regex(
    /^[a-z][a-z0-9_-]{0,62}$/,
    'use 1-63 lower-case letters, digits, "-" or "_", starting with a letter',
  );
const keyPartSchema = z
  .string()
  .regex(/^[A-Za-z][\w-]*$/, 'use letters, digits, "_" or "-", starting with a letter');

/** Paths the shadow API serves itself. */
const RESERVED_ROUTE = /^\/(admin(\/|$)|docs(\/|$)|health(\/live|\/ready)?$|metrics$)/;

function fail(lines: string[], hint: string): never {
  throw new DefinitionError(`invalid migration definition:\n${lines.map((l) => `  ${l}`).join('\n')}`, {
    hint,
  });
}

function checkEndpoints(spec: MigrationSpec): { entries: EndpointEntry[]; problems: string[] } {
  const problems: string[] = [];
  const entries: EndpointEntry[] = [];
  const routes = new Map<string, string>();
  for (const [domain, def] of Object.entries(spec.domains)) {
    if (!keyPartSchema.safeParse(domain).success) problems.push(`domains.${domain}: invalid domain name`);
    for (const [name, endpoint] of Object.entries(def.endpoints)) {
      const where = `domains.${domain}.endpoints.${name}`;
      if (!keyPartSchema.safeParse(name).success) problems.push(`${where}: invalid endpoint name`);
      if (endpoint.kind !== 'endpoint') {
        problems.push(`${where}: not an endpoint; build it with defineEndpoint({...})`);
        continue;
      }
      if (!endpoint.route.startsWith('/')) problems.push(`${where}.route: must start with "/"`);
      if (RESERVED_ROUTE.test(endpoint.route))
        problems.push(
          `${where}.route: ${endpoint.route} is the API's own (/admin/…, /docs/…, /health, /metrics); pick another path`,
        );
      const other = routes.get(endpoint.route);
      if (other !== undefined)
        problems.push(`${where}.route: ${endpoint.route} is also the route of ${other}`);
      routes.set(endpoint.route, where);
      const shape = (endpoint.params as { shape?: Record<string, unknown> }).shape;
      if (shape !== undefined) {
        if (TIME_TRAVEL_PARAM in shape)
          problems.push(
            `${where}.params: ${TIME_TRAVEL_PARAM} is the API's time-travel parameter (answer as of a past time); name yours otherwise`,
          );
        for (const p of routeParams(endpoint.route)) {
          if (!(p in shape))
            problems.push(`${where}.params: route parameter :${p} is not in the params schema`);
        }
      }
      const sensitive = z.array(sensitivePathSchema).optional().safeParse(endpoint.sensitive);
      if (!sensitive.success)
        problems.push(
          `${where}.sensitive: ${sensitive.error.issues.map((i) => `${i.path.join('.') || '(list)'}: ${i.message}`).join('; ')}`,
        );
      const reconcile = endpoint.reconcile;
      if (reconcile !== undefined && typeof reconcile !== 'function') {
        if (typeof reconcile !== 'object' || reconcile === null || reconcile.sql === undefined)
          problems.push(
            `${where}.reconcile: expected { sql, readModel? } or a function of the legacy database`,
          );
        else if (reconcile.readModel !== undefined && typeof reconcile.readModel !== 'function')
          problems.push(`${where}.reconcile.readModel: expected a function of the read models`);
      }
      let compareRules: CompareRules | undefined;
      try {
        if (endpoint.compare !== undefined) compareRules = compileCompareRules(endpoint.compare);
      } catch (err) {
        problems.push(`${where}.compare: ${errorMessage(err)}`);
      }
      entries.push({
        domain,
        name,
        key: `${domain}.${name}`,
        definition: endpoint,
        ...(compareRules === undefined ? {} : { compareRules }),
      });
    }
  }
  if (entries.length === 0) problems.push('domains: define at least one endpoint');
  return { entries, problems };
}

/** Analytics models: names unique among all read models, tables fed by captured tables, SQL-safe names. */
function checkAnalytics(
  models: readonly AnalyticsDefinition[],
  names: Set<string>,
  keyFieldsOf: (table: string) => readonly string[] | undefined,
): string[] {
  const problems: string[] = [];
  models.forEach((model, i) => {
    const where = `analytics[${i}] (${model.name})`;
    if (model.kind !== 'analytics') {
      problems.push(`${where}: not an analytics model; build it with defineAnalytics({...})`);
      return;
    }
    if (!nameSchema.safeParse(model.name).success)
      problems.push(`${where}.name: not a valid read-model name`);
    if (names.has(model.name)) problems.push(`${where}.name: two read models are named ${model.name}`);
    names.add(model.name);
    const tables = Object.entries(model.tables);
    if (tables.length === 0) problems.push(`${where}.tables: declare at least one table`);
    for (const [table, spec] of tables) {
      if (!ANALYTICS_IDENTIFIER.test(table))
        problems.push(`${where}.tables.${table}: use lower-case letters, digits and "_" (an SQL name)`);
      const keyFields = keyFieldsOf(spec.from);
      if (keyFields === undefined)
        problems.push(`${where}.tables.${table}.from: ${spec.from} is not a captured table`);
      if (spec.keyType !== undefined && spec.keyType !== 'BIGINT' && spec.keyType !== 'VARCHAR')
        problems.push(
          `${where}.tables.${table}.keyType: ${JSON.stringify(spec.keyType)} is not BIGINT or VARCHAR`,
        );
      if (spec.keyType === 'BIGINT' && keyFields !== undefined && keyFields.length !== 1)
        problems.push(
          `${where}.tables.${table}.keyType: BIGINT needs a capture key of one column; ${spec.from}'s is ${keyFields.join(', ')}`,
        );
      const columns = Object.keys(spec.columns);
      if (columns.length === 0)
        problems.push(`${where}.tables.${table}.columns: declare at least one column`);
      for (const column of columns) {
        if (!ANALYTICS_IDENTIFIER.test(column))
          problems.push(
            `${where}.tables.${table}.columns.${column}: use lower-case letters, digits and "_" (an SQL name)`,
          );
      }
    }
    if (Object.keys(model.queries).length === 0)
      problems.push(`${where}.queries: declare at least one query`);
  });
  return problems;
}

/** Validates a migration definition and compiles its views; throws DefinitionError. */
export function defineMigration(spec: MigrationSpec): Migration {
  const hint = 'fix the definition (see "Migrate your own database" in README.md for every option)';
  const problems: string[] = [];
  if (!nameSchema.safeParse(spec.name).success)
    problems.push(`name: ${JSON.stringify(spec.name)} is not a valid name`);
  let rules: RuleSet;
  try {
    rules = defineRuleSet(
      spec.capture.tables,
      spec.capture.knownEvents ? { knownEvents: spec.capture.knownEvents } : {},
    );
  } catch (err) {
    fail([`capture: ${errorMessage(err)}`], hint);
  }
  const ruleOf = (table: string) => rules.ruleFor('*', table) ?? rules.rules.find((r) => r.table === table);
  const removals = new Map(rules.rules.map((r) => [r.table, r.onDelete]));
  const handledEvents = new Set(
    rules.rules.flatMap((r) => [
      r.onCreate,
      r.onSnapshot,
      r.otherwise,
      r.onDelete,
      ...r.onUpdate.map((c) => c.emit),
    ]),
  );

  const viewPlans = new Map<string, ViewPlan>();
  const names = new Set<string>();
  spec.readModels.forEach((model, i) => {
    const where = `readModels[${i}] (${model.name})`;
    if (!nameSchema.safeParse(model.name).success)
      problems.push(`${where}.name: not a valid read-model name`);
    if (names.has(model.name)) problems.push(`${where}.name: two read models are named ${model.name}`);
    names.add(model.name);
    if (model.kind === 'view') {
      try {
        viewPlans.set(
          model.name,
          compileView(
            model as ViewDefinition,
            (table) => ruleOf(table)?.keyFields,
            rules.rules.map((r) => r.table),
          ),
        );
      } catch (err) {
        problems.push(`${where}: ${errorMessage(err)}`);
      }
    } else if (model.kind === 'projection') {
      for (const type of model.canHandle) {
        if (!handledEvents.has(type))
          problems.push(`${where}.canHandle: no capture rule emits ${JSON.stringify(type)}`);
      }
    } else {
      problems.push(`${where}: not a read model; build it with defineView({...}) or defineProjection({...})`);
    }
  });
  problems.push(...checkAnalytics(spec.analytics ?? [], names, (table) => ruleOf(table)?.keyFields));
  const { entries, problems: endpointProblems } = checkEndpoints(spec);
  problems.push(...endpointProblems);
  const sensitiveColumns = new Map<string, readonly string[]>();
  for (const [table, columns] of Object.entries(spec.capture.sensitive ?? {})) {
    if (ruleOf(table) === undefined)
      problems.push(
        `capture.sensitive.${table}: not a captured table (captured: ${rules.rules.map((r) => r.table).join(', ')})`,
      );
    const parsed = z.array(z.string().min(1)).min(1).safeParse(columns);
    if (!parsed.success) problems.push(`capture.sensitive.${table}: expected a list of column names`);
    else sensitiveColumns.set(table, parsed.data);
  }
  if (problems.length > 0) fail(problems, hint);

  return {
    kind: 'migration',
    name: spec.name,
    rules,
    tables: rules.rules.map((r) => r.table),
    readModels: spec.readModels,
    analytics: spec.analytics ?? [],
    viewPlans,
    endpoints: entries,
    domains: Object.keys(spec.domains),
    sample: spec.sample,
    sensitiveFields: new Map(
      entries.flatMap((e) =>
        e.definition.sensitive !== undefined && e.definition.sensitive.length > 0
          ? [[e.key, e.definition.sensitive] as const]
          : [],
      ),
    ),
    sensitiveColumns,
    ruleOf,
    toDomainEvent: (event) => ({ ...event, removed: removals.get(event.metadata.table) === event.type }),
  };
}

/** True for a value defineMigration returned (e.g. a definition module's default export). */
export function isMigration(value: unknown): value is Migration {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'migration';
}

/** The flag keys of a domain's endpoints, or null when the definition has no such domain. */
export function endpointsOfDomain(migration: Migration, domain: string): string[] | null {
  if (!migration.domains.includes(domain)) return null;
  return migration.endpoints.filter((e) => e.domain === domain).map((e) => e.key);
}
