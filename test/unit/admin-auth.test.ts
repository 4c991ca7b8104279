import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { ConfigError } from '../../lib/errors.js';
import {
  checkAdminExposure,
  isAdminRoute,
  isLoopbackHost,
  loadAdminAuth,
  parseAdminTokens,
} from '../../shadow-api/admin-auth.js';
import { jsonLinesLogger } from './support/json-lines-logger.js';

const TOKEN = 'a'.repeat(16);

describe('admin tokens', () => {
  it('parses named and bare tokens, skipping blanks and comments', () => {
    expect(parseAdminTokens(`# ops team\nalice:${TOKEN}1\n\n  ${TOKEN}2  \r\n`, 'file')).toEqual([
      { name: 'alice', token: `${TOKEN}1` },
      { name: 'admin', token: `${TOKEN}2` },
    ]);
  });

  it('refuses short or spaced tokens naming the line, never the token', () => {
    for (const text of ['bob:short', `x ${TOKEN}`, `ok:${TOKEN}\nshort`]) {
      const err = (() => {
        try {
          parseAdminTokens(text, 'the file');
        } catch (e) {
          return e as ConfigError;
        }
        throw new Error('expected a refusal');
      })();
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toMatch(/the file line \d is not a usable admin token/);
      expect(err.message).not.toContain('short');
    }
  });

  it('loads tokens from api.adminTokenFile and CQRS_ADMIN_TOKEN', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cqrs-admin-'));
    const file = join(dir, 'tokens');
    writeFileSync(file, `ci:${TOKEN}x\n`);
    writeFileSync(join(dir, 'config.json'), '{}');
    const config = loadConfig({
      env: {
        CQRS_ADMIN_TOKEN_FILE: file,
        CQRS_ADMIN_TOKEN: `ops:${TOKEN}y`,
        CQRS_ALLOW_UNAUTHENTICATED_ADMIN: 'true',
      },
      file: join(dir, 'config.json'),
    }).api;
    expect(config.allowUnauthenticatedAdmin).toBe(true);
    expect(loadAdminAuth(config).tokens.map((t) => t.name)).toEqual(['ci', 'ops']);
    writeFileSync(file, '# nothing yet\n');
    expect(() => loadAdminAuth(config)).toThrow(/holds no token/);
    expect(() => loadAdminAuth({ ...config, adminTokenFile: join(dir, 'missing') })).toThrow(
      /cannot read api.adminTokenFile/,
    );
  });
});

describe('admin exposure', () => {
  it('knows loopback hosts', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1'])
      expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.5', '203.0.113.7', 'api.example.com', '::ffff:10.0.0.1'])
      expect(isLoopbackHost(host), host).toBe(false);
  });

  it('refuses a public bind without a token unless opted out, and warns when admin is open', () => {
    const { logger, lines } = jsonLinesLogger();
    const none = { tokens: [] };
    expect(() =>
      checkAdminExposure({ host: '0.0.0.0', allowUnauthenticatedAdmin: false }, none, logger),
    ).toThrow(/listen on 0\.0\.0\.0.*open to anyone/);
    checkAdminExposure({ host: '0.0.0.0', allowUnauthenticatedAdmin: true }, none, logger);
    checkAdminExposure({ host: '127.0.0.1', allowUnauthenticatedAdmin: false }, none, logger);
    checkAdminExposure(
      { host: '0.0.0.0', allowUnauthenticatedAdmin: false },
      { tokens: [{ name: 'ops', token: TOKEN }] },
      logger,
    );
    expect(lines.map((l) => [l.level, l.host])).toEqual([
      [40, '0.0.0.0'],
      [40, '127.0.0.1'],
    ]);
  });

  it('guards admin routes by route pattern', () => {
    for (const url of ['/admin', '/admin/flags', '/admin/flags/:endpointKey', '/metrics'])
      expect(isAdminRoute(url), url).toBe(true);
    for (const url of [undefined, '/health', '/accounts/:accountId/summary', '/administrators'])
      expect(isAdminRoute(url), url).toBe(false);
  });

  it('never logs an authorization header or the admin token', () => {
    const { logger, lines } = jsonLinesLogger();
    logger.warn({ req: { headers: { authorization: `Bearer ${TOKEN}` } } }, 'one');
    logger.warn({ request: { headers: { authorization: `Bearer ${TOKEN}` } } }, 'two');
    logger.child({ component: 'x' }).info({ config: { api: { adminToken: TOKEN } } }, 'three');
    expect(lines).toHaveLength(3);
    expect(JSON.stringify(lines)).not.toContain(TOKEN);
    expect(JSON.stringify(lines)).toContain('[redacted]');
  });
});
