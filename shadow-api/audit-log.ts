import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { AdapterError, errorMessage, StoreError } from '../lib/errors.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import { applyMigrations, migrationFiles, sqliteMigrationsDir } from '../migrations/sqlite.js';
import { type FlagDocument, resolveFlag } from './flags.js';

/**
 * The append-only record of flag changes: who (the admin token's name), when, the whole flag
 * document before and after, and the reason the operator gave. During an incident it answers
 * "who moved accounts.summary to new, and was it rolled back?".
 */

export interface AuditChange {
  actor: string;
  /** What was done, e.g. "flags.set", "flags.patch". */
  action: string;
  /** The flag key a patch changed; null for a whole-document change. */
  target: string | null;
  before: FlagDocument;
  after: FlagDocument;
  reason: string | null;
  /** Rollout steps: the stages and the gate figures the step was judged on. */
  details?: Record<string, unknown> | null;
}

export interface AuditEntry extends AuditChange {
  id: number;
  /** ISO-8601 UTC. */
  at: string;
}

export interface AuditQuery {
  /** Entries at or after this time. */
  since?: Date;
  /** Default 100. */
  limit?: number;
  /** The newest `limit` entries, newest first (a dashboard's tail); default oldest first. */
  newestFirst?: boolean;
}

/** Where the shadow API appends flag changes; `list` reads them back (oldest first unless asked otherwise). */
export interface AuditLog {
  append(change: AuditChange): AuditEntry;
  list(query?: AuditQuery): AuditEntry[];
}

interface AuditRow {
  id: number;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  before: string;
  after: string;
  reason: string | null;
  details: string | null;
}

/** The audit log in its own SQLite file (audit.db in the data directory), or ':memory:'. */
export class SqliteAuditLog implements AuditLog {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;

  constructor(path: string, logger: Logger = silentLogger) {
    try {
      if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
      this.db = new Database(path);
      if (path !== ':memory:') this.db.pragma('journal_mode = WAL');
      // FULL: an audit entry acknowledged to the operator survives a power loss.
      this.db.pragma('synchronous = FULL');
      applyMigrations(this.db, migrationFiles(sqliteMigrationsDir('audit')), logger);
    } catch (cause) {
      if (cause instanceof AdapterError) throw cause;
      throw new StoreError('AUDIT_OPEN_FAILED', `cannot open audit log ${path}: ${errorMessage(cause)}`, {
        cause,
      });
    }
    this.insert = this.db.prepare(
      `INSERT INTO audit (at, actor, action, target, before, after, reason, details)
       VALUES (@at, @actor, @action, @target, @before, @after, @reason, @details)`,
    );
  }

  append(change: AuditChange): AuditEntry {
    const at = new Date().toISOString();
    try {
      const info = this.insert.run({
        at,
        actor: change.actor,
        action: change.action,
        target: change.target,
        before: JSON.stringify(change.before),
        after: JSON.stringify(change.after),
        reason: change.reason,
        details: change.details ? JSON.stringify(change.details) : null,
      });
      return { id: Number(info.lastInsertRowid), at, ...change };
    } catch (cause) {
      throw new StoreError('AUDIT_APPEND_FAILED', `cannot append to the audit log: ${errorMessage(cause)}`, {
        cause,
      });
    }
  }

  list(query: AuditQuery = {}): AuditEntry[] {
    const rows = this.db
      .prepare(`SELECT * FROM audit WHERE at >= ? ORDER BY id ${query.newestFirst ? 'DESC' : 'ASC'} LIMIT ?`)
      .all(query.since?.toISOString() ?? '', query.limit ?? 100) as AuditRow[];
    return rows.map((row) => ({
      id: row.id,
      at: row.at,
      actor: row.actor,
      action: row.action,
      target: row.target,
      before: JSON.parse(row.before) as FlagDocument,
      after: JSON.parse(row.after) as FlagDocument,
      reason: row.reason,
      details: row.details === null ? null : (JSON.parse(row.details) as Record<string, unknown>),
    }));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/** The audit log could not record a change, so the change was undone. */
export class AuditUnavailableError extends AdapterError {
  readonly statusCode = 503;

  constructor(cause: unknown) {
    super(
      'AUDIT_UNAVAILABLE',
      `flag change undone: the audit log cannot record it (${errorMessage(cause)})`,
      {
        cause,
      },
    );
  }
}

/**
 * Applies a flag change and records it; when the record cannot be written the change is
 * undone, so no flag change is ever in force without its audit entry.
 */
export async function auditedChange(
  audit: AuditLog,
  change: Omit<AuditChange, 'after'>,
  apply: () => Promise<FlagDocument>,
  undo: (previous: FlagDocument) => Promise<unknown>,
): Promise<FlagDocument> {
  const after = await apply();
  try {
    audit.append({ ...change, after });
  } catch (err) {
    await undo(change.before);
    throw new AuditUnavailableError(err);
  }
  return after;
}

function modeText(flags: FlagDocument, key: string): string {
  const flag = resolveFlag(flags, key);
  return flag.percent === undefined ? flag.mode : `${flag.mode} ${flag.percent}%`;
}

/** What an entry changed, one phrase per key: "default legacy → shadow; accounts.summary legacy → new". */
export function describeChange(before: FlagDocument, after: FlagDocument): string {
  const parts: string[] = [];
  const defaults = (f: FlagDocument) =>
    f.defaultPercent === undefined ? f.defaultMode : `${f.defaultMode} ${f.defaultPercent}%`;
  if (defaults(before) !== defaults(after)) parts.push(`default ${defaults(before)} → ${defaults(after)}`);
  const keys = [...new Set([...Object.keys(before.endpoints), ...Object.keys(after.endpoints)])].sort();
  for (const key of keys) {
    const [was, now] = [modeText(before, key), modeText(after, key)];
    const listed = (f: FlagDocument) => Object.hasOwn(f.endpoints, key);
    if (was !== now || listed(before) !== listed(after)) parts.push(`${key} ${was} → ${now}`);
  }
  return parts.length === 0 ? 'no change' : parts.join('; ');
}

/** A rollout step says it in its own words (stages, forced); a flag change by its flags. */
function whatChanged(e: AuditEntry): string {
  const summary = e.details?.summary;
  if (typeof summary !== 'string') return describeChange(e.before, e.after);
  return e.details?.forced === true ? `${summary} (forced past failing gates)` : summary;
}

/** One line per entry, for `cqrs-migrate audit`. */
export function renderAuditText(entries: readonly AuditEntry[]): string {
  if (entries.length === 0) return 'No flag changes recorded.\n';
  return `${entries
    .map(
      (e) =>
        `${e.at}  ${e.actor}  ${e.action}${e.target === null ? '' : ` ${e.target}`}: ${whatChanged(e)}${e.reason === null ? '' : ` — ${e.reason}`}`,
    )
    .join('\n')}\n`;
}
