import type { LegacyDialect } from '../../definition/endpoints.js';
import { ConfigError } from '../../lib/errors.js';

/**
 * The legacy database's URL (`legacy.url`): its scheme picks the dialect, and with it the query
 * adapter, the change source and the freshness probe. This is the one parser of that URL in the
 * core; everything that connects to the legacy database starts here.
 */

export interface LegacyUrl {
  dialect: LegacyDialect;
  host: string;
  port: number;
  user: string;
  /** '' when the URL has none. */
  password: string;
  /** Absent when the URL has no path; callers that need one say so (`requireDatabase`). */
  database: string | undefined;
}

const SCHEMES: Readonly<Record<string, LegacyDialect>> = {
  'mysql:': 'mysql',
  'mariadb:': 'mysql',
  'postgres:': 'postgres',
  'postgresql:': 'postgres',
};

const DEFAULT_PORT: Readonly<Record<LegacyDialect, number>> = { mysql: 3306, postgres: 5432 };

/**
 * Database names the adapter accepts. MySQL: what an unquoted identifier allows (the adapter
 * quotes it anyway, but a name with quotes or slashes is far more likely a typo than a
 * database). PostgreSQL: a plain lower-case-folding-free identifier, which the pgoutput reader
 * needs to name its publication and read the slot's database.
 */
const DATABASE_NAME: Readonly<Record<LegacyDialect, RegExp>> = {
  mysql: /^[A-Za-z0-9_$]{1,64}$/,
  postgres: /^[A-Za-z_][A-Za-z0-9_]{0,62}$/,
};

const EXPECTED =
  'expected mysql://user:password@host:port/database (mariadb:// too) or postgres://user:password@host:port/database (postgresql:// too)';

/** The URL with its password replaced, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*:)[^@/]*@/i, '$1***@');
}

function invalid(url: string, reason: string, hint?: string): ConfigError {
  return new ConfigError(`invalid legacy database URL "${redactUrl(url)}": ${reason}`, {
    hint:
      hint ?? 'set legacy.url (CQRS_LEGACY_URL) to mysql://user:password@host:port/database or postgres://…',
  });
}

function decode(url: string, part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch (cause) {
    throw new ConfigError(
      `invalid legacy database URL "${redactUrl(url)}": bad percent-encoding in the ${what}`,
      {
        cause,
      },
    );
  }
}

/**
 * Parses mysql://, mariadb://, postgres:// and postgresql:// URLs; throws ConfigError naming
 * what is wrong (never echoing the password). Query options (`?sslmode=…`) are refused rather
 * than ignored: silently dropping a TLS option would connect in clear text.
 */
export function parseLegacyUrl(url: string): LegacyUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new ConfigError(`invalid legacy database URL "${redactUrl(url)}": ${EXPECTED}`, { cause });
  }
  const dialect = SCHEMES[parsed.protocol];
  if (dialect === undefined) {
    throw invalid(url, `unsupported scheme "${parsed.protocol.replace(/:$/, '')}"; ${EXPECTED}`);
  }
  if (parsed.hostname === '') throw invalid(url, `no host; ${EXPECTED}`);
  if (parsed.search !== '' || parsed.hash !== '') {
    throw invalid(
      url,
      'URL options (?… or #…) are not supported',
      'remove them from legacy.url; TLS and other driver options are not configurable yet',
    );
  }
  const path = decode(url, parsed.pathname.replace(/^\//, ''), 'database name');
  if (path !== '' && !DATABASE_NAME[dialect].test(path)) {
    throw invalid(
      url,
      `invalid database name "${path}"`,
      dialect === 'mysql'
        ? 'a database name of 1-64 letters, digits, "_" or "$"'
        : 'a database name of letters, digits and "_", not starting with a digit, at most 63',
    );
  }
  return {
    dialect,
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: parsed.port === '' ? DEFAULT_PORT[dialect] : Number(parsed.port),
    user: decode(url, parsed.username, 'user'),
    password: decode(url, parsed.password, 'password'),
    database: path === '' ? undefined : path,
  };
}

/**
 * The URL's database, which reading changes and serving legacy queries both need: there is no
 * default database, so a URL without one is a ConfigError saying where to put it.
 */
export function requireDatabase(url: string, legacy: LegacyUrl = parseLegacyUrl(url)): string {
  if (legacy.database !== undefined) return legacy.database;
  throw new ConfigError(`the legacy database URL "${redactUrl(url)}" names no database`, {
    hint: `add the database as the URL's path, e.g. ${legacy.dialect === 'mysql' ? 'mysql' : 'postgres'}://user:password@${legacy.host}:${legacy.port}/your_database`,
  });
}
