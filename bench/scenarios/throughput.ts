import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { z } from 'zod';
import { embeddedReadModels } from '../../cli/pipeline.js';
import { SqliteEventStore } from '../../eventstore/sqlite.js';
import { type Config, dataPath } from '../../lib/config.js';
import type { Logger } from '../../lib/logger.js';
import { ProgressMeter } from '../../lib/progress.js';
import { ProjectionRunner } from '../../projectors/runner.js';
import { openReadModelDb } from '../../projectors/stores/sqlite.js';
import { BENCH_DEFINITION_FILE, BENCH_MIGRATION, startAdapter } from '../adapter.js';
import type { ScenarioContext } from '../context.js';
import { profiled } from '../profile.js';
import type { ProfileSummary, ResultsOf } from '../results-schema.js';
import { rate } from '../stats.js';

type Replay = ResultsOf<'throughput'>['replay'][number];

/**
 * A read-model store fed by replaying the event store from the start into empty read models, for
 * at most `budgetMs`; the server stores join when they land.
 */
export interface ReplayStore {
  readonly name: string;
  replay(source: ReplaySource, budgetMs: number, logger: Logger): Promise<Replay>;
}

/** What a replay reads: the stopped adapter's configuration and its event store. */
export interface ReplaySource {
  config: Config;
  eventStore: SqliteEventStore;
}

/** How often a replay logs its rate and ETA: at bench scale it runs for many minutes. */
const REPLAY_PROGRESS_MS = 10_000;

/**
 * What `rebuild` does, into scratch SQLite read models beside the adapter's, so the caught-up
 * read models the other scenarios use stay as they are.
 */
export const sqliteReplay: ReplayStore = {
  name: 'sqlite',
  async replay({ config, eventStore }, budgetMs, logger) {
    const dir = join(config.dataDir, '..', 'replay-scratch');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const db = openReadModelDb(join(dir, 'read-models.db'));
    try {
      const runner = new ProjectionRunner({
        eventStore,
        db,
        projections: [embeddedReadModels(BENCH_MIGRATION)],
        batchSize: config.projector.batchSize,
        deferMaxDocuments: config.projector.deferMaxDocuments,
        // As rebuild and replay run: documents composed once at the end (or per deferMaxDocuments).
        bulk: true,
        // Its compose step's progress: minutes at bench scale after the last replay progress line.
        logger,
        ...(config.projector.composeThreads > 0
          ? {
              compose: {
                definition: BENCH_DEFINITION_FILE,
                threads: config.projector.composeThreads,
              },
            }
          : {}),
      });
      const total = await eventStore.headPosition();
      const meter = new ProgressMeter(total);
      const t0 = performance.now();
      for (let n = await runner.step(); n > 0; n = await runner.step()) {
        const p = meter.addDue(n, REPLAY_PROGRESS_MS);
        if (p !== null)
          logger.info(
            { store: 'sqlite', events: p.done, total, eventsPerSec: p.rowsPerSec, etaSec: p.etaSec },
            'replay progress',
          );
        if (performance.now() - t0 > budgetMs) break;
        // Lets the log lines out while the replay runs (as the runner's catchUp does).
        await nextTurn();
      }
      const events = meter.snapshot().done;
      logger.info({ store: 'sqlite', events }, 'replay: composing the documents left');
      // Timed too: a replay cut by the budget has documents left to compose.
      runner.composePending();
      return { store: 'sqlite', events: rate(events, performance.now() - t0), of: total };
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

const countRow = z.object({ n: z.coerce.number().int().nonnegative() });

async function legacyRowCount(ctx: ScenarioContext): Promise<number> {
  let total = 0;
  for (const table of BENCH_MIGRATION.tables) {
    const [rows] = await ctx.fixture.pool.query(`SELECT COUNT(*) AS n FROM \`${table}\``);
    total += countRow.parse((rows as unknown[])[0]).n;
  }
  return total;
}

/**
 * Ceilings of the embedded path: the initial snapshot into empty stores (rows/s read and
 * events/s projected), a replay of the event store into each store (the whole store, or as
 * much as `replaySec` allows; the target is a full replay's rate, and a replay cut short measures
 * mostly the tables the snapshot wrote first), with the adapter stopped as `rebuild` has it.
 * Leaves the stores caught up for the other scenarios.
 */
export async function throughputScenario(
  ctx: ScenarioContext,
  extra: { stores?: readonly ReplayStore[] } = {},
): Promise<ResultsOf<'throughput'>> {
  const profiles: Record<string, ProfileSummary> = {};
  const maybeProfiled = async <T>(key: string, work: () => Promise<T>): Promise<T> => {
    if (!ctx.settings.profile) return work();
    const { value, profile } = await profiled(work);
    profiles[key] = profile;
    return value;
  };
  const rows = await legacyRowCount(ctx);
  rmSync(ctx.fixture.adapterDir, { recursive: true, force: true });
  const target = {
    server: ctx.server,
    database: ctx.fixture.dataset.database,
    dataDir: ctx.fixture.adapterDir,
  };

  // The projector runs while the snapshot is read: rows/s is read + mapped + stored, events/s
  // is the whole way into the read models.
  const adapter = await maybeProfiled('snapshot', () =>
    startAdapter(target, ctx.logger, { catchUpTimeoutMs: 4 * 3_600_000 }),
  );
  const { sourceReadyMs, caughtUpMs } = adapter.startup;
  let events: number;
  try {
    events = await adapter.pipeline.eventStore.headPosition();
  } finally {
    // A replay runs as `rebuild` does, with `run` stopped: not beside the live pipeline's
    // threads and caches, which no rebuild shares a process with.
    await adapter.stop();
  }
  ctx.logger.info({ rows, events, sourceReadyMs, caughtUpMs }, 'snapshot projected');
  const replay: Replay[] = [];
  const eventStore = new SqliteEventStore(dataPath(adapter.config, 'events.db'));
  try {
    for (const store of [sqliteReplay, ...(extra.stores ?? [])])
      replay.push(
        await maybeProfiled(`replay.${store.name}`, () =>
          store.replay({ config: adapter.config, eventStore }, ctx.settings.replaySec * 1000, ctx.logger),
        ),
      );
  } finally {
    await eventStore.close();
  }

  return {
    snapshot: { rows: rate(rows, sourceReadyMs), projected: rate(events, caughtUpMs) },
    replay,
    profiles,
  };
}
