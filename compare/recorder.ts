import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { AdapterError, StoreError } from '../lib/errors.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import { SensitiveFields } from '../lib/masking.js';
import { pruneOldest, type RetentionPolicy } from '../lib/retention.js';
import { applyMigrations, migrationFiles, sqliteMigrationsDir } from '../migrations/sqlite.js';
import { type Outcome, zeroOutcomeCounts } from './classify.js';
import { type Difference, pathPattern } from './diff.js';
import type {
  ComparisonRecord,
  ComparisonRecorder,
  ComparisonStats,
  EndpointStats,
  LatencySummary,
  ListOptions,
  PathStats,
  StatsOptions,
  StoredComparison,
  TimelineBucket,
  TimelineOptions,
} from './ports.js';
import { nearestRankIndex } from './report.js';

export interface SqliteRecorderOptions {
  /** SQLite file, or ':memory:'. */
  path: string;
  /** Differences kept per comparison (all are counted). Default 50. */
  maxStoredDifferences?: number;
  /** Longer JSON values in a stored difference are cut to a preview string. Default 300. */
  maxValueChars?: number;
  /** Sensitive answer fields by endpoint key (Migration.sensitiveFields): stored masked. */
  sensitive?: ReadonlyMap<string, readonly string[]>;
  logger?: Logger;
  /** Longest a recorded comparison waits for its batch to be written. Default 5. */
  flushIntervalMs?: number;
  /** A batch this large is written at once. Default 500. */
  maxBatch?: number;
}

/** The parameters of one comparisons row insert. */
interface InsertRow {
  recordedAt: string;
  endpoint: string;
  requestKey: string;
  subject: string | null;
  mode: string | null;
  servedBy: string;
  outcome: string;
  attempts: number;
  diffCount: number;
  diffJson: string;
  error: string | null;
  legacyMs: number | null;
  readModelMs: number | null;
  ignored: number;
  tolerated: number;
}

/** A comparison accepted by record() and not yet written. */
interface PendingComparison {
  row: InsertRow;
  paths: readonly string[];
  endpoint: string;
  resolve(): void;
  reject(err: StoreError): void;
}

interface ComparisonRow {
  id: number;
  recorded_at: string;
  endpoint: string;
  request_key: string;
  subject: string | null;
  mode: string | null;
  served_by: string;
  outcome: string;
  attempts: number;
  diff_count: number;
  diff_json: string;
  error: string | null;
  legacy_ms: number | null;
  read_model_ms: number | null;
}

/** Comparison records in SQLite: one row per comparison plus the generalised paths that differed. */
export class SqliteComparisonRecorder implements ComparisonRecorder {
  private readonly db: Database.Database;
  private readonly maxStoredDifferences: number;
  private readonly maxValueChars: number;
  private readonly sensitive: ReadonlyMap<string, SensitiveFields>;
  private readonly flushIntervalMs: number;
  private readonly maxBatch: number;
  private readonly insertComparison: Database.Statement;
  private readonly insertPath: Database.Statement;
  /** Comparisons accepted and not yet written, oldest first. */
  private buffer: PendingComparison[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  /** A batch of comparisons and their paths, in one transaction. */
  private readonly writeBatch: (batch: readonly PendingComparison[]) => void;

  constructor(options: SqliteRecorderOptions) {
    this.maxStoredDifferences = options.maxStoredDifferences ?? 50;
    this.maxValueChars = options.maxValueChars ?? 300;
    this.flushIntervalMs = options.flushIntervalMs ?? 5;
    this.maxBatch = options.maxBatch ?? 500;
    this.sensitive = new Map(
      [...(options.sensitive ?? new Map<string, readonly string[]>())].map(([endpoint, paths]) => [
        endpoint,
        new SensitiveFields(paths),
      ]),
    );
    try {
      if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
      this.db = new Database(options.path);
      if (options.path !== ':memory:') this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      applyMigrations(
        this.db,
        migrationFiles(sqliteMigrationsDir('compare')),
        options.logger ?? silentLogger,
      );
    } catch (cause) {
      if (cause instanceof AdapterError) throw cause;
      throw new StoreError('COMPARE_STORE_OPEN_FAILED', `cannot open comparison store ${options.path}`, {
        cause,
      });
    }
    this.insertComparison = this.db.prepare(
      `INSERT INTO comparisons (recorded_at, endpoint, request_key, subject, mode, served_by, outcome,
         attempts, diff_count, diff_json, error, legacy_ms, read_model_ms, ignored_count, tolerated_count)
       VALUES (@recordedAt, @endpoint, @requestKey, @subject, @mode, @servedBy, @outcome,
         @attempts, @diffCount, @diffJson, @error, @legacyMs, @readModelMs, @ignored, @tolerated)`,
    );
    this.insertPath = this.db.prepare(
      'INSERT OR IGNORE INTO comparison_paths (comparison_id, path) VALUES (?, ?)',
    );
    // Built once: they run at every flush.
    this.writeBatch = this.db.transaction((batch: readonly PendingComparison[]) => {
      for (const pending of batch) this.insert(pending);
    });
  }

  /**
   * Accepts one comparison; it is written with the others accepted within `flushIntervalMs`, in
   * one transaction: a transaction per comparison on the serving thread was most of what shadow
   * mode cost beyond legacy mode. Resolves once it is stored, rejects with a StoreError when it
   * cannot be. Every read of this recorder writes what is pending first.
   */
  record(c: ComparisonRecord): Promise<void> {
    let row: InsertRow;
    try {
      row = this.rowOf(c);
    } catch (cause) {
      return Promise.reject(recordFailed(c.endpoint, cause));
    }
    return new Promise<void>((resolve, reject) => {
      this.buffer.push({ row, paths: pathsOf(c), endpoint: c.endpoint, resolve, reject });
      if (this.buffer.length >= this.maxBatch) this.flush();
      else this.flushTimer ??= setTimeout(() => this.flush(), this.flushIntervalMs);
    });
  }

  /**
   * Writes the pending comparisons now. Never throws: a comparison that cannot be written
   * rejects its own record() promise, and the others of its batch are still written.
   */
  flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const batch = this.buffer;
    if (batch.length === 0) return;
    this.buffer = [];
    try {
      this.writeBatch(batch);
    } catch (cause) {
      if (isRowError(cause)) for (const pending of batch) this.writeAlone(pending);
      else for (const pending of batch) pending.reject(recordFailed(pending.endpoint, cause));
      return;
    }
    for (const pending of batch) pending.resolve();
  }

