import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openLegacyDb } from '../../connectors/legacy/index.js';
import { createBankDatabase, dropDatabase, openPool } from '../../examples/bank/db.js';
import { generateBank } from '../../examples/bank/generate.js';
import { LegacyQueries } from '../../examples/bank/legacy-queries.js';
import bank, { ReadModelQueries } from '../../examples/bank/migration.js';
import { runWorkload, type WorkloadStats } from '../../examples/bank/workload.js';
import { silentLogger } from '../../lib/logger.js';
import { openReadModelDb } from '../../projectors/stores/sqlite.js';
import { SqliteReadModels } from '../../projectors/stores/sqlite-read-models.js';
import {
  type AccountDrift,
  accountDrift,
  exited,
  mb,
  peakRss,
  type RunningProcess,
  runProcess,
  sleep,
} from './run-process.js';

/**
 * kill -9 of a real `cqrs-migrate run` process at random points while the legacy bank takes
 * writes: during the initial snapshot, while streaming, between batches, and while a big
 * legacy transaction is partly staged in the event store. After the last kill
 * a final run catches up and every account's summary and full history must equal the legacy
 * JOIN answers (zero drift), and the event store must hold no second copy of the snapshot. The fault suite runs it bounded; `npm run soak` runs it for
 * minutes and prints the same figures.
 */

const SERVER = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const CAPTURED_TABLES = bank.tables;

export interface KillLoopOptions {
  /** Stop after this many kills, or when `untilMs` is reached, whichever comes first. */
  kills: number;
  untilMs?: number;
  /** A kill lands this long after the process started, uniformly at random. */
  minLifeMs: number;
  maxLifeMs: number;
  /** Legacy write operations per second during the loop. */
  writeRate: number;
  /** Bank customers (the rest of the data follows the sample's shape). */
  customers: number;
  /**
   * Every `every`-th kill lands during a big legacy transaction: once the process serves, one
   * transaction posts `rows` ledger rows, and the process is killed while the event store has
   * part of it staged. `fragmentRows` sets cdc.maxTransactionRows, so a transaction small
   * enough to project in seconds still leaves in several fragments.
   */
  bigTransaction?: { rows: number; every: number; fragmentRows?: number };
  seed: number;
  log?: (line: string) => void;
}

export interface KillLoopResult {
  kills: number;
  /** Kills that landed after the first snapshot chunk was stored and before the last. */
  killsDuringSnapshot: number;
  /** Kills that landed while a big transaction was partly staged. */
  killsDuringBigTransaction: number;
  accountsCompared: number;
  /** Accounts whose summary or history differed from legacy after the final catch-up. */
  drift: AccountDrift;
  peakRssBytes: number;
  /** Longest /health answer time seen while a process served. */
  maxApiStallMs: number;
  snapshotEvents: number;
  /** Rows of the captured tables once the writes stopped. */
  sourceRows: number;
  /** Snapshot events equal to an earlier one (same stream, type and data): a row captured twice. */
  duplicateSnapshotEvents: number;
  deadLetters: number;
  writes: WorkloadStats | null;
  catchUpMs: number;
}

/** Whether the stored source offset says the initial snapshot has begun and not finished. */
function snapshotPhase(eventsDb: string): 'not begun' | 'in progress' | 'done' {
  let db: Database.Database;
  try {
    // Read-write: after a kill -9 the WAL index needs recovery, which a read-only handle cannot do.
    db = new Database(eventsDb, { fileMustExist: true });
  } catch {
    return 'not begun';
  }
  try {
    const offsets = db.prepare('SELECT "offset" FROM source_offsets').pluck().all() as string[];
    if (offsets.some((o) => o.includes('"snapshotCompleted":false'))) return 'in progress';
    return offsets.length > 0 ? 'done' : 'not begun';
  } catch {
    return 'not begun';
  } finally {
    db.close();
  }
}

const snapshotInProgress = (eventsDb: string) => snapshotPhase(eventsDb) === 'in progress';

