import { setTimeout as sleep } from 'node:timers/promises';
import { answerValue, JsonText } from '../definition/json-text.js';
import { applyCompareRules, type CompareRules } from '../lib/compare-rules.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { silentLogger } from '../lib/logger.js';
import type { FlagMode, ServeSide } from '../shadow-api/flags.js';
import {
  type Classification,
  caughtUpFrom,
  classifyAttempt,
  type FreshnessFacts,
  needsRecheck,
  type SideResult,
  settle,
} from './classify.js';
import type { Difference } from './diff.js';
import { type Differ, inlineDiffer } from './differ.js';
import type { ComparisonRecord, ComparisonRecorder, FreshnessPort } from './ports.js';

/** A request already answered by one side, to be compared with the other side off the request path. */
export interface ComparisonJob {
  endpoint: string;
  requestKey: string;
  subject: string | null;
  /** The flag mode that served the request; null for comparisons no client asked for (reconciliation). */
  mode: FlagMode | null;
  servedBy: ServeSide;
  /** The answer the client got (JsonText when it was sent as such). */
  served: SideResult;
  /** Runs the same query against one side (again); may answer JsonText. */
  run(side: ServeSide): Promise<unknown>;
  /** Applied to both answers before they are compared (the endpoint's normaliser). */
  normalize?: (answer: unknown) => unknown;
  /** The endpoint's compare rules: differences they accept are counted apart, not as mismatches. */
  rules?: CompareRules;
}

export interface ShadowComparatorOptions {
  recorder: ComparisonRecorder;
  freshness?: FreshnessPort;
  /** Pause before each re-check (the longest wait when the freshness port can wait). Default 500. */
  recheckDelayMs?: number;
  /** Re-checks after the first attempt at most. Default 3. */
  maxRechecks?: number;
  logger?: Logger;
  /** Called after each record is stored (metrics). */
  onRecorded?: (record: ComparisonRecord) => void;
  /** Where the two answers are diffed; default on the calling thread. */
  differ?: Differ;
}

interface Attempt {
  classification: Classification;
  legacy: SideResult;
  readModel: SideResult;
}

/** Runs one side's query, turning a throw into a failed result with its message. */
export async function timed<T>(fn: () => Promise<T>): Promise<SideResult<T>> {
  const started = performance.now();
  try {
    const value = await fn();
    return { ok: true, value, latencyMs: performance.now() - started };
  } catch (err) {
    return { ok: false, error: errorMessage(err), cause: err, latencyMs: performance.now() - started };
  }
}

/** JSON text stays text unless the endpoint's normaliser needs the value. */
function normalized(job: ComparisonJob, result: SideResult): SideResult {
  if (!result.ok || job.normalize === undefined) return result;
  try {
    return { ...result, value: job.normalize(answerValue(result.value)) };
  } catch (err) {
    return {
      ok: false,
      error: `normalize failed: ${errorMessage(err)}`,
      cause: err,
      latencyMs: result.latencyMs,
    };
  }
}

function present(result: SideResult): result is SideResult & { ok: true } {
  return result.ok && result.value !== null && result.value !== undefined;
}

/**
 * A present answer whose other side is absent or failed is recorded as a whole value
 * (`missing`/`extra` at the root), so it is parsed here; otherwise it stays as it came.
 */
function valueIfAlone(result: SideResult, other: SideResult): SideResult {
  if (!present(result) || present(other) || !(result.value instanceof JsonText)) return result;
  return { ...result, value: answerValue(result.value) };
}

/**
 * Compares one answered request with the other side, re-checking differences that may be
 * replication lag (see needsRecheck), then records the settled outcome. Never throws: a
 * comparison that cannot be made is recorded as an error.
 */
export class ShadowComparator {
  private readonly recorder: ComparisonRecorder;
  private readonly freshness: FreshnessPort | undefined;
  private readonly recheckDelayMs: number;
  private readonly maxRechecks: number;
  private readonly logger: Logger;
  private readonly onRecorded: ((record: ComparisonRecord) => void) | undefined;
  private readonly differ: Differ;