  list(options: ListOptions = {}): StoredComparison[] {
    this.flush();
    const where: string[] = [];
    const params: unknown[] = [];
    if (options.endpoint !== undefined) {
      where.push('endpoint = ?');
      params.push(options.endpoint);
    }
    if (options.outcome !== undefined) {
      where.push('outcome = ?');
      params.push(options.outcome);
    }
    const sql = `SELECT * FROM comparisons ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY id DESC LIMIT ?`;
    const rows = this.db.prepare(sql).all(...params, options.limit ?? 100) as ComparisonRow[];
    return rows.map(toStored);
  }

  stats(options: StatsOptions = {}): ComparisonStats {
    this.flush();
    const window = windowOf(options);
    const counts = this.db
      .prepare(
        `SELECT endpoint, outcome, COUNT(*) AS n, SUM(ignored_count) AS ignored, SUM(tolerated_count) AS tolerated
         FROM comparisons c WHERE ${window.where}
         GROUP BY endpoint, outcome ORDER BY endpoint`,
      )
      .all(window.params) as {
      endpoint: string;
      outcome: Outcome;
      n: number;
      ignored: number;
      tolerated: number;
    }[];
    const byEndpoint = new Map<string, EndpointStats>();
    for (const row of counts) {
      let entry = byEndpoint.get(row.endpoint);
      if (entry === undefined) {
        entry = {
          endpoint: row.endpoint,
          total: 0,
          byOutcome: zeroOutcomeCounts(),
          latency: { legacy: emptyLatency(), readModel: emptyLatency() },
          topPaths: [],
          samples: [],
          accepted: { ignored: 0, tolerated: 0 },
        };
        byEndpoint.set(row.endpoint, entry);
      }
      entry.byOutcome[row.outcome] += row.n;
      entry.total += row.n;
      entry.accepted.ignored += row.ignored;
      entry.accepted.tolerated += row.tolerated;
    }
    for (const entry of byEndpoint.values()) {
      entry.latency.legacy = this.latency(entry.endpoint, 'legacy_ms', window);
      entry.latency.readModel = this.latency(entry.endpoint, 'read_model_ms', window);
      entry.topPaths = this.topPaths(entry.endpoint, window, options.topPaths ?? 10);
      entry.samples = this.samples(entry.endpoint, window, options.samples ?? 3);
    }
    return {
      generatedAt: new Date().toISOString(),
      since: options.since?.toISOString() ?? null,
      until: options.until?.toISOString() ?? null,
      endpoints: [...byEndpoint.values()],
    };
  }

