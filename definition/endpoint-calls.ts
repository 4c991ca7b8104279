import type { EndpointDefinition, EndpointParams, LegacyDb } from './endpoints.js';
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

export function readModelAnswer(
  endpoint: EndpointDefinition,
  params: EndpointParams,
  readModels: ReadModels,
): Promise<unknown> {
  return endpoint.readModel({ params, readModels });
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

/** Canonical text of a request's parameters: defined values, keys in order, URL-encoded. */
export function requestKeyOf(params: EndpointParams): string {
  const key = new URLSearchParams();
  for (const name of Object.keys(params).sort()) {
    const value = params[name];
    if (value !== undefined) key.set(name, typeof value === 'object' ? JSON.stringify(value) : String(value));
  }
  return key.toString();
}
