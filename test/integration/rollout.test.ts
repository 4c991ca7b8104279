import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Pool } from 'mysql2/promise';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedPipeline, startEmbeddedPipeline } from '../../cli/pipeline.js';
import { rolloutCommand } from '../../cli/rollout.js';
import { type RunningApi, startApi } from '../../cli/serve.js';
import type { OpenedLegacyDb } from '../../connectors/legacy/index.js';
import { openLegacyDb } from '../../connectors/legacy/index.js';
import { createBankDatabase, dropDatabase, openPool } from '../../examples/bank/db.js';
import { generateBank } from '../../examples/bank/generate.js';
import bank from '../../examples/bank/migration.js';
import { type Config, loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { SqliteAuditLog } from '../../shadow-api/audit-log.js';

/**
 * A domain walked through its rollout on real components (the bank on MariaDB, the embedded
 * pipeline, the shadow API over HTTP, the CLI as the operator's client): shadow → canary 10% →
 * canary 50% → new, each step judged by the gates on the comparisons the traffic produced. Then
 * the read model drifts behind the pipeline's back; the reverse comparisons of `new` see it,
 * the gate breaks and the kill switch rolls the domain back to legacy answers by itself. The
 * audit log holds every step with its gate figures.
 */
const conn = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const database = `t_rollout_${Math.random().toString(36).slice(2, 8)}`;
const token = 'rollout-test:0123456789abcdef0123';
let dataDir: string;
let pool: Pool;
let config: Config;
let pipeline: EmbeddedPipeline;
let legacy: OpenedLegacyDb;
let api: RunningApi;
let accountIds: number[];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'cqrs-rollout-'));
  await createBankDatabase(conn, database, { dropExisting: true });
  pool = openPool(conn, database);
  await generateBank(pool, { seed: 5, scale: 'tiny' });
  const [rows] = await pool.query('SELECT id FROM accounts ORDER BY id LIMIT 40');
  accountIds = (rows as Array<{ id: number }>).map((r) => r.id);
  config = loadConfig({
    env: {},
    overrides: {
      legacy: { url: `mysql://cqrs:cqrs@127.0.0.1:3307/${database}` },
      cdc: { serverId: 7000 + Math.floor(Math.random() * 1000) },
      dataDir,
      api: { port: 0, adminToken: token, admin: { port: 0 } },
      projector: { pollIntervalMs: 20 },
      flags: { defaultMode: 'shadow' },
      compare: { recheckDelayMs: 50 },
      rollout: {
        plan: { canarySteps: [10, 50], newCompareSample: 1 },
        gates: {
          minComparisons: 30,
          minMatchRate: 1,
          mismatchFreeSeconds: 0,
          maxLagP99Seconds: 30,
          maxErrorRate: 0,
          breakMinComparisons: 5,
        },
        checkIntervalMs: 200,
      },
    },
  });
  pipeline = await startEmbeddedPipeline({ config, migration: bank, logger: silentLogger });
  expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
  legacy = openLegacyDb(config.legacy.url);
  api = await startApi(config, bank, pipeline, legacy, silentLogger, new Registry());
}, 120_000);

afterAll(async () => {
  await api?.close();
  await pipeline?.stop();
  await legacy?.close();
  await pool?.end();
  await dropDatabase(conn, database);
  rmSync(dataDir, { recursive: true, force: true });
});

/** Reads every account's summary and history through the API, as client traffic would. */
async function traffic(): Promise<void> {
  for (const id of accountIds) {
    for (const path of [`/accounts/${id}/summary`, `/accounts/${id}/transactions?limit=20`]) {
      const res = await fetch(`${api.url}${path}`);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
  }
  await api.queue.onIdle();
}

async function cli(
  action: 'status' | 'advance' | 'rollback',
  force = false,
): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await rolloutCommand(
    { ...config, api: { ...config.api, adminToken: token } },
    { action, target: 'accounts', force, json: false, url: api.adminUrl, reason: 'rollout test' },
    (text) => {
      out += text;
    },
  );
  return { code, out };
}

describe('rollout of a domain', () => {
  it('advances through the gates, then rolls back by itself when the read model drifts', async () => {
    const anonymous = await fetch(`${api.adminUrl}/admin/rollout/accounts/advance`, { method: 'POST' });
    expect(anonymous.status).toBe(401);
    // The public port has no admin surface at all.
    const onPublic = await fetch(`${api.url}/admin/rollout/accounts/advance`, { method: 'POST' });
    expect(onPublic.status).toBe(404);
    // No evidence yet: the gates refuse the first step, and say why.
    const refused = await cli('advance');
    expect(refused.code).toBe(1);
    expect(refused.out).toMatch(/FAIL\s+comparisons/);

    const walked: string[] = [];
    for (const expected of ['canary 10%', 'canary 50%', 'new']) {
      await traffic();
      const step = await cli('advance');
      expect(step.out).toContain(`→ ${expected}`);
      expect(step.code).toBe(0);
      walked.push(expected);
      expect(api.flags.get().endpoints.accounts).toMatchObject(
        expected === 'new' ? { mode: 'new', compareSample: 1 } : { mode: 'canary' },
      );
    }
    expect(walked).toEqual(['canary 10%', 'canary 50%', 'new']);
    const status = await cli('status');
    expect(status.out).toMatch(/^accounts: new since/m);

    // Drift the read model behind the pipeline's back: every summary now disagrees with legacy.
    const rm = new Database(join(dataDir, 'read-models.db'));
    rm.pragma('busy_timeout = 5000');
    const table = rm
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'rm_doc__account-summary'")
      .pluck()
      .get() as string | undefined;
    expect(table).toBe('rm_doc__account-summary');
    const drifted = rm
      .prepare(`UPDATE "rm_doc__account-summary" SET doc = json_set(doc, '$.status', 'drifted')`)
      .run().changes;
    rm.close();
    expect(drifted).toBeGreaterThan(0);

    // Served by the read model in new: the reverse comparisons record the drift, the gate breaks.
    const deadline = Date.now() + 20_000;
    while (api.flags.get().endpoints.accounts?.mode !== 'shadow' && Date.now() < deadline) {
      for (const id of accountIds.slice(0, 10))
        await (await fetch(`${api.url}/accounts/${id}/summary`)).text();
      await api.queue.onIdle();
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(api.flags.get().endpoints.accounts).toEqual({ mode: 'shadow' });
    // Served from legacy again: the drifted field is not what clients get.
    const served = (await (await fetch(`${api.url}/accounts/${accountIds[0]}/summary`)).json()) as {
      status: string;
    };
    expect(served.status).not.toBe('drifted');
    // Held after an automatic rollback: the schedule does not move it again by itself.
    expect(api.rollout.statusOf('accounts').state.held).toBe(true);

    const audit = new SqliteAuditLog(join(dataDir, 'audit.db'));
    const entries = audit.list().filter((e) => e.action.startsWith('rollout.'));
    audit.close();
    expect(entries.map((e) => `${e.action} ${String(e.details?.summary)}`)).toEqual([
      'rollout.advance shadow → canary 10%',
      'rollout.advance canary 10% → canary 50%',
      'rollout.advance canary 50% → new',
      'rollout.auto-rollback new → shadow',
    ]);
    expect(entries.slice(0, 3).every((e) => e.actor === 'rollout-test' && e.reason === 'rollout test')).toBe(
      true,
    );
    const rollback = entries[3];
    expect(rollback?.actor).toBe('rollout-controller');
    expect(rollback?.details?.gates).toEqual(
      expect.arrayContaining([expect.objectContaining({ gate: 'match-rate', pass: false })]),
    );
  }, 180_000);
});
