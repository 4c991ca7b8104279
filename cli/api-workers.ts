import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Analytics } from '../definition/analytics.js';
import { AdapterError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { FlagStore } from '../shadow-api/flag-store.js';
import type { HealthPort } from '../shadow-api/health.js';
import { healthSnapshotOf } from './api-worker-health.js';
import { type PrimaryMessage, type WorkerMessage, workerMessageSchema } from './api-worker-protocol.js';
import { type CrashLoopPolicy, crashLoop, DEFAULT_CRASH_LOOP } from './crash-loop.js';

/**
 * The primary side of api.workers > 1: forks the API workers (node:cluster, so they share the
 * public port), restarts one that dies, and gives up when they keep dying; relays the pipeline's
 * health and every flag change to them, answers their analytics queries, and sums their metrics
 * into /metrics. The workers run the same command line (cluster forks with the same argv and
 * execArgv, so `--import tsx` and the definition path carry over) and see cluster.isWorker.
 */

const HEALTH_RELAY_MS = 1000;
const METRICS_TIMEOUT_MS = 2000;
const STOP_TIMEOUT_MS = 10_000;
const START_TIMEOUT_MS = 180_000;

export interface ApiWorkersOptions {
  count: number;
  /** The pipeline's health, relayed to every worker's /health/ready. */
  health: HealthPort | undefined;
  /** The analytics store this process has open; the workers' analytics queries run here. */
  analytics: Analytics | undefined;
  flags: FlagStore;
  /** This process's registry: /metrics serves it with the workers' registries summed in. */
  registry: Registry;
  logger: Logger;
  crashLoop?: CrashLoopPolicy;
}

export interface ApiWorkers {
  /** The public URL once every worker listens; rejects if they cannot start. */
  ready: Promise<string>;
  /** Settles when workers die faster than the crash-loop policy allows. */
  failed: Promise<Error>;
  /** The metrics of this process and of every worker, summed per metric and label set. */
  exposition: { contentType: string; metrics(): Promise<string> };
  /** Process ids of the running workers. */
  pids(): number[];
  stop(): Promise<void>;
}

type MetricsJson = Parameters<typeof AggregatorRegistry.aggregate>[0][number];

export function startApiWorkers(options: ApiWorkersOptions): ApiWorkers {
  const { count, logger } = options;
  const policy = options.crashLoop ?? DEFAULT_CRASH_LOOP;
  const log = logger.child({ component: 'api-workers' });
  const workers = new Set<Worker>();
  const deaths = crashLoop(policy);
  let stopping = false;
  let fail: (err: Error) => void = () => undefined;
  const failed = new Promise<Error>((resolve) => {
    fail = resolve;
  });
  let listening = 0;
  let publicUrl: string | null = null;
  let resolveReady: (url: string) => void = () => undefined;
  let rejectReady: (err: Error) => void = () => undefined;
  const ready = new Promise<string>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  // Whoever starts the workers awaits it; a rejection after that must not crash the process.
  ready.catch(() => undefined);
  void failed.then(rejectReady);
  const startTimer = setTimeout(
    () =>
      rejectReady(
        new AdapterError(
          'API_WORKERS_START_TIMEOUT',
          `the API workers did not all listen within ${START_TIMEOUT_MS / 1000} s`,
          { hint: "see the API workers' log; api.workers=1 (CQRS_API_WORKERS) serves from this process" },
        ),
      ),
    START_TIMEOUT_MS,
  );

  const metricRequests = new Map<number, (metrics: MetricsJson | null) => void>();
  let nextRequest = 0;
  let lastHealth: PrimaryMessage | null = null;

  const send = (worker: Worker, message: PrimaryMessage) => {
    // A worker that just died may still be in the set; its closed channel is not this process's failure.
    if (worker.isConnected())
      worker.send(message, (err: Error | null) => err && log.debug({ err }, 'send failed'));
  };
  const broadcast = (message: PrimaryMessage) => {
    for (const worker of workers) send(worker, message);
  };

  const onMessage = (worker: Worker, raw: unknown) => {
    const parsed = workerMessageSchema.safeParse(raw);
    if (!parsed.success) return;
    handle(worker, parsed.data);
  };
  const handle = (worker: Worker, message: WorkerMessage) => {
    switch (message.type) {
      case 'cqrs:listening':
        log.info({ workerPid: worker.process.pid, url: message.url }, 'API worker listening');
        publicUrl ??= message.url;
        listening += 1;
        if (listening === count) {
          clearTimeout(startTimer);
          resolveReady(publicUrl);
        }
        if (lastHealth !== null) send(worker, lastHealth);
        return;
      case 'cqrs:metrics':
        metricRequests.get(message.id)?.(message.metrics as MetricsJson);
        return;
      case 'cqrs:analytics-query':
        answerAnalytics(worker, message);
        return;
    }
  };

  const answerAnalytics = (
    worker: Worker,
    { id, model, query, params }: Extract<WorkerMessage, { type: 'cqrs:analytics-query' }>,
  ) => {
    const handle = options.analytics?.[model];
    const answer =
      handle === undefined
        ? Promise.reject(
            new AdapterError(
              'ANALYTICS_NOT_SERVED',
              `the analytics model ${model} is not open in the primary process`,
            ),
          )
        : handle.query(query, params);
    answer.then(
      (rows) => send(worker, { type: 'cqrs:analytics-answer', id, rows }),
      (err: unknown) =>
        send(worker, {
          type: 'cqrs:analytics-answer',
          id,
          error: {
            code: err instanceof AdapterError ? err.code : 'ANALYTICS_QUERY_FAILED',
            message: errorMessage(err),
          },
        }),
    );
  };

  const fork = () => {
    const worker = cluster.fork();
    workers.add(worker);
    worker.on('message', (raw: unknown) => onMessage(worker, raw));
    worker.on('exit', (code, signal) => {
      workers.delete(worker);
      if (stopping) return;
      const recent = deaths.died(Date.now());
      const how = { workerPid: worker.process.pid, code, signal };
      if (deaths.looping(recent)) {
        log.error({ ...how, deaths: recent }, 'API workers keep dying; giving up');
        fail(
          new AdapterError(
            'API_WORKERS_FAILING',
            `API workers died ${recent} times within ${policy.windowMs / 1000} s (the last, pid ${worker.process.pid}: ${signal ?? `exit code ${code}`})`,
            {
              hint: "see the API workers' errors in the log; api.workers=1 (CQRS_API_WORKERS) serves from this process",
            },
          ),
        );
        return;
      }
      log.error(how, 'API worker died; starting another');
      fork();
    });
  };

  for (let i = 0; i < count; i++) fork();

  let relaying: Promise<void> | null = null;
  const relayHealth = () => {
    relaying ??= healthSnapshotOf(options.health)
      .then((snapshot) => {
        lastHealth = { type: 'cqrs:health', snapshot };
        broadcast(lastHealth);
      })
      .catch((err: unknown) => log.warn({ err }, 'health snapshot failed'))
      .finally(() => {
        relaying = null;
      });
  };
  relayHealth();
  const healthTimer = setInterval(relayHealth, HEALTH_RELAY_MS);
  healthTimer.unref();
  options.flags.on('change', () => {
    if (!stopping) broadcast({ type: 'cqrs:flags-changed' });
  });

  /** One worker's registry as JSON, or null when it does not answer in time (it may be restarting). */
  const metricsOf = (worker: Worker) =>
    new Promise<MetricsJson | null>((resolve) => {
      const id = nextRequest++;
      const timer = setTimeout(() => done(null), METRICS_TIMEOUT_MS);
      const done = (metrics: MetricsJson | null) => {
        clearTimeout(timer);
        metricRequests.delete(id);
        resolve(metrics);
      };
      metricRequests.set(id, done);
      send(worker, { type: 'cqrs:metrics-request', id });
    });

  return {
    ready,
    failed,
    exposition: {
      contentType: options.registry.contentType,
      async metrics() {
        const own = await options.registry.getMetricsAsJSON();
        const theirs = await Promise.all([...workers].map(metricsOf));
        const answered = theirs.filter((m): m is MetricsJson => m !== null);
        if (answered.length < theirs.length)
          log.warn({ missing: theirs.length - answered.length }, 'API workers missing from /metrics');
        return AggregatorRegistry.aggregate([own, ...answered]).metrics();
      },
    },
    pids: () => [...workers].map((w) => w.process.pid).filter((pid): pid is number => pid !== undefined),
    async stop() {
      stopping = true;
      clearTimeout(startTimer);
      clearInterval(healthTimer);
      await Promise.all([...workers].map(stopWorker));
      await relaying;
    },
  };
}

/** SIGTERM (the worker closes its listener and drains), then SIGKILL past STOP_TIMEOUT_MS. */
function stopWorker(worker: Worker): Promise<void> {
  if (worker.isDead()) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => worker.process.kill('SIGKILL'), STOP_TIMEOUT_MS);
    worker.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    worker.process.kill('SIGTERM');
  });
}
