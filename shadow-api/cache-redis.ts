import { Redis } from 'ioredis';
import type { Counter, Registry } from 'prom-client';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { sharedCounter } from '../lib/metrics.js';

/** What the embedded (read-model-cache.ts) and the distributed (distributed-cache.ts) caches share. */

export interface CacheMetrics {
  lookups: Counter<'read_model' | 'result'>;
  errors: Counter<'operation'>;
}

export function cacheMetrics(registry: Registry | undefined): CacheMetrics {
  return {
    lookups: sharedCounter(
      registry,
      'cqrs_cache_lookups_total',
      'Read-model key lookups through the Redis cache, by read model and result (hit, miss, bypass: no current epoch)',
      ['read_model', 'result'],
    ),
    errors: sharedCounter(
      registry,
      'cqrs_cache_errors_total',
      'Redis operations of the read-model cache that failed (the read model answered instead)',
      ['operation'],
    ),
  };
}

/** Fail fast: a command waiting for a reconnect would hold the request it serves. */
export function cacheRedis(url: string): Redis {
  return new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 1000,
    commandTimeout: 500,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
}

/** Counts every failure and logs at most every 10 s: a Redis that is down would otherwise log once per request. */
export function failureReporter(
  metrics: CacheMetrics,
  logger: Logger,
): (operation: string, err: unknown) => void {
  let last = 0;
  return (operation, err) => {
    metrics.errors.inc({ operation });
    if (Date.now() - last > 10_000) {
      last = Date.now();
      logger.warn({ operation, err: errorMessage(err) }, 'Redis cache unavailable; reading the read models');
    }
  };
}
