import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Database } from 'better-sqlite3';
import { ConfigError, errorMessage, StoreError } from '../lib/errors.js';
import { type Logger, silentLogger } from '../lib/logger.js';

/**
 * Applies numbered SQL files (NNN_name.sql) to a SQLite database once each, in order,
 * recording every applied file in `schema_migrations` so reopening a database is a no-op.
 * Used by the event store and the read-model stores, each with its own file list.
 */

const MIGRATION_FILE = /^(\d+)_[A-Za-z0-9_-]+\.sql$/;

/**
 * The folder holding this project's SQLite migrations. The build does not copy .sql files
 * into dist/, so compiled code falls back to the source tree's folder.
 */
export function sqliteMigrationsDir(...subfolders: string[]): string {
  const candidates = [
    new URL('./sqlite/', import.meta.url),
    new URL('../../migrations/sqlite/', import.meta.url),
  ];
  for (const candidate of candidates) {
    const dir = join(fileURLToPath(candidate), ...subfolders);
    if (existsSync(dir)) return dir;
  }
  throw new ConfigError(`SQLite migrations folder ${join('migrations/sqlite', ...subfolders)} not found`, {
    hint: 'run from a checkout or package that includes the migrations/ folder',
  });
}

/**
 * Migration files of a folder in numeric order: all NNN_*.sql directly in it, or only the
 * named ones (which must exist), so several stores can share one folder.
 */
export function migrationFiles(folder: string, names?: readonly string[]): string[] {
  const selected = names ?? readdirSync(folder).filter((name) => MIGRATION_FILE.test(name));
  const numbered = selected.map((name) => {
    const match = MIGRATION_FILE.exec(name);
    if (!match) throw new ConfigError(`migration file name ${name} is not NNN_name.sql`);
    const path = join(folder, name);
    if (!existsSync(path)) throw new ConfigError(`migration file ${path} does not exist`);
    return { number: Number(match[1]), path };
  });
  numbered.sort((a, b) => a.number - b.number);
  for (let i = 1; i < numbered.length; i++) {
    const [prev, cur] = [numbered[i - 1], numbered[i]];
    if (prev && cur && prev.number === cur.number)
      throw new ConfigError(`migrations ${prev.path} and ${cur.path} share number ${cur.number}`);
  }
  return numbered.map((m) => m.path);
}

const checksum = (sql: string) => createHash('sha256').update(sql).digest('hex');

/**
 * Applies the files not yet recorded, each in its own transaction with its record, so a
 * failing migration leaves the database at the previous one. Returns the names applied now.
 */
export function applyMigrations(
  db: Database,
  files: readonly string[],
  logger: Logger = silentLogger,
): string[] {
  const log = logger.child({ component: 'sqlite-migrations' });
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    name       TEXT PRIMARY KEY,
    checksum   TEXT NOT NULL,
    applied_at TEXT NOT NULL
  ) STRICT`);
  const lookup = db.prepare<[string], { checksum: string }>(
    'SELECT checksum FROM schema_migrations WHERE name = ?',
  );
  const record = db.prepare('INSERT INTO schema_migrations (name, checksum, applied_at) VALUES (?, ?, ?)');
  const applied: string[] = [];
  for (const file of files) {
    const name = basename(file);
    const sql = readFileSync(file, 'utf8');
    const sum = checksum(sql);
    const existing = lookup.get(name);
    if (existing) {
      // The database already has this step; an edited file would not be re-run, so say so.
      if (existing.checksum !== sum)
        log.warn({ migration: name }, 'applied migration file has changed since');
      continue;
    }
    try {
      db.transaction(() => {
        db.exec(sql);
        record.run(name, sum, new Date().toISOString());
      }).immediate();
    } catch (cause) {
      throw new StoreError('MIGRATION_FAILED', `SQLite migration ${name} failed: ${errorMessage(cause)}`, {
        cause,
      });
    }
    log.info({ migration: name }, 'applied migration');
    applied.push(name);
  }
  return applied;
}
