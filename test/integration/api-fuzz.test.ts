import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedPipeline, startEmbeddedPipeline } from '../../cli/pipeline.js';
import { SqliteComparisonRecorder } from '../../compare/recorder.js';
import { ShadowQueue } from '../../compare/shadow-queue.js';
import { type OpenedLegacyDb, openLegacyDb } from '../../connectors/legacy/index.js';
import { encodeCursor } from '../../examples/bank/contract.js';
import { dropDatabase } from '../../examples/bank/db.js';
import bank from '../../examples/bank/migration.js';
import { loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { SqliteAuditLog } from '../../shadow-api/audit-log.js';
import { FileFlagStore } from '../../shadow-api/flag-store.js';
import type { FlagMode } from '../../shadow-api/flags.js';
import { buildServer } from '../../shadow-api/server.js';

/**
 * Seeded malformed requests against a real shadow API (listening on a socket, so Node's own
 * HTTP parser is part of it) over the bank definition, its legacy MariaDB database and the
 * embedded read models the pipeline built, in every serving mode. Whatever a client sends:
 * no 5xx, every 4xx a JSON body with a message, and nothing it sends is recorded as a
 * mismatch or an error, since those counts are what decide a migration's cut-over.
 * FUZZ_SEED=<n> replays or explores another seed; FUZZ_RUNS=<n> changes the runs per mode.
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_202);
const RUNS = Number(process.env.FUZZ_RUNS ?? 1200);
const TOKEN = 'fuzz-admin-token-0123456789';

const server = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const database = `t_fuzz_${process.pid}`;
const url = `mysql://cqrs:cqrs@127.0.0.1:3307/${database}`;
const dir = mkdtempSync(join(tmpdir(), 'cqrs-fuzz-'));

let pipeline: EmbeddedPipeline;
let legacy: OpenedLegacyDb;
let recorder: SqliteComparisonRecorder;
let queue: ShadowQueue;
let flags: FileFlagStore;
let audit: SqliteAuditLog;
let app: FastifyInstance;
let port: number;

beforeAll(async () => {
  console.log(`api-fuzz seed ${SEED} (replay with FUZZ_SEED=${SEED}), ${RUNS} requests per mode`);
  await bank.sample?.create({ url, scale: 'tiny', seed: 9, force: true, progress: () => undefined });
  const config = loadConfig({
    env: {},
    file: undefined,
    overrides: {
      legacy: { url },
      cdc: { serverId: 7000 + (process.pid % 900) },
      dataDir: join(dir, 'data'),
      projector: { pollIntervalMs: 20 },
    },
  });
  pipeline = await startEmbeddedPipeline({ config, migration: bank, logger: silentLogger });
  expect(await pipeline.waitForCatchUp(120_000)).toBe(true);
  legacy = openLegacyDb(url, { poolSize: 4 });
  recorder = new SqliteComparisonRecorder({ path: join(dir, 'compare.db') });
  queue = new ShadowQueue({ concurrency: 2, maxSize: 10_000 });
  flags = FileFlagStore.open({});
  audit = new SqliteAuditLog(':memory:');
  app = buildServer({
    migration: bank,
    legacy,
    readModels: pipeline.readModels,
    flags,
    recorder,
    queue,
    logger: silentLogger,
    freshness: pipeline.freshness,
    metrics: new Registry(),
    compare: { recheckDelayMs: 20, maxRechecks: 2 },
    admin: { tokens: [{ name: 'fuzz', token: TOKEN }] },
    audit,
  });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  port = Number(new URL(address).port);
});

afterAll(async () => {
  await app?.close();
  await queue?.close();
  recorder?.close();
  audit?.close();
  await legacy?.close();
  await pipeline?.stop();
  await dropDatabase(server, database).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
}

interface FuzzResponse {
  status: number;
  contentType: string;
  body: string;
}

/**
 * One request as written, on its own connection: the path goes on the wire byte for byte, and
 * a client error the server answers by closing the socket cannot break the next request.
 */
function send(r: FuzzRequest): Promise<FuzzResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...r.headers };
    if (r.body !== undefined) headers['content-length'] = Buffer.byteLength(r.body);
    const req = request(
      { host: '127.0.0.1', port, method: r.method, path: r.path, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (r.body !== undefined) req.write(r.body);
    req.end();
  });
}

