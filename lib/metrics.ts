import { Counter, collectDefaultMetrics, Registry } from 'prom-client';

/** The process-wide metrics registry; /metrics on the API serves it. */
export function createRegistry(withDefaults = true): Registry {
  const registry = new Registry();
  if (withDefaults) collectDefaultMetrics({ register: registry, prefix: 'cqrs_' });
  return registry;
}

/**
 * The counter of that name in `registry`, or a new one registered there: several components of
 * one process (caches, sources, projectors) share a registry, which refuses a second metric of a
 * name.
 */
export function sharedCounter<L extends string = never>(
  registry: Registry | undefined,
  name: string,
  help: string,
  labelNames: readonly L[] = [],
): Counter<L> {
  const existing = registry?.getSingleMetric(name);
  if (existing instanceof Counter) return existing as Counter<L>;
  return new Counter({ name, help, labelNames, registers: registry === undefined ? [] : [registry] });
}
