import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLegacyDb } from '../../connectors/legacy/index.js';
import { LegacyQueries } from '../../examples/bank/legacy-queries.js';
import { ReadModelQueries } from '../../examples/bank/migration.js';
import { createPgBankDatabase, loadPgBank } from '../../examples/bank/postgres/db.js';
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
} from '../fault/run-process.js';
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
import {
  dropPgState,
  LEGACY_PG,
  pgQuery,
  pgReachable,
  pgRunTarget,
  slotReleased,
} from './support/postgres.js';

/**
 * big-transaction.test.ts on PostgreSQL: one legacy transaction of 200,000 rows through a real
 * `cqrs-migrate run` reading the WAL with pgoutput. The reader hands it over in fragments of
 * cdc.maxTransactionRows while the transaction is still arriving, without reading the
 * replication stream ahead of the event store; the store stages them and publishes the whole
 * at the commit. Peak RSS must stay under the binlog test's bounds, readers see the
 * transaction all there or not at all, and the read models equal legacy afterwards. Then a
 * run killed while it stages another big transaction resumes it from its start: no drift,
 * no event twice.
 */

const pgUp = await pgReachable();
const {
  database: DATABASE,
  url: URL,
  cdcName: CDC_NAME,
  slot: SLOT,
} = pgRunTarget(`h1_bigtx_pg_${process.pid}`);
const ROWS = 200_000;
const REPLAYED_ROWS = 50_000;

let dir: string;
const dataDir = () => join(dir, 'data');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'h1-bigtx-pg-'));
  if (!pgUp) return;
  await createPgBankDatabase(LEGACY_PG, DATABASE, { dropExisting: true });
  await loadPgBank(LEGACY_PG, DATABASE, { seed: 11, scale: { customers: 60 } });
}, 120_000);