/** Escapes what Node's client would refuse to put on the wire (spaces, controls, non-ASCII). */
const wireSafe = (path: string) =>
  path.replace(/[^\x21-\x7e]/gu, (ch) =>
    [...Buffer.from(ch, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );

const enc = (text: string) => encodeURIComponent(text);

const nastyNumbers = fc.constantFrom(
  '0x10',
  '1e3',
  ' 1',
  '1 ',
  '+1',
  '-0',
  '-1',
  '0',
  '01',
  '1.0',
  '1.',
  '.5',
  '99999999999999999999999',
  '9007199254740993',
  '9007199254740991',
  '1e309',
  'NaN',
  'Infinity',
  'null',
  'true',
  '[]',
  '{}',
  '\u0661', // Arabic-Indic one
  '\uff11', // full-width one
  '1\u200b', // zero-width space
  '\u0000',
  '',
  '%',
  '%zz',
  '%2e%2e',
  '..',
  '../../etc/passwd',
  'x'.repeat(4000),
);

const idText = fc.oneof(
  { weight: 4, arbitrary: nastyNumbers.map((t) => (/^%|^\.\./.test(t) ? t : enc(t))) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }).map(enc) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 12 }).map(enc) },
  { weight: 2, arbitrary: fc.integer({ min: -5, max: 400 }).map(String) },
  { weight: 1, arbitrary: fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String) },
);

const pad = (n: number, w: number) => String(Math.abs(n)).padStart(w, '0');
const datetimeText = fc.oneof(
  fc.constantFrom(
    '2024-13-45 25:61:61.000000',
    '2024-02-30 00:00:00.000000',
    '2023-02-29 12:00:00.000000',
    '2024-01-01 24:00:00.000000',
    '2024-04-31 10:00:00.000000',
    '0000-00-00 00:00:00.000000',
    '0000-01-01 00:00:00.000000',
    '9999-12-31 23:59:59.999999',
    '1970-01-01 00:00:00.000000',
    '2024-01-01T00:00:00Z',
    '2024-01-01 00:00:00',
    '2024-01-01 00:00:00.0000000',
    '2024-1-1 0:0:0.000000',
    '-001-01-01 00:00:00.000000',
    '\uff12\uff10\uff12\uff14-01-01 00:00:00.000000',
    "2024-01-01 00:00:00.000000' OR '1'='1",
    '',
  ),
  fc
    .tuple(
      fc.integer({ min: 0, max: 9999 }),
      fc.integer({ min: 0, max: 99 }),
      fc.integer({ min: 0, max: 99 }),
      fc.integer({ min: 0, max: 99 }),
      fc.integer({ min: 0, max: 99 }),
      fc.integer({ min: 0, max: 99 }),
      fc.integer({ min: 0, max: 999_999 }),
    )
    .map(
      ([y, mo, d, h, mi, s, f]) =>
        `${pad(y, 4)}-${pad(mo, 2)}-${pad(d, 2)} ${pad(h, 2)}:${pad(mi, 2)}:${pad(s, 2)}.${pad(f, 6)}`,
    ),
);

const cursorText = fc.oneof(
  datetimeText.chain((at) =>
    fc.oneof(fc.integer(), fc.double()).map((id) => Buffer.from(`${at}|${id}`).toString('base64url')),
  ),
  fc
    .tuple(datetimeText, fc.integer({ min: 1, max: 5000 }))
    .map(([postedAt, transactionId]) => encodeCursor({ postedAt, transactionId })),
  fc.string({ maxLength: 40 }),
  fc.json().map((j) => Buffer.from(j).toString('base64url')),
);

