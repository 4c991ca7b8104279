import { OUTCOMES } from './classify.js';
import type { Difference } from './diff.js';
import { acceptedRows, type EndpointReport, type Report, renderReportText, reportScope } from './report.js';

/**
 * The comparison report in the formats its readers use: text for a terminal, JSON for tools,
 * a self-contained HTML page to share (differing fields side by side), and JUnit XML so a CI
 * job fails a rollout step on mismatches the way it fails on a broken test.
 */
export const REPORT_FORMATS = ['text', 'json', 'html', 'junit'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export const REPORT_CONTENT_TYPES: Record<ReportFormat, string> = {
  text: 'text/plain; charset=utf-8',
  json: 'application/json; charset=utf-8',
  html: 'text/html; charset=utf-8',
  junit: 'application/xml; charset=utf-8',
};

export function renderReport(report: Report, format: ReportFormat): string {
  switch (format) {
    case 'text':
      return renderReportText(report);
    case 'json':
      return `${JSON.stringify(report, null, 2)}\n`;
    case 'html':
      return renderReportHtml(report);
    case 'junit':
      return renderReportJunit(report);
  }
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text made safe inside HTML or XML content and attribute values. */
export function escapeMarkup(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

function json(value: unknown): string {
  return value === undefined ? '—' : (JSON.stringify(value) ?? 'undefined');
}

const pct = (value: number | null) => (value === null ? '-' : `${value.toFixed(1)}%`);

function sampleRows(e: EndpointReport): string {
  return e.samples
    .map((s) => {
      const diffs = s.differences
        .map(
          (d: Difference) =>
            `<tr><td><code>${escapeMarkup(d.path)}</code></td><td>${escapeMarkup(d.kind)}</td>` +
            `<td class="legacy">${escapeMarkup(json(d.legacy))}</td><td class="rm">${escapeMarkup(json(d.readModel))}</td></tr>`,
        )
        .join('');
      const more =
        s.diffCount > s.differences.length ? ` (${s.differences.length} of ${s.diffCount} shown)` : '';
      return (
        `<details><summary>${escapeMarkup(s.recordedAt)} · ${escapeMarkup(s.outcome)} · ` +
        `<code>${escapeMarkup(s.requestKey)}</code>${more}</summary>` +
        `<table class="diff"><tr><th>path</th><th>kind</th><th>legacy</th><th>read model</th></tr>${diffs}</table></details>`
      );
    })
    .join('');
}

export function renderReportHtml(report: Report): string {
  const header = ['endpoint', 'total', 'match %', ...OUTCOMES, 'legacy p50/p99 ms', 'read model p50/p99 ms'];
  const ms = (v: number | null) => (v === null ? '-' : v.toFixed(2));
  const rows = report.endpoints
    .map((e) => {
      return (
        `<tr class="${reportFailed(e) ? 'bad' : 'ok'}"><td>${escapeMarkup(e.endpoint)}</td><td>${e.total}</td><td>${pct(e.matchRatePct)}</td>` +
        OUTCOMES.map((o) => `<td>${e.byOutcome[o]}</td>`).join('') +
        `<td>${ms(e.latency.legacy.p50Ms)} / ${ms(e.latency.legacy.p99Ms)}</td>` +
        `<td>${ms(e.latency.readModel.p50Ms)} / ${ms(e.latency.readModel.p99Ms)}</td></tr>`
      );
    })
    .join('\n');
  const paths = report.endpoints
    .flatMap((e) =>
      e.topPaths.map(
        (p) =>
          `<tr><td>${escapeMarkup(e.endpoint)}</td><td><code>${escapeMarkup(p.path)}</code></td><td>${p.count}</td>` +
          `<td>${escapeMarkup(p.firstSeen)}</td><td>${escapeMarkup(p.lastSeen)}</td></tr>`,
      ),
    )
    .join('\n');
  const accepted = acceptedRows(report)
    .map((cells) => `<tr>${cells.map((c) => `<td>${escapeMarkup(c)}</td>`).join('')}</tr>`)
    .join('\n');
  const samples = report.endpoints
    .filter((e) => e.samples.length > 0)
    .map((e) => `<h3>${escapeMarkup(e.endpoint)}</h3>${sampleRows(e)}`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cqrs-migrate shadow comparison report</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;margin:.5rem 0 1.5rem}
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}td:first-child,th:first-child{text-align:left}
tr.bad td:first-child{border-left:4px solid #c62828}tr.ok td:first-child{border-left:4px solid #2e7d32}
table.diff td{text-align:left;font-family:ui-monospace,monospace;max-width:40rem;overflow-wrap:anywhere}
td.legacy{background:#fff3e0}td.rm{background:#e3f2fd}details{margin:.25rem 0}
</style></head><body>
<h1>Shadow comparison report</h1>
<p>${escapeMarkup(reportScope(report))}</p>
<h2>Endpoints</h2>
${
  report.endpoints.length === 0
    ? '<p>No comparisons recorded in this window.</p>'
    : `<table><tr>${header.map((h) => `<th>${escapeMarkup(h)}</th>`).join('')}</tr>
${rows}
<tr><td><b>all</b></td><td>${report.totals.total}</td><td>${pct(report.totals.matchRatePct)}</td>${OUTCOMES.map((o) => `<td>${report.totals.byOutcome[o]}</td>`).join('')}<td></td><td></td></tr></table>`
}
<h2>Mismatching fields</h2>
${paths === '' ? '<p>No mismatching paths.</p>' : `<table><tr><th>endpoint</th><th>path</th><th>comparisons</th><th>first seen</th><th>last seen</th></tr>\n${paths}</table>`}
${accepted === '' ? '' : `<h2>Accepted by compare rules</h2>\n<table><tr><th>endpoint</th><th>ignored</th><th>tolerated</th></tr>\n${accepted}</table>`}
<h2>Samples</h2>
${samples === '' ? '<p>No mismatching comparison in this window.</p>' : samples}
<p><small>Values of fields marked sensitive in the definition are masked where they are stored.</small></p>
</body></html>
`;
}

/** An endpoint whose comparisons say the read model is wrong (mismatch, missing) or failed (error). */
export function reportFailed(e: EndpointReport): boolean {
  return e.byOutcome.mismatch + e.byOutcome.missing + e.byOutcome.error > 0;
}

/**
 * One test case per endpoint: failed when any comparison mismatched, missed or errored, skipped
 * when nothing was compared; `lag` is not a failure (the read model was on its way).
 */
export function renderReportJunit(report: Report): string {
  const cases = report.endpoints.map((e) => {
    const bad = e.byOutcome.mismatch + e.byOutcome.missing + e.byOutcome.error;
    const name = `${escapeMarkup(e.endpoint)}`;
    if (e.total === 0) return `    <testcase classname="shadow" name="${name}"><skipped/></testcase>`;
    if (bad === 0) return `    <testcase classname="shadow" name="${name}"/>`;
    const counts = OUTCOMES.map((o) => `${o} ${e.byOutcome[o]}`).join(', ');
    const paths = e.topPaths.map((p) => `${p.path} (${p.count})`).join(', ');
    return (
      `    <testcase classname="shadow" name="${name}">\n` +
      `      <failure message="${escapeMarkup(`${bad} of ${e.total} comparisons differ`)}" type="mismatch">` +
      `${escapeMarkup(`${counts}${paths === '' ? '' : `\nfields: ${paths}`}`)}</failure>\n` +
      '    </testcase>'
    );
  });
  const failures = report.endpoints.filter(reportFailed).length;
  const skipped = report.endpoints.filter((e) => e.total === 0).length;
  return `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="cqrs-migrate" tests="${report.endpoints.length}" failures="${failures}">
  <testsuite name="${escapeMarkup(`shadow comparison${report.domain === null ? '' : ` ${report.domain}`}`)}" tests="${report.endpoints.length}" failures="${failures}" skipped="${skipped}" timestamp="${escapeMarkup(report.generatedAt)}">
${cases.join('\n')}
  </testsuite>
</testsuites>
`;
}
