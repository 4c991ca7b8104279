import { collectDefaultMetrics, Registry } from 'prom-client';

/** The process-wide metrics registry; /metrics on the API serves it. */
export function createRegistry(withDefaults = true): Registry {
  const registry = new Registry();
  if (withDefaults) collectDefaultMetrics({ register: registry, prefix: 'cqrs_' });
  return registry;
}
