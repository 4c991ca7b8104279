import { z } from 'zod';
import { OUTCOMES, type Outcome, zeroOutcomeCounts } from '../compare/classify.js';
import type { Difference } from '../compare/diff.js';
import type { ComparisonRecorder, PathStats } from '../compare/ports.js';
import type { QueueReport } from '../compare/report.js';
import type { Migration } from '../definition/migration.js';
import type { TargetStatus } from '../rollout/controller.js';
import { decided, matchRate } from '../rollout/gates.js';
import type { AuditLog } from './audit-log.js';
import { type EndpointFlag, type FlagDocument, resolveFlag } from './flags.js';
import { type HealthPort, type Readiness, readinessOf } from './health.js';

/**
 * What the dashboard shows in one answer (GET /admin/overview): per domain and endpoint the
 * flag, the comparisons of the window (counts, match rate per time bucket, the field paths that
 * differ and a few masked samples), the rollout targets with their gates, the pipeline's lag
 * and dead letters, and the newest audit entries. Everything is read from the stores the rest
 * of the API already keeps; nothing here is counted twice.
 */

export const overviewQuerySchema = z.strictObject({
  /** How far back the comparisons reach, seconds. */
  windowSeconds: z.coerce
    .number()
    .int()
    .min(60)
    .max(7 * 86_400)
    .default(3600),
  /** Time buckets the window is cut into for the match rate over time. */
  buckets: z.coerce.number().int().min(1).max(120).default(30),
  /** Differing field paths per endpoint. */
  paths: z.coerce.number().int().min(1).max(50).default(10),
  /** Masked mismatch samples per endpoint. */
  samples: z.coerce.number().int().min(0).max(10).default(3),
  /** Newest audit entries. */
  audit: z.coerce.number().int().min(0).max(200).default(20),
});
export type OverviewQuery = z.infer<typeof overviewQuerySchema>;

export interface TimelinePoint {
  /** ISO start of the bucket. */
  start: string;
  /** Decided comparisons (match, mismatch, missing) and how many matched. */
  decided: number;
  matched: number;
  /** Share matched; null when the bucket holds no decided comparison. */
  matchRate: number | null;
}

export interface MismatchSample {
  id: number;
  recordedAt: string;
  requestKey: string;
  outcome: Outcome;
  /** All differences found; `differences` may hold fewer (the recorder caps them). */
  diffCount: number;
  /** As stored: values of sensitive fields masked. */
  differences: Difference[];
}

export interface EndpointOverview {
  key: string;
  route: string;
  flag: EndpointFlag;
  /** Which flag entry decides: the endpoint's own, its domain's, or the document's default. */
  flagFrom: 'endpoint' | 'domain' | 'default';
  byOutcome: Record<Outcome, number>;
  matchRate: number | null;
  timeline: TimelinePoint[];
  paths: PathStats[];
  samples: MismatchSample[];
}

export interface AuditLine {
  id: number;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  reason: string | null;
  /** The rollout step ("shadow → canary 10%") or, for a flag change, the new mode of the target. */
  summary: string;
  forced: boolean;
}

export interface Overview {
  generatedAt: string;
  windowSeconds: number;
  bucketSeconds: number;
  domains: { domain: string; endpoints: EndpointOverview[] }[];
  /** Null when the API runs without a rollout controller (flags only). */
  rollout: TargetStatus[] | null;
  health: Readiness & { maxLagSeconds: number | null; deadLetters: number | null };
  queue: QueueReport;
  audit: AuditLine[];
}

export interface OverviewSources {
  migration: Migration;
  flags: { get(): FlagDocument };
  recorder: Pick<ComparisonRecorder, 'stats' | 'timeline'>;
  audit: AuditLog;
  rollout?: { status(): TargetStatus[] } | undefined;
  health?: HealthPort | undefined;
  queue: { stats(): QueueReport };
}

function flagSource(flags: FlagDocument, key: string, domain: string): EndpointOverview['flagFrom'] {
  if (Object.hasOwn(flags.endpoints, key)) return 'endpoint';
  return Object.hasOwn(flags.endpoints, domain) ? 'domain' : 'default';
}

