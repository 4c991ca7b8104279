import { readdirSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { PoolConnection } from 'mysql2/promise';
import { z } from 'zod';
import { dataPath } from '../../lib/config.js';
import { threadNames } from '../../lib/worker-thread.js';
import { startAdapter } from '../adapter.js';
import { childModule, runChild } from '../child.js';
import { type WriteLoadOutput, writeLoadOutputSchema } from '../children/write-load.js';
import type { ScenarioContext } from '../context.js';
import { BenchError } from '../errors.js';
import { legacyServerPid, processCpuMs, statCpuMs } from '../legacy-cpu.js';
import { profiled } from '../profile.js';
import type { CdcPathName, CdcStages, FreshnessLevel, ProfileSummary, ResultsOf } from '../results-schema.js';
import { latencyOf } from '../stats.js';
import { debeziumPath } from './cdc-debezium.js';

/**
 * A CDC path under test: legacy database → … → read model. The embedded path is below; the
 * Debezium/Kafka path plugs in with its own way of telling that a legacy transaction is visible.
 */
export interface CdcPath {
  readonly name: CdcPathName;
  /** How commit → visible is observed on this path, for the results. */
  readonly method: string;
  /** Profile every level, not only the top one (a path whose lag at a low rate needs explaining too). */
  readonly profileEveryLevel?: boolean;
  /** Starts the path, caught up with the legacy database. */
  start(ctx: ScenarioContext): Promise<RunningCdcPath>;
}

export interface RunningCdcPath {
  /**
   * Whether the read models reflect the legacy transaction with this GTID, committed at
   * `committedAtMs` (epoch ms, for a path that splits the lag into stages).
   */
  visible(gtid: string, committedAtMs: number): boolean;
  /**
   * Markers become visible in commit order, so a poll can stop at the first one still pending:
   * checking every pending marker each 2 ms costs the harness CPU in proportion to the lag and
   * takes it from the pipeline it measures.
   */
  readonly visibleInCommitOrder?: boolean;
  /** Where the markers' time went since the last call: stages into the results, the rest logged with the level. */
  levelReport?(): Promise<LevelReport>;
  stop(): Promise<void>;
}

export interface LevelReport {
  stages?: CdcStages;
  /** Logged with the level only. */
  log?: Record<string, unknown>;
}

const EMBEDDED_METHOD =
  'marker transactions (a balance touch on a random account) committed by the harness during the write load; ' +
  'lag = time from the COMMIT acknowledgement to the first poll (every 2 ms) at which the read model reflects ' +
  'that transaction: its GTID (@@last_gtid) is in the event store and the projector checkpoint, committed in ' +
  'the same SQLite transaction as the read-model writes, has reached its last event';

/** The embedded pipeline: binlog reader → SQLite event store → projector → SQLite read models. */
export const embeddedPath: CdcPath = {
  name: 'embedded',
  method: EMBEDDED_METHOD,
  async start(ctx) {
    const adapter = await startAdapter(
      { server: ctx.server, database: ctx.fixture.dataset.database, dataDir: ctx.fixture.adapterDir },
      ctx.logger,
      { catchUpTimeoutMs: 3_600_000 },
    );
    const events = new Database(dataPath(adapter.config, 'events.db'), { readonly: true });
    const lastPosition = events
      .prepare('SELECT last_position FROM source_transactions WHERE source_name = ? AND source_tx_id = ?')
      .pluck();
    const source = adapter.pipeline.source.name;
    // A transaction's position never changes once stored, so each marker is looked up until found.
    const positions = new Map<string, number>();
    return {
      visibleInCommitOrder: true,
      visible(gtid) {
        let position = positions.get(gtid);
        if (position === undefined) {
          const stored = lastPosition.get(source, gtid) as number | null | undefined;
          if (typeof stored !== 'number') return false;
          position = stored;
          positions.set(gtid, position);
        }
        const seen = adapter.pipeline.runner.checkpoint() >= position;
        if (seen) positions.delete(gtid);
        return seen;
      },
      async stop() {
        events.close();
        await adapter.stop();
      },
    };
  },
};

/** Row changes per workload operation, from the demo's mix; refined by each level's measurement. */
const INITIAL_ROWS_PER_OP = 3.3;
const POLL_MS = 2;
const OP_BUDGET_MS = 30;
/** The write load's connection limit (its input schema's maximum). */
const MAX_WRITE_CONNECTIONS = 64;
/** How long after the write load ends markers may still become visible (a backlog drains). */
const MARKER_DEADLINE_MS = 300_000;
const gtidRow = z.object({ gtid: z.string().min(1) });

interface Marker {
  gtid: string;
  /** performance.now(): the lag's start. */
  committedAt: number;
  /** The same moment on the epoch clock, which the stage timestamps of a path use. */
  committedAtEpochMs: number;
}

/** Commits one marker transaction and returns its GTID and commit time. */
async function commitMarker(conn: PoolConnection, accountId: number): Promise<Marker> {
  // A microsecond timestamp that always moves forward, so the row really changes and is logged.
  await conn.query(
    'UPDATE balances SET updated_at = GREATEST(NOW(6), updated_at + INTERVAL 1 MICROSECOND) WHERE account_id = ?',
    [accountId],
  );
  const committedAt = performance.now();
  const committedAtEpochMs = Date.now();
  const [rows] = await conn.query('SELECT @@last_gtid AS gtid');
  return { gtid: gtidRow.parse((rows as unknown[])[0]).gtid, committedAt, committedAtEpochMs };
}

/**
 * CPU milliseconds of each of this process's threads (/proc/<tid>/stat), by thread id: the
 * process's CPU split between the main thread, the event store's writer, the projection worker
 * and V8's helpers (GC), which a --cpu-prof profile (wall-clock samples) cannot tell apart.
 */
function threadCpuMs(): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${process.pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const ms = statCpuMs(`/proc/${process.pid}/task/${tid}/stat`);
    if (ms !== null) out.set(tid, ms);
  }
  return out;
}

