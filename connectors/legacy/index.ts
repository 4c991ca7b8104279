import type { LegacyDb, LegacyDialect } from '../../definition/endpoints.js';
import type { Logger } from '../../lib/logger.js';
import { openMysqlLegacyDb } from './mysql.js';
import { openPostgresLegacyDb } from './postgres.js';
import { parseLegacyUrl } from './url.js';

/**
 * The legacy database port, its adapter picked from the URL's scheme: mysql:// and mariadb://
 * open mysql2, postgres:// and postgresql:// open node-postgres. Both return values in the
 * form their change source delivers, so legacy answers compare with the read models.
 */

export { type LegacyDbOptions, type MysqlLegacyDb, openMysqlLegacyDb } from './mysql.js';
export { bindNamedParams, sqlFor } from './named-params.js';
export { openPostgresLegacyDb, type PostgresLegacyDb, type PostgresLegacyDbOptions } from './postgres.js';
export { type LegacyUrl, parseLegacyUrl, redactUrl, requireDatabase, schemaOf } from './url.js';

export interface OpenLegacyDbOptions {
  /** Connections the legacy read path may hold at once (legacy.poolSize). */
  poolSize?: number;
  logger?: Logger;
}

/** A LegacyDb with the pool behind it closed by `close`. */
export interface OpenedLegacyDb extends LegacyDb {
  readonly dialect: LegacyDialect;
  close(): Promise<void>;
}

/** Opens the legacy database `url` names; a URL of another scheme or without a database is a ConfigError. */
export function openLegacyDb(url: string, options: OpenLegacyDbOptions = {}): OpenedLegacyDb {
  return parseLegacyUrl(url).dialect === 'mysql'
    ? openMysqlLegacyDb(url, { poolSize: options.poolSize })
    : openPostgresLegacyDb(url, options);
}
