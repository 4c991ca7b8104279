import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import { Registry } from 'prom-client';
import { z } from 'zod';
import { inlineDiffer, WorkerDiffer } from '../compare/differ.js';
import type { ComparisonRecorder, FreshnessPort } from '../compare/ports.js';
import { buildReport } from '../compare/report.js';
import { REPORT_CONTENT_TYPES, REPORT_FORMATS, renderReport } from '../compare/report-formats.js';
import { ShadowComparator } from '../compare/shadow-compare.js';
import type { ShadowQueue } from '../compare/shadow-queue.js';
import type { Analytics } from '../definition/analytics.js';
import { legacyAnswer, readModelReply, requestKeyOf, subjectFunction } from '../definition/endpoint-calls.js';
import type { EndpointDefinition, EndpointParams, LegacyDb } from '../definition/endpoints.js';
import { JsonText } from '../definition/json-text.js';
import { endpointsOfDomain, type Migration } from '../definition/migration.js';
import { quickParams } from '../definition/params.js';
import type { ReadModels } from '../definition/read-models.js';
import type { CompareRules } from '../lib/compare-rules.js';
import { AdapterError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { StateUnavailableError } from '../lib/shared-state.js';
import type { TimeTravelPort } from '../projectors/past-states.js';
import type { RolloutController } from '../rollout/controller.js';
import {
  ACTOR_HEADER,
  type AdminAuth,
  AdminForbiddenError,
  actorOf,
  installAdminAuth,
  isAdminRequest,
  REASON_HEADER,
  reasonOf,
} from './admin-auth.js';
import { type AuditLog, AuditUnavailableError, auditedChange } from './audit-log.js';
import { registerDashboardRoutes } from './dashboard-routes.js';
import { type FlagStore, FlagsInvalidError } from './flag-store.js';
import {
  endpointFlagPatchSchema,
  endpointKeySchema,
  type ForcedMode,
  flagDocumentSchema,
  forcedModeSchema,
  type ServeSide,
} from './flags.js';
import { type AdminHealth, type HealthPort, registerHealthRoutes } from './health.js';
import { describeIssues, type IssueSummary, summarizeIssues } from './issues.js';
import { createShadowMetrics, metricSideOf } from './metrics.js';
import { registerDocs } from './openapi.js';
import { type ReadModelVersionsPort, registerReadModelRoutes } from './read-model-routes.js';
import { LegacyUnavailableError, ReadPath, type ReadRequest, type Served } from './read-path.js';
import { lazyRequestLogger } from './request-logger.js';
import { registerRolloutRoutes } from './rollout-routes.js';
import {
  answerAsOf,
  splitAsOf,
  TimeTravelError,
  timeTravelHeaderSchema,
  timeTravelQuerySchema,
} from './time-travel.js';

/** Flag keys a migration's endpoints answer to: each domain and each `<domain>.<endpoint>`. */
export function flagKeysOf(migration: Migration): string[] {
  return [...migration.domains, ...migration.endpoints.map((e) => e.key)];
}

export interface ShadowServerOptions {
  /** The endpoints served, grouped by domain, from the user's definition. */
  migration: Migration;
  legacy: LegacyDb;
  readModels: ReadModels;
  /** Analytics read models the endpoints query (none when omitted). */
  analytics?: Analytics;
  flags: FlagStore;
  recorder: ComparisonRecorder;
  queue: ShadowQueue;
  logger: Logger;
  freshness?: FreshnessPort;
  /** Registry /metrics serves; a fresh one when omitted. One server per registry. */
  metrics?: Registry;
  /** What /metrics answers instead of `metrics` alone (api.workers: the workers' registries summed in). */
  exposition?: { contentType: string; metrics(): Promise<string> };
  /**
   * Re-check policy of differing comparisons (see ShadowComparator), and whether answers are
   * diffed on a worker thread (default true; false diffs on the serving thread).
   */
  compare?: { recheckDelayMs?: number; maxRechecks?: number; offThread?: boolean };
  /** The pipeline's components and lag, for /health/ready; always ready without it. */
  health?: HealthPort;
  /** A read-model answer slower than this is served by legacy instead (api.readModelTimeoutMs). */
  readModelTimeoutMs?: number;
  /** Tokens of /admin/* and /metrics; `{ tokens: [] }` leaves them open (see checkAdminExposure). */
  admin: AdminAuth;
  /** Every flag change made through the API is recorded here (GET /admin/audit). */
  audit: AuditLog;
  /** Per-domain rollout with gates (/admin/rollout); absent = flags only. */
  rollout?: RolloutController;
  /** Past states for `?_asOf=` (the embedded event store); absent: such requests are a 501. */
  timeTravel?: TimeTravelPort;
  /** Versions of the embedded read models (/admin/read-models); absent when this process owns none. */
  readModelVersions?: ReadModelVersionsPort;
}

interface ErrorBody {
  error: string;
  message: string;
  issues?: IssueSummary[];
  hint?: string;
}

class BadRequestError extends AdapterError {
  constructor(
    what: string,
    readonly issues: IssueSummary[],
  ) {
    super('BAD_REQUEST', `invalid ${what}: ${describeIssues(issues)}`);
  }
}

function parse<S extends z.ZodType>(schema: S, input: unknown, what: string): z.infer<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw new BadRequestError(what, summarizeIssues(result.error));
  return result.data;
}

