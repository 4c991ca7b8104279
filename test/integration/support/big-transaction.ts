import type Database from 'better-sqlite3';
import { currentRss, exited, mb, peakRss, type RunningProcess, sleep } from '../../fault/run-process.js';

/**
 * What the big-transaction tests share (one per change source): a `run` process on the bank's
 * capture with only its history read model under a fixed V8 heap, polled while one huge legacy
 * transaction goes through it, for its memory and for what readers see meanwhile.
 */

/**
 * Held whole, a 200k-row transaction took a run process past 1.1 GB (about 6 KB a row) and
 * would grow with every row. In fragments it must fit a fixed V8 heap (HEAP_MB, for the main
 * thread and again for the projection worker) and add little to what the process held before
 * it: measured 552 MB before (two V8 isolates, tsx, the API, SQLite caches) and a 566 MB peak
 * through staging, publishing and projecting. The bounds leave room for a loaded machine and
 * still fail long before a whole 200k-row transaction fits.
 */
export const PEAK_RSS_BOUND = 700 * 1024 * 1024;
export const PEAK_GROWTH_BOUND = 200 * 1024 * 1024;
export const HEAP_MB = 256;

/** The bank's history-only definition the big-transaction runs load. */
export const BANK_HISTORY_DEFINITION = 'test/integration/fixtures/bank-history.ts';
export const HISTORY_COUNT = 'SELECT COUNT(*) FROM "rm_doc__transaction-history"';

/** Environment of a `run` process for a big-transaction test on legacy database `url`. */
export function bigTransactionEnv(url: string, dataDir: string, extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return {
    ...process.env,
    CQRS_LEGACY_URL: url,
    CQRS_DATA_DIR: dataDir,
    CQRS_DEFINITION: BANK_HISTORY_DEFINITION,
    // A fixed heap: a transaction that had to be held whole would not fit, whatever V8's
    // default limit on this machine (it collects lazily far below that limit).
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-old-space-size=${HEAP_MB}`.trim(),
    CQRS_API_PORT: '0',
    CQRS_ADMIN_PORT: '0',
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

export const count = (db: Database.Database, sql: string) => Number(db.prepare(sql).pluck().get());

/** Polls `check` every 100 ms; fails with the run's last output when it exits or time is up. */
export async function until(
  what: string,
  timeoutMs: number,
  run: RunningProcess,
  check: () => boolean,
): Promise<void> {
  console.info(`${new Date().toISOString()} waiting for ${what}`);
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (run.child.exitCode !== null || run.child.signalCode !== null)
      throw new Error(`run exited while waiting for ${what}:\n${run.output().slice(-2000)}`);
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}:\n${run.output().slice(-2000)}`);
    await sleep(100);
  }
}

/** True once the run's source offset says the snapshot is done. */
export const streaming = (events: Database.Database) =>
  count(events, `SELECT COUNT(*) FROM source_offsets WHERE json_extract("offset", '$.phase') = 'stream'`) > 0;

export interface BigTransactionWatch {
  /** Every event and history-document count a reader saw, to check atomic visibility. */
  eventCounts: number[];
  historyCounts: number[];
  /** Peak RSS (VmHWM) once the transaction was published, and once it was projected. */
  stagedPeak: number;
  peak: number;
}

/**
 * Watches a run take one legacy transaction of `rows` postings that was just committed: polls
 * the event count and the history read model's size (what readers see) and the process's
 * memory until the read models have it all, printing the figures.
 */
export async function watchBigTransaction(
  run: RunningProcess,
  db: { events: Database.Database; readModels: Database.Database },
  before: { events: number; postings: number; rss: number },
  rows: number,
  label: string,
): Promise<BigTransactionWatch> {
  const started = Date.now();
  const eventCounts = new Set<number>();
  const historyCounts = new Set<number>();
  const rss = { staging: 0, projecting: 0 };
  const observe = () => {
    const e = count(db.events, 'SELECT COUNT(*) FROM events');
    const h = count(db.readModels, HISTORY_COUNT);
    eventCounts.add(e);
    historyCounts.add(h);
    const phase = e === before.events ? 'staging' : 'projecting';
    rss[phase] = Math.max(rss[phase], currentRss(run.child.pid));
    return { published: e !== before.events, projected: h === before.postings + rows };
  };
  const liveness = probeLiveness(run);
  await until('the transaction in the event store', 240_000, run, () => observe().published);
  const stagedPeak = peakRss(run.child.pid);
  console.info(
    `${label}: ${rows} rows published after ${Date.now() - started} ms; RSS before ${mb(before.rss)}, max sampled while staging/publishing ${mb(rss.staging)}, peak (VmHWM) so far ${mb(stagedPeak)}`,
  );
  try {
    await until('the transaction in the read models', 300_000, run, () => observe().projected);
  } finally {
    const slowest = await liveness.stop();
    console.info(
      `${label}: in the read models after ${Date.now() - started} ms (or not: see the error); max RSS sampled while projecting ${mb(rss.projecting)}; peak (VmHWM) ${mb(peakRss(run.child.pid))}, bound ${mb(PEAK_RSS_BOUND)}; slowest /health/live answer meanwhile ${slowest} ms`,
    );
  }
  const sorted = (s: Set<number>) => [...s].sort((a, b) => a - b);
  return {
    eventCounts: sorted(eventCounts),
    historyCounts: sorted(historyCounts),
    stagedPeak,
    peak: peakRss(run.child.pid),
  };
}

/**
 * Asks the run's /health/live one request after another until stopped; resolves with the
 * slowest answer's time: how long the API thread was held (a figure to print, not a bound).
 */
function probeLiveness(run: RunningProcess): { stop: () => Promise<number> } {
  let stopped = false;
  let slowest = 0;
  const loop = (async () => {
    while (!stopped) {
      const url = run.url();
      const t0 = Date.now();
      try {
        if (url !== null) await fetch(`${url}/health/live`);
      } catch {
        // The run's own exit is reported by `until`.
      }
      slowest = Math.max(slowest, Date.now() - t0);
      await sleep(50);
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return slowest;
    },
  };
}

/** Ends a run: SIGTERM, and SIGKILL if it is still there after 10 s. */
export async function stopRun(run: RunningProcess): Promise<void> {
  // A projector inside a long batch answers SIGTERM only once the batch is done.
  run.child.kill('SIGTERM');
  await Promise.race([exited(run.child), sleep(10_000)]);
  run.child.kill('SIGKILL');
  await exited(run.child);
}
