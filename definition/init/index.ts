import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { readCatalog } from '../../connectors/catalog/index.js';
import { AdapterError } from '../../lib/errors.js';
import { renderDefinitionWithSummary } from './render.js';

export {
  type RenderOptions,
  type RenderSummary,
  renderDefinition,
  renderDefinitionWithSummary,
} from './render.js';

export interface InitOptions {
  /** File to write, e.g. 'migration.ts'. */
  out: string;
  /** Overwrite an existing file. */
  force?: boolean;
  /** Only these tables (default: every base table). */
  tables?: string[];
  /** Module the definition imports the public API from (default 'cqrs-migrate'). */
  importFrom?: string;
  /** Migration name (default: the database name). */
  name?: string;
}

export interface InitResult {
  /** Absolute path of the written file. */
  path: string;
  /** Captured tables. */
  tables: number;
  /** Views written (the active one and the commented-out starters). */
  views: number;
  /** Tables left out for want of a primary key. */
  keyless: string[];
  /**
   * MariaDB/MySQL: foreign keys whose ON DELETE / ON UPDATE action (CASCADE, SET NULL, SET
   * DEFAULT) changes captured rows without a binlog event, e.g.
   * "payment.rental_id → rental(rental_id): ON DELETE SET NULL". Those changes never reach the read
   * models: warn (reconcile detects the drift; a new snapshot repairs it; RESTRICT plus the
   * writer doing the cascade avoids it). The definition says so at each affected capture rule.
   */
  cascades: string[];
  /** Generated columns left out of the row schemas because CDC does not carry them ("film.length_hours"). */
  omittedColumns: string[];
}

/**
 * `cqrs-migrate init`: reads the legacy database's catalog and writes a starter definition.
 * It never replaces a file without `force`, since the file is where the user's edits live.
 */
export async function initDefinition(url: string, options: InitOptions): Promise<InitResult> {
  const path = resolve(options.out);
  const catalog = await readCatalog(url, options.tables === undefined ? {} : { tables: options.tables });
  const summary = renderDefinitionWithSummary(catalog, {
    importFrom: options.importFrom ?? 'cqrs-migrate',
    ...(options.name === undefined ? {} : { name: options.name }),
  });
  await mkdir(dirname(path), { recursive: true });
  try {
    // 'wx' fails if the file exists, with no window between a check and the write.
    await writeFile(path, summary.text, { flag: options.force === true ? 'w' : 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new AdapterError('INIT_FILE_EXISTS', `${path} already exists`, {
        cause: err,
        hint: 'pass --force to overwrite it, or --out to write elsewhere',
      });
    }
    throw new AdapterError('INIT_WRITE_FAILED', `cannot write ${path}: ${(err as Error).message}`, {
      cause: err,
      hint: 'check that the directory is writable',
    });
  }
  return {
    path,
    tables: summary.tables,
    views: summary.views,
    keyless: summary.keyless,
    cascades: summary.cascades,
    omittedColumns: summary.omittedColumns,
  };
}
