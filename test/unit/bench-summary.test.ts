import { describe, expect, it } from 'vitest';
import { profileWindow, summarizeProfile } from '../../bench/profile.js';
import type { BenchResult, HttpRun, ServeCpuResult } from '../../bench/results-schema.js';
import { latencyOf, rate } from '../../bench/stats.js';
import { renderSummary } from '../../bench/summary.js';

describe('bench statistics', () => {
  it('takes nearest-rank percentiles of unsorted samples', () => {
    const samples = Array.from({ length: 200 }, (_, i) => 200 - i); // 200 … 1
    const l = latencyOf(samples);
    expect(l.p50Ms).toBe(100);
    expect(l.p99Ms).toBe(198);
    expect(l.maxMs).toBe(200);
    expect(l.meanMs).toBe(100.5);
    expect(latencyOf([])).toEqual({ p50Ms: 0, p99Ms: 0, maxMs: 0, meanMs: 0 });
  });

  it('turns items over milliseconds into a per-second rate', () => {
    expect(rate(5000, 2000).perSec).toBe(2500);
    expect(rate(10, 0).perSec).toBe(0);
  });

  it('ranks profile frames by self time', () => {
    const frame = (id: number, functionName: string, hitCount: number) => ({
      id,
      callFrame: { functionName, url: '' },
      hitCount,
    });
    const summary = summarizeProfile({
      nodes: [frame(1, 'a', 10), frame(2, 'b', 30), frame(3, 'a', 10), frame(4, '', 50)],
      startTime: 0,
      endTime: 2_000_000,
    });
    expect(summary.durationMs).toBe(2000);
    expect(summary.idlePct).toBe(0);
    expect(summary.topFrames).toEqual([
      { frame: '(anonymous)', selfPct: 50 },
      { frame: 'b', selfPct: 30 },
      { frame: 'a', selfPct: 20 },
    ]);
  });

  it("counts a --cpu-prof profile's samples within one level's window only", () => {
    const frame = (id: number, functionName: string) => ({ id, callFrame: { functionName, url: '' } });
    // Samples at 1000, 2000, 3000, 4000 µs: a, b, b, a.
    const profile = {
      nodes: [frame(1, 'a'), frame(2, 'b')],
      startTime: 0,
      endTime: 5000,
      samples: [1, 2, 2, 1],
      timeDeltas: [1000, 1000, 1000, 1000],
    };
    const summary = summarizeProfile(profileWindow(profile, 1500, 3500));
    expect(summary.topFrames).toEqual([
      { frame: 'b', selfPct: 100 },
      { frame: 'a', selfPct: 0 },
    ]);
    expect(summary.durationMs).toBe(2);
  });
});

function run(endpoint: HttpRun['endpoint'], mode: HttpRun['mode'], p99Ms: number, rps: number): HttpRun {
  return {
    endpoint,
    mode,
    connections: 16,
    durationSec: 10,
    requests: rps * 10,
    requestsPerSec: rps,
    latency: { p50Ms: p99Ms / 2, p99Ms, maxMs: p99Ms, meanMs: p99Ms / 2 },
    non2xx: 0,
    counted: '2xx',
    errors: 0,
    servedBy: { [mode === 'legacy' ? 'legacy' : 'read-model']: rps * 10 },
  };
}

const envelope = {
  startedAt: '2026-01-01T00:00:00.000Z',
  finishedAt: '2026-01-01T00:01:00.000Z',
  machine: { cpus: 2, cpuModel: 'cpu', memoryBytes: 1 << 30, platform: 'linux', loadAverage: [0, 0, 0] },
  versions: {
    git: { commit: '0123456789abcdef0123', dirty: true },
    node: 'v20',
    package: '0.1.0',
    legacyServer: 'MariaDB',
    autocannon: '9',
  },
  dataset: {
    database: 'bench_bank',
    scale: 'bench' as const,
    seed: 42,
    history: 'skewed' as const,
    generatedAt: '2026-01-01T00:00:00.000Z',
    generationMs: 1000,
    rows: 10,
    rowsPerSec: 10,
    tables: { customers: 1, accounts: 2, transactions: 5 },
    reused: false,
  },
  peakRssBytes: 100 << 20,
  params: {},
};