const queryValue = fc.oneof(nastyNumbers, datetimeText, cursorText, fc.string({ maxLength: 20 }));
const queryKey = fc.constantFrom(
  'limit',
  'from',
  'to',
  'cursor',
  'accountId',
  '__proto__',
  'constructor',
  '__proto__[limit]',
  'limit[]',
  'from[a]',
  'toString',
  '',
);
const queryString = fc.oneof(
  {
    weight: 5,
    arbitrary: fc
      .array(fc.tuple(queryKey, queryValue), { maxLength: 5 })
      .map((pairs) => pairs.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&')),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '&&&',
      '=',
      '==&=',
      '%',
      '%zz=1',
      'limit',
      'a=1;b=2',
      `q=${'x'.repeat(20_000)}`,
    ),
  },
);

const readRequest = fc
  .tuple(fc.constantFrom('summary', 'transactions'), idText, fc.option(queryString, { nil: undefined }))
  .map(
    ([endpoint, id, query]): FuzzRequest => ({
      method: 'GET',
      path: `/accounts/${id}/${endpoint}${query === undefined ? '' : `?${query}`}`,
      headers: {},
    }),
  );

/**
 * A real account's history with one parameter wrong in its own kind: the requests most likely
 * to slip past validation and reach both databases, which then disagree.
 */
const nearMiss = fc
  .tuple(
    fc.integer({ min: 1, max: 80 }),
    fc.oneof(
      datetimeText.map((v) => `from=${enc(v)}`),
      datetimeText.map((v) => `to=${enc(v)}`),
      cursorText.map((v) => `cursor=${enc(v)}`),
      nastyNumbers.map((v) => `limit=${enc(v)}`),
    ),
  )
  .map(
    ([id, query]): FuzzRequest => ({
      method: 'GET',
      path: `/accounts/${id}/transactions?${query}`,
      headers: {},
    }),
  );

const traversal = fc
  .constantFrom(
    '/accounts/1/summary/../../admin/flags',
    '/accounts/..%2f..%2fadmin%2fflags/summary',
    '/%2e%2e/%2e%2e/etc/passwd',
    '/../../../etc/passwd',
    '/accounts/%2e%2e/summary',
    '/admin/../accounts/1/summary',
    '/%61dmin/flags',
    '/admin%2fflags',
    '//admin/flags',
    '/accounts//summary',
    '/accounts/1/summary%00',
    '/accounts/1/summary#frag',
    `/${'a/'.repeat(3000)}`,
    `/accounts/1/transactions?limit=1&limit=2`,
    '/health/../admin/report',
    '/metrics?x=../../',
  )
  .chain((path) =>
    fc
      .constantFrom('GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH')
      .map((method): FuzzRequest => ({ method, path, headers: {} })),
  );

