import { legacyAnswer, readModelAnswer, requestKeyOf, subjectOf } from '../definition/endpoint-calls.js';
import type { EndpointParams, LegacyDb } from '../definition/endpoints.js';
import type { EndpointEntry, Migration } from '../definition/migration.js';
import type { ReadModels } from '../definition/read-models.js';
import { AdapterError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { silentLogger } from '../lib/logger.js';
import { type Progress, ProgressMeter } from '../lib/progress.js';
import { OUTCOMES, type Outcome } from './classify.js';
import { type ShadowComparator, timed } from './shadow-compare.js';

/**
 * Reconciliation: the shadow comparison without client traffic. Keys nobody reads are still
 * checked, so a read model can be trusted before its endpoint is switched to `new`. Every
 * endpoint whose definition lists its parameter sets (`reconcile`) is compared for each of
 * them, lag-aware (the comparator re-checks differences until the read model has caught up),
 * and recorded like shadow reads under `reconcile.<domain>.<endpoint>`, so reports keep client
 * traffic and reconciliation apart.
 */
export const reconcileEndpointName = (key: string) => `reconcile.${key}`;

export interface ReconcileOptions {
  migration: Migration;
  legacy: LegacyDb;
  readModels: ReadModels;
  comparator: ShadowComparator;
  /** Check a random sample of this many parameter sets per endpoint; all of them when absent. */
  sample?: number;
  /** Comparisons at once. Default 4. */
  concurrency?: number;
  logger?: Logger;
  onProgress?: (progress: Progress) => void;
}

export interface ReconcileResult {
  startedAt: string;
  finishedAt: string;
  /** Parameter sets the endpoints listed. */
  total: number;
  checked: number;
  byOutcome: Record<Outcome, number>;
  /** Every comparison that did not settle as a match. */
  failures: Array<{ endpoint: string; requestKey: string; outcome: Outcome; paths: string[] }>;
}

/** A uniform random sample of `n` items (partial Fisher–Yates), in their original order. */
export function sampleOf<T>(items: readonly T[], n: number | undefined, random = Math.random): T[] {
  if (n === undefined || n >= items.length) return [...items];
  const index = items.map((_, i) => i);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(random() * (index.length - i));
    [index[i], index[j]] = [index[j] as number, index[i] as number];
  }
  return index
    .slice(0, n)
    .sort((a, b) => a - b)
    .map((i) => items[i] as T);
}

/** The parameter sets an endpoint lists for reconciliation, each parsed by its params schema. */
async function parameterSets(entry: EndpointEntry, db: LegacyDb): Promise<EndpointParams[]> {
  const source = entry.definition.reconcile;
  if (source === undefined) return [];
  const raw = typeof source === 'function' ? await source(db) : await db.query(source.sql);
  return raw.map((row, i) => {
    const parsed = entry.definition.params.safeParse(row);
    if (!parsed.success) {
      throw new AdapterError(
        'RECONCILE_KEYS_INVALID',
        `reconcile parameter set ${i} of ${entry.key} does not match its params schema: ${parsed.error.message}`,
        { cause: parsed.error, hint: 'name the columns of the reconcile SQL after the endpoint parameters' },
      );
    }
    return parsed.data;
  });
}

export async function reconcile(options: ReconcileOptions): Promise<ReconcileResult> {
  const logger = (options.logger ?? silentLogger).child({ component: 'reconcile' });
  const startedAt = new Date().toISOString();
  const work: Array<{ entry: EndpointEntry; params: EndpointParams }> = [];
  let total = 0;
  for (const entry of options.migration.endpoints) {
    const sets = await parameterSets(entry, options.legacy);
    total += sets.length;
    for (const params of sampleOf(sets, options.sample)) work.push({ entry, params });
  }
  const byOutcome = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  const failures: ReconcileResult['failures'] = [];
  const meter = new ProgressMeter(work.length);

  const check = async ({ entry, params }: (typeof work)[number]) => {
    const endpoint = entry.definition;
    const run = (side: 'legacy' | 'readModel') =>
      side === 'legacy'
        ? legacyAnswer(endpoint, params, options.legacy)
        : readModelAnswer(endpoint, params, options.readModels);
    const name = reconcileEndpointName(entry.key);
    const requestKey = requestKeyOf(params);
    const record = await options.comparator.compare({
      endpoint: name,
      requestKey,
      subject: subjectOf(endpoint, params),
      mode: null,
      servedBy: 'legacy',
      served: await timed(() => run('legacy')),
      run,
      ...(endpoint.normalize ? { normalize: endpoint.normalize } : {}),
      ...(entry.compareRules ? { rules: entry.compareRules } : {}),
    });
    byOutcome[record.outcome]++;
    if (record.outcome !== 'match') {
      failures.push({
        endpoint: name,
        requestKey,
        outcome: record.outcome,
        paths: record.differences.slice(0, 5).map((d) => d.path),
      });
    }
    options.onProgress?.(meter.add(1));
  };

  let next = 0;
  const worker = async () => {
    while (next < work.length) await check(work[next++] as (typeof work)[number]);
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, worker));
  const result: ReconcileResult = {
    startedAt,
    finishedAt: new Date().toISOString(),
    total,
    checked: work.length,
    byOutcome,
    failures,
  };
  logger.info(
    { checked: work.length, total, byOutcome, failures: failures.length },
    'reconciliation finished',
  );
  return result;
}
