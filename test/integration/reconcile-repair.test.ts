import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Pool } from 'mysql2/promise';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedPipeline, startEmbeddedPipeline } from '../../cli/pipeline.js';
import { embeddedRepair, reconcileOnce } from '../../cli/reconcile.js';
import { type ReconcileResult, reconcileEndpointName } from '../../compare/reconcile.js';
import { createReconcileMetrics } from '../../compare/reconcile-metrics.js';
import { SqliteComparisonRecorder } from '../../compare/recorder.js';
import { type OpenedLegacyDb, openLegacyDb } from '../../connectors/legacy/index.js';
import { legacyAnswer, readModelAnswer } from '../../definition/endpoint-calls.js';
import type { ReadModels } from '../../definition/read-models.js';
import { createBankDatabase, dropDatabase, openPool } from '../../examples/bank/db.js';
import { generateBank } from '../../examples/bank/generate.js';
import { legacyAccountIds } from '../../examples/bank/legacy-queries.js';
import bank from '../../examples/bank/migration.js';
import { type Config, loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { SqliteReadModels } from '../../projectors/stores/sqlite-read-models.js';

/**
 * Drift in the embedded read models of a real bank pipeline is repaired from the event store:
 * a document edited in place, a document deleted, and a captured row deleted from the view's
 * row store (so the documents composed from it are wrong too). `reconcile --repair` records each
 * drifted key as a mismatch, re-projects it, and finds it equal when it compares again; beside
 * a live `run` it refuses, and there the scheduled job's repair (the pipeline's own connection)
 * does the same while the projector keeps running.
 */
const conn = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const database = `h4_rep_${Math.random().toString(36).slice(2, 8)}`;
const legacyUrl = `mysql://cqrs:cqrs@127.0.0.1:3307/${database}`;
const dataDir = mkdtempSync(join(tmpdir(), 'cqrs-h4-rep-'));
const serverId = 7000 + Math.floor(Math.random() * 1000);
let pool: Pool;
let legacyDb: OpenedLegacyDb;
let config: Config;

const SUMMARY = bank.endpoints.find((e) => e.key === 'accounts.summary');
const HISTORY = bank.endpoints.find((e) => e.key === 'accounts.history');

function cli(args: string[]) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'cli/main.ts', ...args],
      {
        env: {
          ...process.env,
          CQRS_LEGACY_URL: legacyUrl,
          CQRS_DATA_DIR: dataDir,
          CQRS_DEFINITION: 'examples/bank/migration.ts',
          CQRS_CDC_SERVER_ID: String(serverId),
          LOG_LEVEL: 'error',
        },
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** The summary and history answers of an account on both sides. */
async function bothSides(readModels: ReadModels, accountId: number) {
  const out: Array<{ legacy: unknown; readModel: unknown }> = [];
  for (const entry of [SUMMARY, HISTORY]) {
    if (entry === undefined) throw new Error('bank endpoint missing');
    const params = entry.definition.params.parse({ accountId });
    out.push({
      legacy: await legacyAnswer(entry.definition, params, legacyDb),
      readModel: await readModelAnswer(entry.definition, params, readModels),
    });
  }
  return out;
}

const FALSE_BALANCE = '-1.0000';

/**
 * Three kinds of drift on three accounts: a summary edited, a summary deleted, and a posting
 * deleted from the row store with its history document (the history page then lacks it; the
 * summary keeps its stale copy until something recomposes it). Returns the posting.
 */
function corrupt(db: Database.Database, [edited, deleted, rowless]: number[]): string {
  db.prepare(
    `UPDATE "rm_doc__account-summary" SET doc = json_set(doc, '$.balance.available', ?) WHERE key = ?`,
  ).run(FALSE_BALANCE, String(edited));
  db.prepare(`DELETE FROM "rm_doc__account-summary" WHERE key = ?`).run(String(deleted));
  const posting = db
    .prepare(
      `SELECT key FROM rm_row__transactions WHERE json_extract(state, '$.accountId') = ? ORDER BY key LIMIT 1`,
    )
    .pluck()
    .get(rowless) as string;
  db.prepare('DELETE FROM rm_row__transactions WHERE key = ?').run(posting);
  db.prepare(`DELETE FROM "rm_doc__transaction-history" WHERE key = ?`).run(posting);
  return posting;
}

describe('reconcile --repair', () => {
  let pipeline: EmbeddedPipeline | null = null;

  beforeAll(async () => {
    await createBankDatabase(conn, database, { dropExisting: true });
    pool = openPool(conn, database);
    await generateBank(pool, { seed: 11, scale: 'tiny' });
    config = loadConfig({
      env: {},
      overrides: {
        legacy: { url: legacyUrl },
        cdc: { serverId },
        dataDir,
        projector: { pollIntervalMs: 20 },
        compare: { recheckDelayMs: 100, maxRechecks: 1 },
      },
    });
    legacyDb = openLegacyDb(legacyUrl);
    pipeline = await startEmbeddedPipeline({ config, migration: bank, logger: silentLogger });
    expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
  }, 120_000);

  afterAll(async () => {
    await pipeline?.stop();
    await legacyDb?.close();
    await pool?.end();
    await dropDatabase(conn, database);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('refuses beside a live run, naming the way the live process repairs', async () => {
    const refused = await cli(['reconcile', '--repair', '--sample', '1']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('error [DATA_DIR_LOCKED]');
    expect(refused.stderr).toContain('compare.reconcile.repair');
  }, 180_000);

  it('repairs drift beside the running projector (the scheduled job), counting it in the metrics', async () => {
    const live = pipeline as EmbeddedPipeline;
    const ids = await legacyAccountIds(legacyDb);
    const victims = [ids[1], ids[2], ids[3]] as number[];
    corrupt(live.readDb, victims);
    const registry = new Registry();
    const recorder = new SqliteComparisonRecorder({ path: ':memory:' });
    try {
      const result = await reconcileOnce(
        {
          config,
          migration: bank,
          legacy: legacyDb,
          readModels: live.readModels,
          freshness: live.freshness,
          recorder,
          logger: silentLogger,
          metrics: createReconcileMetrics(registry),
          repair: embeddedRepair(bank, live.readDb, live.eventStore, silentLogger),
        },
        { repair: true },
      );
      expect(result.repair?.stillDifferent).toEqual([]);
      expect(result.repair?.repaired).toBeGreaterThanOrEqual(victims.length);
      for (const id of victims) {
        for (const side of await bothSides(live.readModels, id)) expect(side.readModel).toEqual(side.legacy);
      }
      // Endpoints sharing a document are compared concurrently: whichever sees the drift first
      // repairs it, so the count is per run, not per endpoint.
      const repairs = (await registry.getMetricsAsJSON()).find(
        (m) => m.name === 'cqrs_reconcile_repairs_total',
      );
      const values = (repairs?.values ?? []) as Array<{ labels: Record<string, string>; value: number }>;
      expect(values.every((v) => v.labels.result === 'repaired')).toBe(true);
      expect(values.some((v) => v.labels.endpoint === reconcileEndpointName('accounts.summary'))).toBe(true);
      expect(values.reduce((n, v) => n + v.value, 0)).toBe(result.repair?.repaired);
      const drift = await registry.getSingleMetricAsString('cqrs_reconcile_comparisons_total');
      expect(drift).toMatch(/outcome="missing"\} [1-9]/);
      expect(drift).toMatch(/outcome="mismatch"\} [1-9]/);
    } finally {
      recorder.close();
    }
  }, 120_000);

  it('records the mismatch, re-projects the documents from the event store and finds them equal to legacy', async () => {
    await (pipeline as EmbeddedPipeline).stop();
    pipeline = null;
    const ids = await legacyAccountIds(legacyDb);
    const victims = [ids[4], ids[5], ids[6]] as number[];
    const [edited, deleted, rowless] = victims as [number, number, number];
    const db = new Database(join(dataDir, 'read-models.db'));
    const posting = corrupt(db, victims);
    db.close();

    const run = await cli(['reconcile', '--repair']);
    expect(run.stderr).not.toContain('error');
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as ReconcileResult;
    const failed = (endpoint: string, id: number) =>
      result.failures.find(
        (f) => f.endpoint === reconcileEndpointName(endpoint) && f.requestKey.includes(`accountId=${id}`),
      );
    expect(failed('accounts.summary', edited)).toMatchObject({
      outcome: 'mismatch',
      paths: ['balance.available'],
    });
    expect(failed('accounts.summary', deleted)?.outcome).toBe('missing');
    expect(failed('accounts.history', rowless)?.outcome).toBe('mismatch');
    expect(result.repair).toMatchObject({ stillDifferent: [] });
    expect(result.repair?.attempted).toBe(result.repair?.repaired);

    // The stored read models, opened afresh, now give the legacy answers.
    const readDb = new Database(join(dataDir, 'read-models.db'), { readonly: true });
    try {
      const readModels = new SqliteReadModels(bank).readModels(readDb);
      for (const id of victims) {
        for (const side of await bothSides(readModels, id)) expect(side.readModel).toEqual(side.legacy);
      }
      expect(
        readDb.prepare('SELECT COUNT(*) FROM rm_row__transactions WHERE key = ?').pluck().get(posting),
      ).toBe(1);
    } finally {
      readDb.close();
    }

    // The report keeps the mismatch and the match after the repair.
    const recorder = new SqliteComparisonRecorder({ path: join(dataDir, 'compare.db') });
    try {
      const summary = recorder
        .list({ endpoint: reconcileEndpointName('accounts.summary'), limit: 10_000 })
        .filter((r) => r.requestKey === `accountId=${edited}`);
      expect(summary.map((r) => r.outcome).sort()).toEqual(['match', 'mismatch']);
    } finally {
      recorder.close();
    }
  }, 180_000);
});
