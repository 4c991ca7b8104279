import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ShadowQueue } from '../compare/shadow-queue.js';
import type { FlagMode, ServeSide } from './flags.js';

export type MetricSide = 'legacy' | 'read_model';

export function metricSideOf(side: ServeSide): MetricSide {
  return side === 'legacy' ? 'legacy' : 'read_model';
}

/** The shadow API's Prometheus metrics, registered on the registry /metrics serves. */
export interface ShadowMetrics {
  requests: Counter<'endpoint' | 'mode' | 'served_by'>;
  /** role: serve = on the request path; shadow = the other side, queried for a comparison. */
  queryDuration: Histogram<'endpoint' | 'side' | 'role'>;
  comparisons: Counter<'endpoint' | 'outcome'>;
  fallbacks: Counter<'endpoint'>;
  queueDropped: Counter;
}

export function createShadowMetrics(registry: Registry, queue: ShadowQueue): ShadowMetrics {
  const registers = [registry];
  const metrics: ShadowMetrics = {
    requests: new Counter({
      name: 'cqrs_shadow_requests_total',
      help: 'Read requests answered, by endpoint, flag mode and the side that answered',
      labelNames: ['endpoint', 'mode', 'served_by'],
      registers,
    }),
    queryDuration: new Histogram({
      name: 'cqrs_shadow_query_duration_seconds',
      help: 'Query latency of each side, on the request path (serve) or for a comparison (shadow)',
      labelNames: ['endpoint', 'side', 'role'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    comparisons: new Counter({
      name: 'cqrs_shadow_comparisons_total',
      help: 'Shadow comparisons recorded, by endpoint and outcome',
      labelNames: ['endpoint', 'outcome'],
      registers,
    }),
    fallbacks: new Counter({
      name: 'cqrs_shadow_fallbacks_total',
      help: 'Requests the read model failed to answer and legacy answered instead',
      labelNames: ['endpoint'],
      registers,
    }),
    queueDropped: new Counter({
      name: 'cqrs_shadow_queue_dropped_total',
      help: 'Comparisons dropped because the shadow queue was full',
      registers,
    }),
  };
  new Gauge({
    name: 'cqrs_shadow_queue_depth',
    help: 'Comparisons waiting in the shadow queue',
    registers,
    collect() {
      this.set(queue.depth);
    },
  });
  queue.on('drop', () => metrics.queueDropped.inc());
  return metrics;
}

/** What one request records, with label children bound once per endpoint. */
export interface EndpointMetrics {
  serveDuration(side: ServeSide): { observe(seconds: number): void };
  request(mode: FlagMode, servedBy: ServeSide): { inc(): void };
}

/**
 * The metrics of one endpoint's requests. prom-client hashes a label object on every call
 * (sorted keys joined into a string): bound children skip that on the request path.
 */
export function endpointMetrics(metrics: ShadowMetrics, endpoint: string): EndpointMetrics {
  const durations = new Map<ServeSide, { observe(seconds: number): void }>();
  const requests = new Map<string, { inc(): void }>();
  return {
    serveDuration(side) {
      let child = durations.get(side);
      if (child === undefined) {
        child = metrics.queryDuration.labels({ endpoint, side: metricSideOf(side), role: 'serve' });
        durations.set(side, child);
      }
      return child;
    },
    request(mode, servedBy) {
      const key = `${mode}/${servedBy}`;
      let child = requests.get(key);
      if (child === undefined) {
        child = metrics.requests.labels({ endpoint, mode, served_by: metricSideOf(servedBy) });
        requests.set(key, child);
      }
      return child;
    },
  };
}
