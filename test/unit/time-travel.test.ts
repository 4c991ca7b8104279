import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../eventstore/ports.js';
import { eventsUpTo, type PastState, PastStateCache } from '../../projectors/past-states.js';
import { parseAsOf, splitAsOf, TimeTravelError } from '../../shadow-api/time-travel.js';

const NOW = Date.parse('2026-12-02T12:00:00Z');

function refusal(run: () => unknown): TimeTravelError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(TimeTravelError);
    return err as TimeTravelError;
  }
  throw new Error('accepted');
}

describe('parseAsOf', () => {
  it('reads ISO 8601 times in UTC or with an offset, to the millisecond', () => {
    expect(parseAsOf('2026-12-02T09:30:00Z', NOW)).toBe(Date.parse('2026-12-02T09:30:00Z'));
    expect(parseAsOf('2026-12-02T11:30:00.250+02:00', NOW)).toBe(Date.parse('2026-12-02T09:30:00.250Z'));
    expect(parseAsOf('2026-12-02T12:00:00Z', NOW)).toBe(NOW);
  });

  it('refuses a time without a zone, a malformed or impossible one with a 400', () => {
    for (const text of [
      '2026-12-02T09:30:00',
      '2026-12-02',
      '2026-12-02 09:30:00Z',
      'yesterday',
      '',
      '2026-13-02T09:30:00Z',
      '2026-02-30T09:30:00Z',
      '1733130000000',
    ]) {
      const err = refusal(() => parseAsOf(text, NOW));
      expect([err.code, err.status], text).toEqual(['AS_OF_INVALID', 400]);
    }
  });

  it('refuses a time in the future with a 400 that says how to ask for the present', () => {
    const err = refusal(() => parseAsOf('2026-12-02T12:00:00.001Z', NOW));
    expect([err.code, err.status]).toEqual(['AS_OF_IN_FUTURE', 400]);
    expect(err.hint).toMatch(/leave _asOf out/);
  });
});

describe('splitAsOf', () => {
  it('takes the parameter out of the query, from the query or the header', () => {
    expect(splitAsOf({ limit: '5', _asOf: '2026-01-01T00:00:00Z' }, {})).toEqual({
      asOf: '2026-01-01T00:00:00Z',
      query: { limit: '5' },
    });
    expect(splitAsOf({ asOf: 'x' }, { 'x-cqrs-as-of': '2026-01-01T00:00:00Z' })).toEqual({
      asOf: '2026-01-01T00:00:00Z',
      query: { asOf: 'x' },
    });
    expect(splitAsOf({ limit: '5' }, {})).toEqual({ asOf: undefined, query: { limit: '5' } });
    // The same time twice is one question.
    const t = '2026-01-01T00:00:00Z';
    expect(splitAsOf({ _asOf: t }, { 'x-cqrs-as-of': t }).asOf).toBe(t);
  });

  it('refuses two different times with a 400', () => {
    const twice = refusal(() => splitAsOf({ _asOf: ['2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z'] }, {}));
    expect([twice.code, twice.status]).toEqual(['AS_OF_AMBIGUOUS', 400]);
    const both = refusal(() =>
      splitAsOf({ _asOf: '2026-01-01T00:00:00Z' }, { 'x-cqrs-as-of': '2026-01-02T00:00:00Z' }),
    );
    expect(both.status).toBe(400);
  });
});

describe('eventsUpTo', () => {
  const all = Array.from({ length: 10 }, (_, i) => ({ position: i + 1 }) as StoredEvent);
  const source = {
    headPositionSync: () => all.length,
    readAfterSync: (after: number, limit: number) => all.filter((e) => e.position > after).slice(0, limit),
  };

  it('reads no event past the position, whatever the limit', () => {
    const capped = eventsUpTo(source, 4);
    expect(capped.headPositionSync()).toBe(4);
    expect(capped.readAfterSync(0, 100).map((e) => e.position)).toEqual([1, 2, 3, 4]);
    expect(capped.readAfterSync(2, 1).map((e) => e.position)).toEqual([3]);
    expect(capped.readAfterSync(4, 100)).toEqual([]);
    expect(eventsUpTo(source, 0).readAfterSync(0, 5)).toEqual([]);
  });
});