afterAll(async () => {
  if (pgUp) await dropPgState(DATABASE, [SLOT]).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

async function legacyCount(sql: string): Promise<number> {
  const [row] = await pgQuery(DATABASE, sql);
  return Number(row?.n ?? 0);
}

/** One transaction of `rows` postings spread over the accounts; returns its xid. */
async function bulkPostings(rows: number, tag: string): Promise<string> {
  const accounts = await legacyCount('SELECT COUNT(*) AS n FROM accounts');
  const perAccount = Math.ceil(rows / accounts);
  const [row] = await pgQuery(
    DATABASE,
    `WITH inserted AS (
       INSERT INTO transactions (account_id, direction, amount, currency_code, balance_after, description, posted_at)
       SELECT a.id, 'credit', 0.0100, a.currency_code, 0.0000, '${tag} ' || s.seq,
              TIMESTAMP '2025-01-01 00:00:00' + s.seq * INTERVAL '1 second'
         FROM accounts a CROSS JOIN generate_series(1, ${perAccount}) AS s(seq)
        ORDER BY a.id, s.seq LIMIT ${rows}
       RETURNING 1)
     SELECT COUNT(*) AS n, (txid_current() % 4294967296)::text AS xid FROM inserted`,
  );
  expect(Number(row?.n)).toBe(rows);
  return String(row?.xid);
}

async function drift(readModels: Database.Database): Promise<unknown[]> {
  const legacyDb = openLegacyDb(URL, { poolSize: 2 });
  try {
    const ids = (await pgQuery(DATABASE, 'SELECT id FROM accounts ORDER BY id')).map((r) => Number(r.id));
    return await accountDrift(
      new LegacyQueries(legacyDb),
      new ReadModelQueries(new SqliteReadModels(bankHistory).readModels(readModels)),
      ids,
      { summary: false },
    );
  } finally {
    await legacyDb.close();
  }
}

/** A run on the test's data dir, its event store and read models opened read-only once it serves. */
async function startRun(): Promise<{
  run: RunningProcess;
  events: Database.Database;
  readModels: Database.Database;
}> {
  const run = runProcess(bigTransactionEnv(URL, dataDir(), { CQRS_CDC_NAME: CDC_NAME }));
  try {
    await until('the API', 180_000, run, () => run.url() !== null);
  } catch (err) {
    await stopRun(run);
    throw err;
  }
  return {
    run,
    events: new Database(join(dataDir(), 'events.db'), { readonly: true, fileMustExist: true }),
    readModels: openReadModelDb(join(dataDir(), 'read-models.db'), silentLogger),
  };
}

/** Waits until the reader is streaming and the read models hold every legacy posting. */
async function caughtUp(r: Awaited<ReturnType<typeof startRun>>, postings: number): Promise<void> {
  await until(
    'every posting in the read models',
    120_000,
    r.run,
    () => streaming(r.events) && count(r.readModels, HISTORY_COUNT) === postings,
  );
}

describe.skipIf(!pgUp)('a big source transaction on the embedded PostgreSQL path', () => {
  it(`streams ${ROWS} rows with bounded memory and publishes them atomically, without drift`, async () => {
    const r = await startRun();
    try {
      const postingsBefore = await legacyCount('SELECT COUNT(*) AS n FROM transactions');
      await caughtUp(r, postingsBefore);
      const eventsBefore = count(r.events, 'SELECT COUNT(*) FROM events');
      const rssBefore = currentRss(r.run.child.pid);

      await bulkPostings(ROWS, 'bulk refund');
      const seen = await watchBigTransaction(
        r.run,
        { events: r.events, readModels: r.readModels },
        { events: eventsBefore, postings: postingsBefore, rss: rssBefore },
        ROWS,
        'big PostgreSQL transaction',
      );

      // Atomic: readers saw the transaction's events and documents all there or not at all.
      expect(seen.eventCounts).toEqual([eventsBefore, eventsBefore + ROWS]);
      expect(seen.historyCounts).toEqual([postingsBefore, postingsBefore + ROWS]);
      expect(count(r.events, 'SELECT COUNT(*) FROM staged_items')).toBe(0);
      expect(count(r.events, 'SELECT COUNT(*) FROM dead_letters')).toBe(0);
      expect(await drift(r.readModels)).toEqual([]);
      expect(seen.stagedPeak).toBeLessThan(PEAK_RSS_BOUND);
      expect(seen.peak).toBeLessThan(PEAK_RSS_BOUND);
      expect(seen.peak - rssBefore).toBeLessThan(PEAK_GROWTH_BOUND);
    } finally {
      r.events.close();
      r.readModels.close();
      await stopRun(r.run);
    }
  }, 900_000);

  it('replays a transaction from its start after a kill -9 while its fragments were staged', async () => {
    // Goes on from the first case's data dir and slot: the reader resumes from the stored offset.
    const first = await startRun();
    const postingsBefore = await legacyCount('SELECT COUNT(*) AS n FROM transactions');
    let eventsBefore: number;
    let xid: string;
    try {
      await caughtUp(first, postingsBefore);
      eventsBefore = count(first.events, 'SELECT COUNT(*) FROM events');
      xid = await bulkPostings(REPLAYED_ROWS, 'replayed refund');
      const staged = () => count(first.events, 'SELECT COUNT(DISTINCT fragment) FROM staged_items');
      await until('a few staged fragments', 120_000, first.run, () => staged() >= 3);
      expect(count(first.events, 'SELECT COUNT(*) FROM events')).toBe(eventsBefore);
    } finally {
      first.events.close();
      first.readModels.close();
      first.run.child.kill('SIGKILL');
      await exited(first.run.child);
    }
    await slotReleased(SLOT);

    const second = await startRun();
    try {
      await caughtUp(second, postingsBefore + REPLAYED_ROWS);
      console.info(
        `replayed PostgreSQL transaction: peak RSS (VmHWM) of the restarted run ${mb(peakRss(second.run.child.pid))}`,
      );
      const ev = second.events;
      expect(count(ev, 'SELECT COUNT(*) FROM events')).toBe(eventsBefore + REPLAYED_ROWS);
      expect(count(ev, `SELECT COUNT(*) FROM events WHERE source_tx_id = '${xid}'`)).toBe(REPLAYED_ROWS);
      expect(
        count(ev, `SELECT COUNT(DISTINCT source_position) FROM events WHERE source_tx_id = '${xid}'`),
      ).toBe(REPLAYED_ROWS);
      expect(count(ev, 'SELECT COUNT(*) FROM staged_items')).toBe(0);
      expect(count(ev, 'SELECT COUNT(*) FROM dead_letters')).toBe(0);
      expect(await drift(second.readModels)).toEqual([]);
    } finally {
      second.events.close();
      second.readModels.close();
      await stopRun(second.run);
    }
  }, 900_000);
});
