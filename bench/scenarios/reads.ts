import { z } from 'zod';
import { ACTIVITY_END } from '../../examples/bank/generate.js';
import { nextDay } from '../../examples/bank/overview.js';
import { startServingAdapter } from '../adapter.js';
import type { ScenarioContext } from '../context.js';
import { type AccountRange, measureEndpoint } from '../http.js';
import { profiled } from '../profile.js';
import type { BenchEndpoint, HttpRun, ProfileSummary, ResultsOf, ServedMode } from '../results-schema.js';

/**
 * The light screens and the case-study overview. `new` serves from the read model with no
 * comparison: the read model's own cost. The wide-statement overview differs from `overview`
 * only on the legacy side, so its read-model side is not measured twice.
 */
const PLAN: ReadonlyArray<{ endpoint: BenchEndpoint; sides: readonly ServedMode[] }> = [
  { endpoint: 'summary', sides: ['legacy', 'new'] },
  { endpoint: 'history', sides: ['legacy', 'new'] },
  { endpoint: 'overview', sides: ['legacy', 'new'] },
  { endpoint: 'overviewWide', sides: ['legacy'] },
];

const rangeRow = z.object({ min: z.number().int().positive(), max: z.number().int().positive() });

/**
 * The generated accounts, whose ids run without gaps. Accounts the write loads opened later have
 * gaps between their ids (a rolled-back or retried insert keeps its AUTO_INCREMENT value): a
 * request for a gap is a 404 on both sides, 5.6% of the requests on a bench bank grown by
 * earlier runs' write loads.
 */
export async function accountRange(ctx: ScenarioContext): Promise<AccountRange> {
  const generated = ctx.fixture.dataset.tables.accounts ?? 0;
  const [rows] = await ctx.fixture.pool.query(
    `SELECT MIN(id) AS min, MAX(id) AS max FROM accounts${generated > 0 ? ' WHERE id <= ?' : ''}`,
    generated > 0 ? [generated] : [],
  );
  return rangeRow.parse((rows as unknown[])[0]);
}

const latestRow = z.object({ latest: z.string().nullable() });

/**
 * The overview's reference instant: the midnight after the generated activity's last posting
 * (before the closing day), so month-to-date and 90-day windows hold the busiest stretch.
 */
export async function overviewAsOf(ctx: ScenarioContext): Promise<string> {
  const [rows] = await ctx.fixture.pool.query(
    `SELECT CAST(MAX(posted_at) AS CHAR) AS latest FROM transactions WHERE posted_at < '${ACTIVITY_END}'`,
  );
  const latest = latestRow.parse((rows as unknown[])[0]).latest ?? ACTIVITY_END;
  return `${nextDay(latest.slice(0, 10))} 00:00:00.000000`;
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
    const asOf = await overviewAsOf(ctx);
    const runs: HttpRun[] = [];
    const profiles: Record<string, ProfileSummary> = {};
    for (const { endpoint, sides } of PLAN) {
      for (const connections of ctx.settings.connections)
        for (const mode of sides)
          runs.push(await measureEndpoint(ctx, api, { endpoint, mode, connections, accounts, asOf }));
      if (!ctx.settings.profile) continue;
      // Separate runs: the measured ones carry no profiler overhead.
      const connections = Math.max(...ctx.settings.connections);
      for (const mode of sides) {
        const { profile } = await profiled(() =>
          measureEndpoint(ctx, api, { endpoint, mode, connections, accounts, asOf }),
        );
        profiles[`${endpoint}.${mode}`] = profile;
      }
    }
    return { runs, profiles };
  } finally {
    await adapter.stop();
  }
}
