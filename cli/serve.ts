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
import { type Config, dataPath } from '../lib/config.js';
import type { Logger } from '../lib/logger.js';
import { RolloutController } from '../rollout/controller.js';
import { checkAdminExposure, loadAdminAuth } from '../shadow-api/admin-auth.js';
import { SqliteAuditLog } from '../shadow-api/audit-log.js';
import { FlagStore } from '../shadow-api/flag-store.js';
import type { HealthPort } from '../shadow-api/health.js';
import type { ReadModelVersionsPort } from '../shadow-api/read-model-routes.js';
import { buildServer } from '../shadow-api/server.js';

/** What the API reads from the new side: the embedded pipeline, or the server stores of the distributed mode. */
export interface ReadSide {
  readModels: ReadModels;
  /** Analytics read models, when this process has them open (the embedded pipeline). */
  analytics?: Analytics;
  freshness: FreshnessPort;
  /** Supervised components and lag, when the pipeline runs in this process. */
  health?: HealthPort;
  /** Versions of the embedded read models (/admin/read-models), when this process owns them. */
  readModelVersions?: ReadModelVersionsPort;
}

export interface RunningApi {
  app: FastifyInstance;
  url: string;
  flags: FlagStore;
  recorder: SqliteComparisonRecorder;
  queue: ShadowQueue;
  rollout: RolloutController;
  close(): Promise<void>;
}

/** Starts the shadow API serving the migration's endpoints over the legacy database and the read side. */
export async function startApi(
  config: Config,
  migration: Migration,
  pipeline: ReadSide,
  legacy: LegacyDb,
  logger: Logger,
  registry: Registry,
): Promise<RunningApi> {
  const admin = loadAdminAuth(config.api);
  checkAdminExposure(config.api, admin, logger);
  // Flags changed at run time (a rollback to legacy during an incident) must survive a restart,
  // so they persist even when no file is configured. Until one is changed, the config rules.
  const flags = FlagStore.open({
    initial: { defaultMode: config.flags.defaultMode, endpoints: config.flags.endpoints },
    ...(config.flags.file
      ? { file: config.flags.file }
      : { file: dataPath(config, 'flags.json'), writeInitial: false }),
    logger,
  });
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
    file: dataPath(config, 'rollout.json'),
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
  const app = buildServer({
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
    metrics: registry,
    compare: { recheckDelayMs: config.compare.recheckDelayMs, maxRechecks: config.compare.maxRechecks },
    readModelTimeoutMs: config.api.readModelTimeoutMs,
    admin,
    audit,
    rollout,
    ...(pipeline.readModelVersions ? { readModelVersions: pipeline.readModelVersions } : {}),
  });
  let address: string;
  try {
    address = await app.listen({ host: config.api.host, port: config.api.port });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    logger.warn({ port: config.api.port }, 'port in use; listening on a free port instead');
    address = await app.listen({ host: config.api.host, port: 0 });
  }
  rollout.start();
  const unwatchFlags = flags.watch(1000);
  return {
    app,
    url: address,
    flags,
    recorder,
    queue,
    rollout,
    async close() {
      unwatchFlags();
      await rollout.stop();
      await app.close();
      await queue.close();
      recorder.close();
      audit.close();
    },
  };
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
