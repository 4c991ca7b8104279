import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flagsCommand } from '../../cli/flags.js';
import type { FlagsOptions } from '../../cli/program.js';
import { SqliteComparisonRecorder } from '../../compare/recorder.js';
import { ShadowQueue } from '../../compare/shadow-queue.js';
import bank from '../../examples/bank/migration.js';
import { loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { SqliteAuditLog } from '../../shadow-api/audit-log.js';
import { FileFlagStore } from '../../shadow-api/flag-store.js';
import { buildServer } from '../../shadow-api/server.js';

/**
 * `cqrs-migrate flags` against a shadow API listening on a socket (the bank's definition; flag
 * changes touch no database): list, get and set through /admin/flags with the configured admin
 * token, the change in force and audited with its reason, refusals printed in one line.
 */
const TOKEN = 'h3-flags-cli-token-0123456789';
const run = promisify(execFile);
const audit = new SqliteAuditLog(':memory:');
const recorder = new SqliteComparisonRecorder({ path: ':memory:' });
const queue = new ShadowQueue({ concurrency: 1, maxSize: 1 });
const flags = FileFlagStore.open({ initial: { defaultMode: 'shadow' } });
let app: FastifyInstance;
let url: string;

beforeAll(async () => {
  app = buildServer({
    migration: bank,
    legacy: {
      dialect: 'mysql',
      query: () => Promise.reject(new Error('no database in this test')),
      snapshot: () => Promise.reject(new Error('no database in this test')),
    },
    readModels: {},
    flags,
    recorder,
    queue,
    logger: silentLogger,
    admin: { tokens: [{ name: 'ops', token: TOKEN }] },
    audit,
  });
  url = await app.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await app?.close();
  await queue.close();
  recorder.close();
  audit.close();
});

async function cli(options: FlagsOptions, token = TOKEN): Promise<{ code: number; out: string }> {
  const config = loadConfig({ env: {}, file: undefined, overrides: { api: { adminToken: `ops:${token}` } } });
  let out = '';
  const code = await flagsCommand(config, options, (text) => {
    out += text;
  });
  return { code, out };
}

describe('cqrs-migrate flags', () => {
  it('lists, gets and sets flags through the running API, audited with the reason', async () => {
    const empty = await cli({ action: 'list', url, json: false });
    expect(empty).toEqual({
      code: 0,
      out: 'default: shadow\nno entries: every endpoint follows the default\n',
    });

    const set = await cli({
      action: 'set',
      key: 'accounts',
      flag: { mode: 'canary', percent: 10 },
      reason: 'CHG-7 first slice',
      url,
      json: false,
    });
    expect(set).toEqual({ code: 0, out: 'accounts: shadow → canary 10%\n' });
    expect(flags.get().endpoints).toEqual({ accounts: { mode: 'canary', percent: 10 } });
    expect(audit.list({ limit: 10 })).toMatchObject([
      { actor: 'ops', action: 'flags.patch', target: 'accounts', reason: 'CHG-7 first slice' },
    ]);

    const inherited = await cli({ action: 'get', key: 'accounts.summary', url, json: false });
    expect(inherited.out).toBe('accounts.summary: canary 10% (from accounts)\n');

    // The real binary, as an operator runs it: the token from CQRS_ADMIN_TOKEN.
    const { CQRS_CONFIG: _ignored, ...inheritedEnv } = process.env;
    const binary = await run(
      process.execPath,
      [
        '--import',
        'tsx',
        'cli/main.ts',
        'flags',
        'set',
        'accounts.summary',
        '--mode',
        'new',
        '--compare-sample',
        '0.05',
        '--url',
        url,
      ],
      { env: { ...inheritedEnv, CQRS_ADMIN_TOKEN: `ops:${TOKEN}`, LOG_LEVEL: 'warn' }, cwd: process.cwd() },
    );
    expect(binary.stdout).toBe('accounts.summary: canary 10% → new, compares 5%\n');

    // A change (PATCH) starts from the entry that governed the key, the domain's canary 10%:
    // the key's own entry keeps that percent, which mode new does not use.
    const list = await cli({ action: 'list', url, json: false });
    expect(list.out).toBe(
      [
        'default: shadow',
        'key               mode    percent  compare-sample',
        'accounts          canary       10               -',
        'accounts.summary  new          10            0.05',
        '',
      ].join('\n'),
    );
    const json = await cli({ action: 'get', key: 'accounts.summary', url, json: true });
    expect(JSON.parse(json.out)).toEqual({
      key: 'accounts.summary',
      flag: { mode: 'new', percent: 10, compareSample: 0.05 },
      from: 'own entry',
    });
    // What the API serves by now goes by the new entry.
    expect((await app.inject({ method: 'GET', url: '/flags' })).json()).toEqual(flags.get());
  });

  it('prints the refusal in one line and exits 1; an API that does not answer is an error with the fix', async () => {
    const before = flags.get();
    const unknown = await cli({ action: 'set', key: 'loans', flag: { mode: 'new' }, url, json: false });
    expect(unknown.code).toBe(1);
    expect(unknown.out).toMatch(
      /^refused \(400\): invalid flag keys: loans: unknown endpoint key; known: accounts, /,
    );
    expect(unknown.out.trim().split('\n')).toHaveLength(1);

    const wrongToken = await cli({ action: 'list', url, json: false }, 'not-the-token-0123456789');
    expect(wrongToken).toEqual({ code: 1, out: 'refused (401): unknown admin token\n' });
    expect(flags.get()).toEqual(before);

    // A port nothing listens on: the closed server's.
    const closed = buildServer({
      migration: bank,
      legacy: { dialect: 'mysql', query: async () => [], snapshot: async () => [] as never },
      readModels: {},
      flags: FileFlagStore.open({}),
      recorder,
      queue,
      logger: silentLogger,
      admin: { tokens: [] },
      audit,
    });
    const gone = await closed.listen({ host: '127.0.0.1', port: 0 });
    await closed.close();
    await expect(cli({ action: 'list', url: gone, json: false })).rejects.toMatchObject({
      code: 'ADMIN_API_UNREACHABLE',
      hint: expect.stringMatching(/--url/),
    });
  });
});
