import { availableParallelism } from 'node:os';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { PRIMARY_COMPONENT, relayedHealth } from '../../cli/api-worker-health.js';
import { primaryMessageSchema } from '../../cli/api-worker-protocol.js';
import { crashLoop } from '../../cli/crash-loop.js';
import { startApi } from '../../cli/serve.js';
import bank from '../../examples/bank/migration.js';
import { apiWorkerCount, loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { readinessOf } from '../../shadow-api/health.js';

const up = { name: 'source', state: 'up' as const, since: 0, reason: null, restarts: 0 };
const snapshot = { components: [up], lagSeconds: 0.5, maxLagSeconds: 30, deadLetters: 0 };

describe('crash loop of API workers', () => {
  it('gives up at the fifth death within a minute, not when deaths are spread out', () => {
    const spread = crashLoop({ deaths: 5, windowMs: 60_000 });
    const spreadCounts = [0, 20_000, 40_000, 61_000, 81_000, 101_000].map((t) => spread.died(t));
    expect(spreadCounts.some((n) => spread.looping(n))).toBe(false);
    const burst = crashLoop({ deaths: 5, windowMs: 60_000 });
    const burstCounts = [0, 1000, 2000, 3000, 4000].map((t) => burst.died(t));
    expect(burstCounts.map((n) => burst.looping(n))).toEqual([false, false, false, false, true]);
  });
});

describe("a worker's relayed health", () => {
  it('is unready before the first snapshot, ready with a fresh one, unready once it is stale', () => {
    let now = 1_000;
    const health = relayedHealth(3000, () => now);
    expect(readinessOf(health.port)).toMatchObject({
      ready: false,
      problems: [{ component: PRIMARY_COMPONENT }],
    });
    health.receive(snapshot);
    now += 2000;
    expect(readinessOf(health.port)).toMatchObject({ ready: true, lagSeconds: 0.5, components: [up] });
    now += 1500;
    const stale = readinessOf(health.port);
    expect(stale.ready).toBe(false);
    expect(stale.problems).toEqual([
      { component: PRIMARY_COMPONENT, reason: 'down: no health from the primary process for 3.5 s' },
    ]);
  });

  it("fails ready on the primary's own problems (a component down, lag past its limit)", () => {
    const health = relayedHealth(3000);
    health.receive({ ...snapshot, lagSeconds: 45 });
    expect(readinessOf(health.port).problems.map((p) => p.component)).toEqual(['read-models']);
    health.receive({ ...snapshot, components: [{ ...up, state: 'down', reason: 'binlog lost' }] });
    expect(readinessOf(health.port).problems).toEqual([{ component: 'source', reason: 'down: binlog lost' }]);
  });

  it("ignores a message that is not one of the primary's", () => {
    expect(primaryMessageSchema.safeParse({ type: 'prom-client:getMetricsReq', requestId: 1 }).success).toBe(
      false,
    );
    expect(primaryMessageSchema.safeParse({ type: 'cqrs:health', snapshot }).success).toBe(true);
  });
});

describe('api.workers', () => {
  it('is 1 by default, a number, or one per core with "auto"; 0 is refused', () => {
    expect(apiWorkerCount(loadConfig({ env: {} }))).toBe(1);
    expect(apiWorkerCount(loadConfig({ env: { CQRS_API_WORKERS: '3' } }))).toBe(3);
    expect(apiWorkerCount(loadConfig({ env: { CQRS_API_WORKERS: 'auto' } }))).toBe(availableParallelism());
    expect(() => loadConfig({ env: { CQRS_API_WORKERS: '0' } })).toThrow(/api\.workers/);
    expect(() => loadConfig({ env: { CQRS_API_WORKERS: 'many' } })).toThrow(/api\.workers/);
  });

  it('refuses workers with the admin surface on the public port, before anything listens', async () => {
    const config = loadConfig({
      env: { CQRS_API_WORKERS: '2', CQRS_ADMIN_PORT: 'public', CQRS_API_PORT: '0' },
    });
    const side = { readModels: {}, freshness: { isCaughtUp: async () => true } };
    const legacy = {
      dialect: 'mysql' as const,
      query: () => Promise.reject(new Error('no database in this test')),
      snapshot: () => Promise.reject(new Error('no database in this test')),
    };
    await expect(startApi(config, bank, side, legacy, silentLogger, new Registry())).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/api\.workers=2/),
    });
  });
});
