import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { OpenFeature, ProviderEvents } from '@openfeature/server-sdk';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type ReadSide, type RunningApi, startApi } from '../../cli/serve.js';
import { defineEndpoint } from '../../definition/endpoints.js';
import { defineMigration } from '../../definition/migration.js';
import { bankTableRules } from '../../examples/bank/mapping.js';
import { accountSummaryView } from '../../examples/bank/read-models.js';
import { loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { CqrsMigrateProvider } from '../../openfeature/provider.js';

/**
 * Two API replicas (startApi, as two `serve` processes) sharing flags and rollout state through
 * Redis (state.redisUrl): a change made through one replica's admin API is served by the other,
 * and the OpenFeature provider pointed at the other follows it. Each side of the endpoint
 * answers in memory, so what is observed is routing alone.
 */
const REDIS = 'redis://127.0.0.1:6379';
const prefix = `h4_test:replicas:${randomUUID()}`;
const dir = mkdtempSync(join(tmpdir(), 'h4_replicas_'));
const apis: RunningApi[] = [];
const redis = new Redis(REDIS);

afterAll(async () => {
  await OpenFeature.close();
  for (const api of apis) await api.close().catch(() => undefined);
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
  rmSync(dir, { recursive: true, force: true });
});

const migration = defineMigration({
  name: 'replicas-test',
  capture: { tables: bankTableRules },
  readModels: [accountSummaryView],
  domains: {
    accounts: {
      endpoints: {
        summary: defineEndpoint({
          route: '/accounts/:accountId/summary',
          params: z.object({ accountId: z.coerce.number().int() }),
          legacy: ({ params }) => Promise.resolve({ accountId: params.accountId }),
          readModel: ({ params }) => Promise.resolve({ accountId: params.accountId }),
        }),
      },
    },
  },
});
const side: ReadSide = { readModels: {}, freshness: { isCaughtUp: async () => true } };
const noDatabase = {
  dialect: 'mysql' as const,
  query: () => Promise.reject(new Error('not queried in this test')),
  snapshot: () => Promise.reject(new Error('not queried in this test')),
};

async function replica(name: string): Promise<RunningApi> {
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: join(dir, name),
      api: { port: 0, admin: { port: 0 } },
      flags: { defaultMode: 'legacy' },
      state: { redisUrl: REDIS, prefix },
    },
  });
  const api = await startApi(config, migration, side, noDatabase, silentLogger, new Registry());
  apis.push(api);
  return api;
}

async function servedBy(api: RunningApi, id: number): Promise<string | null> {
  const res = await fetch(`${api.url}/accounts/${id}/summary`);
  expect(res.status).toBe(200);
  await res.arrayBuffer();
  return res.headers.get('x-served-by');
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - started;
}

const patch = (api: RunningApi, key: string, body: object) =>
  fetch(`${api.adminUrl}/admin/flags/${key}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

describe('API replicas sharing state through Redis', () => {
  it('serve a flag change made on the other replica within a second, and lose no concurrent change', async () => {
    const a = await replica('a');
    const b = await replica('b');
    expect(await servedBy(b, 7)).toBe('legacy');

    OpenFeature.setProvider(new CqrsMigrateProvider({ url: b.url, refreshMs: 100 }));
    const client = OpenFeature.getClient();
    await new Promise<void>((resolve) => client.addHandler(ProviderEvents.Ready, () => resolve()));
    expect(await client.getBooleanValue('accounts.summary', true, { targetingKey: '7' })).toBe(false);

    expect((await patch(a, 'accounts', { mode: 'new' })).status).toBe(200);
    const took = await until(
      'B to serve from the read model',
      async () => (await servedBy(b, 7)) === 'read-model',
      5000,
    );
    expect(took).toBeLessThan(1000);
    await until(
      'the provider on B to say read model',
      async () => await client.getBooleanValue('accounts.summary', false, { targetingKey: '7' }),
      5000,
    );

    // Both replicas change different keys at the same moment: neither change is lost.
    const [onA, onB] = await Promise.all([
      patch(a, 'accounts.summary', { mode: 'canary', percent: 30 }),
      patch(b, 'accounts', { mode: 'shadow' }),
    ]);
    expect([onA.status, onB.status]).toEqual([200, 200]);
    const expected = { 'accounts.summary': { mode: 'canary', percent: 30 }, accounts: { mode: 'shadow' } };
    for (const api of [a, b])
      await until(
        'both changes everywhere',
        async () => isDeepStrictEqual(api.flags.get().endpoints, expected),
        2000,
      );

    // The rollout state too: a target held on A is held on B.
    const held = await fetch(`${a.adminUrl}/admin/rollout/accounts/hold`, { method: 'POST' });
    expect(held.status).toBe(200);
    await until('B to see the hold', async () => b.rollout.statusOf('accounts').state.held, 2000);
  }, 60_000);
});