  constructor(options: ShadowComparatorOptions) {
    this.recorder = options.recorder;
    this.freshness = options.freshness;
    this.recheckDelayMs = options.recheckDelayMs ?? 500;
    this.maxRechecks = options.maxRechecks ?? 3;
    this.logger = (options.logger ?? silentLogger).child({ component: 'shadow-compare' });
    this.onRecorded = options.onRecorded;
    this.differ = options.differ ?? inlineDiffer;
  }

  async compare(job: ComparisonJob): Promise<ComparisonRecord> {
    const first = await this.firstAttempt(job);
    const attempts: Classification[] = [first.classification];
    let last = first;
    let bothSidesFresh = false;
    while (attempts.length <= this.maxRechecks && needsRecheck(last.classification, { bothSidesFresh })) {
      await this.pause();
      last = await this.freshAttempt(job);
      attempts.push(last.classification);
      bothSidesFresh = true;
    }
    const settled = settle(attempts);
    return this.record({
      recordedAt: new Date(),
      endpoint: job.endpoint,
      requestKey: job.requestKey,
      subject: job.subject,
      mode: job.mode,
      servedBy: job.servedBy,
      outcome: settled.outcome,
      differences: settled.differences,
      ignored: settled.ignored ?? 0,
      tolerated: settled.tolerated ?? 0,
      error: settled.error,
      attempts: attempts.length,
      // The first attempt's timings: what serving from either side costs, re-checks aside.
      legacyMs: first.legacy.latencyMs,
      readModelMs: first.readModel.latencyMs,
    });
  }

  /**
   * The served answer against a fresh answer of the other side. Freshness is asked only when
   * they differ, after both reads, so it may judge a position newer than the one the read
   * model answered from; that is fine here: either outcome of a first attempt's difference
   * (lag, or a mismatch with one answer served earlier) is re-checked by a fresh attempt
   * (compare.maxRechecks permitting).
   */
  private async firstAttempt(job: ComparisonJob): Promise<Attempt> {
    const other = await timed(() => job.run(job.servedBy === 'legacy' ? 'readModel' : 'legacy'));
    const legacy = job.servedBy === 'legacy' ? job.served : other;
    const readModel = job.servedBy === 'legacy' ? other : job.served;
    return this.classify(job, normalized(job, legacy), normalized(job, readModel), () => this.freshnessNow());
  }

  /**
   * Both sides read now, freshness asked between them: legacy, then the freshness port, then
   * the read model. A read that starts after isCaughtUp() resolved sees at least the state it
   * judged. That assumes monotonic reads: a read-only SQLite connection's reads of one
   * event-loop turn share one snapshot with the checkpoint the freshness check read, and a later
   * turn opens a newer one (turnSnapshot in projectors/stores/sqlite-read-models.ts); the other
   * stores read their latest commit (OpenSearch up to its refresh interval behind, see
   * lagFreshness). So "caught up" means the read model's answer covers at least legacy's;
   * asked after the read model answered, it would vouch for a projector that caught up only
   * afterwards. This attempt only runs after a differing one, so it may ask before knowing.
   */
  private async freshAttempt(job: ComparisonJob): Promise<Attempt> {
    const legacy = normalized(job, await timed(() => job.run('legacy')));
    const before = await this.freshnessNow();
    const readModel = normalized(job, await timed(() => job.run('readModel')));
    return this.classify(job, legacy, readModel, async () => {
      // Behind or unknown decide without it; caught up, the answers may still differ because a
      // write to the subject landed after legacy's read and reached the read model before its
      // read. Legacy read again tells: an unchanged answer means the difference is real.
      if (before === null || !caughtUpFrom(before)) return before;
      const legacyChanged = await this.legacyChanged(job, legacy);
      return legacyChanged === null ? null : { ...before, legacyChanged };
    });
  }

  /**
   * Whether legacy's answer now differs from `before` in a way the comparison counts; null
   * when that cannot be told (a side failed), which leaves freshness unknown.
   */
  private async legacyChanged(job: ComparisonJob, before: SideResult): Promise<boolean | null> {
    const after = normalized(job, await timed(() => job.run('legacy')));
    if (!before.ok || !after.ok) return null;
    if (!present(before) || !present(after)) return present(before) !== present(after);
    try {
      return (await this.counted(job, before.value, after.value)).differences.length > 0;
    } catch (err) {
      this.logger.warn({ err }, 'cannot diff the two legacy answers; treating freshness as unknown');
      return null;
    }
  }

