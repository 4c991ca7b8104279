import { type Analytics, analyticsNotServed } from './analytics.js';
import type { EndpointDefinition, EndpointParams, LegacyDb } from './endpoints.js';
import { answerValue } from './json-text.js';
import type { ReadModels } from './read-models.js';

/** How the runtime calls an endpoint's two sides, the same for served reads and reconciliation. */

export function legacyAnswer(
  endpoint: EndpointDefinition,
  params: EndpointParams,
  db: LegacyDb,
): Promise<unknown> {
  const { legacy } = endpoint;
  if (typeof legacy === 'function') return legacy({ params, db });
  return db.query(legacy.sql, params).then((rows) => (legacy.map ? legacy.map(rows, params) : rows));
}

/** The read-model answer as a value (JSON text an endpoint returns is parsed). */
export async function readModelAnswer(
  endpoint: EndpointDefinition,
  params: EndpointParams,
  readModels: ReadModels,
  analytics: Analytics = analyticsNotServed,
): Promise<unknown> {
  return answerValue(await endpoint.readModel({ params, readModels, analytics }));
}

/**
 * The read-model answer as the endpoint gives it: possibly JsonText, which the API sends
 * without a parse and re-serialisation.
 */
export function readModelReply(
  endpoint: EndpointDefinition,
  params: EndpointParams,
  readModels: ReadModels,
  analytics: Analytics = analyticsNotServed,
): Promise<unknown> {
  return endpoint.readModel({ params, readModels, analytics });
}

/**
 * `base` (read models, analytics) noting in `read` each of its entries a call reads: which read
 * models an endpoint's read-model side depends on is known only by running it.
 */
export function notingReads<T extends object>(base: T, read: Set<string>): T {
  return new Proxy(base, {
    get(target, prop, receiver) {
      if (typeof prop === 'string' && prop in target) read.add(prop);
      return Reflect.get(target, prop, receiver);
    },
  });
}

/** Route parameter names in order, e.g. ['accountId'] for '/accounts/:accountId/summary'. */
export function routeParams(route: string): string[] {
  return [...route.matchAll(/:([A-Za-z_]\w*)/g)].map((m) => m[1] as string);
}

/** The canary key of a request: the endpoint's own, else its first route parameter, else the request key. */
export function subjectOf(endpoint: EndpointDefinition, params: EndpointParams): string {
  if (endpoint.canaryKey) return endpoint.canaryKey(params);
  const first = routeParams(endpoint.route)[0];
  return first !== undefined && params[first] !== undefined ? String(params[first]) : requestKeyOf(params);
}

/** subjectOf for one endpoint, with its route parsed once: the request path calls it per request. */
export function subjectFunction(endpoint: EndpointDefinition): (params: EndpointParams) => string {
  const canaryKey = endpoint.canaryKey;
  if (canaryKey) return (params) => canaryKey(params);
  const first = routeParams(endpoint.route)[0];
  return (params) =>
    first !== undefined && params[first] !== undefined ? String(params[first]) : requestKeyOf(params);
}

/** Canonical text of a request's parameters: defined values, keys in order, URL-encoded. */
export function requestKeyOf(params: EndpointParams): string {
  const key = new URLSearchParams();
  for (const name of Object.keys(params).sort()) {
    const value = params[name];
    if (value !== undefined) key.set(name, typeof value === 'object' ? JSON.stringify(value) : String(value));
  }
  return key.toString();
}
