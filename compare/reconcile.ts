import type { AccountQueries } from '../examples/bank/contract.js';
import { HISTORY_DEFAULT_LIMIT } from '../examples/bank/contract.js';
import type { Logger } from '../lib/logger.js';
import { silentLogger } from '../lib/logger.js';
import { type Progress, ProgressMeter } from '../lib/progress.js';
import type { ServeSide } from '../shadow-api/flags.js';
import { OUTCOMES, type Outcome } from './classify.js';
import { type ShadowComparator, timed } from './shadow-compare.js';

/**
 * Reconciliation: the shadow comparison without client traffic. Accounts nobody reads are
 * still checked, so a read model can be trusted before its endpoint is switched to `new`.
 * Each account's summary and first history page are compared lag-aware (the comparator
 * re-checks differences until the read model has caught up) and recorded like shadow reads,
 * under their own endpoint names so reports keep client traffic and reconciliation apart.
 */
export const RECONCILE_ENDPOINTS = {
  summary: 'reconcile.accounts.summary',
  history: 'reconcile.accounts.history',
} as const;

export interface ReconcileOptions {
  legacy: AccountQueries;
  readModel: AccountQueries;
  comparator: ShadowComparator;
  /** Every account id the legacy database holds. */
  accountIds: () => Promise<number[]>;
  /** Check a random sample of this many accounts; all of them when absent. */
  sample?: number;
  /** Accounts compared at once. Default 4. */
  concurrency?: number;
  logger?: Logger;
  onProgress?: (progress: Progress) => void;
}

export interface ReconcileResult {
  startedAt: string;
  finishedAt: string;
  accountsTotal: number;
  accountsChecked: number;
  byOutcome: Record<Outcome, number>;
  /** Endpoint and account of every comparison that did not settle as a match. */
  failures: Array<{ endpoint: string; accountId: number; outcome: Outcome; paths: string[] }>;
}

/** A uniform random sample of `n` ids (partial Fisher–Yates), in ascending order. */
export function sampleIds(ids: readonly number[], n: number | undefined, random = Math.random): number[] {
  const pool = [...ids];
  if (n === undefined || n >= pool.length) return pool.sort((a, b) => a - b);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(random() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j] as number, pool[i] as number];
  }
  return pool.slice(0, n).sort((a, b) => a - b);
}

export async function reconcile(options: ReconcileOptions): Promise<ReconcileResult> {
  const logger = (options.logger ?? silentLogger).child({ component: 'reconcile' });
  const startedAt = new Date().toISOString();
  const all = await options.accountIds();
  const ids = sampleIds(all, options.sample);
  const byOutcome = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  const failures: ReconcileResult['failures'] = [];
  const meter = new ProgressMeter(ids.length);
  const sides = (
    accountId: number,
  ): Record<'summary' | 'history', (side: ServeSide) => Promise<unknown>> => ({
    summary: (side: ServeSide) =>
      (side === 'legacy' ? options.legacy : options.readModel).accountSummary(accountId),
    history: (side: ServeSide) =>
      (side === 'legacy' ? options.legacy : options.readModel).transactionHistory({
        accountId,
        limit: HISTORY_DEFAULT_LIMIT,
      }),
  });

  const check = async (accountId: number) => {
    const run = sides(accountId);
    for (const [key, endpoint] of Object.entries(RECONCILE_ENDPOINTS) as Array<
      [keyof typeof RECONCILE_ENDPOINTS, string]
    >) {
      const record = await options.comparator.compare({
        endpoint,
        requestKey:
          key === 'summary'
            ? `accountId=${accountId}`
            : `accountId=${accountId}&limit=${HISTORY_DEFAULT_LIMIT}`,
        accountId,
        mode: null,
        servedBy: 'legacy',
        served: await timed(() => run[key]('legacy')),
        run: run[key],
      });
      byOutcome[record.outcome]++;
      if (record.outcome !== 'match') {
        failures.push({
          endpoint,
          accountId,
          outcome: record.outcome,
          paths: record.differences.slice(0, 5).map((d) => d.path),
        });
      }
    }
    options.onProgress?.(meter.add(1));
  };

  let next = 0;
  const worker = async () => {
    while (next < ids.length) await check(ids[next++] as number);
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, worker));
  const result: ReconcileResult = {
    startedAt,
    finishedAt: new Date().toISOString(),
    accountsTotal: all.length,
    accountsChecked: ids.length,
    byOutcome,
    failures,
  };
  logger.info(
    { checked: ids.length, total: all.length, byOutcome, failures: failures.length },
    'reconciliation finished',
  );
  return result;
}
