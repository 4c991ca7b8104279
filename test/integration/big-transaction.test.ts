import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLegacyDb } from '../../connectors/legacy/index.js';
import { createBankDatabase, dropDatabase, openPool } from '../../examples/bank/db.js';
import { generateBank } from '../../examples/bank/generate.js';
import { LegacyQueries } from '../../examples/bank/legacy-queries.js';
import { ReadModelQueries } from '../../examples/bank/migration.js';
import { silentLogger } from '../../lib/logger.js';
import { openReadModelDb } from '../../projectors/stores/sqlite.js';
import { SqliteReadModels } from '../../projectors/stores/sqlite-read-models.js';
import {
  accountDrift,
  currentRss,
  exited,
  mb,
  peakRss,
  type RunningProcess,
  runProcess,
  sleep,
} from '../fault/run-process.js';
import bankHistory from './fixtures/bank-history.js';

/**
 * One legacy transaction of 200,000 rows through a real `cqrs-migrate run`: the reader hands it
 * over in fragments of cdc.maxTransactionRows, the event store stages them and publishes the
 * whole at the commit. Peak RSS must stay under a bound that does not depend on the
 * transaction's size, the read models must equal legacy for every account afterwards, and a
 * reader polling the event store and the read models meanwhile must only ever see the
 * transaction all there or not at all.
 */

const SERVER = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const DATABASE = `h1_bigtx_${process.pid}`;
const URL = `mysql://cqrs:cqrs@127.0.0.1:3307/${DATABASE}`;
const ROWS = 200_000;
/**
 * Held whole, this transaction took a run process past 1.1 GB (about 6 KB a row) and would grow
 * with every row. In fragments it must fit a fixed V8 heap (HEAP_MB, for the main thread and
 * again for the projection worker) and add little to what the process held before it: measured
 * 552 MB before (two V8 isolates, tsx, the API, SQLite caches) and a 566 MB peak through
 * staging, publishing and projecting. The bounds leave room for a loaded machine and still
 * fail long before a whole 200k-row transaction fits.
 */
const PEAK_RSS_BOUND = 700 * 1024 * 1024;
const PEAK_GROWTH_BOUND = 200 * 1024 * 1024;
const HEAP_MB = 256;

const pool = openPool(SERVER, DATABASE, { connectionLimit: 2 });
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'h1-bigtx-'));
  await createBankDatabase(SERVER, DATABASE, { dropExisting: true });
  await generateBank(pool, { seed: 11, scale: { customers: 60 } });
}, 120_000);

