import { rmSync } from 'node:fs';
import { Registry } from 'prom-client';
import { buildReport, renderReportText } from '../compare/report.js';
import { preflight } from '../connectors/binlog/preflight.js';
import { createBankDatabase, openPool, parseMysqlUrl } from '../examples/bank/db.js';
import { generateBank, type ScaleName } from '../examples/bank/generate.js';
import { runWorkload } from '../examples/bank/workload.js';
import type { Config } from '../lib/config.js';
import { SourceError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { binlogSourceConfigFrom, startEmbeddedPipeline } from './pipeline.js';
import { startApi } from './serve.js';

export interface DemoOptions {
  durationSec: number;
  scale: ScaleName;
  writeRate: number;
  readRate: number;
  seed: number;
}

const say = (line: string) => process.stdout.write(`${line}\n`);

/** Read traffic from a client's point of view: random accounts, both endpoints, over HTTP. */
async function driveReads(baseUrl: string, accountIds: number[], ratePerSec: number, signal: AbortSignal) {
  let requests = 0;
  let failures = 0;
  const interval = 1000 / ratePerSec;
  let next = performance.now();
  let i = 0;
  while (!signal.aborted) {
    const id = accountIds[(i * 7919) % accountIds.length] as number;
    const path = i % 2 === 0 ? `/accounts/${id}/summary` : `/accounts/${id}/transactions?limit=20`;
    i++;
    try {
      const res = await fetch(`${baseUrl}${path}`);
      await res.arrayBuffer();
      requests++;
      if (res.status >= 500) failures++;
    } catch {
      failures++;
    }
    next += interval;
    const wait = next - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  return { requests, failures };
}

/**
 * The main job on the embedded default: a fresh sample bank in the legacy MariaDB, the
 * pipeline snapshotting and streaming it, the shadow API in shadow mode under write load and
 * read traffic, then the comparison report.
 */
export async function runDemo(config: Config, options: DemoOptions, logger: Logger): Promise<void> {
  const legacy = parseMysqlUrl(config.legacy.url);
  const database = legacy.database ?? 'legacy_bank';
  try {
    await preflight(binlogSourceConfigFrom(config));
  } catch (err) {
    // The demo creates the database next; every server-level check ran before this one.
    if (!(err instanceof SourceError && err.code === 'DATABASE_MISSING')) throw err;
  }
  say(`1/5 creating the sample bank '${database}' (scale ${options.scale}) on ${legacy.host}:${legacy.port}`);
  await createBankDatabase(legacy, database, { dropExisting: true });
  rmSync(config.dataDir, { recursive: true, force: true });
  const pool = openPool(legacy, database, { connectionLimit: 12 });
  let lastLog = 0;
  const generated = await generateBank(pool, { seed: options.seed, scale: options.scale }, (p) => {
    if (Date.now() - lastLog > 2000) {
      lastLog = Date.now();
      say(`    ${p.table}: ${p.rows}/${p.total} rows, ${p.rowsPerSec} rows/s, ETA ${p.etaSec ?? '?'} s`);
    }
  });
  say(
    `    ${generated.rows} rows in ${(generated.elapsedMs / 1000).toFixed(1)} s (${generated.rowsPerSec} rows/s)`,
  );

  say('2/5 starting the embedded pipeline: binlog snapshot → events → projections (SQLite)');
  const registry = new Registry();
  const t0 = performance.now();
  const pipeline = await startEmbeddedPipeline({ config, logger, registry });
  if (!(await pipeline.waitForCatchUp(600_000)))
    throw new Error('the pipeline did not catch up with the snapshot');
  const head = await pipeline.eventStore.headPosition();
  say(`    snapshot projected: ${head} events in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const api = await startApi(config, pipeline, pool, logger, registry);
  say(`3/5 shadow API on ${api.url} (every endpoint in '${config.flags.defaultMode}' mode)`);
  say(
    `    try: curl ${api.url}/accounts/1/summary   |   ${api.url}/admin/report?format=text   |   ${api.url}/metrics`,
  );

  const [rows] = await pool.query('SELECT id FROM accounts ORDER BY id');
  const accountIds = (rows as Array<{ id: number }>).map((r) => r.id);
  say(
    `4/5 ${options.durationSec} s of write load (${options.writeRate} ops/s) and read traffic (${options.readRate} req/s)`,
  );
  const stop = new AbortController();
  const reads = driveReads(api.url, accountIds, options.readRate, stop.signal);
  const ticker = setInterval(() => {
    const r = buildReport(api.recorder.stats());
    const total = r.endpoints.reduce((n, e) => n + e.total, 0);
    const matched = r.endpoints.reduce((n, e) => n + e.byOutcome.match, 0);
    say(`    ${total} comparisons so far, ${matched} matched`);
  }, 10_000);
  const writes = await runWorkload(pool, {
    seed: options.seed + 1,
    ratePerSec: options.writeRate,
    durationMs: options.durationSec * 1000,
    logger,
  });
  stop.abort();
  clearInterval(ticker);
  const readStats = await reads;
  await pipeline.waitForCatchUp(60_000);
  await api.queue.onIdle();
  say(
    `    writes: ${writes.ops} transactions, ${writes.rowChanges} row changes, ${writes.errors} errors; reads: ${readStats.requests} requests, ${readStats.failures} failed`,
  );
  const deadLetters = await pipeline.eventStore.countDeadLetters();
  say(`    event store: ${await pipeline.eventStore.headPosition()} events, ${deadLetters} dead letters`);

  say(
    '5/5 comparison report (shadow reads: legacy answer served, read model compared off the request path)\n',
  );
  say(renderReportText(buildReport(api.recorder.stats(), api.queue.stats())));
  say(`\nAPI was at ${api.url}; run \`node dist/cli/main.js run\` to keep the pipeline and API running,`);
  say('`node dist/cli/main.js report` to print this report again.');
  await api.close();
  await pipeline.stop();
  await pool.end();
}