/** serve-cpu.json of a small-scale run holding `runs` (and the profiled runs' summaries). */
function serveCpuOf(runs: ServeCpuResult['runs'], profiles?: ServeCpuResult['profiles']): ServeCpuResult {
  return {
    startedAt: envelope.startedAt,
    machine: envelope.machine,
    node: 'v20',
    scale: 'small',
    seconds: 5,
    runs,
    ...(profiles === undefined ? {} : { profiles }),
  };
}

describe('bench summary', () => {
  it('marks each target met or missed from the ratios of the same run', () => {
    const reads: BenchResult = {
      scenario: 'reads',
      ...envelope,
      results: {
        // summary: 60× faster p99 and 12× throughput; history: 10× p99 and 2× throughput.
        runs: [
          run('summary', 'legacy', 60, 100),
          run('summary', 'new', 1, 1200),
          run('history', 'legacy', 10, 100),
          run('history', 'new', 1, 200),
          // The case-study overview: 100× and 20× on the split variant, 30× p99 on the wide one.
          { ...run('overview', 'legacy', 100, 50), non2xx: 7 },
          run('overview', 'new', 1, 1000),
          run('overviewWide', 'legacy', 30, 50),
        ],
        profiles: {
          'history.new': { durationMs: 1, idlePct: 50, topFrames: [{ frame: 'writev', selfPct: 40 }] },
        },
      },
    };
    const md = renderSummary([reads]);
    const row = (text: string) => md.split('\n').find((l) => l.startsWith(`| ${text}`)) ?? '';
    expect(row('summary (light) p99')).toContain('| met |');
    expect(row('summary (light) read throughput')).toContain('| met |');
    expect(row('history (light) p99')).toContain('| missed |');
    expect(row('history (light) p99')).toContain('thread busy 50.0% of the run; top self time `writev` 40%');
    expect(row('history (light) read throughput')).toContain('| missed |');
    expect(row('CDC lag')).toContain('| not measured |');
    expect(row('overview (case-study) p99')).toContain('| met |');
    expect(row('overview (case-study) read throughput')).toContain('| met |');
    // The wide variant is compared with the one read side measured under `overview`.
    expect(row('overviewWide (case-study) p99')).toContain('| missed |');
    expect(row('summary (light) p99')).toContain('| met |');
    // Non-2xx answers are shown apart from throughput.
    expect(row('overview (case-study) | 16')).toContain('| 7 / 0 |');
    expect(md).toContain('Commit: 0123456789ab (with uncommitted changes)');
  });

  it('names the machine and commit of each scenario when a scenario was run again apart', () => {
    const count = (items: number) => ({ items, ms: 1000, perSec: items });
    const throughput = (cpuModel: string, commit: string): BenchResult => ({
      ...envelope,
      machine: { ...envelope.machine, cpuModel },
      versions: { ...envelope.versions, git: { commit, dirty: false } },
      scenario: 'throughput',
      results: { snapshot: { rows: count(10), projected: count(10) }, replay: [], profiles: {} },
    });
    const same = renderSummary([throughput('xeon', 'a'.repeat(40)), throughput('xeon', 'a'.repeat(40))]);
    expect(same).toContain('Machine: 2 × xeon, ');
    expect(same).toContain(`Commit: ${'a'.repeat(12)}. `);
    const apart = renderSummary([
      throughput('epyc', 'b'.repeat(40)),
      { ...throughput('xeon', 'a'.repeat(40)), startedAt: '2026-01-02T00:00:00.000Z' },
    ]);
    expect(apart).toMatch(/Machine: 2 × epyc, [^;]* \(throughput\); 2 × xeon, [^;]* \(throughput\)/);
    expect(apart).toContain(`Commit: ${'b'.repeat(12)} (throughput); ${'a'.repeat(12)} (throughput).`);
  });

  it('explains a write load short of its rate by the cores its CPU per row change needs', () => {
    const level = (target: number, achieved: number, p99Ms: number) => ({
      targetRowChangesPerSec: target,
      achievedRowChangesPerSec: achieved,
      durationSec: 10,
      writeOps: achieved * 3,
      writeErrors: 0,
      markers: 200,
      markersLost: 0,
      lag: { p50Ms: p99Ms / 4, p99Ms, maxMs: p99Ms, meanMs: p99Ms / 4 },
      cpuPerRowChangeUs: { legacyServer: 250, writeLoad: 200, harness: 150 },
    });
    const cdc: BenchResult = {
      scenario: 'cdc',
      ...envelope,
      results: {
        paths: [
          {
            path: 'embedded',
            method: 'm',
            warmup: { ...level(500, 480, 2400), durationSec: 10 },
            levels: [level(500, 500, 300), level(5000, 1800, 4000)],
          },
          {
            path: 'debezium-kafka',
            method: 'm',
            levels: [
              {
                ...level(2000, 1900, 800),
                stages: {
                  commitToCaptured: { p50Ms: 3, p99Ms: 12, samples: 200 },
                  capturedToProduced: { p50Ms: 0, p99Ms: 0, samples: 0 },
                  producedToReceived: { p50Ms: 0, p99Ms: 0, samples: 0 },
                  receivedToPublished: { p50Ms: 40, p99Ms: 90, samples: 200 },
                  publishedToVisible: { p50Ms: 150, p99Ms: 600, samples: 200 },
                },
              },
            ],
          },
        ],
      },
    };
    const md = renderSummary([cdc]);
    const row = (text: string) => md.split('\n').find((l) => l.startsWith(`| ${text}`)) ?? '';
    // (250 + 200 + 150) µs × 5,000/s = 3 cores on a 2-core machine.
    expect(row('CDC lag p99 ≤ 1000 ms at 5000')).toContain('| missed |');
    expect(row('CDC lag p99 ≤ 1000 ms at 5000')).toContain(
      "the write load reached 1800 of 5000 row changes/s: CPU per row change: legacy database 250.0 µs, write load 200.0 µs, harness 150.0 µs, so 5000 row changes/s needs 3.0 cores of the machine's 2",
    );
    expect(row('CDC lag p99 ≤ 1000 ms at 2000')).toContain('| met |');
    expect(row('embedded | 5000')).toContain('| 250.0 / 200.0 / 150.0 |');
    // The stage table: one row per level that has stages, a hop without samples shown as such.
    expect(row('debezium-kafka | 2000 | 1900 | 3.0 / 12.0 | — | — | 40.0 / 90.0 | 150.0 / 600.0 |')).not.toBe(
      '',
    );
    // Embedded levels carry no stages: their two rows are the lag table's only; the warm-up is
    // reported apart, and the target at 500 row changes/s is judged on the measured level.
    expect(md.split('\n').filter((l) => l.startsWith('| embedded | '))).toHaveLength(2);
    expect(md).toContain(
      'embedded: 10.0 s at 500 row changes/s (achieved 480), lag p50 / p99 / max 600.0 / 2400.0 / 2400.0 ms.',
    );
    expect(md).not.toContain('debezium-kafka: 10.0 s');
  });

  it('judges the no-drop target once per endpoint over every repeated run at the rate', () => {
    const reads: BenchResult = { scenario: 'reads', ...envelope, results: { runs: [], profiles: {} } };
    const cpuRun = (target: string, requestsPerSec: number, recorded: number, dropped: number) => ({
      target,
      mode: 'shadow' as const,
      connections: 16,
      rate: 500,
      requests: recorded,
      requestsPerSec,
      non2xx: 0,
      processCpuUsPerRequest: 700,
      serveThreadUsPerRequest: 800,
      comparisons: { recorded, dropped },
    });
    const serveCpu = serveCpuOf([
      cpuRun('summary', 498, 2516, 0),
      cpuRun('summary', 500, 2531, 0),
      cpuRun('history', 497, 2518, 0),
      cpuRun('history', 499, 2520, 3),
      cpuRun('overview', 310, 1550, 0),
    ]);
    const rows = renderSummary([reads], serveCpu)
      .split('\n')
      .filter((l) => l.includes('no shadow comparison dropped'));
    expect(rows).toEqual([
      '| summary: no shadow comparison dropped at 500 req/s | 0 dropped over 2 runs, 2516–2531 recorded at 498–500 req/s | met |  |',
      '| history: no shadow comparison dropped at 500 req/s | 3 dropped over 2 runs, 2518–2520 recorded at 497–499 req/s | missed | the comparison queue overflowed |',
      '| overview: no shadow comparison dropped at 500 req/s | 0 dropped, 1550 recorded at 310 req/s | missed | the load reached 310 of 500 req/s |',
    ]);
  });

  it("explains a missed endpoint-CPU target by its profiled run's frames, beside hello-world's", () => {
    const reads: BenchResult = { scenario: 'reads', ...envelope, results: { runs: [], profiles: {} } };
    const cpuRun = (target: string, mode: 'hello' | 'new', us: number) => ({
      target,
      mode,
      connections: 16,
      rate: null,
      requests: 1000,
      requestsPerSec: 1000,
      non2xx: 0,
      processCpuUsPerRequest: us,
      serveThreadUsPerRequest: us,
      comparisons: null,
    });
    const profile = (frames: Record<string, number>, idlePct: number) => ({
      durationMs: 5000,
      idlePct,
      topFrames: Object.entries(frames).map(([frame, selfPct]) => ({ frame, selfPct })),
    });
    const serveCpu = serveCpuOf(
      [cpuRun('hello', 'hello', 20), cpuRun('summary', 'new', 30), cpuRun('history', 'new', 80)],
      {
        hello: profile({ '(idle)': 40, writev: 30 }, 40),
        history: profile({ '(idle)': 10, writev: 35, all: 12 }, 10),
      },
    );
    const row = (target: string) =>
      renderSummary([reads], serveCpu)
        .split('\n')
        .find((l) => l.startsWith(`| ${target} (read model) read-model endpoint`)) ?? '';
    expect(row('summary')).toMatch(/\| met \| {2}\|$/);
    expect(row('history')).toContain(
      '| missed | profile of a separate run, read-model mode: thread busy 90.0% of the run; top self time `writev` 35%, `all` 12%; hello-world: thread busy 60.0% of the run; top self time `writev` 30% |',
    );
    // Results without the profiled runs say how to get them.
    const { profiles: _, ...unprofiled } = serveCpu;
    expect(
      renderSummary([reads], unprofiled)
        .split('\n')
        .find((l) => l.startsWith('| history (read model)')),
    ).toContain('no profiled run recorded (`bench/serve-cpu.ts --profiled-runs`)');
  });

  it('explains a missed shadow-throughput target by what each mode cost per answer and their profiles', () => {
    const cpu = (us: number) => ({ cpuMs: us, usPerRequest: us });
    const shadow: BenchResult = {
      scenario: 'shadow',
      ...envelope,
      results: {
        runs: [
          { ...run('summary', 'legacy', 20, 1000), adapterCpu: cpu(600) },
          { ...run('summary', 'shadow', 22, 800), servedBy: { legacy: 8000 }, adapterCpu: cpu(750) },
        ],
        comparisons: { recorded: 8000, dropped: 0 },
        profiles: {
          'summary.shadow': { durationMs: 1, idlePct: 20, topFrames: [{ frame: 'compare', selfPct: 15 }] },
          'summary.legacy': { durationMs: 1, idlePct: 30, topFrames: [{ frame: 'writev', selfPct: 10 }] },
        },
      },
    };
    const row =
      renderSummary([shadow])
        .split('\n')
        .find((l) => l.startsWith('| summary (light) shadow mode')) ?? '';
    expect(row).toContain('| 80% (1000 → 800 req/s) | missed |');
    expect(row).toContain('adapter CPU per answer 600 µs legacy → 750 µs shadow (25.0% more');
    expect(row).toContain(
      'shadow profile: thread busy 80.0% of the run; top self time `compare` 15%; legacy profile: thread busy 70.0% of the run; top self time `writev` 10%',
    );
  });
});
