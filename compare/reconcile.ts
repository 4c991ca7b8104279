import { type Analytics, AnalyticsNotServedError } from '../definition/analytics.js';
import { legacyAnswer, readModelAnswer, requestKeyOf, subjectOf } from '../definition/endpoint-calls.js';
import type { EndpointParams, LegacyDb } from '../definition/endpoints.js';
import type { EndpointEntry, Migration } from '../definition/migration.js';
import type { ReadModels } from '../definition/read-models.js';
import { AdapterError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { silentLogger } from '../lib/logger.js';
import { type Progress, ProgressMeter } from '../lib/progress.js';
import { OUTCOMES, type Outcome } from './classify.js';
import type { ReconcileMetrics } from './reconcile-metrics.js';
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

/** A parameter set of an endpoint whose read-model answer settled as different from legacy. */
export interface DriftedKey {
  entry: EndpointEntry;
  params: EndpointParams;
}

/**
 * Rebuilds the read-model documents behind drifted answers from the captured events (the
 * embedded implementation is projectors/repair.ts). Resolves once the repaired documents are
 * visible to readers.
 */
export type RepairPort = (drifted: readonly DriftedKey[]) => Promise<void>;

/** Outcomes that a re-projection can fix: the read model holds a different answer, or none. */
const REPAIRABLE: ReadonlySet<Outcome> = new Set(['mismatch', 'missing']);

export interface ReconcileOptions {
  migration: Migration;
  legacy: LegacyDb;
  readModels: ReadModels;
  /** Analytics read models the endpoints query (none when omitted). */
  analytics?: Analytics;
  comparator: ShadowComparator;
  /** Check a random sample of this many parameter sets per endpoint; all of them when absent. */
  sample?: number;
  /** Picks the parameter sets of an endpoint to check (e.g. this run's slice); after `sample`. */
  select?: (endpoint: string, sets: EndpointParams[]) => EndpointParams[];
  /** Repair every key whose comparison settled as a mismatch (or missing), then compare it again. */
  repair?: RepairPort;
  metrics?: ReconcileMetrics;
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
  failures: Failure[];
  /** Endpoints not compared, and why: their read side cannot answer in this process. */
  skipped: Array<{ endpoint: string; reason: string }>;
  /** With a repair port: the keys repaired, and those still different when compared again. */
  repair?: { attempted: number; repaired: number; stillDifferent: Failure[] };
}

type Failure = { endpoint: string; requestKey: string; outcome: Outcome; paths: string[] };

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

/**
 * Why `entry`'s read side cannot answer in this process (an analytics model another process
 * holds), asked with one parameter set; null when it can, or when the answer is another error
 * (that one is compared and reported like any other).
 */
async function notServedHere(
  entry: EndpointEntry,
  params: EndpointParams | undefined,
  options: ReconcileOptions,
): Promise<string | null> {
  if (params === undefined) return null;
  try {
    await readModelAnswer(entry.definition, params, options.readModels, options.analytics);
    return null;
  } catch (err) {
    return err instanceof AnalyticsNotServedError ? err.message : null;
  }
}

/**
 * The parameter sets an endpoint lists for reconciliation, each parsed by its params schema:
 * the legacy database's, then, given the read models, those only the read models hold
 * (`reconcile.readModel`), each set once.
 */
export async function parameterSets(
  entry: EndpointEntry,
  db: LegacyDb,
  readModels?: ReadModels,
): Promise<EndpointParams[]> {
  const source = entry.definition.reconcile;
  if (source === undefined) return [];
  const fromLegacy = typeof source === 'function' ? await source(db) : await db.query(source.sql);
  const sets = fromLegacy.map((row, i) => parsedSet(entry, row, `reconcile parameter set ${i}`));
  if (typeof source === 'function' || source.readModel === undefined || readModels === undefined) return sets;
  const seen = new Set(sets.map(requestKeyOf));
  const fromReadModels = await source.readModel(readModels);
  fromReadModels.forEach((row, i) => {
    const params = parsedSet(entry, row, `read-model parameter set ${i}`);
    const key = requestKeyOf(params);
    if (seen.has(key)) return;
    seen.add(key);
    sets.push(params);
  });
  return sets;
}

function parsedSet(entry: EndpointEntry, row: unknown, which: string): EndpointParams {
  const parsed = entry.definition.params.safeParse(row);
  if (!parsed.success) {
    throw new AdapterError(
      'RECONCILE_KEYS_INVALID',
      `${which} of ${entry.key} does not match its params schema: ${parsed.error.message}`,
      {
        cause: parsed.error,
        hint: 'name the columns of the reconcile SQL, and the fields of the sets reconcile.readModel lists, after the endpoint parameters',
      },
    );
  }
  return parsed.data;
}

export async function reconcile(options: ReconcileOptions): Promise<ReconcileResult> {
  const logger = (options.logger ?? silentLogger).child({ component: 'reconcile' });
  const startedAt = new Date().toISOString();
  const work: Array<{ entry: EndpointEntry; params: EndpointParams }> = [];
  let total = 0;
  const skipped: ReconcileResult['skipped'] = [];
  for (const entry of options.migration.endpoints) {
    const sets = await parameterSets(entry, options.legacy, options.readModels);
    const sampled = sampleOf(sets, options.sample);
    const selected = options.select?.(entry.key, sampled) ?? sampled;
    const unserved = await notServedHere(entry, selected[0], options);
    if (unserved !== null) {
      skipped.push({ endpoint: reconcileEndpointName(entry.key), reason: unserved });
      logger.warn({ endpoint: entry.key, reason: unserved }, 'endpoint not reconciled');
      continue;
    }
    total += sets.length;
    for (const params of selected) work.push({ entry, params });
  }
  const byOutcome = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  const failures: Failure[] = [];
  const drifted: DriftedKey[] = [];
  const meter = new ProgressMeter(work.length);

  const compare = async ({ entry, params }: DriftedKey) => {
    const endpoint = entry.definition;
    const run = (side: 'legacy' | 'readModel') =>
      side === 'legacy'
        ? legacyAnswer(endpoint, params, options.legacy)
        : readModelAnswer(endpoint, params, options.readModels, options.analytics);
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
    options.metrics?.comparisons.inc({ endpoint: name, outcome: record.outcome });
    if (record.outcome === 'match') return null;
    return {
      endpoint: name,
      requestKey,
      outcome: record.outcome,
      paths: record.differences.slice(0, 5).map((d) => d.path),
    };
  };

  await inParallel(work, options.concurrency, async (key) => {
    const failure = await compare(key);
    byOutcome[failure?.outcome ?? 'match']++;
    if (failure !== null) {
      failures.push(failure);
      if (REPAIRABLE.has(failure.outcome)) drifted.push(key);
    }
    options.onProgress?.(meter.add(1));
  });
  const result: ReconcileResult = {
    startedAt,
    finishedAt: new Date().toISOString(),
    total,
    checked: work.length,
    byOutcome,
    failures,
    skipped,
  };
  if (options.repair !== undefined) {
    const repaired = drifted.length === 0 ? [] : await repairAndRecheck(drifted, options, compare);
    result.repair = {
      attempted: drifted.length,
      repaired: drifted.length - repaired.length,
      stillDifferent: repaired,
    };
    result.finishedAt = new Date().toISOString();
  }
  logger.info(
    {
      checked: work.length,
      total,
      byOutcome,
      failures: failures.length,
      ...(result.repair
        ? { repaired: result.repair.repaired, stillDifferent: result.repair.stillDifferent.length }
        : {}),
    },
    'reconciliation finished',
  );
  return result;
}

/**
 * Re-projects the drifted keys' documents, then compares each key again (recorded like the
 * first comparison, so the report shows the mismatch and the match after it). Returns the keys
 * still different.
 */
async function repairAndRecheck(
  drifted: readonly DriftedKey[],
  options: ReconcileOptions,
  compare: (key: DriftedKey) => Promise<Failure | null>,
): Promise<Failure[]> {
  await (options.repair as RepairPort)(drifted);
  const still: Failure[] = [];
  await inParallel(drifted, options.concurrency, async (key) => {
    const failure = await compare(key);
    options.metrics?.repairs.inc({
      endpoint: reconcileEndpointName(key.entry.key),
      result: failure === null ? 'repaired' : 'still_different',
    });
    if (failure !== null) still.push(failure);
  });
  return still;
}

/** Runs `fn` over `items`, `concurrency` (default 4) at a time. */
async function inParallel<T>(
  items: readonly T[],
  concurrency: number | undefined,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency ?? 4) }, worker));
}
