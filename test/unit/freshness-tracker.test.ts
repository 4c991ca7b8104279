import { describe, expect, it } from 'vitest';
import { FreshnessTracker } from '../../lib/freshness-tracker.js';
import { readinessOf } from '../../shadow-api/health.js';

/** A toy pipeline: the legacy log end and the source's position are numbers. */
function pipeline() {
  const p = {
    legacyEnd: 0,
    sourceAt: 0,
    head: 0,
    checkpoint: 0,
    applied: undefined as number | undefined,
    oldest: null as number | null,
  };
  const tracker = new FreshnessTracker<number>(10_000, 0);
  const observe = (now: number, end: number | null = p.legacyEnd) =>
    tracker.observe({
      now,
      end,
      reached: (e) => p.sourceAt >= e,
      checkpoint: p.checkpoint,
      head: p.head,
      ...(p.applied === undefined ? {} : { applied: p.applied }),
      oldestUnprojectedCommitMs: p.oldest,
    });
  return { p, observe };
}

describe('FreshnessTracker', () => {
  it('says 0 when everything committed is projected', () => {
    const { p, observe } = pipeline();
    Object.assign(p, { legacyEnd: 5, sourceAt: 5, head: 3, checkpoint: 3 });
    expect(observe(1000)).toEqual({ lagSeconds: 0, caughtUp: true, stalled: false });
  });

  it('keeps growing while the source is down, instead of freezing at the last event', () => {
    const { p, observe } = pipeline();
    Object.assign(p, { legacyEnd: 5, sourceAt: 5, head: 3, checkpoint: 3 });
    observe(1000);
    // Legacy commits more; the source stays at 5 (down).
    p.legacyEnd = 9;
    expect(observe(2000).lagSeconds).toBe(1);
    expect(observe(5000).lagSeconds).toBe(4);
    expect(observe(9000)).toMatchObject({ lagSeconds: 8, caughtUp: false, stalled: false });
    // No progress for the stall time while behind: stalled.
    expect(observe(12_500)).toMatchObject({ caughtUp: false, stalled: true });
    // The source comes back and the projector catches up: fresh again.
    Object.assign(p, { sourceAt: 9, head: 6, checkpoint: 6 });
    expect(observe(13_000)).toEqual({ lagSeconds: 0, caughtUp: true, stalled: false });
  });

  it('takes the age of the oldest unprojected stored commit when the projector is behind', () => {
    const { p, observe } = pipeline();
    Object.assign(p, { legacyEnd: 5, sourceAt: 5, head: 3, checkpoint: 3 });
    observe(1000);
    Object.assign(p, { legacyEnd: 7, sourceAt: 7, head: 8, oldest: 1500 });
    expect(observe(4000)).toMatchObject({ lagSeconds: 2.5, caughtUp: false });
    // The projector does not move (store locked): stalled after the stall time, lag grows.
    expect(observe(15_000)).toMatchObject({ lagSeconds: 13.5, stalled: true });
    Object.assign(p, { checkpoint: 8, oldest: null });
    expect(observe(15_500)).toMatchObject({ lagSeconds: 0, caughtUp: true, stalled: false });
  });

  it('counts the projector applying a backlog as progress while its checkpoint waits for composing', () => {
    const { p, observe } = pipeline();
    // A bulk initial build: the snapshot is stored (head still), the checkpoint stays at 0.
    Object.assign(p, { legacyEnd: 5, sourceAt: 5, head: 1000, applied: 0, oldest: 0 });
    for (let t = 1000; t <= 60_000; t += 1000) {
      p.applied = (p.applied ?? 0) + 10;
      expect(observe(t)).toMatchObject({ caughtUp: false, stalled: false });
    }
    // Applying stops too: stalled after the stall time.
    expect(observe(69_000)).toMatchObject({ stalled: false });
    expect(observe(70_000)).toMatchObject({ caughtUp: false, stalled: true });
  });

  it('is not stalled while it advances, even if it stays behind', () => {
    const { p, observe } = pipeline();
    Object.assign(p, { legacyEnd: 100, sourceAt: 0 });
    for (let t = 1000; t <= 30_000; t += 1000) {
      p.head += 10;
      p.checkpoint += 10;
      p.sourceAt += 3;
      expect(observe(t).stalled).toBe(false);
    }
  });

  it('counts an unchanged log end the source had passed as reached, even after a restart', () => {
    const { p, observe } = pipeline();
    Object.assign(p, { legacyEnd: 5, sourceAt: 5 });
    observe(1000);
    // A new source has not re-read its position yet; nothing was committed meanwhile.
    p.sourceAt = 0;
    expect(observe(20_000)).toMatchObject({ lagSeconds: 0, caughtUp: true, stalled: false });
  });

  it('grows from the last fresh moment while the legacy end cannot be read', () => {
    const { p, observe } = pipeline();
    Object.assign(p, { legacyEnd: 5, sourceAt: 5 });
    observe(1000);
    expect(observe(4000, null)).toMatchObject({ lagSeconds: 3, caughtUp: false });
  });
});

describe('readinessOf', () => {
  const up = { name: 'source', state: 'up' as const, since: 0, reason: null, restarts: 0 };
  it('is ready with every component up and the lag under its limit', () => {
    const r = readinessOf({ components: () => [up], lagSeconds: () => 2, maxLagSeconds: 30 });
    expect(r).toMatchObject({ ready: true, problems: [] });
    expect(readinessOf(undefined).ready).toBe(true);
  });

  it('names the component that is down or restarting, and a stale read model', () => {
    const restarting = {
      ...up,
      name: 'projector',
      state: 'restarting' as const,
      reason: 'database is locked',
    };
    const r = readinessOf({ components: () => [up, restarting], lagSeconds: () => 45.25, maxLagSeconds: 30 });
    expect(r.ready).toBe(false);
    expect(r.problems).toEqual([
      { component: 'projector', reason: 'restarting: database is locked' },
      { component: 'read-models', reason: 'stale: 45.3 s behind the legacy database (limit 30 s)' },
    ]);
  });
});