/** A cache over states that record their builds and closes. */
function harness(capacity: number) {
  const builds: string[] = [];
  const closed: string[] = [];
  const gates = new Map<string, () => void>();
  const cache = new PastStateCache(capacity, async (position, models) => {
    const key = `${position}:${[...models].sort().join(',')}`;
    builds.push(key);
    await new Promise<void>((resolve) => gates.set(key, resolve));
    const state: PastState = { readModels: {}, close: () => closed.push(key) };
    return state;
  });
  const open = async (key: string) => {
    for (let i = 0; i < 50 && !gates.has(key); i++) await new Promise((r) => setTimeout(r, 1));
    gates.get(key)?.();
  };
  return { cache, builds, closed, open };
}

describe('PastStateCache', () => {
  it('shares one build among concurrent requests for the same state', async () => {
    const { cache, builds, open } = harness(2);
    const a = cache.lease(7, new Set(['x']));
    const b = cache.lease(7, new Set(['x']));
    await open('7:x');
    const [la, lb] = await Promise.all([a, b]);
    expect(builds).toEqual(['7:x']);
    expect(la.readModels).toBe(lb.readModels);
    la.release();
    lb.release();
    // Kept: asked again, it is not rebuilt.
    (await cache.lease(7, new Set(['x']))).release();
    expect(builds).toEqual(['7:x']);
  });

  it('tells states apart by position and read models, builds one at a time', async () => {
    const { cache, builds, open } = harness(4);
    const a = cache.lease(7, new Set(['x']));
    const b = cache.lease(7, new Set(['x', 'y']));
    const c = cache.lease(8, new Set(['x']));
    await new Promise((r) => setTimeout(r, 5));
    // The second build waits for the first.
    expect(builds).toEqual(['7:x']);
    await open('7:x');
    await open('7:x,y');
    await open('8:x');
    for (const lease of await Promise.all([a, b, c])) lease.release();
    expect(builds).toEqual(['7:x', '7:x,y', '8:x']);
    expect(cache.size()).toBe(3);
  });

  it('keeps the most recently asked states and closes an evicted one once released', async () => {
    const { cache, builds, closed, open } = harness(2);
    const first = cache.lease(1, new Set(['x']));
    await open('1:x');
    const held = await first;
    const second = cache.lease(2, new Set(['x']));
    await open('2:x');
    (await second).release();
    // 1 asked again: 2 is now the least recent.
    (await cache.lease(1, new Set(['x']))).release();
    const third = cache.lease(3, new Set(['x']));
    await open('3:x');
    (await third).release();
    expect(closed).toEqual(['2:x']);
    const fourth = cache.lease(4, new Set(['x']));
    await open('4:x');
    (await fourth).release();
    // 1 is evicted but still read by `held`: it closes on release, not before.
    expect(closed).toEqual(['2:x']);
    held.release();
    held.release();
    expect(closed).toEqual(['2:x', '1:x']);
    expect(builds).toEqual(['1:x', '2:x', '3:x', '4:x']);
    cache.close();
    await new Promise((r) => setTimeout(r, 0));
    expect(closed.sort()).toEqual(['1:x', '2:x', '3:x', '4:x']);
  });

  it('does not keep a failed build', async () => {
    let calls = 0;
    const cache = new PastStateCache(2, async () => {
      calls += 1;
      if (calls === 1) throw new Error('disk full');
      return { readModels: {}, close: () => undefined };
    });
    await expect(cache.lease(5, new Set())).rejects.toThrow('disk full');
    (await cache.lease(5, new Set())).release();
    expect(calls).toBe(2);
  });
});
