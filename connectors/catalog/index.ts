import { AdapterError, errorMessage } from '../../lib/errors.js';
import { redactUrl } from '../legacy/url.js';
import type { Catalog, ReadCatalogOptions } from './catalog.js';
import { readMysqlCatalog } from './mysql.js';
import { readPostgresCatalog } from './postgres.js';
import { parseDatabaseUrl } from './url.js';

export type {
  Catalog,
  CatalogColumn,
  CatalogDialect,
  CatalogForeignKey,
  CatalogTable,
  ColumnKind,
  ReadCatalogOptions,
} from './catalog.js';
export { type DatabaseUrl, parseDatabaseUrl } from './url.js';

/**
 * Reads the tables of the legacy database `url` names (mysql://, mariadb://, postgres://,
 * postgresql://): base tables only, with their columns, primary keys and foreign keys. It only
 * reads the catalog (information_schema / pg_catalog), never table data.
 */
export async function readCatalog(url: string, options: ReadCatalogOptions = {}): Promise<Catalog> {
  const target = parseDatabaseUrl(url);
  try {
    return target.dialect === 'mysql'
      ? await readMysqlCatalog(target, options)
      : await readPostgresCatalog(target, options);
  } catch (err) {
    if (err instanceof AdapterError) throw err;
    throw new AdapterError(
      'CATALOG_READ_FAILED',
      `cannot read the catalog of ${redactUrl(url)}: ${errorMessage(err)}`,
      { cause: err, hint: 'the user needs read access to information_schema / pg_catalog of that database' },
    );
  }
}
