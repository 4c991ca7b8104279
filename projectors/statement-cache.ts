import type Database from 'better-sqlite3';

type Db = Database.Database;

const caches = new WeakMap<Db, Map<string, Database.Statement>>();

/**
 * The statement for `sql` on `db`, compiled once. better-sqlite3 compiles on every `prepare`,
 * and projections run the same few statements for every event: compiling them per event was the
 * largest cost of a snapshot's projection (bench/ throughput profile). Plucking statements are
 * cached apart, since pluck() changes the statement object.
 */
export function prepared(db: Db, sql: string, options: { pluck?: boolean } = {}): Database.Statement {
  let cache = caches.get(db);
  if (!cache) {
    cache = new Map();
    caches.set(db, cache);
  }
  const key = options.pluck ? `pluck:${sql}` : sql;
  let statement = cache.get(key);
  if (!statement) {
    statement = db.prepare(sql);
    if (options.pluck) statement.pluck();
    cache.set(key, statement);
  }
  return statement;
}
