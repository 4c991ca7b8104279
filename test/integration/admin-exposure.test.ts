import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { startApi } from '../../cli/serve.js';
import bank from '../../examples/bank/migration.js';
import { type ConfigInput, loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';

/** startApi as `run` and `serve` call it: the bind policy is enforced before anything listens. */
const dir = mkdtempSync(join(tmpdir(), 'cqrs-admin-exposure-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const side = { readModels: {}, freshness: { isCaughtUp: async () => true } };
const noDatabase = {
  dialect: 'mysql' as const,
  query: () => Promise.reject(new Error('no database in this test')),
  snapshot: () => Promise.reject(new Error('no database in this test')),
};
const configOf = (api: ConfigInput['api']) =>
  loadConfig({ env: {}, file: join(dir, 'config.json'), overrides: { dataDir: join(dir, 'data'), api } });
writeFileSync(join(dir, 'config.json'), '{}');

describe('admin exposure of a listening API', () => {
  it('refuses to listen on 0.0.0.0 with open admin routes', async () => {
    await expect(
      startApi(configOf({ host: '0.0.0.0', port: 0 }), bank, side, noDatabase, silentLogger, new Registry()),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/0\.0\.0\.0/) });
  });

  it('listens on 0.0.0.0 with a token file, and admin answers only with the token', async () => {
    const tokenFile = join(dir, 'tokens');
    writeFileSync(tokenFile, 'ops:0123456789abcdef0123\n');
    const api = await startApi(
      configOf({ host: '0.0.0.0', port: 0, adminTokenFile: tokenFile }),
      bank,
      side,
      noDatabase,
      silentLogger,
      new Registry(),
    );
    try {
      const port = new URL(api.url).port;
      const base = `http://127.0.0.1:${port}`;
      expect((await fetch(`${base}/admin/flags`)).status).toBe(401);
      const ok = await fetch(`${base}/admin/flags`, {
        headers: { authorization: 'Bearer 0123456789abcdef0123' },
      });
      expect(ok.status).toBe(200);
      expect((await fetch(`${base}/health`)).status).toBe(200);
    } finally {
      await api.close();
    }
  });
});
