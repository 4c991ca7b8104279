import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { type ReadSide, startApi } from '../../cli/serve.js';
import bank from '../../examples/bank/migration.js';
import { type ConfigInput, loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';

/**
 * A rollback to `legacy` made at run time survives a crash and restart of the API without
 * `flags.file` being configured: the flags persist in the data directory. Until a flag is
 * changed at run time, the configuration keeps ruling.
 */
const dir = mkdtempSync(join(tmpdir(), 'cqrs-flags-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const side: ReadSide = { readModels: {}, freshness: { isCaughtUp: async () => true } };
const noDatabase = {
  dialect: 'mysql' as const,
  query: () => Promise.reject(new Error('no database in this test')),
  snapshot: () => Promise.reject(new Error('no database in this test')),
};

async function api(dataDir: string, over: ConfigInput = {}) {
  const config = loadConfig({
    env: {},
    overrides: { dataDir, api: { port: 0, admin: { port: 0 } }, ...over },
  });
  return startApi(config, bank, side, noDatabase, silentLogger, new Registry());
}

describe('flags without flags.file', () => {
  it('keep a run-time rollback across a restart, in <dataDir>/flags.json', async () => {
    const dataDir = join(dir, 'rollback');
    const first = await api(dataDir, { flags: { defaultMode: 'new' } });
    await first.flags.patch('accounts.summary', { mode: 'legacy' });
    await first.close();
    expect(JSON.parse(readFileSync(join(dataDir, 'flags.json'), 'utf8'))).toMatchObject({
      endpoints: { 'accounts.summary': { mode: 'legacy' } },
    });

    const second = await api(dataDir, { flags: { defaultMode: 'new' } });
    try {
      expect(second.flags.get()).toMatchObject({
        defaultMode: 'new',
        endpoints: { 'accounts.summary': { mode: 'legacy' } },
      });
    } finally {
      await second.close();
    }
  });

  it('follow the configuration until a flag is changed at run time', async () => {
    const dataDir = join(dir, 'config');
    const first = await api(dataDir, { flags: { defaultMode: 'shadow' } });
    await first.close();
    expect(existsSync(join(dataDir, 'flags.json'))).toBe(false);
    const second = await api(dataDir, { flags: { defaultMode: 'new' } });
    try {
      expect(second.flags.get().defaultMode).toBe('new');
    } finally {
      await second.close();
    }
  });
});
