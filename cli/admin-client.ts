import type { Config } from '../lib/config.js';
import { AdapterError, ConfigError, errorMessage } from '../lib/errors.js';
import { loadAdminAuth, REASON_HEADER } from '../shadow-api/admin-auth.js';
import { adminPlacementOf } from '../shadow-api/admin-listener.js';

/**
 * The CLI's client of the running API's admin routes (`rollout`, `flags`): the process that
 * serves the reads owns the flags, so a change made here is in force the moment it is answered,
 * and it goes through the same checks and audit log as any other admin request.
 */

export interface AdminRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH';
  path: string;
  body?: unknown;
  /** Why, for the audit log (x-cqrs-reason). */
  reason?: string | undefined;
}

export interface AdminReply {
  ok: boolean;
  status: number;
  statusText: string;
  /** The parsed JSON body; null when there is none. */
  body: unknown;
}

/** The error body of a refused admin request, as the API sends it. */
export interface AdminRefusal {
  message?: string;
  hint?: string;
}

/**
 * Requests against `url` (default: the admin listener, http://<api.admin.host>:<api.admin.port>,
 * or api.host:api.port when admin is on the public port) with the first configured admin token;
 * an API that does not answer is an AdapterError with the fix.
 */
export function adminClient(
  config: Config,
  url: string | undefined,
): (request: AdminRequest) => Promise<AdminReply> {
  const base = (url ?? defaultAdminUrl(config)).replace(/\/$/, '');
  const token = loadAdminAuth(config.api).tokens[0]?.token;
  return async (request) => {
    let response: Response;
    try {
      response = await fetch(`${base}${request.path}`, {
        method: request.method,
        headers: {
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
          ...(request.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(request.reason === undefined ? {} : { [REASON_HEADER]: request.reason }),
        },
        ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
      });
    } catch (cause) {
      throw new AdapterError('ADMIN_API_UNREACHABLE', `no API answers at ${base}: ${errorMessage(cause)}`, {
        cause,
        hint: "start `cqrs-migrate run` (or serve), or pass --url of the running API's admin listener (api.admin.host:api.admin.port)",
      });
    }
    const body: unknown = await response.json().catch(() => null);
    return { ok: response.ok, status: response.status, statusText: response.statusText, body };
  };
}

/** The first line printed for a refused request: `refused (<status>): <message>`. */
export function refusedLine(reply: AdminReply): string {
  return `refused (${reply.status}): ${(reply.body as AdminRefusal | null)?.message ?? reply.statusText}\n`;
}

function defaultAdminUrl(config: Config): string {
  const { host, port } = adminPlacementOf(config.api);
  if (port === 0)
    throw new ConfigError(
      'api.admin.port is 0 (any free port): there is no address to reach the admin API at',
      {
        hint: 'pass --url with the admin address the running API logged (adminUrl), or set api.admin.port',
      },
    );
  return `http://${hostOf(host)}:${port}`;
}

function hostOf(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
