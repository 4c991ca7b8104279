import { createServer } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { FreshnessPort } from '../compare/ports.js';
import { SqliteComparisonRecorder } from '../compare/recorder.js';
import { ShadowQueue } from '../compare/shadow-queue.js';
import type { Analytics } from '../definition/analytics.js';
import type { LegacyDb } from '../definition/endpoints.js';
import type { Migration } from '../definition/migration.js';
import type { ReadModels } from '../definition/read-models.js';
import { apiWorkerCount, type Config, dataPath } from '../lib/config.js';
import { ConfigError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { TimeTravelPort } from '../projectors/past-states.js';
import { RolloutController } from '../rollout/controller.js';
import { checkAdminExposure, loadAdminAuth } from '../shadow-api/admin-auth.js';
import { type AdminPlacement, adminPlacementOf } from '../shadow-api/admin-listener.js';
import { SqliteAuditLog } from '../shadow-api/audit-log.js';
import type { FlagStore } from '../shadow-api/flag-store.js';
import type { HealthPort } from '../shadow-api/health.js';
import type { ReadModelVersionsPort } from '../shadow-api/read-model-routes.js';
import { buildServers } from '../shadow-api/server.js';
import { type ApiWorkers, startApiWorkers } from './api-workers.js';
import { openRunState } from './run-state.js';

/** What the API reads from the new side: the embedded pipeline, or the server stores of the distributed mode. */
export interface ReadSide {
  readModels: ReadModels;
  /** Analytics read models, when this process has them open (the embedded pipeline). */
  analytics?: Analytics;
  freshness: FreshnessPort;
  /** Supervised components and lag, when the pipeline runs in this process. */
  health?: HealthPort;
  /** Past read-model states for `?_asOf=`, where an event store is at hand (the embedded pipeline). */
  timeTravel?: TimeTravelPort;
  /** Versions of the embedded read models (/admin/read-models), when this process owns them. */
  readModelVersions?: ReadModelVersionsPort;
}

export interface RunningApi {
  app: FastifyInstance;
  url: string;
  /** Where /admin/*, the dashboard and /metrics answer: the admin listener, or `url` (api.admin.port 'public'). */
  adminUrl: string;
  flags: FlagStore;
  recorder: SqliteComparisonRecorder;
  queue: ShadowQueue;
  rollout: RolloutController;
  /** Process ids of the API workers serving `url` (api.workers > 1); empty when this process serves it. */
  workerPids(): number[];
  /** Settles when the API workers keep dying (api.workers > 1); never otherwise. */
  failed: Promise<Error>;
  close(): Promise<void>;
}

/**
 * Starts the shadow API serving the migration's endpoints over the legacy database and the read
 * side. With api.workers > 1 this process serves the admin listener only, and forks the API
 * workers that serve the public one (see api-workers.ts).
 */
export async function startApi(
  config: Config,
  migration: Migration,
  pipeline: ReadSide,
  legacy: LegacyDb,
  logger: Logger,
  registry: Registry,
): Promise<RunningApi> {
  const admin = loadAdminAuth(config.api);
  const placement = adminPlacementOf(config.api);
  const workerCount = apiWorkerCount(config);
  if (workerCount > 1 && !placement.separate) {
    throw new ConfigError(
      `api.workers=${config.api.workers} needs the admin surface on a listener of its own`,
      {
        hint: 'the admin API (flags, rollout, /metrics) is served by the primary process alone: set api.admin.port (CQRS_ADMIN_PORT) to a port, not "public", or api.workers=1',
      },
    );
  }
  checkAdminExposure(
    { host: placement.host, allowUnauthenticatedAdmin: config.api.allowUnauthenticatedAdmin },
    admin,
    logger,
  );
  const state = await openRunState(config, logger);
  const { flags } = state;
  const recorder = new SqliteComparisonRecorder({
    path: dataPath(config, 'compare.db'),
    sensitive: migration.sensitiveFields,
    logger,
  });
  const audit = new SqliteAuditLog(dataPath(config, 'audit.db'), logger);
  const rollout = new RolloutController({
    migration,
    flags,
    audit,
    comparisons: recorder,
    lagSeconds: () => pipeline.health?.lagSeconds() ?? null,
    plan: config.rollout.plan,
    gates: config.rollout.gates,
    state: state.rollout,
    schedule: config.rollout.schedule,
    checkIntervalMs: config.rollout.checkIntervalMs,
    logger,
    registry,
  });
  const queue = new ShadowQueue({
    concurrency: config.compare.concurrency,
    maxSize: config.compare.queueSize,
    logger,
  });
  let workers: ApiWorkers | null = null;
  const servers = buildServers(
    {
      migration,
      legacy,
      readModels: pipeline.readModels,
      ...(pipeline.analytics ? { analytics: pipeline.analytics } : {}),
      flags,
      recorder,
      queue,
      logger,
      freshness: pipeline.freshness,
      ...(pipeline.health ? { health: pipeline.health } : {}),
      ...(pipeline.timeTravel ? { timeTravel: pipeline.timeTravel } : {}),
      metrics: registry,
      // Bound late: the workers start once the admin listener is up.
      ...(workerCount > 1
        ? {
            exposition: {
              contentType: registry.contentType,
              metrics: () => workers?.exposition.metrics() ?? registry.metrics(),
            },
          }
        : {}),
      compare: { recheckDelayMs: config.compare.recheckDelayMs, maxRechecks: config.compare.maxRechecks },
      readModelTimeoutMs: config.api.readModelTimeoutMs,
      admin,
      audit,
      rollout,
      ...(pipeline.readModelVersions ? { readModelVersions: pipeline.readModelVersions } : {}),
    },
    { separateAdmin: placement.separate },
  );
  const { api: app } = servers;
  const closeAll = async () => {
    await workers?.stop();
    await servers.admin?.close();
    await app.close();
    await queue.close();
    recorder.close();
    audit.close();
    await state.close();
  };
  let address: string;
  let adminUrl: string;
  try {
    // The admin listener first: a taken admin port stops the start before any read is served.
    const adminAddress = servers.admin === null ? null : await listenAdmin(servers.admin, placement);
    if (workerCount > 1) {
      workers = startApiWorkers({
        count: workerCount,
        health: pipeline.health,
        analytics: pipeline.analytics,
        flags,
        registry,
        logger,
      });
      address = await workers.ready;
    } else address = await listenPublic(app, config, logger);
    adminUrl = adminAddress ?? address;
  } catch (err) {
    await closeAll();
    throw err;
  }
  logger.info({ url: address, adminUrl, workers: workerCount }, 'shadow API listening');
  rollout.start();
  const unwatchFlags = state.watch();
  return {
    app,
    url: address,
    adminUrl,
    flags,
    recorder,
    queue,
    rollout,
    workerPids: () => workers?.pids() ?? [],
    failed: workers?.failed ?? new Promise<Error>(() => undefined),
    async close() {
      unwatchFlags();
      await rollout.stop();
      await closeAll();
    },
  };
}

/** Listens on api.port, or on a free port when it is taken (API workers share what they get). */
export async function listenPublic(app: FastifyInstance, config: Config, logger: Logger): Promise<string> {
  try {
    return await app.listen({ host: config.api.host, port: config.api.port });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    logger.warn({ port: config.api.port }, 'port in use; listening on a free port instead');
    return app.listen({ host: config.api.host, port: 0 });
  }
}

/**
 * Unlike the public port, a taken admin port is not swapped for a free one: the CLI's clients
 * (`flags`, `rollout`) find the admin listener at its configured address.
 */
async function listenAdmin(app: FastifyInstance, placement: AdminPlacement): Promise<string> {
  try {
    return await app.listen({ host: placement.host, port: placement.port });
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw cause;
    throw new ConfigError(`the admin port ${placement.host}:${placement.port} is already in use`, {
      cause,
      hint: 'stop the process holding it (another `run` or `serve`?), or set api.admin.port (CQRS_ADMIN_PORT) to a free port, 0 for any, or "public" to serve admin on api.port',
    });
  }
}

/** /metrics on api.metricsPort for processes without the API (translator, projectors); a no-op when 0. */
export async function serveMetrics(
  config: Config,
  registry: Registry,
  logger: Logger,
): Promise<{ close(): Promise<void> }> {
  const port = config.api.metricsPort;
  if (port === 0) return { close: async () => undefined };
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (err: unknown) => {
        logger.error({ err }, 'metrics collection failed');
        res.writeHead(500).end();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, config.api.host, resolve);
  });
  logger.info({ port }, 'metrics on /metrics');
  return { close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
