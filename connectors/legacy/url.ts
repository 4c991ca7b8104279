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
  /**
   * PostgreSQL: the schema whose tables are captured and which unqualified legacy SQL reads
   * (`?schema=app`, as Prisma and others spell it); absent: `public`. MySQL has none: its
   * database is the schema.
   */
  schema?: string;
}

/** The PostgreSQL schema of a parsed URL: `?schema=`, else `public`. */
export const schemaOf = (legacy: LegacyUrl): string => legacy.schema ?? 'public';

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

const SCHEMES: Readonly<Record<string, LegacyDialect>> = {
  'mysql:': 'mysql',
  'mariadb:': 'mysql',
  'postgres:': 'postgres',
  'postgresql:': 'postgres',
};

const DEFAULT_PORT: Readonly<Record<LegacyDialect, number>> = { mysql: 3306, postgres: 5432 };

/**
 * Database names the adapter accepts: letters (any script), digits, "_", "$" and "-"
 * (`billing-prod`), which every statement quotes. A name with quotes, slashes or spaces is far
 * more likely a typo than a database. At most 64 characters (MySQL) or 63 bytes (PostgreSQL).
 */
const DATABASE_NAME = /^[\p{L}\p{N}_$-]+$/u;
const DATABASE_NAME_LIMIT: Readonly<Record<LegacyDialect, (name: string) => boolean>> = {
  mysql: (name) => [...name].length <= 64,
  postgres: (name) => Buffer.byteLength(name) <= 63,
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
  const schema = schemaParam(url, parsed, dialect);
  const path = decode(url, parsed.pathname.replace(/^\//, ''), 'database name');
  if (path !== '' && !(DATABASE_NAME.test(path) && DATABASE_NAME_LIMIT[dialect](path))) {
    throw invalid(
      url,
      `invalid database name "${path}"`,
      `a database name of letters, digits, "_", "$" or "-", at most ${dialect === 'mysql' ? '64 characters' : '63 bytes'}`,
    );
  }
  return {
    dialect,
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: parsed.port === '' ? DEFAULT_PORT[dialect] : Number(parsed.port),
    user: decode(url, parsed.username, 'user'),
    password: decode(url, parsed.password, 'password'),
    database: path === '' ? undefined : path,
    ...(schema === undefined ? {} : { schema }),
  };
}

/**
 * `?schema=name` on a PostgreSQL URL; every other option is refused rather than ignored:
 * silently dropping a TLS option would connect in clear text.
 */
function schemaParam(url: string, parsed: URL, dialect: LegacyDialect): string | undefined {
  const names = [...parsed.searchParams.keys()];
  const others = names.filter((name) => name !== 'schema' || dialect !== 'postgres');
  if (parsed.hash !== '' || others.length > 0 || names.length > 1) {
    throw invalid(
      url,
      `URL options are not supported${others.length > 0 ? ` (${others.join(', ')})` : ''}`,
      dialect === 'postgres'
        ? 'the one option is ?schema=<name> (PostgreSQL); TLS and other driver options are not configurable yet'
        : 'remove them from legacy.url (MySQL/MariaDB: the database is the schema); TLS and other driver options are not configurable yet',
    );
  }
  const schema = parsed.searchParams.get('schema');
  if (schema === null) return undefined;
  if (!SCHEMA_NAME.test(schema))
    throw invalid(
      url,
      `invalid schema name "${schema}"`,
      'a schema name of letters, digits and "_", not starting with a digit, at most 63',
    );
  return schema;
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
