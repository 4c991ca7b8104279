import { rmSync } from 'node:fs';
import { Registry } from 'prom-client';
import { buildReport, renderReportText } from '../compare/report.js';
import { openLegacyDb, redactUrl } from '../connectors/legacy/index.js';
import type { Migration, SampleHooks } from '../definition/migration.js';
import type { Config } from '../lib/config.js';
import { ConfigError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { checkDefinitionQueries } from './legacy-check.js';
import { startEmbeddedPipeline } from './pipeline.js';
import { startApi } from './serve.js';

export interface DemoOptions {
  durationSec: number;
  /** One of the definition's sample scales; its first when absent. */
  scale: string | undefined;
  writeRate: number;
  readRate: number;
  seed: number;
  /** Replace an existing database of the same name. */
  force: boolean;
}

const say = (line: string) => process.stdout.write(`${line}\n`);

/** The definition's sample hooks, and the scale the options name; refused before anything runs. */
export function demoPlan(migration: Migration, options: DemoOptions): { sample: SampleHooks; scale: string } {
  const sample = migration.sample;
  if (sample === undefined) {
    throw new ConfigError(`the definition "${migration.name}" has no sample data for a demo`, {
      hint: 'add `sample: { scales, create, load, readPaths }` to defineMigration, or use `run` on your own database',
    });
  }
  const scale = options.scale ?? sample.scales[0];
  if (!sample.scales.includes(scale)) {
    throw new ConfigError(`--scale ${scale} is not a scale of "${migration.name}"`, {
      hint: `use one of ${sample.scales.join(', ')}`,
    });
  }
  return { sample, scale };
}

/** Read traffic from a client's point of view: the sample's request paths, over HTTP. */
async function driveReads(baseUrl: string, paths: string[], ratePerSec: number, signal: AbortSignal) {
  let requests = 0;
  let failures = 0;
  const interval = 1000 / ratePerSec;
  let next = performance.now();
  for (let i = 0; !signal.aborted && paths.length > 0; i++) {
    try {
      const res = await fetch(`${baseUrl}${paths[i % paths.length]}`);
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
 * The main job on the embedded default: the definition's sample database created in the legacy
 * database, the pipeline snapshotting and streaming it, the shadow API (every endpoint in the
 * default flag mode) under write load and read traffic, then the comparison report.
 */
export async function runDemo(
  config: Config,
  migration: Migration,
  options: DemoOptions,
  logger: Logger,
  /** The definition's file, named when one of its legacy queries does not fit the sample database. */
  definition: string,
): Promise<void> {
  const { sample, scale } = demoPlan(migration, options);
  const url = config.legacy.url;
  say(`1/5 creating the sample '${migration.name}' database (scale ${scale}) at ${redactUrl(url)}`);
  const created = await sample.create({
    url,
    scale,
    seed: options.seed,
    force: options.force,
    progress: (line) => say(`    ${line}`),
  });
  say(`    ${created.rows} rows`);
  rmSync(config.dataDir, { recursive: true, force: true });
  await checkDefinitionQueries(config, migration, definition, logger);

  say('2/5 starting the embedded pipeline: snapshot + change stream → events → read models (SQLite)');
  const registry = new Registry();
  const t0 = performance.now();
  const pipeline = await startEmbeddedPipeline({ config, migration, logger, registry, role: 'demo' });
  if (!(await pipeline.waitForCatchUp(600_000)))
    throw new Error('the pipeline did not catch up with the snapshot');
  const head = await pipeline.eventStore.headPosition();
  say(`    snapshot projected: ${head} events in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const legacy = openLegacyDb(url, { poolSize: config.legacy.poolSize, logger });
  const api = await startApi(config, migration, pipeline, legacy, logger, registry);
  const paths = await sample.readPaths({ url, count: 1000, seed: options.seed });
  say(`3/5 shadow API on ${api.url} (every endpoint in '${config.flags.defaultMode}' mode)`);
  say(`    try: curl ${api.url}${paths[0] ?? '/health'}   |   API docs ${api.url}/docs`);
  say(
    `    admin (${api.adminUrl === api.url ? 'on the public port' : 'own listener'}): dashboard ${api.adminUrl}/admin/   |   ${api.adminUrl}/admin/report?format=text   |   ${api.adminUrl}/metrics`,
  );

  say(
    `4/5 ${options.durationSec} s of write load (${options.writeRate} ops/s) and read traffic (${options.readRate} req/s)`,
  );
  const stop = new AbortController();
  const reads = driveReads(api.url, paths, options.readRate, stop.signal);
  const ticker = setInterval(() => {
    const r = buildReport(api.recorder.stats());
    const total = r.endpoints.reduce((n, e) => n + e.total, 0);
    const matched = r.endpoints.reduce((n, e) => n + e.byOutcome.match, 0);
    say(`    ${total} comparisons so far, ${matched} matched`);
  }, 10_000);
  try {
    const writes = await sample.load({
      url,
      seed: options.seed + 1,
      ratePerSec: options.writeRate,
      durationMs: options.durationSec * 1000,
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
    say(
      `\nAPI was at ${api.url} (admin at ${api.adminUrl}); \`cqrs-migrate run\` keeps the pipeline and API running,`,
    );
    say('`cqrs-migrate report` prints this report again.');
  } finally {
    stop.abort();
    clearInterval(ticker);
    await api.close();
    await pipeline.stop();
    await legacy.close();
  }
}
