import swagger, { type SwaggerTransform } from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { routeParams } from '../definition/endpoint-calls.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { packageVersion } from '../lib/package-version.js';
import { isAdminRoute } from './admin-auth.js';

/**
 * /docs: the API as an OpenAPI 3.1 document (/docs/json, /docs/yaml) and Swagger UI, whose
 * assets the plugin serves itself (no CDN), generated from the zod schemas the handlers
 * validate with. A route carries them as `config.docs`, not as Fastify's `schema`: Fastify
 * would compile a `schema` into a validator of its own, with other messages and coercions than
 * the handler's one zod parse of path and query merged.
 */

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What /docs says of the route. */
    docs?: RouteDocs;
  }
}

export interface RouteDocs {
  summary: string;
  tag: string;
  /** Path parameters and query string in one schema, as the handler parses them; split by the route's `:names`. */
  input?: z.ZodType;
  /** Query parameters the API reads itself on this route (e.g. time travel's), beside `input`'s. */
  query?: z.ZodType;
  body?: z.ZodType;
  /** Request headers the route reads. */
  headers?: z.ZodType;
}

export const DOCS_PREFIX = '/docs';
const ADMIN_SCHEME = 'adminToken';

type JsonSchema = Record<string, unknown>;

/**
 * What a client sends (before transforms and defaults apply). Refinements have no JSON Schema
 * form and are left out; a schema zod cannot express at all is documented as "any value".
 */
function jsonSchemaOf(schema: z.ZodType): JsonSchema {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
  return rest;
}

/** An object schema's properties split into path parameters (the route's `:names`) and query string. */
function splitInput(route: string, input: JsonSchema): { params?: JsonSchema; querystring?: JsonSchema } {
  const properties = input.properties as Record<string, JsonSchema> | undefined;
  if (properties === undefined) return {};
  const inPath = new Set(routeParams(route));
  const required = new Set((input.required as string[] | undefined) ?? []);
  const part = (names: string[]): JsonSchema | undefined =>
    names.length === 0
      ? undefined
      : {
          type: 'object',
          properties: Object.fromEntries(names.map((n) => [n, properties[n]])),
          required: names.filter((n) => required.has(n)),
        };
  const names = Object.keys(properties);
  const params = part(names.filter((n) => inPath.has(n)));
  const querystring = part(names.filter((n) => !inPath.has(n)));
  return { ...(params ? { params } : {}), ...(querystring ? { querystring } : {}) };
}

function documentedSchema(url: string, docs: RouteDocs): JsonSchema {
  const out: JsonSchema = { summary: docs.summary, tags: [docs.tag] };
  if (docs.input) Object.assign(out, splitInput(url, jsonSchemaOf(docs.input)));
  if (docs.query) {
    const own = (jsonSchemaOf(docs.query).properties ?? {}) as JsonSchema;
    const querystring = (out.querystring ?? { type: 'object', properties: {}, required: [] }) as JsonSchema;
    out.querystring = { ...querystring, properties: { ...(querystring.properties as JsonSchema), ...own } };
  }
  if (docs.body) out.body = jsonSchemaOf(docs.body);
  if (docs.headers) out.headers = jsonSchemaOf(docs.headers);
  return out;
}

export interface DocsOptions {
  /** The migration's name, in the document's title. */
  name: string;
  /** Admin routes need a bearer token (false: they are open, and documented so). */
  adminTokens: boolean;
  logger: Logger;
}

/**
 * Registers /docs on `app`. Call before the routes are registered: the document lists the
 * routes added after it (the plugin collects them as they are added).
 */
export function registerDocs(app: FastifyInstance, options: DocsOptions): void {
  const transform: SwaggerTransform = ({ schema, url, route }) => {
    const docs = route.config?.docs;
    let out: JsonSchema = { ...schema };
    if (docs) {
      try {
        out = { ...out, ...documentedSchema(url, docs) };
      } catch (err) {
        // A user's schema the converter cannot read must not take the document down with it.
        options.logger.warn({ route: url, err: errorMessage(err) }, 'route schema left out of /docs');
        out = { ...out, summary: docs.summary, tags: [docs.tag] };
      }
    }
    if (options.adminTokens && isAdminRoute(url)) out.security = [{ [ADMIN_SCHEME]: [] }];
    return { schema: out, url };
  };
  app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: `cqrs-migrate shadow API: ${options.name}`,
        version: packageVersion(),
        description:
          'Read endpoints answer from legacy or the read models as the flags say; the response headers x-served-by and x-flag-mode tell which. Admin routes (/admin/*, /metrics) need the admin token when one is configured.',
      },
      components: {
        securitySchemes: {
          [ADMIN_SCHEME]: {
            type: 'http',
            scheme: 'bearer',
            description: 'a token of api.adminTokenFile or CQRS_ADMIN_TOKEN',
          },
        },
      },
    },
    transform,
  });
  app.register(swaggerUi, { routePrefix: DOCS_PREFIX });
}
