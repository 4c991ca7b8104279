import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RotatingSlices, sliceOf } from '../../compare/reconcile-cursor.js';
import { RateLimiter, throttledLegacyDb } from '../../compare/throttle.js';
import type { LegacyDb } from '../../definition/endpoints.js';
import { loadConfig } from '../../lib/config.js';
import { ConfigError } from '../../lib/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'cqrs-h4-slices-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('rotating reconciliation slices', () => {
  const keys = ['a', 'b', 'c', 'd', 'e'];

  it('takes the next slice each time, wrapping round, so every key is covered', () => {
    expect(sliceOf(keys, 0, 2)).toEqual({ slice: ['a', 'b'], next: 2 });
    expect(sliceOf(keys, 4, 2)).toEqual({ slice: ['e', 'a'], next: 1 });
    // A cursor past the end (keys were removed) wraps too.
    expect(sliceOf(keys, 7, 2)).toEqual({ slice: ['c', 'd'], next: 4 });
    expect(sliceOf(keys, 3, 0)).toEqual({ slice: keys, next: 0 });
    expect(sliceOf(keys, 3, 9)).toEqual({ slice: keys, next: 0 });
  });

  it('keeps its cursor in a file, moved only by commit', () => {
    const path = join(dir, 'cursor.json');
    const seen: string[] = [];
    for (let run = 0; run < 3; run++) {
      const slices = new RotatingSlices(path, 2);
      seen.push(...slices.take('x.y', keys));
      slices.commit();
    }
    expect(seen).toEqual(['a', 'b', 'c', 'd', 'e', 'a']);
    // A run that fails before commit checks the same slice next time.
    expect(new RotatingSlices(path, 2).take('x.y', keys)).toEqual(['b', 'c']);
    expect(new RotatingSlices(path, 2).take('x.y', keys)).toEqual(['b', 'c']);
  });

  it('refuses an unreadable cursor file with the way out', () => {
    const path = join(dir, 'bad.json');
    writeFileSync(path, '{"endpoints": {"a": -1}}');
    expect(() => new RotatingSlices(path, 2)).toThrow(ConfigError);
  });
});

describe('legacy query throttle', () => {
  it('spaces reservations 1/rate apart in arrival order', () => {
    let now = 1000;
    const limiter = new RateLimiter(4, () => now);
    expect([limiter.reserve(), limiter.reserve(), limiter.reserve()]).toEqual([0, 250, 500]);
    now = 2000;
    expect(limiter.reserve()).toBe(0);
    expect(new RateLimiter(0, () => now).reserve()).toBe(0);
  });

  it('holds every statement, those in a snapshot too, to the rate', async () => {
    const at: number[] = [];
    const query: LegacyDb['query'] = async () => {
      at.push(performance.now());
      return [];
    };
    const db: LegacyDb = { dialect: 'mysql', query, snapshot: (fn) => fn({ dialect: 'mysql', query }) };
    const limited = throttledLegacyDb(db, 20);
    const started = performance.now();
    await Promise.all([
      limited.query('SELECT 1'),
      limited.query('SELECT 1'),
      limited.snapshot(async (s) => {
        await s.query('SELECT 1');
        await s.query('SELECT 1');
      }),
    ]);
    expect(at).toHaveLength(4);
    // Four statements at 20/s: the last no sooner than 3 × 50 ms after the first.
    expect((at[3] as number) - started).toBeGreaterThanOrEqual(145);
    expect(throttledLegacyDb(db, 0)).toBe(db);
  });

  it('is configured under compare.reconcile, from the environment too', () => {
    const config = loadConfig({
      env: { CQRS_RECONCILE_SLICE_SIZE: '500', CQRS_RECONCILE_MAX_QPS: '50', CQRS_RECONCILE_REPAIR: 'true' },
    });
    expect(config.compare.reconcile).toEqual({ sliceSize: 500, maxQueriesPerSecond: 50, repair: true });
    expect(loadConfig({ env: {} }).compare.reconcile).toEqual({
      sliceSize: 0,
      maxQueriesPerSecond: 0,
      repair: false,
    });
  });
});
