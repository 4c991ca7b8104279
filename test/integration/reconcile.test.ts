import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Pool } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedPipeline, startEmbeddedPipeline } from '../../cli/pipeline.js';
import { reconcile, reconcileEndpointName } from '../../compare/reconcile.js';
import { scheduleJob } from '../../compare/reconcile-schedule.js';
import { SqliteComparisonRecorder } from '../../compare/recorder.js';
import { ShadowComparator } from '../../compare/shadow-compare.js';
import { type OpenedLegacyDb, openLegacyDb } from '../../connectors/legacy/index.js';
import { createBankDatabase, dropDatabase, openPool } from '../../examples/bank/db.js';
import { generateBank } from '../../examples/bank/generate.js';
import { legacyAccountIds } from '../../examples/bank/legacy-queries.js';
import bank from '../../examples/bank/migration.js';
import { loadConfig } from '../../lib/config.js';
import { ConfigError } from '../../lib/errors.js';
import { silentLogger } from '../../lib/logger.js';

const conn = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const database = `t_rec_${Math.random().toString(36).slice(2, 8)}`;
let dataDir: string;
let pool: Pool;
let legacyDb: OpenedLegacyDb;
let pipeline: EmbeddedPipeline;
let recorder: SqliteComparisonRecorder;
/** The bank's endpoints, each of which lists every account (the overviews at one instant). */
const ENDPOINTS = ['accounts.history', 'accounts.overview', 'accounts.overviewWide', 'accounts.summary'];

function run(sample?: number, withAnalytics = false) {
  return reconcile({
    migration: bank,
    legacy: legacyDb,
    readModels: pipeline.readModels,
    ...(withAnalytics ? { analytics: pipeline.analytics } : {}),
    comparator: new ShadowComparator({ recorder, freshness: pipeline.freshness, recheckDelayMs: 200 }),
    ...(sample === undefined ? {} : { sample }),
  });
}

describe('reconciliation job', () => {
  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'cqrs-rec-'));
    await createBankDatabase(conn, database, { dropExisting: true });
    pool = openPool(conn, database);
    await generateBank(pool, { seed: 3, scale: 'tiny' });
    const config = loadConfig({
      env: {},
      overrides: {
        legacy: { url: `mysql://cqrs:cqrs@127.0.0.1:3307/${database}` },
        cdc: { serverId: 7000 + Math.floor(Math.random() * 1000) },
        dataDir,
        projector: { pollIntervalMs: 20 },
      },
    });
    legacyDb = openLegacyDb(config.legacy.url);
    pipeline = await startEmbeddedPipeline({ config, migration: bank, logger: silentLogger });
    expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
    recorder = new SqliteComparisonRecorder({ path: ':memory:' });
  });

  afterAll(async () => {
    recorder?.close();
    await pipeline?.stop();
    await legacyDb?.close();
    await pool?.end();
    await dropDatabase(conn, database);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('checks every account on every endpoint and finds them equal', async () => {
    const ids = await legacyAccountIds(legacyDb);
    const result = await run();
    // Every endpoint lists every account.
    expect(result.total).toBe(ENDPOINTS.length * ids.length);
    expect(result.checked).toBe(ENDPOINTS.length * ids.length);
    expect(result.byOutcome.match).toBe(ENDPOINTS.length * ids.length);
    expect(result.failures).toEqual([]);
    // Without the analytics store open here, the spending report is left out, and says why.
    expect(result.skipped).toEqual([
      { endpoint: reconcileEndpointName('customers.spending'), reason: expect.stringContaining('not open') },
    ]);
    const stats = recorder.stats();
    expect(stats.endpoints.map((e) => e.endpoint).sort()).toEqual(
      ENDPOINTS.map(reconcileEndpointName).sort(),
    );
  });

  it('compares the analytics spending report of every customer with its legacy GROUP BY', async () => {
    const [row] = await legacyDb.query('SELECT COUNT(*) AS n FROM customers');
    const customers = Number(row?.n);
    const ids = await legacyAccountIds(legacyDb);
    const result = await run(undefined, true);
    expect(result.skipped).toEqual([]);
    expect(result.total).toBe(ENDPOINTS.length * ids.length + customers);
    expect(result.byOutcome.match).toBe(result.total);
    const spending = recorder
      .stats()
      .endpoints.find((e) => e.endpoint === reconcileEndpointName('customers.spending'));
    expect(spending?.total).toBe(customers);
  });

  it('reports a read-model document that drifted from the legacy answer, and only that one', async () => {
    const ids = await legacyAccountIds(legacyDb);
    const victim = ids[Math.floor(ids.length / 2)] as number;
    pipeline.readDb
      .prepare(
        `UPDATE "rm_doc__account-summary" SET doc = json_set(doc, '$.balance.available', '0.0001') WHERE key = ?`,
      )
      .run(String(victim));
    const result = await run();
    // The summary document is also the overviews' head: all three screens show the drift.
    expect(result.failures).toEqual([
      {
        endpoint: reconcileEndpointName('accounts.summary'),
        requestKey: `accountId=${victim}`,
        outcome: 'mismatch',
        paths: ['balance.available'],
      },
      ...['accounts.overview', 'accounts.overviewWide'].map((endpoint) => ({
        endpoint: reconcileEndpointName(endpoint),
        requestKey: expect.stringContaining(`accountId=${victim}`),
        outcome: 'mismatch',
        paths: ['summary.balance.available'],
      })),
    ]);
    expect(result.byOutcome.match).toBe(ENDPOINTS.length * ids.length - 3);
  });

  it('checks a random sample of the requested size', async () => {
    const result = await run(5);
    expect(result.checked).toBe(5 * ENDPOINTS.length);
    expect(result.byOutcome.match + result.byOutcome.mismatch).toBe(5 * ENDPOINTS.length);
  });

  it('runs on a node-cron schedule without overlapping runs, and rejects a bad expression', async () => {
    let runs = 0;
    let concurrent = 0;
    let maxConcurrent = 0;
    const job = scheduleJob(
      'reconcile-test',
      '* * * * * *',
      async () => {
        concurrent++;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        await sleep(1500);
        runs++;
        concurrent--;
      },
      silentLogger,
    );
    await sleep(4200);
    await job.stop();
    expect(runs).toBeGreaterThanOrEqual(1);
    expect(maxConcurrent).toBe(1);
    expect(() => scheduleJob('bad', 'every tuesday', async () => undefined, silentLogger)).toThrow(
      ConfigError,
    );
  });
});
