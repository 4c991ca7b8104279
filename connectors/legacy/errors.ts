import { AdapterError } from '../../lib/errors.js';
import { redactUrl } from './url.js';

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH']);

/**
 * A failed legacy query as an operator reads it: unreachable server, refused login (the
 * driver's `codes` for it), or the statement's own failure with its text in the hint.
 */
export function legacyQueryError(
  cause: unknown,
  sql: string,
  url: string,
  accessDeniedCodes: readonly string[],
): AdapterError {
  const code = (cause as { code?: unknown }).code;
  const message = cause instanceof Error ? cause.message : String(cause);
  if (typeof code === 'string' && NETWORK_CODES.has(code)) {
    return new AdapterError(
      'LEGACY_UNREACHABLE',
      `cannot reach the legacy database ${redactUrl(url)}: ${message}`,
      {
        cause,
        hint: 'is the server running and legacy.url (CQRS_LEGACY_URL) right?',
      },
    );
  }
  if (typeof code === 'string' && accessDeniedCodes.includes(code)) {
    return new AdapterError('LEGACY_ACCESS_DENIED', `the legacy database refused the login: ${message}`, {
      cause,
      hint: 'check the user, password and database in legacy.url (CQRS_LEGACY_URL)',
    });
  }
  return new AdapterError('LEGACY_QUERY_FAILED', `legacy query failed: ${message}`, {
    cause,
    hint: `the statement was: ${sql.length > 300 ? `${sql.slice(0, 300)}…` : sql}`,
  });
}
