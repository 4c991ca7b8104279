import { AdapterError } from '../../lib/errors.js';
import { parseLegacyUrl, requireDatabase, schemaOf } from '../legacy/url.js';
import type { CatalogDialect } from './catalog.js';

/** What a database URL names: enough to open one connection with mysql2 or pg. */
export interface DatabaseUrl {
  dialect: CatalogDialect;
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** PostgreSQL: the schema whose tables are read (`?schema=`, else public). */
  schema: string;
}

/**
 * The legacy URL's parse (connectors/legacy/url.ts, the one parser of it), with the database
 * the catalog needs; its problems are this reader's CATALOG_URL_INVALID.
 */
export function parseDatabaseUrl(url: string): DatabaseUrl {
  try {
    const legacy = parseLegacyUrl(url);
    return {
      dialect: legacy.dialect,
      host: legacy.host,
      port: legacy.port,
      user: legacy.user,
      password: legacy.password,
      database: requireDatabase(url, legacy),
      schema: schemaOf(legacy),
    };
  } catch (cause) {
    const { message, hint } = cause as AdapterError;
    throw new AdapterError('CATALOG_URL_INVALID', message, {
      cause,
      ...(hint === undefined ? {} : { hint }),
    });
  }
}
