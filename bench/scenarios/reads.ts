import { z } from 'zod';
import { startServingAdapter } from '../adapter.js';
import type { ScenarioContext } from '../context.js';
import { type AccountRange, measureEndpoint } from '../http.js';
import { profiled } from '../profile.js';
import type { BenchEndpoint, HttpRun, ProfileSummary, ResultsOf, ServedMode } from '../results-schema.js';

const ENDPOINTS: readonly BenchEndpoint[] = ['summary', 'history'];
/** `new` serves from the read model with no comparison: the read model's own cost. */
const SIDES: readonly ServedMode[] = ['legacy', 'new'];

const rangeRow = z.object({ min: z.number().int().positive(), max: z.number().int().positive() });

export async function accountRange(ctx: ScenarioContext): Promise<AccountRange> {
  const [rows] = await ctx.fixture.pool.query('SELECT MIN(id) AS min, MAX(id) AS max FROM accounts');
  return rangeRow.parse((rows as unknown[])[0]);
}

/**
 * The legacy JOIN endpoint against the read-model endpoint: the same API, the same account
 * order and the same concurrency levels, the two sides alternating at each level so drift in
 * the shared machine's load hits both alike.
 */
export async function readsScenario(ctx: ScenarioContext): Promise<ResultsOf<'reads'>> {
  const adapter = await startServingAdapter(
    { server: ctx.server, database: ctx.fixture.dataset.database, dataDir: ctx.fixture.adapterDir },
    ctx.logger,
    { catchUpTimeoutMs: 3_600_000 },
  );
  const api = adapter.api;
  try {
    const accounts = await accountRange(ctx);
    const runs: HttpRun[] = [];
    const profiles: Record<string, ProfileSummary> = {};
    for (const endpoint of ENDPOINTS) {
      for (const connections of ctx.settings.connections)
        for (const mode of SIDES)
          runs.push(await measureEndpoint(ctx, api, { endpoint, mode, connections, accounts }));
      if (!ctx.settings.profile) continue;
      // Separate runs: the measured ones carry no profiler overhead.
      const connections = Math.max(...ctx.settings.connections);
      for (const mode of SIDES) {
        const { profile } = await profiled(() =>
          measureEndpoint(ctx, api, { endpoint, mode, connections, accounts }),
        );
        profiles[`${endpoint}.${mode}`] = profile;
      }
    }
    return { runs, profiles };
  } finally {
    await adapter.stop();
  }
}