afterAll(async () => {
  await pool.end();
  await dropDatabase(SERVER, DATABASE).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

const count = (db: Database.Database, sql: string) => Number(db.prepare(sql).pluck().get());

async function legacyCount(sql: string): Promise<number> {
  const [rows] = await pool.query(sql);
  return Number((rows as Array<{ n: number }>)[0]?.n ?? 0);
}

async function until(what: string, timeoutMs: number, run: RunningProcess, check: () => boolean) {
  console.info(`${new Date().toISOString()} waiting for ${what}`);
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (run.child.exitCode !== null)
      throw new Error(`run exited while waiting for ${what}:\n${run.output().slice(-2000)}`);
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}:\n${run.output().slice(-2000)}`);
    await sleep(100);
  }
}

describe('a 200,000-row source transaction on the embedded path', () => {
  it('streams it with bounded memory and publishes it atomically, without drift', async () => {
    const dataDir = join(dir, 'data');
    const run = runProcess({
      ...process.env,
      CQRS_LEGACY_URL: URL,
      CQRS_DATA_DIR: dataDir,
      CQRS_DEFINITION: 'test/integration/fixtures/bank-history.ts',
      // A fixed heap: a transaction that had to be held whole would not fit, whatever V8's
      // default limit on this machine (it collects lazily far below that limit).
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-old-space-size=${HEAP_MB}`.trim(),
      CQRS_CDC_SERVER_ID: String(6100 + (process.pid % 800)),
      CQRS_API_PORT: '0',
      LOG_LEVEL: 'warn',
    });
    const legacyDb = openLegacyDb(URL, { poolSize: 2 });
    let events: Database.Database | null = null;
    let readDb: Database.Database | null = null;
    try {
      await until('the API', 90_000, run, () => run.url() !== null);
      events = new Database(join(dataDir, 'events.db'), { readonly: true, fileMustExist: true });
      readDb = openReadModelDb(join(dataDir, 'read-models.db'), silentLogger);
      const history = 'SELECT COUNT(*) FROM "rm_doc__transaction-history"';
      const postingsBefore = await legacyCount('SELECT COUNT(*) AS n FROM transactions');
      const ev = events;
      const rm = readDb;
      const streaming = () =>
        count(ev, `SELECT COUNT(*) FROM source_offsets WHERE json_extract("offset", '$.phase') = 'stream'`) >
        0;
      await until(
        'the snapshot in the read models',
        90_000,
        run,
        () => streaming() && count(rm, history) === postingsBefore,
      );
      const eventsBefore = count(ev, 'SELECT COUNT(*) FROM events');
      const rssBefore = currentRss(run.child.pid);

      const [accounts] = await pool.query('SELECT COUNT(*) AS n FROM accounts');
      const perAccount = Math.ceil(ROWS / Number((accounts as Array<{ n: number }>)[0]?.n));
      const [inserted] = await pool.query(
        `INSERT INTO transactions (account_id, direction, amount, currency_code, balance_after, description, posted_at)
         SELECT a.id, 'credit', 0.0100, a.currency_code, 0.0000, CONCAT('bulk refund ', s.seq),
                TIMESTAMP('2025-01-01 00:00:00.000000') + INTERVAL s.seq SECOND
           FROM accounts a JOIN seq_1_to_${perAccount} s ORDER BY a.id, s.seq LIMIT ${ROWS}`,
      );
      expect((inserted as { affectedRows: number }).affectedRows).toBe(ROWS);
      const started = Date.now();

      // Poll what readers see, and the process's memory, until the read models have it all.
      const eventCounts = new Set<number>();
      const historyCounts = new Set<number>();
      const rss = { staging: 0, projecting: 0 };
      const observe = () => {
        const e = count(ev, 'SELECT COUNT(*) FROM events');
        const h = count(rm, history);
        eventCounts.add(e);
        historyCounts.add(h);
        const phase = e === eventsBefore ? 'staging' : 'projecting';
        rss[phase] = Math.max(rss[phase], currentRss(run.child.pid));
        return { published: e !== eventsBefore, projected: h === postingsBefore + ROWS };
      };
      await until('the transaction in the event store', 240_000, run, () => observe().published);
      const publishedMs = Date.now() - started;
      const stagedPeak = peakRss(run.child.pid);
      console.info(
        `big transaction: ${ROWS} rows published after ${publishedMs} ms; RSS before ${mb(rssBefore)}, max sampled while staging/publishing ${mb(rss.staging)}, peak (VmHWM) so far ${mb(stagedPeak)}`,
      );
      // Staging and publishing alone: the projector's share is checked with the peak below.
      expect(stagedPeak).toBeLessThan(PEAK_RSS_BOUND);
      try {
        await until('the transaction in the read models', 300_000, run, () => observe().projected);
      } finally {
        console.info(
          `big transaction: in the read models after ${Date.now() - started} ms (or not: see the error); max RSS sampled while projecting ${mb(rss.projecting)}; peak (VmHWM) ${mb(peakRss(run.child.pid))}, bound ${mb(PEAK_RSS_BOUND)}`,
        );
      }
      const peak = peakRss(run.child.pid);

      // Atomic: readers saw the transaction's events and documents all there or not at all.
      expect([...eventCounts].sort((a, b) => a - b)).toEqual([eventsBefore, eventsBefore + ROWS]);
      expect([...historyCounts].sort((a, b) => a - b)).toEqual([postingsBefore, postingsBefore + ROWS]);
      expect(count(ev, 'SELECT COUNT(*) FROM staged_items')).toBe(0);
      expect(count(ev, 'SELECT COUNT(*) FROM dead_letters')).toBe(0);

      const [ids] = await pool.query('SELECT id FROM accounts ORDER BY id');
      const accountIds = (ids as Array<{ id: number }>).map((r) => r.id);
      const drift = await accountDrift(
        new LegacyQueries(legacyDb),
        new ReadModelQueries(new SqliteReadModels(bankHistory).readModels(rm)),
        accountIds,
        { summary: false },
      );
      expect(drift).toEqual([]);
      expect(peak).toBeLessThan(PEAK_RSS_BOUND);
      expect(peak - rssBefore).toBeLessThan(PEAK_GROWTH_BOUND);
    } finally {
      events?.close();
      readDb?.close();
      // A projector inside a long batch answers SIGTERM only once the batch is done.
      run.child.kill('SIGTERM');
      await Promise.race([exited(run.child), sleep(10_000)]);
      run.child.kill('SIGKILL');
      await exited(run.child);
      await legacyDb.close();
    }
  }, 900_000);
});
