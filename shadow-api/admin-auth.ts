import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../lib/config.js';
import { AdapterError, ConfigError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';

/**
 * Who may use the admin side of the shadow API (/admin/*: flags, report, audit; /metrics).
 * Read endpoints stay open. A token is presented as `Authorization: Bearer <token>` and
 * compared in constant time; its name is the actor the audit log records.
 */

export interface AdminToken {
  /** Recorded as the actor of the changes made with it. */
  name: string;
  token: string;
}

export interface AdminAuth {
  /** Empty: admin routes are open (a loopback bind, or an explicit opt-out). */
  tokens: readonly AdminToken[];
}

/** Shorter tokens are refused: they can be guessed. */
export const MIN_TOKEN_LENGTH = 16;

/** The header an operator (or a proxy) sets to say who is acting, recorded beside the token's name. */
export const ACTOR_HEADER = 'x-cqrs-actor';
/** Why a flag change is made, recorded in the audit log. */
export const REASON_HEADER = 'x-cqrs-reason';

const TOKEN_LINE = /^(?:([A-Za-z][\w.-]{0,63}):)?(\S+)$/;

/**
 * Tokens from text: one per line, `name:token` or a bare token (named "admin"); blank lines
 * and `#` comments are skipped. The error names the line, never the token.
 */
export function parseAdminTokens(text: string, source: string): AdminToken[] {
  const tokens: AdminToken[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const match = TOKEN_LINE.exec(line);
    const token = match?.[2];
    if (match === null || token === undefined || token.length < MIN_TOKEN_LENGTH) {
      throw new ConfigError(`${source} line ${i + 1} is not a usable admin token`, {
        hint: `write "name:token" or a bare token of at least ${MIN_TOKEN_LENGTH} characters without spaces, e.g. from \`openssl rand -hex 32\``,
      });
    }
    tokens.push({ name: match[1] ?? 'admin', token });
  });
  return tokens;
}

/** The tokens api.adminTokenFile and api.adminToken (CQRS_ADMIN_TOKEN) configure. */
export function loadAdminAuth(api: Config['api']): AdminAuth {
  const tokens: AdminToken[] = [];
  if (api.adminTokenFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(api.adminTokenFile, 'utf8');
    } catch (cause) {
      throw new ConfigError(`cannot read api.adminTokenFile ${api.adminTokenFile}: ${errorMessage(cause)}`, {
        cause,
      });
    }
    const fromFile = parseAdminTokens(text, `api.adminTokenFile ${api.adminTokenFile}`);
    if (fromFile.length === 0)
      throw new ConfigError(`api.adminTokenFile ${api.adminTokenFile} holds no token`, {
        hint: 'write one token per line ("name:token"), or remove api.adminTokenFile',
      });
    tokens.push(...fromFile);
  }
  if (api.adminToken !== undefined)
    tokens.push(...parseAdminTokens(api.adminToken, 'api.adminToken (CQRS_ADMIN_TOKEN)'));
  return { tokens };
}

/** 127.0.0.0/8, ::1 and localhost: only this machine can connect. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (bare === 'localhost') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (isIP(bare) === 6) return bare === '::1' || /^::ffff:127\./.test(bare);
  return false;
}

/**
 * Refuses to expose open admin routes beyond this machine unless the operator opted out, and
 * warns whenever they are open (once, at start). `host` is where the admin routes listen
 * (see adminPlacementOf): the admin listener's host, or api.host when they share the public port.
 */
export function checkAdminExposure(
  admin: { host: string; allowUnauthenticatedAdmin: boolean },
  auth: AdminAuth,
  logger: Logger,
): void {
  if (auth.tokens.length > 0) return;
  if (isLoopbackHost(admin.host)) {
    logger.warn(
      { host: admin.host },
      'admin routes (/admin/*, /metrics) have no token; anyone on this machine can change flags (set api.adminTokenFile or CQRS_ADMIN_TOKEN)',
    );
    return;
  }
  if (!admin.allowUnauthenticatedAdmin) {
    throw new ConfigError(
      `the admin routes (flag changes, report, metrics) would listen on ${admin.host}, reachable from other machines, open to anyone`,
      {
        hint: 'set api.adminTokenFile (or CQRS_ADMIN_TOKEN) to a token, keep api.admin.host (or, with api.admin.port "public", api.host) on 127.0.0.1, or, behind your own authenticating proxy, set api.allowUnauthenticatedAdmin: true',
      },
    );
  }
  logger.warn(
    { host: admin.host },
    'admin routes (/admin/*, /metrics) are open to anyone who reaches this non-loopback address (api.allowUnauthenticatedAdmin)',
  );
}

