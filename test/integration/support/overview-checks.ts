import { expect } from 'vitest';
import { startEmbeddedPipeline } from '../../../cli/pipeline.js';
import { diffJson } from '../../../compare/diff.js';
import { openLegacyDb } from '../../../connectors/legacy/index.js';
import { readModelAnswer } from '../../../definition/endpoint-calls.js';
import type { LegacyDb } from '../../../definition/endpoints.js';
import type { ReadModels } from '../../../definition/read-models.js';
import { legacyAccountOverview } from '../../../examples/bank/legacy-overview.js';
import bank from '../../../examples/bank/migration.js';
import { type AccountOverview, accountOverviewSchema, nextDay } from '../../../examples/bank/overview.js';
import { type ConfigInput, loadConfig } from '../../../lib/config.js';
import { silentLogger } from '../../../lib/logger.js';

/** Reference instants around the ledger's end: a month start, a midnight, a mid-day, now, tomorrow. */
export function referenceInstants(lastActivity: string, now: string): string[] {
  return [
    `${nextDay(lastActivity.slice(0, 10))} 00:00:00.000000`,
    `${lastActivity.slice(0, 8)}01 00:00:00.000000`,
    // Not a midnight: the windows' edge days come from postings, not buckets.
    `${lastActivity.slice(0, 10)} 13:37:21.500000`,
    now,
    `${nextDay(now.slice(0, 10))} 00:00:00.000000`,
  ];
}

/**
 * The overview of every account at every instant, three ways: the definition's read-model
 * function (params parsed as the API parses them) and both legacy variants. Returns the
 * differences and how many answers had non-trivial figures, so a test can insist the
 * comparison covered real values.
 */
export async function compareOverviews(
  legacyDb: LegacyDb,
  readModels: ReadModels,
  accountIds: readonly number[],
  asOfs: readonly string[],
) {
  const endpoint = bank.endpoints.find((e) => e.key === 'accounts.overview')?.definition;
  if (endpoint === undefined) throw new Error('no accounts.overview endpoint');
  const differences: unknown[] = [];
  const seen = { answers: 0, mtd: 0, categories: 0, holds: 0, pendingOut: 0 };
  for (const asOf of asOfs) {
    for (const accountId of accountIds) {
      const params = endpoint.params.parse({ accountId: String(accountId), asOf });
      // As a value: the endpoint answers with JSON text around the stored summary.
      const readModel = (await readModelAnswer(endpoint, params, readModels)) as AccountOverview | null;
      const split = await legacyAccountOverview(legacyDb, { accountId, asOf }, 'split');
      const wide = await legacyAccountOverview(legacyDb, { accountId, asOf }, 'wide');
      for (const [variant, legacy] of [
        ['split', split],
        ['wide', wide],
      ] as const) {
        const d = diffJson(legacy, readModel);
        if (d.length > 0) differences.push({ accountId, asOf, variant, diff: d.slice(0, 3) });
      }
      if (split === null) continue;
      accountOverviewSchema.parse(split);
      seen.answers++;
      if (split.monthToDate.spent !== '0.0000' || split.monthToDate.received !== '0.0000') seen.mtd++;
      if (split.spending.byCategory.length > 1) seen.categories++;
      if (split.cardHolds.count > 0) seen.holds++;
      if (split.pendingTransfers.outgoing.count > 0) seen.pendingOut++;
    }
  }
  return { differences, seen };
}

export interface OverviewRun {
  url: string;
  dataDir: string;
  /** The engine's own reader settings (a replica id, a slot name). */
  cdc: NonNullable<ConfigInput['cdc']>;
  /** Legacy writes made while the pipeline runs. */
  writes(): Promise<void>;
  /** The ledger's last posting before 2024 and the database's now, as text in UTC. */
  instants(legacy: LegacyDb): Promise<{ lastActivity: string; now: string }>;
  /** Whether the sample holds pending outgoing transfers to insist on. */
  expectPendingOut: boolean;
}

/**
 * The bank's embedded pipeline on `url`, caught up after a write burst, then the overview of
 * every account at five reference instants equal to both legacy variants, with real figures.
 */
export async function expectOverviewsEqualAfterWrites(run: OverviewRun): Promise<void> {
  const errors: Error[] = [];
  const pipeline = await startEmbeddedPipeline({
    config: loadConfig({
      env: {},
      overrides: {
        legacy: { url: run.url },
        cdc: run.cdc,
        dataDir: run.dataDir,
        projector: { batchSize: 256, pollIntervalMs: 20 },
      },
    }),
    migration: bank,
    logger: silentLogger,
    onError: (e) => errors.push(e),
  });
  const legacy = openLegacyDb(run.url);
  try {
    expect(await pipeline.waitForCatchUp(120_000)).toBe(true);
    await run.writes();
    expect(await pipeline.waitForCatchUp(120_000)).toBe(true);
    expect(errors).toEqual([]);

    const { lastActivity, now } = await run.instants(legacy);
    const asOfs = referenceInstants(lastActivity, now);
    const accountIds = (await legacy.query('SELECT id FROM accounts ORDER BY id')).map((r) => Number(r.id));
    expect(accountIds.length).toBeGreaterThan(50);
    const { differences, seen } = await compareOverviews(legacy, pipeline.readModels, accountIds, asOfs);
    expect(differences).toEqual([]);
    // The comparison covered every figure with real values, not only zeros.
    expect(seen.answers).toBe(accountIds.length * asOfs.length);
    expect(seen.mtd).toBeGreaterThan(accountIds.length);
    expect(seen.categories).toBeGreaterThan(accountIds.length / 2);
    expect(seen.holds).toBeGreaterThan(5);
    if (run.expectPendingOut) expect(seen.pendingOut).toBeGreaterThan(2);
    expect(await pipeline.eventStore.countDeadLetters()).toBe(0);
  } finally {
    await pipeline.stop();
    await legacy.close();
  }
}
