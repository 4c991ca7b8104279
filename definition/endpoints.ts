import type { z } from 'zod';
import type { CompareRulesSpec } from '../lib/compare-rules.js';
import type { Analytics } from './analytics.js';
import type { ReadModels } from './read-models.js';

/**
 * Endpoints of a migration, grouped by domain: each one a read the legacy monolith serves with
 * a JOIN query and the read models can answer too. The shadow API serves it from the side its
 * flag (`<domain>.<endpoint>`, else `<domain>`, else the default) names and compares the other.
 */

export type LegacyDialect = 'mysql' | 'postgres';
export type LegacyRow = Record<string, unknown>;

/** SQL text with named parameters (`:accountId`), one text for every dialect or one per dialect. */
export type LegacySql = string | Readonly<Partial<Record<LegacyDialect, string>>>;

/**
 * The legacy database as an endpoint's legacy query sees it. Values come back as the database
 * formats them: DECIMAL/NUMERIC and date-times as text, integers as numbers (BIGINT beyond
 * 2^53 as text), so they compare with what change-data-capture delivers.
 */
export interface LegacyDb {
  readonly dialect: LegacyDialect;
  /** Runs one statement; `:name` placeholders are bound from `params` (never interpolated). */
  query(sql: LegacySql, params?: Readonly<Record<string, unknown>>): Promise<LegacyRow[]>;
  /** Runs `fn` in one read-only transaction with a consistent snapshot, so several statements agree. */
  snapshot<T>(fn: (db: Pick<LegacyDb, 'query' | 'dialect'>) => Promise<T>): Promise<T>;
}

export interface LegacyContext<P> {
  params: P;
  db: LegacyDb;
}

export interface ReadModelContext<P> {
  params: P;
  readModels: ReadModels;
  /** The analytics read models this process serves (empty where none is open, e.g. the distributed read side). */
  analytics: Analytics;
}

export interface EndpointSpec<P extends Record<string, unknown>> {
  /** Fastify route, e.g. '/accounts/:accountId/summary'. */
  route: string;
  /** Path parameters and query string, merged; bad input is a 400 with the issues. */
  params: z.ZodType<P>;
  /**
   * The legacy answer: SQL text (the rows are the answer unless `map` shapes them), or a
   * function over the legacy database.
   */
  legacy:
    | { sql: LegacySql; map?: (rows: LegacyRow[], params: P) => unknown }
    | ((ctx: LegacyContext<P>) => Promise<unknown>);
  /** The same answer from the read models. */
  readModel(ctx: ReadModelContext<P>): Promise<unknown>;
  /** Applied to both answers before they are compared (e.g. to drop a field only one side has). */
  normalize?(answer: unknown): unknown;
  /**
   * Expected differences, e.g. `{ ignore: ['items.*.updatedAt'], tolerance: { 'balance.available': 0.005 } }`:
   * they do not make a comparison a mismatch and are counted apart in the report.
   */
  compare?: CompareRulesSpec;
  /**
   * Fields of the answer holding personal data, e.g. ['owner.email', 'items[*].description']:
   * masked (`***` + a short hash) in stored comparison samples, never in the comparison itself.
   */
  sensitive?: readonly string[];
  /** Key of the sticky canary slice (default: the first route parameter's value). */
  canaryKey?(params: P): string;
  /**
   * Every parameter set reconciliation should check (e.g. every account id): SQL on the legacy
   * database whose columns are parameter names, or a function. Without it the endpoint is not
   * reconciled.
   */
  reconcile?: ReconcileSource | ((db: LegacyDb) => Promise<P[]>);
}

export interface ReconcileSource {
  /** The legacy database's parameter sets: its columns are parameter names. */
  sql: LegacySql;
  /**
   * Optional: the parameter sets the read models hold (e.g. a key per document, see
   * `documentsInOrder`), compared too. A key only the read model has is a document whose rows
   * the legacy database removed without a captured change (MariaDB/MySQL's ON DELETE CASCADE),
   * which a listing from the legacy database alone never asks about. Each set is parsed by the
   * endpoint's `params`.
   */
  readModel?: (readModels: ReadModels) => Promise<ReadonlyArray<Readonly<Record<string, unknown>>>>;
}

export type EndpointParams = Record<string, unknown>;

/**
 * Query parameter of every endpoint the API reads itself (time travel: the answer as of a past
 * time), so no endpoint may declare it. Not `asOf`: endpoints have their own `asOf` (the bank's
 * reference date of month-to-date figures), and a parameter whose meaning changed with the
 * endpoint would turn a client's URL into another question when a definition adds one.
 */
export const TIME_TRAVEL_PARAM = '_asOf';

/**
 * An endpoint with its parameter type erased, so endpoints of different shapes fit in one
 * domain; `defineEndpoint` checks the typed spec first. A null answer is a 404; anything else
 * is sent as JSON.
 */
export interface EndpointDefinition extends EndpointSpec<EndpointParams> {
  readonly kind: 'endpoint';
}

export function defineEndpoint<P extends EndpointParams>(spec: EndpointSpec<P>): EndpointDefinition {
  // Sound: the runtime only ever calls the functions with what `spec.params` parsed.
  return { kind: 'endpoint', ...(spec as unknown as EndpointSpec<EndpointParams>) };
}

export interface DomainDefinition {
  endpoints: Readonly<Record<string, EndpointDefinition>>;
}
