import type { Analytics, AnalyticsRow } from '../definition/analytics.js';
import type { Scalar } from '../definition/read-models.js';
import { AdapterError } from '../lib/errors.js';
import type { PrimaryMessage, WorkerMessage } from './api-worker-protocol.js';

/**
 * Analytics for an API worker: the embedded analytics store is one DuckDB file that only the
 * primary (its writer) may open, so each query is asked of the primary over the IPC channel.
 * A query unanswered within `timeoutMs` fails (the read path then falls back to legacy).
 */
export interface RelayedAnalytics {
  analytics: Analytics;
  answer(message: Extract<PrimaryMessage, { type: 'cqrs:analytics-answer' }>): void;
  /** Fails what is still waiting (the worker stops). */
  close(): void;
}

interface Pending {
  resolve(rows: AnalyticsRow[]): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export function relayedAnalytics(
  send: (message: WorkerMessage) => void,
  timeoutMs: number,
): RelayedAnalytics {
  const pending = new Map<number, Pending>();
  let next = 0;
  const query = (model: string, name: string, params: Readonly<Record<string, Scalar>> = {}) =>
    new Promise<AnalyticsRow[]>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(
          new AdapterError(
            'ANALYTICS_RELAY_TIMEOUT',
            `the primary did not answer ${model}.${name} within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      pending.set(id, { resolve, reject, timer });
      send({ type: 'cqrs:analytics-query', id, model, query: name, params: { ...params } });
    });
  const analytics: Analytics = new Proxy(
    {},
    {
      get: (_target, model) =>
        typeof model === 'string'
          ? { query: (name: string, params?: Readonly<Record<string, Scalar>>) => query(model, name, params) }
          : undefined,
    },
  );
  return {
    analytics,
    answer(message) {
      const waiting = pending.get(message.id);
      if (waiting === undefined) return;
      pending.delete(message.id);
      clearTimeout(waiting.timer);
      if (message.error !== undefined)
        waiting.reject(new AdapterError(message.error.code, message.error.message));
      else waiting.resolve(message.rows ?? []);
    },
    close() {
      for (const [id, waiting] of pending) {
        clearTimeout(waiting.timer);
        waiting.reject(new AdapterError('API_WORKER_STOPPING', 'the API worker is stopping'));
        pending.delete(id);
      }
    },
  };
}
