import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Pool } from 'mysql2/promise';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedPipeline, startEmbeddedPipeline } from '../../cli/pipeline.js';
import { type RunningApi, startApi } from '../../cli/serve.js';
import { type OpenedLegacyDb, openLegacyDb } from '../../connectors/legacy/index.js';
import { createBankDatabase, dropDatabase, openPool } from '../../examples/bank/db.js';
import { generateBank } from '../../examples/bank/generate.js';
import bank from '../../examples/bank/migration.js';
import { type Config, dataPath, loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { embeddedTimeTravel } from '../../projectors/past-states.js';

/**
 * Time travel on the sample bank, on real components (MariaDB binlog → embedded pipeline →
 * shadow API over HTTP): the answers of three endpoints are taken from the live read model at
 * an instant T1; then the account's rows those endpoints read are updated, inserted and deleted.
 * Asked `?_asOf=T1` afterwards, each endpoint answers exactly what it answered at T1, while its
 * current answer differs; the past answers were never compared with legacy.
 */
const conn = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const database = `h3_tt_${Math.random().toString(36).slice(2, 8)}`;
const token = 'h3-time-travel:0123456789abcdef0123';
let dataDir: string;
let pool: Pool;
let config: Config;
let pipeline: EmbeddedPipeline;
let legacy: OpenedLegacyDb;
let api: RunningApi;
let accountId: number;
/** The overview's own reference date (its `asOf` parameter, not time travel's `_asOf`). */
let overviewAsOf: string;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The endpoint paths of the account whose past is asked. */
const paths = () => [
  `/accounts/${accountId}/summary`,
  `/accounts/${accountId}/transactions?limit=50`,
  `/accounts/${accountId}/overview?asOf=${encodeURIComponent(overviewAsOf)}`,
];

/** The live read model's answer (an admin forces `new`: served by the read model, not compared). */
async function live(path: string): Promise<unknown> {
  const res = await fetch(`${api.url}${path}`, {
    headers: { authorization: `Bearer ${token.split(':')[1]}`, 'x-cqrs-mode': 'new' },
  });
  expect(res.status, path).toBe(200);
  expect(res.headers.get('x-served-by')).toBe('read-model');
  return res.json();
}

function withAsOf(path: string, at: string): string {
  return `${path}${path.includes('?') ? '&' : '?'}_asOf=${encodeURIComponent(at)}`;
}

async function comparisons(): Promise<number> {
  await api.queue.onIdle();
  return api.recorder.list({ limit: 100_000 }).length;
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'h3-time-travel-'));
  await createBankDatabase(conn, database, { dropExisting: true });
  pool = openPool(conn, database);
  await generateBank(pool, { seed: 3, scale: 'tiny' });
  const [rows] = await pool.query(
    `SELECT account_id AS id, DATE_FORMAT(MAX(posted_at), '%Y-%m-%d') AS day FROM transactions
      GROUP BY account_id HAVING COUNT(*) >= 5 ORDER BY account_id LIMIT 1`,
  );
  const picked = (rows as Array<{ id: number; day: string }>)[0];
  if (picked === undefined) throw new Error('no account with postings');
  accountId = picked.id;
  overviewAsOf = `${picked.day} 23:59:59.999999`;
  config = loadConfig({
    env: {},
    overrides: {
      legacy: { url: `mysql://cqrs:cqrs@127.0.0.1:3307/${database}` },
      cdc: { serverId: 8300 + Math.floor(Math.random() * 600) },
      dataDir,
      api: { port: 0, adminToken: token, admin: { port: 0 } },
      projector: { pollIntervalMs: 20, batchSize: 64 },
      flags: { defaultMode: 'shadow' },
    },
  });
  pipeline = await startEmbeddedPipeline({ config, migration: bank, logger: silentLogger });
  expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
  legacy = openLegacyDb(config.legacy.url);
  api = await startApi(config, bank, pipeline, legacy, silentLogger, new Registry());
}, 180_000);

afterAll(async () => {
  await api?.close();
  await pipeline?.stop();
  await legacy?.close();
  await pool?.end();
  await dropDatabase(conn, database);
  rmSync(dataDir, { recursive: true, force: true });
});