function describeFlag(flags: FlagDocument, target: string | null): string {
  if (target === null) return `default ${flags.defaultMode}`;
  const flag = resolveFlag(flags, target);
  return flag.percent === undefined ? flag.mode : `${flag.mode} ${flag.percent}%`;
}

function auditLine(entry: ReturnType<AuditLog['list']>[number]): AuditLine {
  const summary = entry.details?.summary;
  return {
    id: entry.id,
    at: entry.at,
    actor: entry.actor,
    action: entry.action,
    target: entry.target,
    reason: entry.reason,
    summary: typeof summary === 'string' ? summary : `→ ${describeFlag(entry.after, entry.target)}`,
    forced: entry.details?.forced === true,
  };
}

/** The timeline of one endpoint with every bucket present, empty ones included. */
function denseTimeline(
  counts: ReadonlyMap<number, Record<Outcome, number>>,
  since: Date,
  query: OverviewQuery,
): TimelinePoint[] {
  const bucketMs = (query.windowSeconds * 1000) / query.buckets;
  return Array.from({ length: query.buckets }, (_, i) => {
    const byOutcome = counts.get(i);
    const rate = byOutcome === undefined ? null : matchRate(byOutcome);
    return {
      start: new Date(since.getTime() + i * bucketMs).toISOString(),
      decided: byOutcome === undefined ? 0 : decided(byOutcome),
      matched: byOutcome?.match ?? 0,
      matchRate: rate,
    };
  });
}

export async function buildOverview(
  sources: OverviewSources,
  query: OverviewQuery,
  now: Date = new Date(),
): Promise<Overview> {
  const since = new Date(now.getTime() - query.windowSeconds * 1000);
  const bucketSeconds = query.windowSeconds / query.buckets;
  const flags = sources.flags.get();
  const stats = sources.recorder.stats({ since, until: now, topPaths: query.paths, samples: query.samples });
  const statsOf = new Map(stats.endpoints.map((e) => [e.endpoint, e]));
  const timelines = new Map<string, Map<number, Record<Outcome, number>>>();
  for (const bucket of sources.recorder.timeline({ since, until: now, bucketSeconds })) {
    let points = timelines.get(bucket.endpoint);
    if (points === undefined) {
      points = new Map();
      timelines.set(bucket.endpoint, points);
    }
    // A comparison recorded on the window's last instant would open one bucket past the end.
    const index = Math.min(bucket.index, query.buckets - 1);
    const merged = points.get(index);
    if (merged === undefined) points.set(index, { ...bucket.byOutcome });
    else for (const o of OUTCOMES) merged[o] += bucket.byOutcome[o];
  }
  const domains = sources.migration.domains.map((domain) => ({
    domain,
    endpoints: sources.migration.endpoints
      .filter((e) => e.domain === domain)
      .map((e): EndpointOverview => {
        const s = statsOf.get(e.key);
        const byOutcome = s?.byOutcome ?? zeroOutcomeCounts();
        return {
          key: e.key,
          route: e.definition.route,
          flag: resolveFlag(flags, e.key),
          flagFrom: flagSource(flags, e.key, domain),
          byOutcome,
          matchRate: matchRate(byOutcome),
          timeline: denseTimeline(timelines.get(e.key) ?? new Map(), since, query),
          paths: s?.topPaths ?? [],
          samples: (s?.samples ?? []).map((c) => ({
            id: c.id,
            recordedAt: c.recordedAt,
            requestKey: c.requestKey,
            outcome: c.outcome,
            diffCount: c.diffCount,
            differences: c.differences,
          })),
        };
      }),
  }));
  const readiness = readinessOf(sources.health);
  return {
    generatedAt: now.toISOString(),
    windowSeconds: query.windowSeconds,
    bucketSeconds,
    domains,
    rollout: sources.rollout?.status() ?? null,
    health: {
      ...readiness,
      maxLagSeconds: sources.health?.maxLagSeconds ?? null,
      deadLetters: (await sources.health?.deadLetters?.()) ?? null,
    },
    queue: sources.queue.stats(),
    audit:
      query.audit === 0 ? [] : sources.audit.list({ limit: query.audit, newestFirst: true }).map(auditLine),
  };
}