/** 'main', a worker's name (lib/worker-thread.ts threadNames), else V8's and libuv's helpers by id. */
function threadLabel(tid: string): string {
  if (tid === String(process.pid)) return 'main';
  const name = threadNames().get(Number(tid));
  return name === undefined ? tid : `${name} (${tid})`;
}

/** µs per row change of each thread that used CPU between two threadCpuMs readings, busiest first. */
function threadCpuPerRowChange(
  before: Map<string, number>,
  after: Map<string, number>,
  rowChanges: number,
): Record<string, number> {
  const used = [...after].map(([tid, ms]) => [tid, ms - (before.get(tid) ?? 0)] as const);
  return Object.fromEntries(
    used
      .filter(([, ms]) => ms > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([tid, ms]) => [threadLabel(tid), round1((ms * 1000) / rowChanges)]),
  );
}

/** Milliseconds per second of each thread that used CPU between two threadCpuMs readings, busiest first. */
function threadCpuPerSec(
  before: Map<string, number>,
  after: Map<string, number>,
  seconds: number,
): Record<string, number> {
  return threadCpuPerRowChange(before, after, seconds * 1000);
}

/** Moves the markers visible now from `pending` to `lags`. */
function takeVisible(path: RunningCdcPath, pending: Marker[], lags: number[], now: number): void {
  if (path.visibleInCommitOrder) {
    let seen = 0;
    while (seen < pending.length) {
      const m = pending[seen] as Marker;
      if (!path.visible(m.gtid, m.committedAtEpochMs)) break;
      lags.push(now - m.committedAt);
      seen++;
    }
    pending.splice(0, seen);
    return;
  }
  for (let i = pending.length - 1; i >= 0; i--) {
    const m = pending[i] as Marker;
    if (path.visible(m.gtid, m.committedAtEpochMs)) {
      lags.push(now - m.committedAt);
      pending.splice(i, 1);
    }
  }
}

/**
 * Only the freshness markers (no write load) for `ms`, committed and polled as in a level: what
 * measuring costs the harness per second, whatever the level's rate.
 */
