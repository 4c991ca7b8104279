import type Database from 'better-sqlite3';
import type { StoredEvent } from '../eventstore/ports.js';

/**
 * A projection into an embedded SQLite read model. The runner calls `apply` for each event of
 * a batch and `flush` once at the end, all inside one SQLite transaction that also writes the
 * checkpoint, so a read model is never ahead of or behind its checkpoint.
 */
export interface SqliteProjection {
  readonly name: string;
  readonly handles: ReadonlySet<string>;
  /** Migration files (numbered .sql) creating the projection's tables. */
  readonly migrations: readonly string[];
  apply(db: Database.Database, event: StoredEvent): void;
  /** Materialise what the batch's events made stale (e.g. recompute touched documents). */
  flush?(db: Database.Database): void;
  /** Empty every table (rebuild). */
  reset(db: Database.Database): void;
}
