import Database from 'better-sqlite3';
import type { Logger } from '../../lib/logger.js';
import { applyMigrations, migrationFiles, sqliteMigrationsDir } from '../../migrations/sqlite.js';

/** How much of read-models.db the projecting connection maps into memory (SQLite mmap_size). */
const WRITE_MMAP_BYTES = 1024 * 1024 * 1024;

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
  // Pages read from a mapping instead of copied by a pread each (writes still go through the
  // WAL as before): a full replay's system CPU fell ~10% and its CPU per event 3-4% (small scale).
  // Readers map the same first GiB (READ_MMAP_BYTES).
  db.pragma(`mmap_size = ${WRITE_MMAP_BYTES}`);
  applyMigrations(db, migrationFiles(sqliteMigrationsDir('read-models')), logger);
  return db;
}