async function markersOnly(ctx: ScenarioContext, path: RunningCdcPath, accountMax: number, ms: number) {
  const conn = await ctx.fixture.pool.getConnection();
  const pending: Marker[] = [];
  const lags: number[] = [];
  const started = performance.now();
  try {
    for (let k = 0; performance.now() < started + ms; k++) {
      pending.push(await commitMarker(conn, 1 + ((k * 7919) % accountMax)));
      const next = started + ((k + 1) * 1000) / ctx.settings.markersPerSec;
      while (performance.now() < next) {
        takeVisible(path, pending, lags, performance.now());
        await sleep(POLL_MS);
      }
    }
  } finally {
    conn.release();
  }
  return lags.length;
}

/**
 * The pipeline with no write load, in slices: what it spends idle after its start (a catch-up
 * or a loop still running after the snapshot) would otherwise be charged to the first level.
 */
async function measureQuiet(
  ctx: ScenarioContext,
  path: CdcPath,
  running: RunningCdcPath,
  accountMax: number,
): Promise<void> {
  const sliceSec = Math.min(5, ctx.settings.cdcQuietSec);
  // Idle first (what the pipeline still does after its start), then with the markers alone.
  for (const withMarkers of [false, true]) {
    for (let from = 0; from < ctx.settings.cdcQuietSec; from += sliceSec) {
      const threadsBefore = threadCpuMs();
      const t0 = performance.now();
      let markersSeen = 0;
      if (withMarkers) markersSeen = await markersOnly(ctx, running, accountMax, sliceSec * 1000);
      else await sleep(sliceSec * 1000);
      const seconds = (performance.now() - t0) / 1000;
      const perThread = threadCpuPerSec(threadsBefore, threadCpuMs(), seconds);
      ctx.logger.info(
        {
          path: path.name,
          markers: withMarkers,
          markersSeen,
          fromSec: from,
          cpuMsPerSec: round1(Object.values(perThread).reduce((a, b) => a + b, 0)),
          threadCpuMsPerSec: perThread,
        },
        'cdc quiet',
      );
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function measureLevel(
  ctx: ScenarioContext,
  path: RunningCdcPath,
  targetRowChangesPerSec: number,
  seconds: number,
  rowsPerOp: number,
  opBudgetMs: number,
  accountMax: number,
  legacyPid: number | null,
): Promise<MeasuredLevel> {
  const { markersPerSec } = ctx.settings;
  const opsPerSec = targetRowChangesPerSec / rowsPerOp;
  // Enough operations in flight for the rate when each takes OP_BUDGET_MS: an operation is about
  // a dozen statements, and on a busy machine each round trip waits for a core.
  const concurrency = Math.min(
    MAX_WRITE_CONNECTIONS,
    Math.max(4, Math.ceil((opsPerSec * opBudgetMs) / 1000)),
  );
  const legacyCpuBefore = legacyPid === null ? null : processCpuMs(legacyPid);
  const harnessCpuBefore = process.cpuUsage();
  const threadsBefore = threadCpuMs();
  const load = runChild(
    childModule('write-load'),
    {
      server: ctx.server,
      database: ctx.fixture.dataset.database,
      seed: ctx.seed + targetRowChangesPerSec,
      opsPerSec,
      durationMs: seconds * 1000,
      concurrency,
    },
    writeLoadOutputSchema,
  );
  let loadDone = false;
  const loadResult = load.finally(() => {
    loadDone = true;
  });
  const conn = await ctx.fixture.pool.getConnection();
  const pending: Marker[] = [];
  const lags: number[] = [];
  let markers = 0;
  let polling = true;
  let deadline = Number.POSITIVE_INFINITY;
  const poller = (async () => {
    while (polling || pending.length > 0) {
      const now = performance.now();
      takeVisible(path, pending, lags, now);
      if (!polling && pending.length > 0 && now > deadline) break;
      await sleep(POLL_MS);
    }
  })();
  try {
    const started = performance.now();
    for (let k = 0; !loadDone; k++) {
      const accountId = 1 + ((k * 7919 + targetRowChangesPerSec) % accountMax);
      pending.push(await commitMarker(conn, accountId));
      markers++;
      const wait = started + ((k + 1) * 1000) / markersPerSec - performance.now();
      if (wait > 0) await Promise.race([sleep(wait), loadResult.catch(() => undefined)]);
    }
  } finally {
    conn.release();
  }
  let writes: WriteLoadOutput;
  let legacyCpuMs: number | null = null;
  let harnessCpuMs = 0;
  let threadsAfter = threadsBefore;
  try {
    writes = await load;
    // Up to the load's end: the backlog drained after it is the pipeline's, counted in its lag.
    const legacyCpuAfter = legacyPid === null ? null : processCpuMs(legacyPid);
    if (legacyCpuBefore !== null && legacyCpuAfter !== null) legacyCpuMs = legacyCpuAfter - legacyCpuBefore;
    const harnessCpu = process.cpuUsage(harnessCpuBefore);
    harnessCpuMs = (harnessCpu.user + harnessCpu.system) / 1000;
    threadsAfter = threadCpuMs();
    // Generous: a marker left out would make the percentiles look better than they are.
    deadline = performance.now() + MARKER_DEADLINE_MS;
  } catch (err) {
    deadline = 0;
    throw err;
  } finally {
    polling = false;
    await poller;
  }
  const level: FreshnessLevel = {
    targetRowChangesPerSec,
    achievedRowChangesPerSec: Math.round((writes.rowChanges / Math.max(1, writes.elapsedMs)) * 1000),
    durationSec: Math.round(writes.elapsedMs / 100) / 10,
    writeOps: writes.ops,
    writeErrors: writes.errors,
    markers,
    markersLost: pending.length,
    lag: latencyOf(lags),
    ...(writes.rowChanges > 0
      ? {
          cpuPerRowChangeUs: {
            legacyServer: legacyCpuMs === null ? null : round1((legacyCpuMs * 1000) / writes.rowChanges),
            writeLoad: round1((writes.cpuMs * 1000) / writes.rowChanges),
            harness: round1((harnessCpuMs * 1000) / writes.rowChanges),
          },
        }
      : {}),
  };
  return {
    level,
    writeConnections: concurrency,
    // Little's law, all connections busy (the load fell behind its schedule): the mean time an
    // operation held its connection. Null when the load kept up (connections sat idle).
    busyOpMs:
      writes.ops > 0 && writes.rowChanges < targetRowChangesPerSec * seconds * 0.95
        ? Math.round((concurrency * writes.elapsedMs) / writes.ops)
        : null,
    threadCpuPerRowChangeUs:
      writes.rowChanges > 0 ? threadCpuPerRowChange(threadsBefore, threadsAfter, writes.rowChanges) : {},
    threadCpuMsPerSec: threadCpuPerSec(threadsBefore, threadsAfter, writes.elapsedMs / 1000),
  };
}

/** A level's results, and the harness CPU by thread for its log line (not part of the results). */
interface MeasuredLevel {
  level: FreshnessLevel;
  /** Connections the write load had, and how long each operation took when all were busy. */
  writeConnections: number;
  busyOpMs: number | null;
  threadCpuPerRowChangeUs: Record<string, number>;
  /** The same per second of write load: a cost that does not grow with the rate stays flat here. */
  threadCpuMsPerSec: Record<string, number>;
}

const round1 = (n: number) => Math.round(n * 10) / 10;

const maxRow = z.object({ max: z.number().int().positive() });

async function measurePath(ctx: ScenarioContext, path: CdcPath, accountMax: number) {
  const legacyPid = await legacyServerPid(ctx.fixture.pool, ctx.server.host);
  const running = await path.start(ctx);
  const levels: FreshnessLevel[] = [];
  let warmup: FreshnessLevel | undefined;
  try {
    if (ctx.settings.cdcQuietSec > 0) await measureQuiet(ctx, path, running, accountMax);
    let rowsPerOp = INITIAL_ROWS_PER_OP;
    // Grows to what operations took at the last level when the load could not keep up: on a busy
    // machine an operation takes far longer than OP_BUDGET_MS, and too few connections, not the
    // pipeline, would then cap the rate.
    let opBudgetMs = OP_BUDGET_MS;
    const learn = ({ level, busyOpMs }: MeasuredLevel) => {
      if (level.writeOps > 0 && level.achievedRowChangesPerSec > 0)
        rowsPerOp = (level.achievedRowChangesPerSec * level.durationSec) / level.writeOps;
      if (busyOpMs !== null) opBudgetMs = Math.max(opBudgetMs, busyOpMs);
    };
    const { cdcRates, cdcSec, cdcWarmupSec } = ctx.settings;
    const first = cdcRates[0] as number;
    if (cdcWarmupSec > 0) {
      const measured = await measureLevel(
        ctx,
        running,
        first,
        cdcWarmupSec,
        rowsPerOp,
        opBudgetMs,
        accountMax,
        legacyPid,
      );
      // The Debezium path's stage timings of the warm-up are not the first level's.
      await running.levelReport?.();
      learn(measured);
      warmup = measured.level;
      ctx.logger.info(
        { path: path.name, target: first, achieved: warmup.achievedRowChangesPerSec, lag: warmup.lag },
        'cdc warm-up',
      );
    }
    const top = Math.max(...cdcRates);
    for (const target of cdcRates) {
      const measure = () =>
        measureLevel(ctx, running, target, cdcSec, rowsPerOp, opBudgetMs, accountMax, legacyPid);
      let measured: MeasuredLevel;
      let profile: ProfileSummary | undefined;
      const windowFrom = process.hrtime.bigint();
      // The top rate is where a missed target would be explained.
      if (ctx.settings.profile && (target === top || path.profileEveryLevel === true))
        ({ value: measured, profile } = await profiled(measure));
      else measured = await measure();
      const report = (await running.levelReport?.()) ?? {};
      const level = report.stages ? { ...measured.level, stages: report.stages } : measured.level;
      if (level.markers > 0 && level.markersLost === level.markers)
        throw new BenchError(
          'BENCH_NO_MARKERS',
          `no marker became visible at ${target} row changes/s on ${path.name}`,
        );
      learn(measured);
      ctx.logger.info(
        {
          path: path.name,
          target,
          achieved: level.achievedRowChangesPerSec,
          lag: level.lag,
          cpuPerRowChangeUs: level.cpuPerRowChangeUs,
          writeConnections: measured.writeConnections,
          busyOpMs: measured.busyOpMs,
          threadCpuPerRowChangeUs: measured.threadCpuPerRowChangeUs,
          threadCpuMsPerSec: measured.threadCpuMsPerSec,
          // Monotonic µs, the clock of a --cpu-prof profile's timestamps: this level's slice of it.
          monotonicUs: [String(windowFrom / 1000n), String(process.hrtime.bigint() / 1000n)],
          ...(profile ? { profile } : {}),
          ...(report.stages ? { stages: report.stages } : {}),
          ...report.log,
        },
        'cdc level',
      );
      levels.push(profile ? { ...level, profile } : level);
    }
  } finally {
    await running.stop();
  }
  return { path: path.name, method: path.method, ...(warmup ? { warmup } : {}), levels };
}

/**
 * Freshness under sustained write load: for each target rate, the bank's write workload runs in
 * its own process while marker transactions measure commit → visible in the read model; each
 * path in turn.
 */
export async function cdcScenario(
  ctx: ScenarioContext,
  paths: readonly CdcPath[],
): Promise<ResultsOf<'cdc'>> {
  const [rows] = await ctx.fixture.pool.query('SELECT MAX(account_id) AS max FROM balances');
  const accountMax = maxRow.parse((rows as unknown[])[0]).max;
  const results: ResultsOf<'cdc'>['paths'] = [];
  for (const path of paths) results.push(await measurePath(ctx, path, accountMax));
  return { paths: results };
}

/** The paths `--cdc-paths` can name; a path whose code has not landed is simply not listed. */
export const CDC_PATHS: Partial<Record<CdcPathName, CdcPath>> = {
  embedded: embeddedPath,
  'debezium-kafka': debeziumPath,
};