/** Routes that need a token, by their route pattern (so an encoded or odd spelling of the path cannot skip the check). */
export function isAdminRoute(routeUrl: string | undefined): boolean {
  if (routeUrl === undefined) return false;
  return routeUrl === '/metrics' || routeUrl === '/admin' || routeUrl.startsWith('/admin/');
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * An admin page that holds no data (the dashboard's HTML, script and style): a browser
     * loads it without a token, and the data it then asks for is guarded as usual.
     */
    adminShell?: boolean;
  }
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/** Constant time in the token's content: both sides are hashed to equal lengths first. */
function matchToken(tokens: readonly AdminToken[], presented: string): AdminToken | undefined {
  const given = digest(presented);
  let found: AdminToken | undefined;
  for (const candidate of tokens) {
    if (timingSafeEqual(digest(candidate.token), given) && found === undefined) found = candidate;
  }
  return found;
}

const actors = new WeakMap<FastifyRequest, string>();

/** Who made an admin request: the token's name, plus the actor header when one is set. */
export function actorOf(request: FastifyRequest): string {
  return actors.get(request) ?? 'unauthenticated';
}

/** A header's printable text, cut to `max`: it ends up in the audit log and on terminals. */
function headerText(request: FastifyRequest, name: string, max: number): string | undefined {
  const value = request.headers[name];
  if (typeof value !== 'string') return undefined;
  const cleaned = value.replace(/[^\x20-\x7e]/g, '').trim();
  return cleaned === '' ? undefined : cleaned.slice(0, max);
}

const headerActor = (request: FastifyRequest) => headerText(request, ACTOR_HEADER, 100);

/** The reason the operator gave for an admin request (x-cqrs-reason), if any. */
export function reasonOf(request: FastifyRequest): string | null {
  return headerText(request, REASON_HEADER, 500) ?? null;
}

/** Answered 401 by the server's error handler (a 4xx with statusCode). */
export class AdminUnauthorizedError extends AdapterError {
  readonly statusCode = 401;

  constructor(message: string) {
    super('UNAUTHORIZED', message);
  }
}

/** Answered 403 by the server's error handler: the request asks for what only an admin may do. */
export class AdminForbiddenError extends AdapterError {
  readonly statusCode = 403;

  constructor(message: string) {
    super('FORBIDDEN', message);
  }
}

/** The bearer token of the Authorization header, if it has that form. */
function presentedToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  return typeof header === 'string' ? /^Bearer (\S+)$/i.exec(header.trim())?.[1] : undefined;
}

/**
 * Whether `request` may do what admin routes may, outside them (e.g. force the side of a read):
 * it presents a configured token, or none is configured (admin routes are open then too).
 */
export function isAdminRequest(request: FastifyRequest, auth: AdminAuth): boolean {
  if (auth.tokens.length === 0) return true;
  const presented = presentedToken(request);
  return presented !== undefined && matchToken(auth.tokens, presented) !== undefined;
}

/**
 * Guards admin routes of `app` with `auth`; call before the routes are registered. The guard
 * is a hook of each admin route alone (their HEAD twins included): an app-wide hook cost every
 * read a promise and a route check, and matched no other route.
 */
export function installAdminAuth(app: FastifyInstance, auth: AdminAuth, logger: Logger): void {
  const guard = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const declared = headerActor(request);
    if (auth.tokens.length === 0) {
      actors.set(request, declared ?? 'unauthenticated');
      return;
    }
    const header = request.headers.authorization;
    const presented = presentedToken(request);
    const token = presented === undefined ? undefined : matchToken(auth.tokens, presented);
    if (token === undefined) {
      // The presented value is never logged: a near-miss is often the real token with a typo.
      logger.warn(
        {
          route: request.routeOptions.url,
          method: request.method,
          ip: request.ip,
          presented: header !== undefined,
        },
        'admin request refused: missing or unknown token',
      );
      reply.header('www-authenticate', 'Bearer realm="cqrs-migrate admin"');
      throw new AdminUnauthorizedError(
        presented === undefined
          ? 'admin routes need "Authorization: Bearer <token>" (api.adminTokenFile / CQRS_ADMIN_TOKEN)'
          : 'unknown admin token',
      );
    }
    actors.set(request, declared === undefined ? token.name : `${token.name} (${declared})`);
  };
  app.addHook('onRoute', (route) => {
    if (!isAdminRoute(route.url) || route.config?.adminShell === true) return;
    const own = route.onRequest === undefined ? [] : [route.onRequest].flat();
    route.onRequest = [guard, ...own];
  });
}