const auditQuerySchema = z.object({
  since: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

const reportQuerySchema = z.object({
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  domain: z.string().min(1).optional(),
  format: z.enum(REPORT_FORMATS).default('json'),
  top: z.coerce.number().int().min(1).max(100).default(10),
  samples: z.coerce.number().int().min(0).max(50).default(3),
});

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * Request header with which an admin (a tester) forces the mode of one read: `legacy`, `shadow`
 * or `new`, whatever the flags say. The response's x-served-by and x-flag-mode say what it did.
 */
export const MODE_HEADER = 'x-cqrs-mode';
const modeHeaderSchema = z.object({
  [MODE_HEADER]: forcedModeSchema
    .optional()
    .describe('force this mode for this request instead of the flags (needs the admin token)'),
});

function servedByHeader(side: ServeSide): string {
  return side === 'legacy' ? 'legacy' : 'read-model';
}

function rejectUnknownKeys(known: readonly string[], keys: Iterable<string>): void {
  const unknown = [...keys].filter((k) => !known.includes(k));
  if (unknown.length === 0) return;
  throw new BadRequestError(
    'flag keys',
    unknown.map((k) => ({ path: k, message: `unknown endpoint key; known: ${known.join(', ')}` })),
  );
}

/**
 * The shadow read API: serves the definition's endpoints from legacy or the read models as the
 * flags say, compares the other side off the request path, and exposes flags, the comparison
 * report, health and metrics. If the read model throws while serving, legacy answers (header
 * `x-fallback: read-model-error`) and an `error` comparison is recorded: during a migration
 * availability comes before serving from the new side.
 *
 * Everything on one app (the api.admin.port 'public' layout; buildServers splits it).
 * The caller owns the queue and the recorder: on shutdown close the app, then
 * `queue.close()` (lets accepted comparisons finish), then `recorder.close()`.
 */
export function buildServer(options: ShadowServerOptions): FastifyInstance {
  return buildServers(options, { separateAdmin: false }).api;
}

/**
 * Where the admin surface goes: an app of its own, the public app, or another process (an API
 * worker of api.workers, whose primary serves it): then no admin route is built here.
 */
export interface ServerLayout {
  separateAdmin: boolean;
  adminElsewhere?: boolean;
}

/** The apps of one shadow API; the caller listens on them and closes both. */
export interface ShadowServers {
  /** The reads, GET /flags, /health and /docs; also the admin surface when `admin` is null. */
  api: FastifyInstance;
  /** /admin/* (dashboard included), /metrics, /health and /docs of the admin API; null = on `api`. */
  admin: FastifyInstance | null;
}

/**
 * buildServer with the admin surface on an app of its own (`separateAdmin`), which the caller
 * listens on apart from the reads: admin paths then answer 404 on the public app. Close the
 * admin app before the public one (the public one's close ends the shared differ).
 */
export function buildServers(options: ShadowServerOptions, layout: ServerLayout): ShadowServers {
  const logger = options.logger.child({ component: 'shadow-api' });
  const flagKeys = flagKeysOf(options.migration);
  const registry = options.metrics ?? new Registry();
  const metrics = createShadowMetrics(registry, options.queue);
  const { offThread = true, ...recheck } = options.compare ?? {};
  const differ = offThread ? new WorkerDiffer({ logger }) : inlineDiffer;
  const comparator = new ShadowComparator({
    recorder: options.recorder,
    ...(options.freshness ? { freshness: options.freshness } : {}),
    ...recheck,
    differ,
    logger,
    onRecorded: (record) => {
      metrics.comparisons.inc({ endpoint: record.endpoint, outcome: record.outcome });
      const shadowSide = record.servedBy === 'legacy' ? 'readModel' : 'legacy';
      const ms = shadowSide === 'legacy' ? record.legacyMs : record.readModelMs;
      if (ms !== null && record.outcome !== 'error') {
        metrics.queryDuration.observe(
          { endpoint: record.endpoint, side: metricSideOf(shadowSide), role: 'shadow' },
          ms / 1000,
        );
      }
    },
  });
  const readPath = new ReadPath({
    flags: options.flags,
    queue: options.queue,
    comparator,
    metrics,
    logger,
    ...(options.readModelTimeoutMs === undefined ? {} : { readModelTimeoutMs: options.readModelTimeoutMs }),
  });
  const app = newApp(logger);
  const adminApp = layout.separateAdmin && !layout.adminElsewhere ? newApp(logger) : app;
  // Comparisons still queued after this are diffed on this thread (the queue closes later).
  app.addHook('onClose', () => differ.close());
  if (!layout.adminElsewhere) installAdminAuth(adminApp, options.admin, logger);
  function sendServed(reply: FastifyReply, served: Served<unknown>): FastifyReply {
    reply.header('x-served-by', servedByHeader(served.servedBy)).header('x-flag-mode', served.mode);
    if (served.fellBack) reply.header('x-fallback', 'read-model-error');
    return reply;
  }

  /** The mode an admin forces with x-cqrs-mode: 400 for an unknown one, 403 without the admin token. */
  function forcedModeOf(request: FastifyRequest): ForcedMode | undefined {
    // Most reads force nothing: no header to validate.
    if (request.headers[MODE_HEADER] === undefined) return undefined;
    const header = { [MODE_HEADER]: request.headers[MODE_HEADER] };
    const forced = parse(modeHeaderSchema, header, 'request header')[MODE_HEADER];
    if (forced !== undefined && !isAdminRequest(request, options.admin))
      throw new AdminForbiddenError(
        `${MODE_HEADER} needs "Authorization: Bearer <token>" with an admin token: only an admin may choose who answers a read`,
      );
    return forced;
  }

  const sides: Sides = {
    legacy: options.legacy,
    readModels: options.readModels,
    analytics: options.analytics,
  };
  const pastContext = {
    migration: options.migration,
    timeTravel: options.timeTravel,
    live: options.readModels,
    analytics: options.analytics,
  };
  /** What the public app answers: the definition's reads, the open flag document, health. */
  const publicRoutes = async (api: FastifyInstance) => {
    // Each endpoint of the definition is a route; its flag key is `<domain>.<endpoint>`. What
    // does not depend on the request is built here, once per route.
    for (const entry of options.migration.endpoints) {
      const endpoint = entry.definition;
      const what = `parameters of ${entry.key}`;
      const subjectOf = subjectFunction(endpoint);
      const quick = quickParams(endpoint.params);
      const readOptions = {
        normalize: endpoint.normalize,
        compareRules: entry.compareRules,
      };
      const docs = {
        summary: `${entry.key}: a read answered by the side its flag names`,
        tag: entry.domain,
        input: endpoint.params,
        query: timeTravelQuerySchema,
        headers: modeHeaderSchema.extend(timeTravelHeaderSchema.shape),
      };
      api.get(endpoint.route, { config: { docs } }, async (request, reply) => {
        const forcedMode = forcedModeOf(request);
        const { asOf, query } = splitAsOf(request.query as Record<string, unknown>, request.headers);
        const path = request.params as Record<string, unknown>;
        const input = { ...query, ...path };
        const params: EndpointParams = quick?.(input) ?? parse(endpoint.params, input, what);
        if (asOf !== undefined) {
          const past = await answerAsOf(pastContext, endpoint, params, asOf);
          return sendAnswer(reply.headers(past.headers), past.value, request.url);
        }
        const served = await readPath.serve(
          new RouteRead(entry.key, subjectOf(params), params, endpoint, sides, readOptions, forcedMode),
        );
        sendServed(reply, served);
        return sendAnswer(reply, served.value, request.url);
      });
    }

    // Read-only and without the admin token: applications route with it (the OpenFeature
    // provider); it says which side serves, nothing about the data.
    api.get(
      '/flags',
      {
        config: {
          docs: { summary: 'The flag document, read-only and open (for routing clients)', tag: 'flags' },
        },
      },
      async () => options.flags.get(),
    );
    registerHealthRoutes(api, { health: options.health, queue: options.queue, admin: adminHealth });
  };

  /** What only admins use: flags, audit, report, rollout, the dashboard, metrics. */
  const adminRoutes = async (api: FastifyInstance) => {
    api.get('/admin/flags', { config: { docs: { summary: 'The flag document', tag: 'flags' } } }, async () =>
      options.flags.get(),
    );

    const flagChange = z.object({
      [REASON_HEADER]: z.string().optional(),
      [ACTOR_HEADER]: z.string().optional(),
    });
    const putDocs = {
      summary: 'Replace the flag document',
      tag: 'flags',
      body: flagDocumentSchema,
      headers: flagChange,
    };
    api.put('/admin/flags', { config: { docs: putDocs } }, async (request) => {
      const document = parse(flagDocumentSchema, request.body, 'flag document');
      rejectUnknownKeys(flagKeys, Object.keys(document.endpoints));
      return auditedChange(
        options.audit,
        {
          actor: actorOf(request),
          action: 'flags.set',
          target: null,
          before: options.flags.get(),
          reason: reasonOf(request),
        },
        () => options.flags.set(document),
        (previous) => options.flags.set(previous),
      );
    });

    const patchParams = z.object({ endpointKey: endpointKeySchema });
    const patchDocs = {
      summary: "Change one domain's or endpoint's flag",
      tag: 'flags',
      input: patchParams,
      body: endpointFlagPatchSchema,
      headers: flagChange,
    };
    api.patch('/admin/flags/:endpointKey', { config: { docs: patchDocs } }, async (request) => {
      const { endpointKey } = parse(patchParams, request.params, 'endpoint key');
      rejectUnknownKeys(flagKeys, [endpointKey]);
      return auditedChange(
        options.audit,
        {
          actor: actorOf(request),
          action: 'flags.patch',
          target: endpointKey,
          before: options.flags.get(),
          reason: reasonOf(request),
        },
        () => options.flags.patch(endpointKey, request.body),
        (previous) => options.flags.set(previous),
      );
    });

    const auditDocs = { summary: 'Flag changes, newest first', tag: 'audit', input: auditQuerySchema };
    api.get('/admin/audit', { config: { docs: auditDocs } }, async (request) => {
      const q = parse(auditQuerySchema, request.query, 'audit query');
      return options.audit.list({
        ...(q.since !== undefined ? { since: new Date(q.since) } : {}),
        limit: q.limit,
      });
    });

    const reportDocs = { summary: 'Comparison report', tag: 'report', input: reportQuerySchema };
    api.get('/admin/report', { config: { docs: reportDocs } }, async (request, reply) => {
      const q = parse(reportQuerySchema, request.query, 'report query');
      const endpoints = q.domain === undefined ? undefined : endpointsOfDomain(options.migration, q.domain);
      if (endpoints === null)
        throw new BadRequestError('report query', [
          {
            path: 'domain',
            message: `no domain "${q.domain}" (domains: ${options.migration.domains.join(', ')})`,
          },
        ]);
      const stats = options.recorder.stats({
        ...(q.since !== undefined ? { since: new Date(q.since) } : {}),
        ...(q.until !== undefined ? { until: new Date(q.until) } : {}),
        ...(endpoints === undefined ? {} : { endpoints }),
        topPaths: q.top,
        samples: q.samples,
      });
      const report = buildReport(stats, options.queue.stats(), q.domain ?? null);
      if (q.format === 'json') return report;
      return reply.type(REPORT_CONTENT_TYPES[q.format]).send(renderReport(report, q.format));
    });

    if (options.rollout) registerRolloutRoutes(api, options.rollout, parse);
    if (options.readModelVersions) registerReadModelRoutes(api, options.readModelVersions, parse);
    registerDashboardRoutes(
      api,
      {
        migration: options.migration,
        flags: options.flags,
        recorder: options.recorder,
        audit: options.audit,
        rollout: options.rollout,
        health: options.health,
        queue: options.queue,
      },
      parse,
    );

    const metricsDocs = { summary: 'Prometheus metrics', tag: 'metrics' };
    const exposition = options.exposition ?? registry;
    api.get('/metrics', { config: { docs: metricsDocs } }, async (_request, reply) => {
      reply.type(exposition.contentType);
      return exposition.metrics();
    });
  };

  const adminHealth = (): AdminHealth =>
    layout.adminElsewhere
      ? { listener: 'primary-process' }
      : layout.separateAdmin
        ? { listener: 'separate', listening: adminApp.server.listening, port: portOf(adminApp) }
        : { listener: 'public-port' };
  const docs = { name: options.migration.name, adminTokens: options.admin.tokens.length > 0, logger };
  // The routes go in plugins registered after the docs, so the document sees each as it is added.
  registerDocs(app, docs);
  if (layout.adminElsewhere) {
    app.register(publicRoutes);
    return { api: app, admin: null };
  }
  if (adminApp === app) {
    app.register(async (api) => {
      await publicRoutes(api);
      await adminRoutes(api);
    });
    return { api: app, admin: null };
  }
  app.register(publicRoutes);
  registerDocs(adminApp, docs);
  adminApp.register(async (api) => {
    await adminRoutes(api);
    registerHealthRoutes(api, { health: options.health, queue: options.queue, admin: adminHealth });
  });
  return { api: app, admin: adminApp };
}

function newApp(logger: Logger): FastifyInstance {
  // Typed as Fastify's base logger so the instance has Fastify's default logger type.
  const fastifyLogger: FastifyBaseLogger = logger;
  // Per-request log lines would dominate the log at API rates; failures are logged below.
  const app = Fastify({
    loggerInstance: fastifyLogger,
    logController: new LogController({ disableRequestLogging: true }),
    // Each request's reqId child is made only if something logs through it.
    childLoggerFactory: lazyRequestLogger,
    // The API starts while the source appends the initial snapshot on this thread; on a busy
    // machine the docs plugins' file reads then outlast Fastify's 10 s default and `run` died.
    pluginTimeout: 120_000,
  });
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: 'NOT_FOUND', message: `no route ${request.method} ${request.url}` });
  });
  app.setErrorHandler((err, request, reply) => {
    const { status, body } = errorResponse(err);
    // A 501 of time travel is a refusal, not a failure.
    if (status >= 500 && !(err instanceof TimeTravelError))
      logger.error({ err, url: request.url }, 'request failed');
    reply.code(status).send(body);
  });
  return app;
}