/** A seeded generator, so a failing run can be repeated with the seed it printed. */
function random(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

export async function runKillLoop(options: KillLoopOptions): Promise<KillLoopResult> {
  const log = options.log ?? (() => undefined);
  const next = random(options.seed);
  const database = `t_kill_${process.pid}_${options.seed}`;
  const url = `mysql://cqrs:cqrs@127.0.0.1:3307/${database}`;
  const dir = mkdtempSync(join(tmpdir(), 'cqrs-kill-'));
  const dataDir = join(dir, 'data');
  await createBankDatabase(SERVER, database, { dropExisting: true });
  const pool = openPool(SERVER, database, { connectionLimit: 4 });
  await generateBank(pool, { seed: options.seed, scale: { customers: options.customers } });
  const legacyDb = openLegacyDb(url, { poolSize: 2 });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CQRS_LEGACY_URL: url,
    CQRS_DATA_DIR: dataDir,
    CQRS_DEFINITION: 'examples/bank/migration.ts',
    CQRS_CDC_SERVER_ID: String(7000 + (process.pid % 500) + (options.seed % 400)),
    CQRS_API_PORT: '0',
    CQRS_ADMIN_PORT: '0',
    // Small chunks: the snapshot lasts long enough for kills to land inside it.
    CQRS_CDC_SNAPSHOT_CHUNK_ROWS: '500',
    LOG_LEVEL: 'fatal',
    ...(options.bigTransaction?.fragmentRows === undefined
      ? {}
      : { CQRS_CDC_MAX_TRANSACTION_ROWS: String(options.bigTransaction.fragmentRows) }),
  };
  const countRows = async () => {
    let n = 0;
    for (const table of CAPTURED_TABLES) {
      const [rows] = await pool.query(`SELECT COUNT(*) AS n FROM \`${table}\``);
      n += Number((rows as Array<{ n: number }>)[0]?.n ?? 0);
    }
    return n;
  };

  let bigTransactions = 0;
  /**
   * Once `run` serves, commits one legacy transaction of `rows` ledger postings and waits until
   * the event store has about `fraction` of it staged (or it was published, or a time limit
   * passed); returns how many of its events were staged then, and the process now running.
   */
  const bigTransactionUnderWay = async (started: RunningProcess, rows: number, fraction: number) => {
    let run = started;
    const serveBy = Date.now() + 180_000;
    while (run.url() === null) {
      // Only this wait sees whole start-ups. One that begins with a long projector batch (a
      // snapshot chunk left by earlier kills, projected on the main thread) can hold the event
      // loop past the source's 5 s connect timeout on a loaded machine, which `run` reports by
      // exiting; each attempt projects a batch more, so start it again until the deadline.
      if (run.child.exitCode !== null && Date.now() < serveBy && /SOURCE_UNREACHABLE/.test(run.output())) {
        log('run could not reach the legacy database while starting; starting it again');
        run = runProcess(env);
        running = run;
      } else if (run.child.exitCode !== null || Date.now() > serveBy)
        throw new Error(`run did not serve:\n${run.output().slice(-2000)}`);
      await sleep(100);
    }
    bigTransactions++;
    const [accounts] = await pool.query('SELECT COUNT(*) AS n FROM accounts');
    const perAccount = Math.ceil(rows / Number((accounts as Array<{ n: number }>)[0]?.n));
    await pool.query(
      `INSERT INTO transactions (account_id, direction, amount, currency_code, balance_after, description, posted_at)
       SELECT a.id, 'debit', 0.0100, a.currency_code, 0.0000, CONCAT('batch fee ${bigTransactions}/', s.seq),
              TIMESTAMP('2025-06-01 00:00:00.000000') + INTERVAL s.seq SECOND
         FROM accounts a JOIN seq_1_to_${perAccount} s ORDER BY a.id, s.seq LIMIT ${rows}`,
    );
    const events = new Database(join(dataDir, 'events.db'), { readonly: true, fileMustExist: true });
    try {
      const stagedNow = events.prepare('SELECT COUNT(*) FROM staged_items').pluck();
      const target = Math.ceil(rows * fraction);
      const until = Date.now() + 180_000;
      let seen = 0;
      for (;;) {
        const staged = Number(stagedNow.get());
        // Back to 0 after some were staged: published before the target was reached.
        if (
          staged >= target ||
          (seen > 0 && staged === 0) ||
          Date.now() > until ||
          run.child.exitCode !== null
        )
          return { staged, run };
        seen = Math.max(seen, staged);
        await sleep(20);
      }
    } finally {
      events.close();
    }
  };

  const stopWrites = new AbortController();
  const writes = runWorkload(
    pool,
    { seed: options.seed, ratePerSec: options.writeRate, concurrency: 3 },
    stopWrites.signal,
  );
  const result: KillLoopResult = {
    kills: 0,
    killsDuringSnapshot: 0,
    killsDuringBigTransaction: 0,
    accountsCompared: 0,
    drift: [],
    peakRssBytes: 0,
    maxApiStallMs: 0,
    snapshotEvents: 0,
    sourceRows: 0,
    duplicateSnapshotEvents: 0,
    deadLetters: 0,
    writes: null,
    catchUpMs: 0,
  };
  let running = null as ReturnType<typeof runProcess> | null;
  let polling = true;
  // Answer time of the API's liveness route while a process serves: a stall behind projection shows here.
  const poller = (async () => {
    while (polling) {
      const base = running?.url();
      if (base) {
        const started = performance.now();
        await fetch(`${base}/health`, { signal: AbortSignal.timeout(30_000) }).catch(() => undefined);
        result.maxApiStallMs = Math.max(result.maxApiStallMs, performance.now() - started);
      }
      await sleep(100);
    }
  })();

  try {
    const started = Date.now();
    while (
      result.kills < options.kills &&
      (options.untilMs === undefined || Date.now() - started < options.untilMs)
    ) {
      running = runProcess(env);
      const big = options.bigTransaction;
      if (big !== undefined && (result.kills + 1) % big.every === 0) {
        const { staged, run } = await bigTransactionUnderWay(running, big.rows, 0.1 + 0.8 * next());
        result.peakRssBytes = Math.max(result.peakRssBytes, peakRss(run.child.pid));
        run.child.kill('SIGKILL');
        await exited(run.child);
        result.kills++;
        if (staged > 0) result.killsDuringBigTransaction++;
        log(`kill ${result.kills} with ${staged} of a ${big.rows}-row transaction's events staged`);
        running = null;
        continue;
      }
      let life = options.minLifeMs + next() * (options.maxLifeMs - options.minLifeMs);
      if (result.killsDuringSnapshot === 0 && snapshotPhase(join(dataDir, 'events.db')) !== 'done') {
        // Until one kill has landed inside the initial snapshot, aim for it: with projection off
        // the reading thread the snapshot can outrun a random kill, and it is the case that
        // must show that a restart goes on after the last stored chunk. Start-up takes long on
        // a loaded machine, so the wait is for the snapshot's first chunk, not for a time.
        const aimed = Date.now();
        const deadline = aimed + 120_000;
        while (
          running.child.exitCode === null &&
          Date.now() < deadline &&
          snapshotPhase(join(dataDir, 'events.db')) === 'not begun'
        )
          await sleep(25);
        life = Date.now() - aimed;
      } else {
        // The life counts from when the process serves, so kills spread over snapshot and
        // streaming rather than over start-up, which now takes seconds of its own.
        const proc = running;
        const serving = Date.now() + 60_000;
        while (proc.child.exitCode === null && proc.url() === null && Date.now() < serving) await sleep(25);
        await Promise.race([sleep(life), exited(proc.child)]);
      }
      if (running.child.exitCode !== null) {
        throw new Error(
          `run exited by itself (code ${running.child.exitCode}):\n${running.output().slice(-2000)}`,
        );
      }
      result.peakRssBytes = Math.max(result.peakRssBytes, peakRss(running.child.pid));
      running.child.kill('SIGKILL');
      await exited(running.child);
      result.kills++;
      const inSnapshot = snapshotInProgress(join(dataDir, 'events.db'));
      if (inSnapshot) result.killsDuringSnapshot++;
      log(
        `kill ${result.kills} after ${Math.round(life)} ms${inSnapshot ? ' (during the initial snapshot)' : ''}`,
      );
      running = null;
    }
    stopWrites.abort();
    result.writes = await writes;
    // Rows inserted while the snapshot ran are in it too: the comparison is with the rows now.
    result.sourceRows = await countRows();

    // The last process runs until the read models equal legacy for every account.
    running = runProcess(env);
    const catchUp = Date.now();
    const readDb = await (async () => {
      for (;;) {
        const final = running;
        if (final === null) throw new Error('no final run');
        if (final.url()) return openReadModelDb(join(dataDir, 'read-models.db'), silentLogger);
        if (final.child.exitCode !== null)
          throw new Error(`final run exited:\n${final.output().slice(-2000)}`);
        await sleep(100);
      }
    })();
    try {
      const readModels = new ReadModelQueries(new SqliteReadModels(bank).readModels(readDb));
      const legacy = new LegacyQueries(legacyDb);
      const [ids] = await pool.query('SELECT id FROM accounts ORDER BY id');
      const accountIds = (ids as Array<{ id: number }>).map((r) => r.id);
      const deadline = Date.now() + 120_000;
      for (;;) {
        const drift = await accountDrift(legacy, readModels, accountIds);
        result.drift = drift;
        result.accountsCompared = accountIds.length;
        if (drift.length === 0 || Date.now() > deadline) break;
        await sleep(1000);
      }
      result.catchUpMs = Date.now() - catchUp;
      result.peakRssBytes = Math.max(result.peakRssBytes, peakRss(running.child.pid));
    } finally {
      readDb.close();
    }
    running.child.kill('SIGTERM');
    await exited(running.child);
    running = null;

    const events = new Database(join(dataDir, 'events.db'), { readonly: true });
    try {
      result.snapshotEvents = events
        .prepare('SELECT COUNT(*) FROM events WHERE snapshot = 1')
        .pluck()
        .get() as number;
      result.duplicateSnapshotEvents = events
        .prepare(
          `SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT COUNT(*) AS n FROM events WHERE snapshot = 1
             GROUP BY stream_id, type, data HAVING COUNT(*) > 1)`,
        )
        .pluck()
        .get() as number;
      result.deadLetters = events.prepare('SELECT COUNT(*) FROM dead_letters').pluck().get() as number;
    } finally {
      events.close();
    }
    return result;
  } finally {
    polling = false;
    stopWrites.abort();
    await writes.catch(() => undefined);
    await poller;
    if (running !== null) {
      running.child.kill('SIGKILL');
      await exited(running.child);
    }
    await legacyDb.close();
    await pool.end();
    await dropDatabase(SERVER, database).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

export function describeResult(r: KillLoopResult): string {
  return [
    `kills survived: ${r.kills} (${r.killsDuringSnapshot} during the initial snapshot, ${r.killsDuringBigTransaction} during a big transaction)`,
    `drift: ${r.drift.length} of ${r.accountsCompared} accounts differ after catch-up (${r.catchUpMs} ms)`,
    `dead letters: ${r.deadLetters}`,
    `event store: ${r.snapshotEvents} snapshot events for ${r.sourceRows} source rows (${(r.snapshotEvents / Math.max(1, r.sourceRows)).toFixed(2)}×), ${r.duplicateSnapshotEvents} captured twice`,
    `peak RSS of a run process: ${mb(r.peakRssBytes)}; max API stall (/health): ${Math.round(r.maxApiStallMs)} ms`,
    `legacy writes: ${r.writes?.ops ?? 0} ops, ${r.writes?.rowChanges ?? 0} row changes, ${r.writes?.errors ?? 0} errors`,
  ].join('\n');
}
