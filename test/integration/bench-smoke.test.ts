import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { resultSchema, SCENARIOS, serveCpuResultSchema } from '../../bench/results-schema.js';
import { dropDatabase } from '../../examples/bank/db.js';

const run = promisify(execFile);
const conn = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const database = `t_bench_${Math.random().toString(36).slice(2, 8)}`;
const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
const out = join(dir, 'results');

afterAll(async () => {
  await dropDatabase(conn, database);
  rmSync(dir, { recursive: true, force: true });
});

/**
 * The benchmark harness at tiny scale, every scenario through the real command, so it cannot
 * rot: each result file must pass the schema the harness writes with, and say what it measured.
 */
describe('bench harness smoke run', () => {
  it('runs every scenario and writes valid results and a summary', async () => {
    await run(
      process.execPath,
      [
        '--import',
        'tsx',
        'bench/main.ts',
        'all',
        '--scale',
        'tiny',
        '--database',
        database,
        '--data-dir',
        join(dir, 'data'),
        '--out',
        out,
        '--no-profile',
        '--embedded-only',
      ],
      { env: { ...process.env, LOG_LEVEL: 'warn' }, maxBuffer: 16 * 1024 * 1024 },
    );
    const results = SCENARIOS.map((s) =>
      resultSchema.parse(JSON.parse(readFileSync(join(out, `${s}.json`), 'utf8'))),
    );
    for (const r of results) {
      expect(r.dataset.database).toBe(database);
      expect(r.dataset.history).toBe('skewed');
      expect(r.peakRssBytes).toBeGreaterThan(0);
      // The run names the checkout it measured.
      expect(r.versions.git?.commit).toMatch(/^[0-9a-f]{40}$/);
      expect(typeof r.versions.git?.dirty).toBe('boolean');
    }
    const [throughput, decode, reads, shadow, cdc] = results;

    if (reads?.scenario !== 'reads') throw new Error('reads result missing');
    // Light screens and the case-study overview (both legacy variants), each side measured.
    expect([...new Set(reads.results.runs.map((r) => `${r.endpoint}.${r.mode}`))].sort()).toEqual([
      'history.legacy',
      'history.new',
      'overview.legacy',
      'overview.new',
      'overviewWide.legacy',
      'summary.legacy',
      'summary.new',
    ]);
    for (const r of reads.results.runs) {
      expect(r.requests).toBeGreaterThan(0);
      expect(r.counted).toBe('2xx');
      expect(r.non2xx).toBe(0);
      expect(r.errors).toBe(0);
      // The flag took effect: every answer came from the side the mode names.
      expect(Object.keys(r.servedBy)).toEqual([r.mode === 'legacy' ? 'legacy' : 'read-model']);
      // The private MariaDB runs on this machine: its CPU time per answer is measured.
      expect(r.legacyDbCpu).not.toBeNull();
      if (r.mode === 'legacy') expect(r.legacyDbCpu?.usPerRequest).toBeGreaterThan(0);
    }
    if (shadow?.scenario !== 'shadow') throw new Error('shadow result missing');
    const notLegacy = shadow.results.runs.filter((r) => Object.keys(r.servedBy).join() !== 'legacy');
    expect(notLegacy.map((r) => ({ endpoint: r.endpoint, servedBy: r.servedBy, non2xx: r.non2xx }))).toEqual(
      [],
    );
    expect(new Set(shadow.results.runs.map((r) => r.endpoint))).toEqual(
      new Set(['summary', 'history', 'overview', 'overviewWide']),
    );
    expect(shadow.results.comparisons.recorded).toBeGreaterThan(0);
    // Each mode's cost to the adapter process, its comparisons included, per answer.
    for (const r of shadow.results.runs) expect(r.adapterCpu?.usPerRequest).toBeGreaterThan(0);

    if (cdc?.scenario !== 'cdc') throw new Error('cdc result missing');
    expect(cdc.results.paths.map((p) => p.path)).toEqual(['embedded']);
    for (const level of cdc.results.paths[0]?.levels ?? []) {
      expect(level.markers).toBeGreaterThan(0);
      expect(level.markersLost).toBe(0);
      expect(level.writeOps).toBeGreaterThan(0);
      expect(level.lag.maxMs).toBeGreaterThanOrEqual(level.lag.p50Ms);
    }
    if (throughput?.scenario !== 'throughput') throw new Error('throughput result missing');
    const t = throughput.results;
    expect(t.snapshot.rows.items).toBe(throughput.dataset.rows);
    expect(t.replay[0]?.events.items).toBe(t.snapshot.projected.items);
    if (decode?.scenario !== 'decode') throw new Error('decode result missing');
    expect(decode.results.readers.map((r) => r.reader)).toEqual(['embedded']);
    expect(decode.results.readers[0]?.rowChanges.items).toBeGreaterThan(0);

    // all ends with the serving-CPU measurement on the same data, read by the summary.
    const serveCpu = serveCpuResultSchema.parse(
      JSON.parse(readFileSync(join(out, 'serve-cpu.json'), 'utf8')),
    );
    expect(new Set(serveCpu.runs.map((r) => `${r.target}.${r.mode}`))).toEqual(
      new Set([
        'hello.hello',
        ...['summary', 'history', 'overview'].flatMap((t) => [`${t}.new`, `${t}.legacy`, `${t}.shadow`]),
      ]),
    );
    const summary = readFileSync(join(out, 'summary.md'), 'utf8');
    expect(summary).toContain('## Targets');
    for (const target of [
      'Fastify hello-world',
      'initial snapshot ≥',
      'full replay ≥',
      'Debezium/Kafka',
      'peak RSS of every scenario',
      'legacy database CPU per read request',
    ])
      expect(summary).toContain(target);
    expect(summary).toContain('## CDC freshness');
    expect(summary).toContain('overview (case-study)');
    expect(summary).toMatch(/Commit: [0-9a-f]{12}/);
    expect(existsSync(join(dir, 'data', 'dataset.json'))).toBe(true);
    // Eleven HTTP runs since the case-study overview joined the light screens: ~3 min alone on
    // the 2-core machine, more when it is shared.
  }, 480_000);
});
