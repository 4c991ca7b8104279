import { afterEach, describe, expect, it } from 'vitest';
import type { FreshnessPort } from '../../compare/ports.js';
import { SqliteComparisonRecorder } from '../../compare/recorder.js';
import { type ComparisonJob, ShadowComparator } from '../../compare/shadow-compare.js';
import { compileCompareRules } from '../../lib/compare-rules.js';
import type { ServeSide } from '../../shadow-api/flags.js';

/**
 * One account's balance in the legacy database (every committed version, in order) and in a
 * read model that has applied the first `projected` of them. Its freshness port compares the
 * two positions, as the pipeline's does, and every read and freshness question is logged in
 * order; `after` lets a test move the world right after a given call (the races).
 */
class World {
  private readonly committed: string[];
  private projected = 1;
  readonly calls: string[] = [];
  private readonly counts = new Map<string, number>();
  /** Runs after the nth call of a kind ("legacy#2"), before its answer is seen. */
  readonly after = new Map<string, () => void>();
  /** A read model that computes the balance wrongly, whatever it applied. */
  wrongBalance: string | null = null;
  failingLegacyCall: number | null = null;

  constructor(balance: string) {
    this.committed = [balance];
  }

  write(balance: string): void {
    this.committed.push(balance);
  }

  project(): void {
    this.projected = this.committed.length;
  }

  legacyAnswer(): { accountId: number; balance: string } {
    return { accountId: 7, balance: this.committed.at(-1) as string };
  }

  private call(kind: string): number {
    const n = (this.counts.get(kind) ?? 0) + 1;
    this.counts.set(kind, n);
    this.calls.push(kind);
    return n;
  }

  async run(side: ServeSide): Promise<unknown> {
    const n = this.call(side);
    const answer =
      side === 'legacy'
        ? this.legacyAnswer()
        : { accountId: 7, balance: this.wrongBalance ?? (this.committed[this.projected - 1] as string) };
    this.after.get(`${side}#${n}`)?.();
    if (side === 'legacy' && n === this.failingLegacyCall) throw new Error('legacy connection reset');
    return answer;
  }

  readonly freshness: FreshnessPort = {
    isCaughtUp: async () => {
      this.call('isCaughtUp');
      return this.projected === this.committed.length;
    },
  };
}

const recorders: SqliteComparisonRecorder[] = [];
afterEach(() => {
  for (const r of recorders.splice(0)) r.close();
});

function comparator(freshness: FreshnessPort, maxRechecks = 3): ShadowComparator {
  const recorder = new SqliteComparisonRecorder({ path: ':memory:' });
  recorders.push(recorder);
  return new ShadowComparator({ recorder, freshness, recheckDelayMs: 1, maxRechecks });
}

/** A request that legacy answered with `served`, compared off the request path. */
function job(world: World, served: unknown, extra: Partial<ComparisonJob> = {}): ComparisonJob {
  return {
    endpoint: 'accounts.summary',
    requestKey: 'accountId=7',
    subject: '7',
    mode: 'shadow',
    servedBy: 'legacy',
    served: { ok: true, value: served, latencyMs: 1 },
    run: (side) => world.run(side),
    ...extra,
  };
}

describe('ShadowComparator fresh attempts under writes', () => {
  it('records lag when the read model answered from behind and the projector caught up before freshness was asked', async () => {
    const world = new World('100.0000');
    world.write('150.0000');
    // The projector applies the pending write right after the fresh attempt's read-model read.
    world.after.set('readModel#2', () => world.project());
    const record = await comparator(world.freshness).compare(job(world, world.legacyAnswer()));
    expect(record).toMatchObject({
      outcome: 'lag',
      attempts: 3,
      differences: [{ path: 'balance', kind: 'changed', legacy: '150.0000', readModel: '100.0000' }],
    });
    // Freshness is established between the two reads of a fresh attempt, not after them.
    expect(world.calls).toEqual([
      'readModel',
      'isCaughtUp',
      ...['legacy', 'isCaughtUp', 'readModel'],
      ...['legacy', 'isCaughtUp', 'readModel'],
    ]);
  });

  it('records lag when a write landed after the legacy read and reached the read model before its read', async () => {
    const world = new World('100.0000');
    const served = world.legacyAnswer();
    world.write('150.0000');
    world.project();
    world.after.set('legacy#1', () => {
      world.write('175.0000');
      world.project();
    });
    const record = await comparator(world.freshness).compare(job(world, served));
    expect(record).toMatchObject({
      outcome: 'lag',
      attempts: 3,
      differences: [{ path: 'balance', kind: 'changed', legacy: '100.0000', readModel: '150.0000' }],
    });
    // Caught up but differing: legacy is read again, and its answer had moved (150 → 175).
    expect(world.calls).toEqual([
      'readModel',
      'isCaughtUp',
      ...['legacy', 'isCaughtUp', 'readModel', 'legacy'],
      ...['legacy', 'isCaughtUp', 'readModel'],
    ]);
  });

  it('records a mismatch after one fresh attempt when the read model was caught up and legacy did not move', async () => {
    const world = new World('100.0000');
    world.wrongBalance = '1.0000';
    const record = await comparator(world.freshness).compare(job(world, world.legacyAnswer()));
    expect(record).toMatchObject({
      outcome: 'mismatch',
      attempts: 2,
      differences: [{ path: 'balance', legacy: '100.0000', readModel: '1.0000' }],
    });
    expect(world.calls).toEqual([
      'readModel',
      'isCaughtUp',
      ...['legacy', 'isCaughtUp', 'readModel', 'legacy'],
    ]);
  });

  it("does not take a legacy field the endpoint's rules ignore for a write to the subject", async () => {
    const world = new World('100.0000');
    world.wrongBalance = '1.0000';
    let reads = 0;
    const record = await comparator(world.freshness).compare(
      job(world, world.legacyAnswer(), {
        // Legacy stamps each answer with the time it was read: it differs on every read.
        run: async (side) => ({ ...((await world.run(side)) as object), readAt: reads++ }),
        rules: compileCompareRules({ ignore: ['readAt'] }),
      }),
    );
    expect(record).toMatchObject({ outcome: 'mismatch', attempts: 2 });
  });

  it('treats freshness as unknown, and re-checks, when the second legacy read fails', async () => {
    const world = new World('100.0000');
    world.wrongBalance = '1.0000';
    world.failingLegacyCall = 2;
    const record = await comparator(world.freshness).compare(job(world, world.legacyAnswer()));
    // Unknown on the first fresh attempt, known (and unchanged) on the second.
    expect(record).toMatchObject({ outcome: 'mismatch', attempts: 3 });
  });

  it('treats freshness as unknown when the port fails, without reading legacy twice', async () => {
    const world = new World('100.0000');
    world.wrongBalance = '1.0000';
    const failing: FreshnessPort = {
      isCaughtUp: async () => {
        throw new Error('binlog position unavailable');
      },
    };
    const record = await comparator(failing, 2).compare(job(world, world.legacyAnswer()));
    expect(record).toMatchObject({ outcome: 'mismatch', attempts: 3 });
    expect(world.calls).toEqual(['readModel', 'legacy', 'readModel', 'legacy', 'readModel']);
  });
});
