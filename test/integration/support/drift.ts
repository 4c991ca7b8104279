import { type ReconcileResult, reconcile } from '../../../compare/reconcile.js';
import { SqliteComparisonRecorder } from '../../../compare/recorder.js';
import { ShadowComparator } from '../../../compare/shadow-compare.js';
import type { LegacyDb } from '../../../definition/endpoints.js';
import type { Migration } from '../../../definition/migration.js';
import type { ReadModels } from '../../../definition/read-models.js';

export type Drift = ReconcileResult['failures'];

/** Every key the definition reconciles whose read-model answer differs from its legacy answer now. */
export async function driftOf(
  migration: Migration,
  legacy: LegacyDb,
  readModels: ReadModels,
): Promise<Drift> {
  const recorder = new SqliteComparisonRecorder({ path: ':memory:' });
  // No freshness port and no re-check: a plain equality of both answers, key by key.
  const comparator = new ShadowComparator({ recorder, maxRechecks: 0 });
  try {
    const result = await reconcile({ migration, legacy, readModels, comparator });
    if (result.checked === 0) throw new Error('reconciliation checked no key');
    return result.failures;
  } finally {
    recorder.close();
  }
}

/** Waits until no key differs (the read models caught up); returns the last drift seen otherwise. */
export async function untilNoDrift(
  migration: Migration,
  legacy: LegacyDb,
  readModels: ReadModels,
  timeoutMs: number,
): Promise<Drift> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const drift = await driftOf(migration, legacy, readModels);
    if (drift.length === 0 || Date.now() > deadline) return drift;
    await new Promise((r) => setTimeout(r, 500));
  }
}
