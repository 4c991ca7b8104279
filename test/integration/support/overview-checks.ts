import { diffJson } from '../../../compare/diff.js';
import type { LegacyDb } from '../../../definition/endpoints.js';
import type { ReadModels } from '../../../definition/read-models.js';
import { legacyAccountOverview } from '../../../examples/bank/legacy-overview.js';
import bank from '../../../examples/bank/migration.js';
import { type AccountOverview, accountOverviewSchema, nextDay } from '../../../examples/bank/overview.js';

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
      const readModel = (await endpoint.readModel({ params, readModels })) as AccountOverview | null;
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
