import cluster from 'node:cluster';
import { Registry } from 'prom-client';
import { SqliteComparisonRecorder } from '../compare/recorder.js';
import { ShadowQueue } from '../compare/shadow-queue.js';
import { openLegacyDb } from '../connectors/legacy/index.js';
import type { Migration } from '../definition/migration.js';
import { type Config, dataPath } from '../lib/config.js';
import { AdapterError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { TimeTravelPort } from '../projectors/past-states.js';
import { loadAdminAuth } from '../shadow-api/admin-auth.js';
import type { AuditLog } from '../shadow-api/audit-log.js';
import { buildServers } from '../shadow-api/server.js';
import { TimeTravelError } from '../shadow-api/time-travel.js';
import { relayedAnalytics } from './api-worker-analytics.js';
import { relayedHealth } from './api-worker-health.js';
import { type PrimaryMessage, primaryMessageSchema, type WorkerMessage } from './api-worker-protocol.js';
import { openRunState } from './run-state.js';
import { listenPublic } from './serve.js';
import { storedReadSide } from './stored-read-side.js';

/**
 * One API worker of api.workers > 1: the public listener (the migration's endpoints, /flags,
 * /health) over a read side of its own, opened read-only: the embedded read models as the
 * primary's pipeline stores them (SQLite WAL), or the server read models. Flags come from the
 * same store as the primary's, re-read when the primary says they changed; comparisons go into
 * the same compare.db. Health, analytics and metrics come from or go to the primary over the
 * cluster's IPC channel; the admin surface and the pipeline are the primary's alone.
 */

/** Which read side the worker opens: `run`'s embedded one, or the server read models (`serve`, cdc.mode=kafka). */
export type WorkerReadSide = 'embedded' | 'server';

/** A worker whose last health snapshot is older than this is unready (the primary relays every second). */
const HEALTH_STALE_MS = 3000;
const ANALYTICS_TIMEOUT_MS = 30_000;
/** Response header naming the worker that answered (its process id). */
export const WORKER_HEADER = 'x-cqrs-worker';

/** Time travel replays the event store the primary owns: a worker refuses it, naming api.workers. */
const timeTravelOnThePrimary: TimeTravelPort = {
  maxEvents: 0,
  positionAt() {
    throw new TimeTravelError(
      'TIME_TRAVEL_UNAVAILABLE',
      501,
      'time travel (?_asOf=) replays the embedded event store, which the primary process owns; with api.workers > 1 the API workers answer reads without it',
      'set api.workers=1 (CQRS_API_WORKERS) on a `run` that answers time travel, or build a past version with `replay --to <time>`',
    );
  },
  lease() {
    return Promise.reject(new Error('unreachable: positionAt refuses first'));
  },
  close: () => undefined,
};

/** The admin routes (the only audit writers) are the primary's: nothing here records a change. */
const noAudit: AuditLog = {
  append() {
    throw new AdapterError('AUDIT_ON_THE_PRIMARY', 'flag changes are made on the primary process');
  },
  list: () => [],
};

/** Serves until SIGTERM (the primary's stop) or the primary's end; Ctrl-C is the primary's to handle. */
export async function runApiWorker(
  config: Config,
  migration: Migration,
  logger: Logger,
  kind: WorkerReadSide,
): Promise<number> {
  const log = logger.child({ component: 'api-worker', worker: cluster.worker?.id });
  const send = (message: WorkerMessage) => {
    if (process.connected) process.send?.(message);
  };
  const health = relayedHealth(HEALTH_STALE_MS);
  const analytics =
    kind === 'embedded' && migration.analytics.length > 0
      ? relayedAnalytics(send, ANALYTICS_TIMEOUT_MS)
      : null;
  const registry = new Registry();
  // The server stores' clients only where they are read: an embedded worker starts without them.
  const side =
    kind === 'embedded'
      ? storedReadSide(config, migration, log)
      : (await import('./read-side.js')).serverReadSide(config, migration, log);
  const legacy = openLegacyDb(config.legacy.url, { poolSize: config.legacy.poolSize, logger: log });
  const state = await openRunState(config, log);
  const recorder = new SqliteComparisonRecorder({
    path: dataPath(config, 'compare.db'),
    sensitive: migration.sensitiveFields,
    logger: log,
  });
  const queue = new ShadowQueue({
    concurrency: config.compare.concurrency,
    maxSize: config.compare.queueSize,
    logger: log,
  });
  const onMessage = (raw: unknown) => {
    const parsed = primaryMessageSchema.safeParse(raw);
    if (parsed.success) void handle(parsed.data);
  };
  const handle = async (message: PrimaryMessage) => {
    switch (message.type) {
      case 'cqrs:health':
        health.receive(message.snapshot);
        return;
      case 'cqrs:flags-changed':
        state.refresh();
        return;
      case 'cqrs:metrics-request':
        send({ type: 'cqrs:metrics', id: message.id, metrics: await registry.getMetricsAsJSON() });
        return;
      case 'cqrs:analytics-answer':
        analytics?.answer(message);
        return;
    }
  };
  process.on('message', onMessage);
  const { api: app } = buildServers(
    {
      migration,
      legacy,
      readModels: side.readModels,
      ...(analytics ? { analytics: analytics.analytics } : {}),
      flags: state.flags,
      recorder,
      queue,
      logger: log,
      freshness: side.freshness,
      health: health.port,
      ...(kind === 'embedded' ? { timeTravel: timeTravelOnThePrimary } : {}),
      metrics: registry,
      compare: { recheckDelayMs: config.compare.recheckDelayMs, maxRechecks: config.compare.maxRechecks },
      readModelTimeoutMs: config.api.readModelTimeoutMs,
      admin: loadAdminAuth(config.api),
      audit: noAudit,
    },
    { separateAdmin: true, adminElsewhere: true },
  );
  const pid = String(process.pid);
  app.addHook('onRequest', (_request, reply, done) => {
    reply.header(WORKER_HEADER, pid);
    done();
  });
  const unwatchFlags = state.watch();
  // Ctrl-C reaches the whole process group: the primary stops the workers in its own order.
  process.on('SIGINT', () => undefined);
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
  });
  const url = await listenPublic(app, config, log);
  send({ type: 'cqrs:listening', url });
  await stopped;
  log.info('API worker stopping');
  unwatchFlags();
  await app.close();
  await queue.close();
  analytics?.close();
  recorder.close();
  await state.close();
  await side.stop();
  await legacy.close();
  process.off('message', onMessage);
  return 0;
}