describe('time travel on the embedded pipeline', () => {
  it('answers as the read model stood at a past instant, after updates, inserts and deletes', async () => {
    // T1: everything stored so far is in the read models; its answers are what T1 looked like.
    const headAtT1 = pipeline.eventStore.headPositionSync();
    const atT1 = await Promise.all(paths().map(live));
    const t1 = new Date().toISOString();
    expect(pipeline.eventStore.headPositionSync()).toBe(headAtT1);
    // The binlog stamps changes to the second: the next writes start in a later second than T1.
    await sleep(1000 - (Date.parse(t1) % 1000) + 50);

    const [latest] = await pool.query(
      'SELECT id FROM transactions WHERE account_id = ? ORDER BY posted_at DESC, id DESC LIMIT 2',
      [accountId],
    );
    const [newest, second] = (latest as Array<{ id: number }>).map((r) => r.id);
    await pool.query('UPDATE balances SET available = available + 123.4500 WHERE account_id = ?', [
      accountId,
    ]);
    await pool.query("UPDATE transactions SET description = 'changed after T1' WHERE id = ?", [second]);
    await pool.query('DELETE FROM transactions WHERE id = ?', [newest]);
    await pool.query(
      `INSERT INTO transactions (account_id, direction, amount, currency_code, balance_after, description, posted_at)
       SELECT account_id, 'debit', 9.9900, currency_code, balance_after, 'inserted after T1', posted_at
         FROM transactions WHERE id = ?`,
      [second],
    );
    const [customer] = await pool.query(
      "UPDATE customers SET last_name = 'Renamed' WHERE id = (SELECT customer_id FROM accounts WHERE id = ?)",
      [accountId],
    );
    expect((customer as { affectedRows: number }).affectedRows).toBe(1);
    expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
    const headNow = pipeline.eventStore.headPositionSync();
    expect(headNow).toBeGreaterThan(headAtT1);

    const now = await Promise.all(paths().map(live));
    const before = await comparisons();
    for (const [i, path] of paths().entries()) {
      // Every endpoint's current answer moved on; asked as of T1, it is what it was.
      expect(now[i], path).not.toEqual(atT1[i]);
      const res = await fetch(`${api.url}${withAsOf(path, t1)}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('x-cqrs-as-of-position')).toBe(String(headAtT1));
      expect(res.headers.get('x-cqrs-as-of')).toBe(t1);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(await res.json(), path).toEqual(atT1[i]);
      // The header asks the same question.
      const byHeader = await fetch(`${api.url}${path}`, { headers: { 'x-cqrs-as-of': t1 } });
      expect(await byHeader.json(), path).toEqual(atT1[i]);
      // As of now: the current answer, from a state replayed to the head.
      const latestRes = await fetch(`${api.url}${withAsOf(path, new Date().toISOString())}`);
      expect(latestRes.headers.get('x-cqrs-as-of-position')).toBe(String(headNow));
      expect(await latestRes.json(), path).toEqual(now[i]);
    }
    // In shadow mode each plain request is compared: the past ones were not.
    expect(await comparisons()).toBe(before);
    const plain = await fetch(`${api.url}${paths()[0]}`);
    expect(plain.headers.get('x-served-by')).toBe('legacy');
    expect(await comparisons()).toBe(before + 1);
    // Scratch states are kept (two at most) and removed when the pipeline stops.
    const scratch = readdirSync(dataPath(config, 'time-travel'));
    expect(scratch.length).toBeGreaterThan(0);
    expect(scratch.length).toBeLessThanOrEqual(config.timeTravel.cachedStates);
  });

  it('answers 404 before the first event, 400 for a malformed or future time, 501 for analytics', async () => {
    const summary = `/accounts/${accountId}/summary`;
    const early = await fetch(`${api.url}${withAsOf(summary, '2001-01-01T00:00:00Z')}`);
    expect(early.status).toBe(404);
    expect(early.headers.get('x-cqrs-as-of-position')).toBe('0');
    for (const bad of ['2026-12-02T10:00:00', 'yesterday', '2026-02-30T00:00:00Z']) {
      const res = await fetch(`${api.url}${withAsOf(summary, bad)}`);
      expect(res.status, bad).toBe(400);
      expect(((await res.json()) as { error: string }).error).toBe('AS_OF_INVALID');
    }
    const future = await fetch(`${api.url}${withAsOf(summary, new Date(Date.now() + 60_000).toISOString())}`);
    expect(future.status).toBe(400);
    expect(((await future.json()) as { error: string }).error).toBe('AS_OF_IN_FUTURE');
    // Analytics read models are not rebuilt: an endpoint reading one says so, before any replay.
    const spending = await fetch(
      `${api.url}${withAsOf(`/customers/1/spending?asOf=${encodeURIComponent(overviewAsOf)}&months=3`, new Date().toISOString())}`,
    );
    expect(spending.status).toBe(501);
    expect(((await spending.json()) as { error: string }).error).toBe('TIME_TRAVEL_UNSUPPORTED');
    // The endpoint's own parameters are still checked.
    const badParam = await fetch(`${api.url}${withAsOf('/accounts/abc/summary', new Date().toISOString())}`);
    expect(badParam.status).toBe(400);
  });

  it('answers 422 past timeTravel.maxEvents and 501 without an event store', async () => {
    const limited = embeddedTimeTravel({
      eventStore: pipeline.eventStore,
      migration: bank,
      dir: join(dataDir, 'h3-limited'),
      maxEvents: 5,
      cachedStates: 1,
      batchSize: 64,
    });
    for (const dir of ['h3-small-api', 'h3-no-events-api']) mkdirSync(join(dataDir, dir));
    const small = await startApi(
      { ...config, dataDir: join(dataDir, 'h3-small-api') },
      bank,
      { readModels: pipeline.readModels, freshness: pipeline.freshness, timeTravel: limited },
      legacy,
      silentLogger,
      new Registry(),
    );
    const none = await startApi(
      { ...config, dataDir: join(dataDir, 'h3-no-events-api') },
      bank,
      { readModels: pipeline.readModels, freshness: pipeline.freshness },
      legacy,
      silentLogger,
      new Registry(),
    );
    try {
      const path = withAsOf(`/accounts/${accountId}/summary`, new Date().toISOString());
      const tooFar = await fetch(`${small.url}${path}`);
      expect(tooFar.status).toBe(422);
      const body = (await tooFar.json()) as { error: string; message: string; hint: string };
      expect(body.error).toBe('TIME_TRAVEL_TOO_FAR');
      expect(body.message).toMatch(/timeTravel\.maxEvents allows 5/);
      expect(body.hint).toMatch(/replay <read-model> --to /);
      // A time inside the limit (before any event) still answers.
      const early = await fetch(
        `${small.url}${withAsOf(`/accounts/${accountId}/summary`, '2001-01-01T00:00:00Z')}`,
      );
      expect(early.status).toBe(404);
      const unavailable = await fetch(`${none.url}${path}`);
      expect(unavailable.status).toBe(501);
      expect(((await unavailable.json()) as { error: string }).error).toBe('TIME_TRAVEL_UNAVAILABLE');
    } finally {
      await small.close();
      await none.close();
      limited.close();
    }
  });

  it('serves other requests between the batches of a long replay', async () => {
    const batchSize = 32;
    // One past state of every read model: the longest replay this store offers.
    const travel = embeddedTimeTravel({
      eventStore: pipeline.eventStore,
      migration: bank,
      dir: join(dataDir, 'h3-replay'),
      maxEvents: 10_000_000,
      cachedStates: 1,
      batchSize,
    });
    const head = pipeline.eventStore.headPositionSync();
    let ticks = 0;
    const ticker = setInterval(() => {
      ticks += 1;
    }, 1);
    let built = false;
    const building = travel.lease(head, new Set(bank.readModels.map((m) => m.name))).finally(() => {
      built = true;
    });
    const health = await fetch(`${api.url}/health/live`);
    // Answered while the replay was still going on.
    expect(health.status).toBe(200);
    expect(built).toBe(false);
    (await building).release();
    clearInterval(ticker);
    travel.close();
    // The thread came back to the event loop between chunks: a replay applied a source
    // transaction at a time (a snapshot chunk is thousands of events) would tick a few times.
    expect(ticks).toBeGreaterThanOrEqual(Math.floor(head / batchSize / 2));
  });

  it('replays on a worker thread when the definition is a file, to the same state', async () => {
    const all = new Set(bank.readModels.map((m) => m.name));
    const head = pipeline.eventStore.headPositionSync();
    const common = {
      eventStore: pipeline.eventStore,
      migration: bank,
      maxEvents: 10_000_000,
      cachedStates: 1,
    };
    const worker = embeddedTimeTravel({
      ...common,
      dir: join(dataDir, 'h3-worker'),
      batchSize: 500,
      offThread: {
        eventsPath: dataPath(config, 'events.db'),
        definition: fileURLToPath(new URL('../../examples/bank/migration.ts', import.meta.url)),
      },
    });
    const serving = embeddedTimeTravel({ ...common, dir: join(dataDir, 'h3-serving'), batchSize: 500 });
    let built = false;
    const building = worker.lease(head, all).finally(() => {
      built = true;
    });
    const health = await fetch(`${api.url}/health/live`);
    expect(health.status).toBe(200);
    expect(built).toBe(false);
    const off = await building;
    const here = await serving.lease(head, all);
    try {
      for (const name of all) {
        const everything = { limit: 1_000_000 };
        const docs = await off.readModels[name]?.find(everything);
        expect(docs?.length, name).toBeGreaterThan(0);
        expect(docs, name).toEqual(await here.readModels[name]?.find(everything));
      }
    } finally {
      off.release();
      here.release();
      worker.close();
      serving.close();
    }
  });

  it('documents the time-travel parameter and header on every endpoint', async () => {
    const doc = (await (await fetch(`${api.url}/docs/json`)).json()) as {
      paths: Record<string, { get?: { parameters?: Array<{ name: string; in: string }> } }>;
    };
    const overview = doc.paths['/accounts/{accountId}/overview']?.get?.parameters ?? [];
    const names = overview.map((p) => `${p.in}:${p.name}`);
    expect(names).toEqual(
      expect.arrayContaining(['query:asOf', 'query:_asOf', 'header:x-cqrs-as-of', 'path:accountId']),
    );
  });
});
