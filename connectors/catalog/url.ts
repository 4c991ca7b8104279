import { AdapterError } from '../../lib/errors.js';
import type { CatalogDialect } from './catalog.js';

/** What a database URL names: enough to open one connection with mysql2 or pg. */
export interface DatabaseUrl {
  dialect: CatalogDialect;
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

const DIALECTS: Readonly<Record<string, CatalogDialect>> = {
  'mysql:': 'mysql',
  'mariadb:': 'mysql',
  'postgres:': 'postgres',
  'postgresql:': 'postgres',
};

const DEFAULT_PORT: Readonly<Record<CatalogDialect, number>> = { mysql: 3306, postgres: 5432 };

/** The URL with its password replaced, for messages. */
export function redactDatabaseUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:@/]*:)[^@/]*@/i, '$1***@');
}

/**
 * Parses mysql://, mariadb://, postgres:// or postgresql:// URLs with a database path. Kept
 * local to the catalog reader (instead of the sources' config parsers) because `init` only
 * needs one plain connection, not a CDC source's settings.
 */
export function parseDatabaseUrl(url: string): DatabaseUrl {
  const hint = 'use mysql://user:password@host:port/database or postgres://user:password@host:port/database';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new AdapterError('CATALOG_URL_INVALID', `invalid database URL "${redactDatabaseUrl(url)}"`, {
      cause,
      hint,
    });
  }
  const dialect = DIALECTS[parsed.protocol];
  if (dialect === undefined) {
    throw new AdapterError(
      'CATALOG_URL_INVALID',
      `unsupported database URL scheme "${parsed.protocol}" in "${redactDatabaseUrl(url)}"`,
      { hint },
    );
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (database === '' || database.includes('/')) {
    throw new AdapterError(
      'CATALOG_URL_INVALID',
      `database URL "${redactDatabaseUrl(url)}" names no database`,
      {
        hint,
      },
    );
  }
  return {
    dialect,
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: parsed.port === '' ? DEFAULT_PORT[dialect] : Number(parsed.port),
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    database,
  };
}