  /** The differences of two present answers that the endpoint's compare rules do not accept. */
  private async counted(
    job: ComparisonJob,
    a: unknown,
    b: unknown,
  ): Promise<{ differences: Difference[]; ignored: number; tolerated: number }> {
    const differences = await this.differ.diff(a, b);
    if (job.rules === undefined || differences.length === 0) return { differences, ignored: 0, tolerated: 0 };
    return applyCompareRules(differences, job.rules);
  }

  /**
   * Classifies one attempt's answers. `freshness` is asked only when they differ: a match or an
   * error is one whatever the read model's position, so the common case asks nothing more.
   */
  private async classify(
    job: ComparisonJob,
    legacyResult: SideResult,
    readModelResult: SideResult,
    freshness: () => Promise<FreshnessFacts | null>,
  ): Promise<Attempt> {
    const legacy = valueIfAlone(legacyResult, readModelResult);
    const readModel = valueIfAlone(readModelResult, legacyResult);
    let differences: Difference[] | undefined;
    let accepted = { ignored: 0, tolerated: 0 };
    let diffFailed: string | null = null;
    if (present(legacy) && present(readModel)) {
      try {
        const counted = await this.counted(job, legacy.value, readModel.value);
        differences = counted.differences;
        accepted = { ignored: counted.ignored, tolerated: counted.tolerated };
      } catch (err) {
        diffFailed = errorMessage(err);
      }
    }
    if (diffFailed !== null) {
      const classification: Classification = {
        outcome: 'error',
        differences: [],
        error: diffFailed,
        readModelCaughtUp: null,
      };
      return { classification, legacy, readModel };
    }
    const answers = { legacy, readModel, ...(differences === undefined ? {} : { differences }) };
    let classification = classifyAttempt(answers);
    if (classification.outcome !== 'match' && classification.outcome !== 'error') {
      classification = classifyAttempt({ ...answers, freshness: await freshness() });
    }
    return { classification: { ...classification, ...accepted }, legacy, readModel };
  }

  /** The freshness port's answer now; null when there is none or it failed. */
  private async freshnessNow(): Promise<FreshnessFacts | null> {
    if (this.freshness === undefined) return null;
    try {
      const readModelCaughtUp = await this.freshness.isCaughtUp();
      return { readModelCaughtUp, stalled: this.freshness.isStalled?.() ?? false };
    } catch (err) {
      this.logger.warn({ err }, 'freshness check failed; treating the read model position as unknown');
      return null;
    }
  }

  /** Waits for the projections to catch up when the port can tell, else a fixed delay. */
  private async pause(): Promise<void> {
    if (this.freshness?.waitForCatchUp !== undefined) {
      try {
        await this.freshness.waitForCatchUp(this.recheckDelayMs);
        return;
      } catch (err) {
        this.logger.warn({ err }, 'waitForCatchUp failed; falling back to a fixed delay');
      }
    }
    await sleep(this.recheckDelayMs);
  }

  /**
   * Hands a record to the recorder without waiting for it to be stored (the recorder batches
   * writes): a failure to store it is logged, not returned, and `onRecorded` follows the store.
   */
  record(record: ComparisonRecord): ComparisonRecord {
    let stored: Promise<void>;
    try {
      stored = this.recorder.record(record);
    } catch (err) {
      stored = Promise.reject(err);
    }
    stored
      .then(() => this.onRecorded?.(record))
      .catch((err: unknown) =>
        this.logger.error(
          { err, endpoint: record.endpoint, outcome: record.outcome },
          'cannot record comparison',
        ),
      );
    if (record.outcome === 'mismatch' || record.outcome === 'missing' || record.outcome === 'error') {
      this.logger.warn(
        {
          endpoint: record.endpoint,
          requestKey: record.requestKey,
          outcome: record.outcome,
          paths: record.differences.slice(0, 5).map((d) => d.path),
          error: record.error,
        },
        'shadow comparison differs',
      );
    }
    return record;
  }
}
