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
import { accountDrift, currentRss, runProcess } from '../fault/run-process.js';
import bankHistory from './fixtures/bank-history.js';
import {
  bigTransactionEnv,
  count,
  HISTORY_COUNT,
  PEAK_GROWTH_BOUND,
  PEAK_RSS_BOUND,
  stopRun,
  streaming,
  until,
  watchBigTransaction,
} from './support/big-transaction.js';

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

async function legacyCount(sql: string): Promise<number> {
  const [rows] = await pool.query(sql);
  return Number((rows as Array<{ n: number }>)[0]?.n ?? 0);
}

describe('a 200,000-row source transaction on the embedded path', () => {
  it('streams it with bounded memory and publishes it atomically, without drift', async () => {
    const dataDir = join(dir, 'data');
    const run = runProcess(
      bigTransactionEnv(URL, dataDir, { CQRS_CDC_SERVER_ID: String(6100 + (process.pid % 800)) }),
    );
    const legacyDb = openLegacyDb(URL, { poolSize: 2 });
    let events: Database.Database | null = null;
    let readDb: Database.Database | null = null;
    try {
      await until('the API', 180_000, run, () => run.url() !== null);
      events = new Database(join(dataDir, 'events.db'), { readonly: true, fileMustExist: true });
      readDb = openReadModelDb(join(dataDir, 'read-models.db'), silentLogger);
      const postingsBefore = await legacyCount('SELECT COUNT(*) AS n FROM transactions');
      const ev = events;
      const rm = readDb;
      await until(
        'the snapshot in the read models',
        90_000,
        run,
        () => streaming(ev) && count(rm, HISTORY_COUNT) === postingsBefore,
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
      const seen = await watchBigTransaction(
        run,
        { events: ev, readModels: rm },
        { events: eventsBefore, postings: postingsBefore, rss: rssBefore },
        ROWS,
        'big transaction',
      );

      // Atomic: readers saw the transaction's events and documents all there or not at all.
      expect(seen.eventCounts).toEqual([eventsBefore, eventsBefore + ROWS]);
      expect(seen.historyCounts).toEqual([postingsBefore, postingsBefore + ROWS]);
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
      // Staging and publishing alone, then with the projector's share.
      expect(seen.stagedPeak).toBeLessThan(PEAK_RSS_BOUND);
      expect(seen.peak).toBeLessThan(PEAK_RSS_BOUND);
      expect(seen.peak - rssBefore).toBeLessThan(PEAK_GROWTH_BOUND);
    } finally {
      events?.close();
      readDb?.close();
      await stopRun(run);
      await legacyDb.close();
    }
  }, 900_000);
});