interface Sides {
  legacy: LegacyDb;
  readModels: ReadModels;
  analytics: Analytics | undefined;
}

/**
 * One read as the read path takes it, with one shape for every request: an object literal with
 * a getter and spread options took a slow path on every read.
 */
class RouteRead implements ReadRequest<unknown> {
  readonly normalize: ((answer: unknown) => unknown) | undefined;
  readonly compareRules: CompareRules | undefined;

  constructor(
    readonly endpoint: string,
    readonly subject: string,
    private readonly params: EndpointParams,
    private readonly definition: EndpointDefinition,
    private readonly sides: Sides,
    options: {
      normalize: ((answer: unknown) => unknown) | undefined;
      compareRules: CompareRules | undefined;
    },
    readonly forcedMode: ForcedMode | undefined,
  ) {
    this.normalize = options.normalize;
    this.compareRules = options.compareRules;
  }

  /** Only compared requests and fallbacks read it. */
  get requestKey(): string {
    return requestKeyOf(this.params);
  }

  query(side: ServeSide): Promise<unknown> {
    return side === 'legacy'
      ? legacyAnswer(this.definition, this.params, this.sides.legacy)
      : readModelReply(this.definition, this.params, this.sides.readModels, this.sides.analytics);
  }
}

/** An endpoint's answer: a null one is a 404. */
function sendAnswer(reply: FastifyReply, value: unknown, url: string): FastifyReply {
  if (value === null || value === undefined) {
    return reply.code(404).send({ error: 'NOT_FOUND', message: `nothing at ${url}` });
  }
  // Text already serialised (a stored document, or an answer also handed to the comparison).
  if (value instanceof JsonText) return reply.type(JSON_TYPE).send(value.json);
  return reply.send(value);
}

function portOf(app: FastifyInstance): number | null {
  const address = app.server.address();
  return typeof address === 'object' && address !== null ? address.port : null;
}

function errorResponse(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof BadRequestError || err instanceof FlagsInvalidError) {
    return { status: 400, body: { error: err.code, message: err.message, issues: err.issues } };
  }
  if (err instanceof TimeTravelError) {
    return {
      status: err.status,
      body: { error: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) },
    };
  }
  if (
    err instanceof LegacyUnavailableError ||
    err instanceof AuditUnavailableError ||
    err instanceof StateUnavailableError
  ) {
    return { status: 503, body: { error: err.code, message: err.message } };
  }
  // Fastify's own client errors (malformed JSON, unsupported media type, body too large).
  const status = (err as { statusCode?: unknown }).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code = (err as { code?: unknown }).code;
    const message = err instanceof Error ? err.message : 'bad request';
    return { status, body: { error: typeof code === 'string' ? code : 'BAD_REQUEST', message } };
  }
  return { status: 500, body: { error: 'INTERNAL', message: 'internal error; see the server log' } };
}
