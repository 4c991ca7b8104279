import type { FlagMode, ServeSide } from '../shadow-api/flags.js';
import type { Outcome } from './classify.js';
import type { Difference } from './diff.js';

/**
 * How far the read model is behind the legacy database, asked by the shadow comparison to
 * tell replication lag from a real difference. The pipeline implements it (e.g. by comparing
 * the binlog position of the legacy primary with the last position the projections applied).
 */
export interface FreshnessPort {
  /**
   * True when the read model has applied every change the legacy database had committed at
   * the moment of the call.
   */
  isCaughtUp(): Promise<boolean>;
  /**
   * Optional: resolves true as soon as the read model is caught up, false after `timeoutMs`.
   * When present, a re-check starts as soon as the projections catch up instead of after a
   * fixed delay.
   */
  waitForCatchUp?(timeoutMs: number): Promise<boolean>;
  /**
   * Optional: true when the read model is behind and has not moved toward the legacy position
   * for the configured stall time (a pipeline component down or wedged). A difference seen then
   * is a mismatch, not lag: the read model will not converge by itself.
   */
  isStalled?(): boolean;
}

/** One finished comparison, as handed to the recorder. */
export interface ComparisonRecord {
  recordedAt: Date;
  /** Flag key of the endpoint, e.g. "accounts.summary". */
  endpoint: string;
  /** Canonical form of the request, e.g. "accountId=7&limit=50". */
  requestKey: string;
  /** What the request is about (the canary key, e.g. an account id); null when none. */
  subject: string | null;
  mode: FlagMode | null;
  servedBy: ServeSide;
  outcome: Outcome;
  differences: Difference[];
  /** Differences the endpoint's compare rules ignored or tolerated (not in `differences`); 0 when absent. */
  ignored?: number;
  tolerated?: number;
  error: string | null;
  attempts: number;
  legacyMs: number | null;
  readModelMs: number | null;
}

export interface StoredComparison extends Omit<ComparisonRecord, 'recordedAt'> {
  id: number;
  recordedAt: string;
  /** Number of differences found; `differences` may hold fewer (the recorder caps them). */
  diffCount: number;
}

export interface LatencySummary {
  count: number;
  p50Ms: number | null;
  p99Ms: number | null;
}

export interface EndpointStats {
  endpoint: string;
  total: number;
  byOutcome: Record<Outcome, number>;
  latency: { legacy: LatencySummary; readModel: LatencySummary };
  /** Generalised paths ("items[*].amount") by how many mismatching/missing comparisons they appear in. */
  topPaths: PathStats[];
  /** The newest mismatching or missing comparisons, values of sensitive fields masked. */
  samples: StoredComparison[];
  /** Differences the endpoint's compare rules accepted, summed over its comparisons. */
  accepted: { ignored: number; tolerated: number };
}

export interface PathStats {
  path: string;
  count: number;
  /** ISO times of the first and last comparison in the window where the path differed. */
  firstSeen: string;
  lastSeen: string;
}

export interface ComparisonStats {
  generatedAt: string;
  since: string | null;
  until: string | null;
  endpoints: EndpointStats[];
}

export interface StatsOptions {
  /** Only comparisons recorded at or after this time. */
  since?: Date;
  /** Only comparisons recorded before this time. */
  until?: Date;
  /** Only these endpoints (a domain's); all when absent. */
  endpoints?: readonly string[];
  /** How many top paths per endpoint (default 10). */
  topPaths?: number;
  /** How many mismatching comparisons per endpoint to include as samples (default 3). */
  samples?: number;
}

export interface TimelineOptions {
  since: Date;
  until: Date;
  /** Width of one bucket, seconds. */
  bucketSeconds: number;
  /** Only these endpoints; all when absent. */
  endpoints?: readonly string[];
}

/** Comparisons of one endpoint recorded in one bucket; buckets without any are left out. */
export interface TimelineBucket {
  endpoint: string;
  /** Bucket number from `since`: the bucket starts at since + index × bucketSeconds. */
  index: number;
  byOutcome: Record<Outcome, number>;
}

export interface ListOptions {
  endpoint?: string;
  outcome?: Outcome;
  /** Newest first; default 100. */
  limit?: number;
}

/** Where comparisons are kept; the shadow API and the report only see this port. */
export interface ComparisonRecorder {
  /**
   * Stores one comparison, possibly batched with others: resolves once it is stored, rejects
   * when it cannot be. The reads below see every comparison accepted before them.
   */
  record(comparison: ComparisonRecord): Promise<void>;
  list(options?: ListOptions): StoredComparison[];
  stats(options?: StatsOptions): ComparisonStats;
  /** Outcome counts per endpoint and time bucket (the dashboard's match rate over time). */
  timeline(options: TimelineOptions): TimelineBucket[];
  close(): void;
}
