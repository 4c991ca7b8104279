import type { Config } from '../lib/config.js';
import { AdapterError, errorMessage } from '../lib/errors.js';
import { loadAdminAuth, REASON_HEADER } from '../shadow-api/admin-auth.js';

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
 * Requests against `url` (default http://<api.host>:<api.port>) with the first configured admin
 * token; an API that does not answer is an AdapterError with the fix.
 */
export function adminClient(
  config: Config,
  url: string | undefined,
): (request: AdminRequest) => Promise<AdminReply> {
  const base = (url ?? `http://${hostOf(config.api.host)}:${config.api.port}`).replace(/\/$/, '');
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
        hint: 'start `cqrs-migrate run` (or serve), or pass --url of the running API',
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

function hostOf(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
