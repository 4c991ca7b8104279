import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ConfigInput, loadConfig } from '../../lib/config.js';
import { ConfigError } from '../../lib/errors.js';

// env: {} everywhere so the developer's shell (CQRS_*) cannot change the outcome.
const load = (overrides: unknown) => loadConfig({ env: {}, overrides: overrides as ConfigInput });
const dir = mkdtempSync(join(tmpdir(), 'cqrs-config-'));

function refusal(run: () => unknown): ConfigError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('has a default for every key', () => {
    const config = loadConfig({ env: {} });
    expect(config.legacy.url).toBe('mysql://cqrs:cqrs@127.0.0.1:3307/legacy_bank');
    expect(config.cdc).toMatchObject({ mode: 'embedded', serverId: 5401, tables: [] });
    expect(config.flags).toEqual({ defaultMode: 'shadow', endpoints: {} });
    expect(config.stores.placement).toEqual({});
    expect(config.definition).toBeUndefined();
    expect(config.api.port).toBe(8080);
    expect(config.api.admin).toEqual({ host: '127.0.0.1', port: 8081 });
    expect(config.state).toEqual({ prefix: 'cqrs:state' });
  });

  it('places the admin listener and the shared state from the environment', () => {
    const config = loadConfig({
      env: {
        CQRS_ADMIN_HOST: '10.0.0.5',
        CQRS_ADMIN_PORT: '9443',
        CQRS_STATE_REDIS_URL: 'redis://127.0.0.1:6379/2',
        CQRS_STATE_PREFIX: 'shop:state',
      },
    });
    expect(config.api.admin).toEqual({ host: '10.0.0.5', port: 9443 });
    expect(config.state).toEqual({ redisUrl: 'redis://127.0.0.1:6379/2', prefix: 'shop:state' });
    expect(loadConfig({ env: { CQRS_ADMIN_PORT: 'public' } }).api.admin.port).toBe('public');
    expect(refusal(() => loadConfig({ env: { CQRS_ADMIN_PORT: 'private' } })).message).toMatch(
      /api\.admin\.port/,
    );
  });

  it('supervises with a one-minute budget and exits past it by default; env can change both', () => {
    expect(loadConfig({ env: {} }).supervision).toMatchObject({
      failureBudgetMs: 60_000,
      exitOnFailure: true,
    });
    expect(loadConfig({ env: {} }).health).toEqual({ maxLagSeconds: 30, stallSeconds: 15 });
    const config = loadConfig({
      env: {
        CQRS_SUPERVISION_FAILURE_BUDGET_MS: '1500',
        CQRS_SUPERVISION_EXIT_ON_FAILURE: 'false',
        CQRS_HEALTH_MAX_LAG_SECONDS: '5',
      },
    });
    expect(config.supervision).toMatchObject({ failureBudgetMs: 1500, exitOnFailure: false });
    expect(config.health.maxLagSeconds).toBe(5);
    expect(refusal(() => loadConfig({ env: { CQRS_SUPERVISION_EXIT_ON_FAILURE: 'no' } })).message).toMatch(
      /supervision\.exitOnFailure/,
    );
  });

  it('reads a file, then env variables, then overrides', () => {
    const file = join(dir, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        definition: './from-file.ts',
        stores: { placement: { transaction_history: 'opensearch' } },
        flags: { endpoints: { 'accounts.summary': { mode: 'canary', percent: 10 } } },
        api: { port: 9000 },
      }),
    );
    const config = loadConfig({
      file,
      env: { CQRS_DEFINITION: './from-env.ts', CQRS_API_PORT: '9100' },
      overrides: { api: { host: '0.0.0.0' } },
    });
    expect(config.definition).toBe('./from-env.ts');
    expect(config.stores.placement).toEqual({ transaction_history: 'opensearch' });
    expect(config.stores.mongoDatabase).toBe('cqrs_read_models');
    expect(config.flags.endpoints['accounts.summary']).toEqual({ mode: 'canary', percent: 10 });
    expect(config.api).toMatchObject({ port: 9100, host: '0.0.0.0' });
    expect(loadConfig({ file, env: {} }).definition).toBe('./from-file.ts');
  });

  it.each([
    [{ flgs: {} }, 'flgs: unknown key (allowed here: legacy, cdc,'],
    [
      { flags: { defaultMod: 'new' } },
      'flags.defaultMod: unknown key (allowed here: defaultMode, endpoints, file)',
    ],
    [
      { flags: { endpoints: { 'accounts.summary': { mode: 'new', percnt: 5 } } } },
      'flags.endpoints["accounts.summary"].percnt: unknown key (allowed here: mode, percent, compareSample)',
    ],
    [{ stores: { placment: {} } }, 'stores.placment: unknown key'],
    [
      { legacy: { url: 'mysql://x', pool: 3 } },
      'legacy.pool: unknown key (allowed here: url, flavor, poolSize, checkQueries)',
    ],
    [{ log: { lvl: 'debug' } }, 'log.lvl: unknown key (allowed here: level)'],
  ])('refuses unknown keys at every level: %j', (overrides, line) => {
    const err = refusal(() => load(overrides));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain(line);
    expect(err.hint).toMatch(/Configuration/);
  });

  it('names every unknown key of one object', () => {
    const err = refusal(() => load({ cdc: { mod: 'kafka', tabels: [] } }));
    expect(err.message).toContain('cdc.mod: unknown key');
    expect(err.message).toContain('cdc.tabels: unknown key');
  });

  it('refuses an unknown key in a config file too', () => {
    const file = join(dir, 'typo.json');
    writeFileSync(file, JSON.stringify({ compare: { reconcileCorn: '* * * * *' } }));
    expect(refusal(() => loadConfig({ file, env: {} })).message).toContain(
      'compare.reconcileCorn: unknown key',
    );
  });

  it('refuses a store placement other than mongo or opensearch', () => {
    const err = refusal(() => load({ stores: { placement: { history: 'redis' } } }));
    expect(err.message).toContain('stores.placement.history:');
  });

  it('refuses a missing explicit file with its path', () => {
    const err = refusal(() => loadConfig({ file: join(dir, 'nope.json'), env: {} }));
    expect(err.message).toContain(join(dir, 'nope.json'));
  });
});
