import { afterEach, describe, expect, it } from 'vitest';
import type { Outcome } from '../../compare/classify.js';
import type { Difference } from '../../compare/diff.js';
import { SqliteComparisonRecorder } from '../../compare/recorder.js';
import { buildReport, renderReportText } from '../../compare/report.js';
import { escapeMarkup, renderReport, reportFailed } from '../../compare/report-formats.js';

const opened: SqliteComparisonRecorder[] = [];
afterEach(() => {
  for (const r of opened.splice(0)) r.close();
});

function recorder(): SqliteComparisonRecorder {
  const r = new SqliteComparisonRecorder({
    path: ':memory:',
    sensitive: new Map([['accounts.summary', ['owner.email']]]),
  });
  opened.push(r);
  return r;
}

function record(
  r: SqliteComparisonRecorder,
  at: string,
  endpoint: string,
  outcome: Outcome,
  differences: Difference[] = [],
): void {
  r.record({
    recordedAt: new Date(at),
    endpoint,
    requestKey: `accountId=${at.slice(-6, -4)}`,
    subject: null,
    mode: 'shadow',
    servedBy: 'legacy',
    outcome,
    differences,
    error: outcome === 'error' ? 'read model: timeout' : null,
    attempts: 1,
    legacyMs: 2,
    readModelMs: 1,
  });
}

const emailDiff: Difference = {
  path: 'owner.email',
  kind: 'changed',
  legacy: 'ann@example.test',
  readModel: 'bob@example.test',
};
const scriptDiff: Difference = {
  path: 'items[0].description',
  kind: 'changed',
  legacy: '<script>x</script>',
  readModel: 'y',
};

function seeded(): SqliteComparisonRecorder {
  const r = recorder();
  record(r, '2026-12-01T10:00:00.000Z', 'accounts.summary', 'match');
  record(r, '2026-12-01T11:00:00.000Z', 'accounts.summary', 'mismatch', [emailDiff]);
  record(r, '2026-12-01T12:00:00.000Z', 'accounts.summary', 'mismatch', [emailDiff]);
  record(r, '2026-12-01T13:00:00.000Z', 'accounts.history', 'mismatch', [scriptDiff]);
  record(r, '2026-12-02T09:00:00.000Z', 'accounts.history', 'lag', [scriptDiff]);
  record(r, '2026-12-02T10:00:00.000Z', 'orders.list', 'match');
  return r;
}

describe('report window and field statistics', () => {
  it('counts paths with their first and last sighting inside the window only', () => {
    const stats = seeded().stats({
      since: new Date('2026-12-01T11:30:00Z'),
      until: new Date('2026-12-02T09:30:00Z'),
    });
    const summary = stats.endpoints.find((e) => e.endpoint === 'accounts.summary');
    expect(summary?.total).toBe(1);
    expect(summary?.topPaths).toEqual([
      {
        path: 'owner.email',
        count: 1,
        firstSeen: '2026-12-01T12:00:00.000Z',
        lastSeen: '2026-12-01T12:00:00.000Z',
      },
    ]);
    // lag is not a mismatch: its differences are not counted as a differing field.
    expect(stats.endpoints.find((e) => e.endpoint === 'accounts.history')?.topPaths).toEqual([
      expect.objectContaining({ path: 'items[*].description', count: 1 }),
    ]);
    expect(stats.endpoints.map((e) => e.endpoint).sort()).toEqual(['accounts.history', 'accounts.summary']);
  });

  it('restricts to a domain and keeps masked samples', () => {
    const stats = seeded().stats({ endpoints: ['accounts.summary', 'accounts.history'], samples: 1 });
    expect(stats.endpoints.map((e) => e.endpoint).sort()).toEqual(['accounts.history', 'accounts.summary']);
    const sample = stats.endpoints.find((e) => e.endpoint === 'accounts.summary')?.samples[0];
    expect(sample?.recordedAt).toBe('2026-12-01T12:00:00.000Z');
    expect(JSON.stringify(sample)).not.toContain('ann@example.test');
    expect(sample?.differences[0]?.legacy).toMatch(/^\*\*\*[0-9a-f]{6}$/);
    expect(seeded().stats({ endpoints: [] }).endpoints).toEqual([]);
  });
});

describe('report formats', () => {
  const report = () => buildReport(seeded().stats(), undefined, 'accounts');

  it('text names the window, the fields and when they were seen', () => {
    const text = renderReportText(report());
    expect(text).toContain('domain accounts');
    expect(text).toMatch(
      /accounts\.summary\s+owner\.email\s+2\s+2026-12-01T11:00:00\.000Z\s+2026-12-01T12:00:00\.000Z/,
    );
  });

  it('html is self-contained, escapes values and shows both sides of a sample', () => {
    const html = renderReport(report(), 'html');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toContain('<script>x</script>');
    expect(html).toContain(escapeMarkup(JSON.stringify('<script>x</script>')));
    expect(html).toMatch(/class="legacy">[^<]*\*\*\*[0-9a-f]{6}/);
    expect(html).toContain('<tr class="bad"><td>accounts.summary</td>');
    expect(html).toContain('<tr class="ok"><td>orders.list</td>');
  });

  it('junit fails exactly the endpoints with mismatches, missing answers or errors', () => {
    const r = report();
    const xml = renderReport(r, 'junit');
    expect(xml).toContain('<testsuites name="cqrs-migrate" tests="3" failures="2">');
    expect(xml).toContain('<testcase classname="shadow" name="orders.list"/>');
    expect(xml).toMatch(
      /<testcase classname="shadow" name="accounts.summary">\s*<failure message="2 of 3 comparisons differ"/,
    );
    expect(xml).toContain('fields: owner.email (2)');
    expect(
      r.endpoints
        .filter(reportFailed)
        .map((e) => e.endpoint)
        .sort(),
    ).toEqual(['accounts.history', 'accounts.summary']);
    expect(JSON.parse(renderReport(r, 'json'))).toMatchObject({ domain: 'accounts', until: null });
  });
});
