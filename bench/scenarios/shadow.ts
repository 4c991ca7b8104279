import { startServingAdapter } from '../adapter.js';
import type { ScenarioContext } from '../context.js';
import { measureEndpoint } from '../http.js';
import { profiled } from '../profile.js';
import type { BenchEndpoint, HttpRun, ProfileSummary, ResultsOf, ServedMode } from '../results-schema.js';
import { accountRange, overviewAsOf } from './reads.js';

const ENDPOINTS: readonly BenchEndpoint[] = ['summary', 'history', 'overview', 'overviewWide'];
const MODES: readonly ServedMode[] = ['legacy', 'shadow'];

/**
 * What shadow mode costs the caller: both modes serve the legacy answer; shadow also enqueues
 * the read-model comparison, which runs off the request path on the same process.
 */
export async function shadowScenario(ctx: ScenarioContext): Promise<ResultsOf<'shadow'>> {
  const adapter = await startServingAdapter(
    { server: ctx.server, database: ctx.fixture.dataset.database, dataDir: ctx.fixture.adapterDir },
    ctx.logger,
    { catchUpTimeoutMs: 3_600_000 },
  );
  const api = adapter.api;
  try {
    const accounts = await accountRange(ctx);
    const asOf = await overviewAsOf(ctx);
    const connections = ctx.settings.shadowConnections;
    const runs: HttpRun[] = [];
    const before = api.queue.stats();
    for (const endpoint of ENDPOINTS)
      for (const mode of MODES)
        runs.push(await measureEndpoint(ctx, api, { endpoint, mode, connections, accounts, asOf }));
    const after = api.queue.stats();
    const profiles: Record<string, ProfileSummary> = {};
    // Separate runs, after the counted ones: the measured runs carry no profiler overhead.
    for (const endpoint of ctx.settings.profile ? ENDPOINTS : [])
      for (const mode of MODES) {
        const { profile } = await profiled(() =>
          measureEndpoint(ctx, api, { endpoint, mode, connections, accounts, asOf }),
        );
        profiles[`${endpoint}.${mode}`] = profile;
      }
    return {
      runs,
      comparisons: {
        recorded: after.completed - before.completed,
        dropped: after.dropped - before.dropped,
      },
      profiles,
    };
  } finally {
    await adapter.stop();
  }
}