const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/xml',
  'application/jsonx',
  '',
);
const jsonBody = fc.oneof(
  fc.json({ maxDepth: 3 }),
  fc.json().map((j) => j.slice(0, Math.max(0, j.length - 1))),
  fc.constantFrom(
    '{"defaultMode":',
    '{"mode":"new","percent":1e999}',
    '{"mode":"canary"}',
    '{"mode":"canary","percent":-1}',
    '{"__proto__":{"mode":"new"}}',
    '{"constructor":{"prototype":{"mode":"new"}}}',
    '{"defaultMode":"shadow","endpoints":{"../../etc":{"mode":"new"}}}',
    '{"defaultMode":"shadow","endpoints":{"accounts.summary":{"mode":"new","extra":1}}}',
    'null',
    '[]',
    '"new"',
    '',
    '\ufeff{}',
  ),
  fc.string({ maxLength: 50 }),
);
const adminRequest = fc
  .tuple(
    fc.constantFrom(
      ['PUT', '/admin/flags'],
      ['PATCH', '/admin/flags/accounts.summary'],
      ['PATCH', '/admin/flags/accounts'],
      ['PATCH', `/admin/flags/${enc('../../etc/passwd')}`],
      ['PATCH', `/admin/flags/${'a'.repeat(3000)}`],
      ['PATCH', '/admin/flags/accounts.summary.extra'],
      ['GET', '/admin/report'],
      ['POST', '/admin/flags'],
      ['DELETE', '/admin/flags'],
    ),
    contentType,
    fc.oneof(
      { weight: 8, arbitrary: jsonBody },
      { weight: 1, arbitrary: fc.constant('x'.repeat(1_100_000)) },
    ),
    fc.constantFrom<'token' | 'none' | 'wrong'>('token', 'token', 'none', 'wrong'),
    fc.option(queryString, { nil: undefined }),
  )
  .map(([[method, path], type, body, auth, query]): FuzzRequest => {
    const headers: Record<string, string> = {};
    if (type !== '') headers['content-type'] = type;
    if (auth === 'token') headers.authorization = `Bearer ${TOKEN}`;
    if (auth === 'wrong') headers.authorization = `Bearer ${TOKEN.slice(0, -1)}x`;
    return {
      method,
      path: `${path}${query === undefined ? '' : `?${query}`}`,
      headers,
      ...(method === 'GET' || method === 'DELETE' ? {} : { body }),
    };
  });

const anyRequest = fc.oneof(
  { weight: 4, arbitrary: readRequest },
  { weight: 3, arbitrary: nearMiss },
  { weight: 1, arbitrary: traversal },
  { weight: 2, arbitrary: adminRequest },
);

function flagsFor(mode: FlagMode) {
  return { defaultMode: mode, endpoints: {} };
}

describe('API fuzz', () => {
  for (const [index, mode] of (['legacy', 'shadow', 'new'] as const).entries()) {
    it(`${mode} mode: no 5xx, every 4xx a JSON message, no mismatch or error recorded`, async () => {
      await flags.set(flagsFor(mode));
      const before = recorder.stats();
      const audited = audit.list({ limit: 1_000_000 }).length;
      let changes = 0;
      const statuses = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(anyRequest, async (r) => {
          const sent = { ...r, path: wireSafe(r.path) };
          const res = await send(sent);
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          // A valid flag change the generator happened to produce is undone, so the mode holds.
          if (res.status === 200 && r.method !== 'GET') {
            changes++;
            await flags.set(flagsFor(mode));
          }
          const what = `${sent.method} ${sent.path.slice(0, 200)} → ${res.status} ${res.body.slice(0, 300)}`;
          if (res.status >= 500) throw new Error(`server error: ${what}`);
          if (res.status >= 400) {
            if (!/^application\/json/.test(res.contentType)) throw new Error(`4xx without JSON: ${what}`);
            const body = JSON.parse(res.body) as { message?: unknown };
            if (typeof body.message !== 'string' || body.message === '')
              throw new Error(`4xx without a message: ${what}`);
          }
        }),
        { seed: SEED + index, numRuns: RUNS, endOnFailure: true },
      );
      await queue.onIdle();
      const after = recorder.stats();
      const count = (stats: typeof after, outcome: 'mismatch' | 'error' | 'missing' | 'match') =>
        stats.endpoints.reduce((n, e) => n + e.byOutcome[outcome], 0);
      console.log(
        `${mode}: statuses ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}, comparisons ${count(after, 'match') - count(before, 'match')} match`,
      );
      expect([...statuses.keys()].filter((s) => s >= 500)).toEqual([]);
      for (const outcome of ['mismatch', 'missing', 'error'] as const)
        expect(count(after, outcome) - count(before, outcome), outcome).toBe(0);
      expect(flags.get()).toEqual(flagsFor(mode));
      // Every accepted change, and only those, is in the audit log.
      expect(audit.list({ limit: 1_000_000 }).length - audited).toBe(changes);
    });
  }
});
