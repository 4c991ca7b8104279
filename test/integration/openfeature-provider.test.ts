import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpenFeature, ProviderEvents } from '@openfeature/server-sdk';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { type ReadSide, type RunningApi, startApi } from '../../cli/serve.js';
import bank from '../../examples/bank/migration.js';
import { type ConfigInput, loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { CqrsMigrateProvider } from '../../openfeature/provider.js';
import { decide } from '../../shadow-api/flags.js';

/**
 * A legacy application asks OpenFeature "read accounts from the new side for this subject?"
 * and gets the answer the shadow API routes by, for any string subject, sticky as the canary
 * grows; flag changes reach it, a dead API leaves it on the last flags (STALE), and API
 * replicas sharing one flags file converge. Real API processes' HTTP servers, no stand-ins
 * for the flags.
 */
const dir = mkdtempSync(join(tmpdir(), 'cqrs-openfeature-'));
const apis: RunningApi[] = [];
afterAll(async () => {
  await OpenFeature.close();
  for (const api of apis) await api.close().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

// This test routes by flags only: no endpoint is called, so neither side is ever queried.
const side: ReadSide = { readModels: {}, freshness: { isCaughtUp: async () => true } };
const noDatabase = {
  dialect: 'mysql' as const,
  query: () => Promise.reject(new Error('not queried in this test')),
  snapshot: () => Promise.reject(new Error('not queried in this test')),
};

async function api(dataDir: string, over: ConfigInput = {}): Promise<RunningApi> {
  const config = loadConfig({
    env: {},
    overrides: { dataDir, api: { port: 0, admin: { port: 0 } }, ...over },
  });
  const started = await startApi(config, bank, side, noDatabase, silentLogger, new Registry());
  apis.push(started);
  return started;
}

const subjects = Array.from({ length: 2000 }, (_, i) => `tenant-${(i * 7919).toString(36)}`);

function waitFor<T>(check: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = () => {
      const value = check();
      if (value !== undefined) resolve(value);
      else if (Date.now() > deadline) reject(new Error('timed out'));
      else setTimeout(tick, 50);
    };
    tick();
  });
}

describe('OpenFeature provider', () => {
  it('answers with the API routing for string subjects, sticky as the canary grows, and follows changes', async () => {
    const server = await api(join(dir, 'one'), {
      flags: { defaultMode: 'shadow', endpoints: { accounts: { mode: 'canary', percent: 30 } } },
    });
    const provider = new CqrsMigrateProvider({ url: server.url, refreshMs: 100 });
    await OpenFeature.setProviderAndWait(provider);
    const client = OpenFeature.getClient();

    const newSide = async () => {
      const set = new Set<string>();
      for (const s of subjects)
        if (await client.getBooleanValue('accounts.summary', false, { targetingKey: s })) set.add(s);
      return set;
    };
    const at30 = await newSide();
    for (const s of subjects)
      expect(at30.has(s)).toBe(decide(server.flags.get(), 'accounts.summary', s).serveFrom === 'readModel');
    expect(at30.size / subjects.length).toBeGreaterThan(0.25);
    expect(at30.size / subjects.length).toBeLessThan(0.35);
    const details = await client.getStringDetails('accounts', 'legacy', {
      targetingKey: subjects[0] as string,
    });
    expect(details.reason).toBe('SPLIT');
    expect(details.variant).toBe('canary 30%');

    const changed = new Promise<void>((resolve) =>
      client.addHandler(ProviderEvents.ConfigurationChanged, () => resolve()),
    );
    await server.flags.patch('accounts', { percent: 60 });
    await changed;
    const at60 = await newSide();
    expect([...at30].every((s) => at60.has(s))).toBe(true);
    expect(at60.size).toBeGreaterThan(at30.size);

    // Canary needs a subject; without one the application keeps its default (legacy).
    const anonymous = await client.getBooleanDetails('accounts.summary', false, {});
    expect(anonymous.value).toBe(false);
    expect(anonymous.errorCode).toBe('TARGETING_KEY_MISSING');
    expect((await client.getBooleanDetails('not a key', false)).errorCode).toBe('FLAG_NOT_FOUND');
    expect((await client.getNumberDetails('accounts', 7)).errorCode).toBe('TYPE_MISMATCH');

    // The API goes away: the provider says STALE and keeps the last flags.
    const toNew = new Promise<void>((resolve) =>
      client.addHandler(ProviderEvents.ConfigurationChanged, () => resolve()),
    );
    await server.flags.patch('accounts', { mode: 'new' });
    await toNew;
    const stale = new Promise<void>((resolve) => client.addHandler(ProviderEvents.Stale, () => resolve()));
    await server.close();
    apis.splice(apis.indexOf(server), 1);
    await stale;
    const afterDeath = await client.getBooleanDetails('accounts.summary', false, { targetingKey: 'anyone' });
    expect(afterDeath.value).toBe(true);
    expect(afterDeath.reason).toBe('STALE');
  }, 60_000);

  it('keeps API replicas sharing one flags file in step', async () => {
    const file = join(dir, 'shared-flags.json');
    const a = await api(join(dir, 'a'), { flags: { file } });
    const b = await api(join(dir, 'b'), { flags: { file } });
    await a.flags.patch('accounts.summary', { mode: 'canary', percent: 12 });
    const seen = await waitFor(() => b.flags.get().endpoints['accounts.summary'], 5000);
    expect(seen).toEqual({ mode: 'canary', percent: 12 });
    const res = await fetch(`${b.url}/flags`);
    expect(res.status).toBe(200);
    expect(
      ((await res.json()) as { endpoints: Record<string, unknown> }).endpoints['accounts.summary'],
    ).toEqual({
      mode: 'canary',
      percent: 12,
    });
  }, 30_000);
});
