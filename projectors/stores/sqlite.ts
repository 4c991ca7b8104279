import Database from 'better-sqlite3';
import type { Logger } from '../../lib/logger.js';
import { applyMigrations, migrationFiles, sqliteMigrationsDir } from '../../migrations/sqlite.js';

/**
 * Opens (creating when needed) the embedded read-model database: the projector checkpoints;
 * the read models' own tables are created by SqliteReadModels from the definition.
 */
export function openReadModelDb(path: string, logger?: Logger): Database.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  // 64 MiB of pages instead of SQLite's 2 MiB: a replay or a snapshot writes rows and documents
  // all over tables of hundreds of MB, and re-reading their index pages from the OS cost ~10% of
  // a full replay's CPU.
  db.pragma('cache_size = -65536');
  applyMigrations(db, migrationFiles(sqliteMigrationsDir('read-models')), logger);
  return db;
}
