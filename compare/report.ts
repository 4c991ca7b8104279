import { alignedTable } from '../lib/text-table.js';
import { OUTCOMES, type Outcome } from './classify.js';
import type { ComparisonStats, EndpointStats, LatencySummary } from './ports.js';

/**
 * The comparison report: per endpoint, how many comparisons ended in each outcome, the match
 * rate, each side's latency and the fields that disagree most. Pure: built from the
 * recorder's stats, rendered as JSON (GET /admin/report) or a text table (`cqrs-migrate report`).
 */
export interface EndpointReport extends EndpointStats {
  /** match / total × 100, one decimal; null when nothing was compared. */
  matchRatePct: number | null;
}

export interface QueueReport {
  depth: number;
  running: number;
  enqueued: number;
  dropped: number;
  completed: number;
  failed: number;
}

export interface Report {
  generatedAt: string;
  since: string | null;
  until: string | null;
  /** The domain the report is restricted to; null: every endpoint. */
  domain: string | null;
  totals: { total: number; byOutcome: Record<Outcome, number>; matchRatePct: number | null };
  endpoints: EndpointReport[];
  /** Shadow queue counters, when the report is made by a running API. */
  queue?: QueueReport;
}

/** 0-based index of the p-th percentile (nearest rank) in n sorted values. */
export function nearestRankIndex(p: number, n: number): number {
  if (n <= 0) throw new RangeError('no values');
  const rank = Math.ceil((p / 100) * n);
  return Math.min(n, Math.max(1, rank)) - 1;
}

function matchRate(match: number, total: number): number | null {
  return total === 0 ? null : Math.round((match / total) * 1000) / 10;
}

export function buildReport(
  stats: ComparisonStats,
  queue?: QueueReport,
  domain: string | null = null,
): Report {
  const byOutcome = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  let total = 0;
  const endpoints = stats.endpoints.map((e): EndpointReport => {
    for (const o of OUTCOMES) byOutcome[o] += e.byOutcome[o];
    total += e.total;
    return { ...e, matchRatePct: matchRate(e.byOutcome.match, e.total) };
  });
  const report: Report = {
    generatedAt: stats.generatedAt,
    since: stats.since,
    until: stats.until,
    domain,
    totals: { total, byOutcome, matchRatePct: matchRate(byOutcome.match, total) },
    endpoints,
  };
  if (queue !== undefined) report.queue = queue;
  return report;
}

/** "generated …, domain accounts, since …, until …": what the report covers. */
export function reportScope(report: Report): string {
  return [
    `generated ${report.generatedAt}`,
    report.domain === null ? null : `domain ${report.domain}`,
    report.since === null ? null : `since ${report.since}`,
    report.until === null ? null : `until ${report.until}`,
  ]
    .filter((part) => part !== null)
    .join(', ');
}

function ms(value: number | null): string {
  return value === null ? '-' : value.toFixed(2);
}

function latencyCell(l: LatencySummary): string {
  return `${ms(l.p50Ms)} / ${ms(l.p99Ms)}`;
}

function pct(value: number | null): string {
  return value === null ? '-' : `${value.toFixed(1)}%`;
}

/** Endpoints whose compare rules accepted differences: [endpoint, ignored, tolerated]. */
export function acceptedRows(report: Report): string[][] {
  return report.endpoints
    .filter((e) => e.accepted.ignored + e.accepted.tolerated > 0)
    .map((e) => [e.endpoint, String(e.accepted.ignored), String(e.accepted.tolerated)]);
}

export function renderReportText(report: Report): string {
  const lines: string[] = [];
  lines.push(`Shadow comparison report (${reportScope(report)})`);
  lines.push('');
  if (report.endpoints.length === 0) {
    lines.push('No comparisons recorded yet.');
  } else {
    const header = [
      'endpoint',
      'total',
      'match %',
      ...OUTCOMES,
      'legacy p50/p99 ms',
      'read model p50/p99 ms',
    ];
    const row = (name: string, total: number, rate: number | null, counts: Record<Outcome, number>) => [
      name,
      String(total),
      pct(rate),
      ...OUTCOMES.map((o) => String(counts[o])),
    ];
    const rows = report.endpoints.map((e) => [
      ...row(e.endpoint, e.total, e.matchRatePct, e.byOutcome),
      latencyCell(e.latency.legacy),
      latencyCell(e.latency.readModel),
    ]);
    const t = report.totals;
    lines.push(
      alignedTable([header, ...rows, [...row('all', t.total, t.matchRatePct, t.byOutcome), '', '']]),
    );
    const paths = report.endpoints.flatMap((e) =>
      e.topPaths.map((p) => [e.endpoint, p.path, String(p.count), p.firstSeen, p.lastSeen]),
    );
    lines.push('');
    if (paths.length === 0) {
      lines.push('No mismatching paths.');
    } else {
      lines.push('Top mismatching paths');
      lines.push(alignedTable([['endpoint', 'path', 'comparisons', 'first seen', 'last seen'], ...paths], 2));
    }
    const accepted = acceptedRows(report);
    if (accepted.length > 0) {
      lines.push('');
      lines.push("Differences the endpoints' compare rules accepted (not mismatches)");
      lines.push(alignedTable([['endpoint', 'ignored', 'tolerated'], ...accepted]));
    }
  }
  if (report.queue !== undefined) {
    const q = report.queue;
    lines.push('');
    lines.push(
      `Shadow queue: depth ${q.depth}, running ${q.running}, enqueued ${q.enqueued}, completed ${q.completed}, ` +
        `failed ${q.failed}, dropped ${q.dropped}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
