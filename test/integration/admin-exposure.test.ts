import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { startApi } from '../../cli/serve.js';
import bank from '../../examples/bank/migration.js';
import { type ConfigInput, loadConfig } from '../../lib/config.js';
import { createLogger, silentLogger } from '../../lib/logger.js';

/**
 * startApi as `run` and `serve` call it: the admin surface on its own listener (loopback by
 * default) or, when asked, on the public port; the bind policy is enforced before anything listens.
 */
const dir = mkdtempSync(join(tmpdir(), 'h4-admin-exposure-'));
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
const TOKEN = '0123456789abcdef0123';
const tokenFile = join(dir, 'tokens');
writeFileSync(tokenFile, `ops:${TOKEN}\n`);
const bearer = { authorization: `Bearer ${TOKEN}` };
const loopback = (url: string) => `http://127.0.0.1:${new URL(url).port}`;

describe('admin exposure of a listening API', () => {
  it('keeps admin off a public 0.0.0.0 port by default, on its own loopback listener', async () => {
    const api = await startApi(
      configOf({ host: '0.0.0.0', port: 0, admin: { port: 0 } }),
      bank,
      side,
      noDatabase,
      silentLogger,
      new Registry(),
    );
    try {
      const reads = loopback(api.url);
      expect(new URL(api.adminUrl).hostname).toBe('127.0.0.1');
      expect(api.adminUrl).not.toBe(api.url);
      for (const path of ['/admin/flags', '/admin/', '/admin/overview', '/metrics'])
        expect((await fetch(`${reads}${path}`)).status, path).toBe(404);
      // Routing clients still read the flags on the public port.
      expect((await fetch(`${reads}/flags`)).status).toBe(200);
      expect((await fetch(`${api.adminUrl}/admin/flags`)).status).toBe(200);
      expect((await fetch(`${api.adminUrl}/metrics`)).status).toBe(200);
      const health = (await (await fetch(`${reads}/health`)).json()) as { admin: unknown };
      expect(health.admin).toEqual({
        listener: 'separate',
        listening: true,
        port: Number(new URL(api.adminUrl).port),
      });
      // The public docs describe the reads; the admin listener's docs the admin API.
      const publicDoc = (await (await fetch(`${reads}/docs/json`)).json()) as { paths: object };
      const adminDoc = (await (await fetch(`${api.adminUrl}/docs/json`)).json()) as { paths: object };
      expect(Object.keys(publicDoc.paths)).toContain('/accounts/{accountId}/summary');
      expect(Object.keys(publicDoc.paths).filter((p) => p.startsWith('/admin') || p === '/metrics')).toEqual(
        [],
      );
      expect(Object.keys(adminDoc.paths)).toEqual(expect.arrayContaining(['/admin/flags', '/metrics']));
    } finally {
      await api.close();
    }
  });

  it('refuses an admin listener on 0.0.0.0, or admin on a public 0.0.0.0 port, without a token', async () => {
    for (const api of [
      { host: '127.0.0.1', port: 0, admin: { host: '0.0.0.0', port: 0 } },
      { host: '0.0.0.0', port: 0, admin: { port: 'public' as const } },
    ]) {
      await expect(
        startApi(configOf(api), bank, side, noDatabase, silentLogger, new Registry()),
      ).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/0\.0\.0\.0/) });
    }
  });

  it('serves admin on the public port when asked, only with the token, and never logs it', async () => {
    const lines: string[] = [];
    const logger = createLogger({
      level: 'info',
      destination: { write: (line: string) => lines.push(line) },
    });
    const api = await startApi(
      configOf({ host: '0.0.0.0', port: 0, adminTokenFile: tokenFile, admin: { port: 'public' } }),
      bank,
      side,
      noDatabase,
      logger,
      new Registry(),
    );
    try {
      const base = loopback(api.url);
      expect(api.adminUrl).toBe(api.url);
      expect((await fetch(`${base}/admin/flags`)).status).toBe(401);
      const wrong = await fetch(`${base}/admin/flags`, { headers: { authorization: `Bearer ${TOKEN}x` } });
      expect(wrong.status).toBe(401);
      expect((await fetch(`${base}/admin/flags`, { headers: bearer })).status).toBe(200);
      const patched = await fetch(`${base}/admin/flags/accounts`, {
        method: 'PATCH',
        headers: { ...bearer, 'content-type': 'application/json' },
        body: JSON.stringify({ mode: 'new' }),
      });
      expect(patched.status).toBe(200);
      const health = (await (await fetch(`${base}/health`)).json()) as { admin: unknown };
      expect(health.admin).toEqual({ listener: 'public-port' });
    } finally {
      await api.close();
    }
    expect(lines.join('\n')).toContain('admin request refused');
    expect(lines.join('\n')).toContain('flags changed');
    expect(lines.join('\n')).not.toContain(TOKEN);
  });

  it('says which admin port is taken instead of moving it', async () => {
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const address = holder.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    try {
      await expect(
        startApi(
          configOf({ port: 0, admin: { port } }),
          bank,
          side,
          noDatabase,
          silentLogger,
          new Registry(),
        ),
      ).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        message: `the admin port 127.0.0.1:${port} is already in use`,
        hint: expect.stringMatching(/api\.admin\.port \(CQRS_ADMIN_PORT\)/),
      });
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
  });
});