  timeline(options: TimelineOptions): TimelineBucket[] {
    this.flush();
    const window = windowOf(options);
    const rows = this.db
      .prepare(
        `SELECT endpoint, CAST((julianday(c.recorded_at) - julianday(@since)) * 86400 / @bucketSeconds AS INTEGER)
           AS bucket, outcome, COUNT(*) AS n
         FROM comparisons c WHERE ${window.where}
         GROUP BY endpoint, bucket, outcome ORDER BY endpoint, bucket`,
      )
      .all({ ...window.params, bucketSeconds: options.bucketSeconds }) as {
      endpoint: string;
      bucket: number;
      outcome: Outcome;
      n: number;
    }[];
    const buckets: TimelineBucket[] = [];
    for (const row of rows) {
      let last = buckets.at(-1);
      if (last?.endpoint !== row.endpoint || last.index !== row.bucket) {
        last = { endpoint: row.endpoint, index: row.bucket, byOutcome: zeroOutcomeCounts() };
        buckets.push(last);
      }
      last.byOutcome[row.outcome] += row.n;
    }
    return buckets;
  }

  /** Comparisons of `endpoints` recorded at or after `since`, by outcome (the rollout gates' evidence). */
  outcomeCounts(endpoints: readonly string[], since: Date): Record<Outcome, number> {
    const counts = zeroOutcomeCounts();
    if (endpoints.length === 0) return counts;
    this.flush();
    const rows = this.db
      .prepare(
        `SELECT outcome, COUNT(*) AS n FROM comparisons
         WHERE endpoint IN (${endpoints.map(() => '?').join(', ')}) AND recorded_at >= ?
         GROUP BY outcome`,
      )
      .all(...endpoints, since.toISOString()) as { outcome: Outcome; n: number }[];
    for (const row of rows) counts[row.outcome] += row.n;
    return counts;
  }

  /** When `endpoints` last had a mismatching or missing answer, or null when never (within retention). */
  lastMismatchAt(endpoints: readonly string[]): Date | null {
    if (endpoints.length === 0) return null;
    this.flush();
    const at = this.db
      .prepare(
        `SELECT MAX(recorded_at) FROM comparisons
         WHERE endpoint IN (${endpoints.map(() => '?').join(', ')}) AND outcome IN ('mismatch', 'missing')`,
      )
      .pluck()
      .get(...endpoints) as string | null;
    return at === null ? null : new Date(at);
  }

  /** Deletes comparisons (and their paths) beyond the retention policy; returns how many. */
  prune(policy: RetentionPolicy, now?: Date): Promise<number> {
    this.flush();
    return pruneOldest(this.db, 'comparisons', policy, now);
  }

  close(): void {
    this.flush();
    if (this.db.open) this.db.close();
  }

  /** The row of a comparison as stored: differences capped, sensitive values masked. */
  private rowOf(c: ComparisonRecord): InsertRow {
    const fields = this.sensitive.get(c.endpoint);
    const stored = c.differences
      .slice(0, this.maxStoredDifferences)
      .map((d) => this.capValues(fields === undefined ? d : maskDifference(d, fields)));
    return {
      recordedAt: c.recordedAt.toISOString(),
      endpoint: c.endpoint,
      requestKey: c.requestKey,
      subject: c.subject,
      mode: c.mode,
      servedBy: c.servedBy,
      outcome: c.outcome,
      attempts: c.attempts,
      diffCount: c.differences.length,
      diffJson: JSON.stringify(stored),
      error: c.error,
      legacyMs: c.legacyMs,
      readModelMs: c.readModelMs,
      ignored: c.ignored ?? 0,
      tolerated: c.tolerated ?? 0,
    };
  }

  private insert(pending: PendingComparison): void {
    const id = this.insertComparison.run(pending.row).lastInsertRowid;
    for (const path of pending.paths) this.insertPath.run(id, path);
  }

  /** Writes one comparison of a failed batch: only one that fails alone is lost. */
  private writeAlone(pending: PendingComparison): void {
    try {
      this.writeBatch([pending]);
    } catch (cause) {
      pending.reject(recordFailed(pending.endpoint, cause));
      return;
    }
    pending.resolve();
  }

  private latency(endpoint: string, column: 'legacy_ms' | 'read_model_ms', window: Window): LatencySummary {
    const base = `FROM comparisons c WHERE c.endpoint = @endpoint AND ${column} IS NOT NULL AND ${window.where}`;
    const params = { ...window.params, endpoint };
    const { n } = this.db.prepare(`SELECT COUNT(*) AS n ${base}`).get(params) as { n: number };
    if (n === 0) return emptyLatency();
    const at = this.db.prepare(`SELECT ${column} AS v ${base} ORDER BY ${column} LIMIT 1 OFFSET @offset`);
    const value = (p: number) => (at.get({ ...params, offset: nearestRankIndex(p, n) }) as { v: number }).v;
    return { count: n, p50Ms: value(50), p99Ms: value(99) };
  }

  private topPaths(endpoint: string, window: Window, limit: number): PathStats[] {
    return this.db
      .prepare(
        `SELECT p.path AS path, COUNT(*) AS count, MIN(c.recorded_at) AS firstSeen, MAX(c.recorded_at) AS lastSeen
         FROM comparison_paths p JOIN comparisons c ON c.id = p.comparison_id
         WHERE c.endpoint = @endpoint AND c.outcome IN ('mismatch', 'missing') AND ${window.where}
         GROUP BY p.path ORDER BY count DESC, p.path LIMIT @limit`,
      )
      .all({ ...window.params, endpoint, limit }) as PathStats[];
  }

  /** The newest mismatching comparisons, as stored (sensitive values already masked). */
  private samples(endpoint: string, window: Window, limit: number): StoredComparison[] {
    if (limit === 0) return [];
    const rows = this.db
      .prepare(
        `SELECT * FROM comparisons c
         WHERE c.endpoint = @endpoint AND c.outcome IN ('mismatch', 'missing') AND ${window.where}
         ORDER BY c.id DESC LIMIT @limit`,
      )
      .all({ ...window.params, endpoint, limit }) as ComparisonRow[];
    return rows.map(toStored);
  }

  private capValues(d: Difference): Difference {
    const out: Difference = { path: d.path, kind: d.kind };
    if ('legacy' in d) out.legacy = this.capValue(d.legacy);
    if ('readModel' in d) out.readModel = this.capValue(d.readModel);
    return out;
  }

  private capValue(value: unknown): unknown {
    const json = JSON.stringify(value);
    if (json === undefined || json.length <= this.maxValueChars) return value;
    return `${json.slice(0, this.maxValueChars)}… (${json.length} chars)`;
  }
}

function recordFailed(endpoint: string, cause: unknown): StoreError {
  return new StoreError('COMPARE_RECORD_FAILED', `cannot record comparison of ${endpoint}`, { cause });
}

/**
 * Whether a batch failed because of one of its rows (a constraint): then the others are worth
 * writing alone. A store that is busy, full, read-only or closed fails them all the same, and
 * a retry each would wait out the busy timeout once per comparison on the serving thread.
 */
function isRowError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_CONSTRAINT') || code === 'SQLITE_TOOBIG');
}

/** Every generalised path that differed, not only the stored ones, so the report's ranking is complete. */
function pathsOf(c: ComparisonRecord): string[] {
  if (c.differences.length === 0) return [];
  return [...new Set(c.differences.map((d) => pathPattern(d.path)))];
}

/** The difference as stored: values of sensitive fields masked, the path kept for the report. */
function maskDifference(d: Difference, fields: SensitiveFields): Difference {
  const out: Difference = { path: d.path, kind: d.kind };
  if ('legacy' in d) out.legacy = fields.mask(d.path, d.legacy);
  if ('readModel' in d) out.readModel = fields.mask(d.path, d.readModel);
  return out;
}

interface Window {
  /** SQL condition over the comparisons table aliased `c`. */
  where: string;
  params: Record<string, string>;
}

/** The report's window: time bounds and, for a domain, its endpoints. */
function windowOf(options: StatsOptions): Window {
  const where: string[] = ['1 = 1'];
  const params: Record<string, string> = {};
  if (options.since !== undefined) {
    where.push('c.recorded_at >= @since');
    params.since = options.since.toISOString();
  }
  if (options.until !== undefined) {
    where.push('c.recorded_at < @until');
    params.until = options.until.toISOString();
  }
  if (options.endpoints !== undefined) {
    const names = options.endpoints.map((e, i) => {
      params[`e${i}`] = e;
      return `@e${i}`;
    });
    where.push(names.length === 0 ? '0 = 1' : `c.endpoint IN (${names.join(', ')})`);
  }
  return { where: where.join(' AND '), params };
}

function emptyLatency(): LatencySummary {
  return { count: 0, p50Ms: null, p99Ms: null };
}

function toStored(row: ComparisonRow): StoredComparison {
  return {
    id: row.id,
    recordedAt: row.recorded_at,
    endpoint: row.endpoint,
    requestKey: row.request_key,
    subject: row.subject,
    mode: row.mode as StoredComparison['mode'],
    servedBy: row.served_by as StoredComparison['servedBy'],
    outcome: row.outcome as Outcome,
    attempts: row.attempts,
    diffCount: row.diff_count,
    differences: JSON.parse(row.diff_json) as Difference[],
    error: row.error,
    legacyMs: row.legacy_ms,
    readModelMs: row.read_model_ms,
  };
}
