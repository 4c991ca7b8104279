import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { InjectOptions } from 'fastify';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ComparisonRecord, FreshnessPort } from '../../compare/ports.js';
import { SqliteComparisonRecorder } from '../../compare/recorder.js';
import type { Report } from '../../compare/report.js';
import { ShadowQueue } from '../../compare/shadow-queue.js';
import { defineEndpoint } from '../../definition/endpoints.js';
import { defineMigration, type Migration } from '../../definition/migration.js';
import {
  type AccountQueries,
  type AccountSummary,
  decodeCursor,
  type HistoryPage,
  type HistoryQuery,
  historyQuerySchema,
  nextCursorFor,
  type TransactionItem,
} from '../../examples/bank/contract.js';
import { bankTableRules } from '../../examples/bank/mapping.js';
import bank from '../../examples/bank/migration.js';
import { accountSummaryView, transactionHistoryView } from '../../examples/bank/read-models.js';
import { loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { maskValue } from '../../lib/masking.js';
import type { ComponentStatus } from '../../lib/supervisor.js';
import { RolloutController } from '../../rollout/controller.js';
import { type AuditEntry, type AuditLog, SqliteAuditLog } from '../../shadow-api/audit-log.js';
import { FileFlagStore } from '../../shadow-api/flag-store.js';
import { type FlagDocumentInput, inCanary } from '../../shadow-api/flags.js';
import { buildServer } from '../../shadow-api/server.js';

/**
 * In-memory implementations of our own AccountQueries port, one per side, so each test can
 * make the sides agree or disagree exactly where it wants. The real implementations are
 * exercised end to end elsewhere.
 */
class MemoryBank implements AccountQueries {
  readonly summaries = new Map<number, AccountSummary>();
  readonly postings = new Map<number, TransactionItem[]>();
  calls = 0;
  failWith: Error | null = null;
  /** While set, every query waits for it: lets a test hold a side mid-query. */
  gate: Promise<void> | null = null;

  async accountSummary(accountId: number): Promise<AccountSummary | null> {
    await this.enter();
    return structuredClone(this.summaries.get(accountId) ?? null);
  }

  async transactionHistory(q: HistoryQuery): Promise<HistoryPage> {
    await this.enter();
    const after = q.cursor === undefined ? null : decodeCursor(q.cursor);
    const items = (this.postings.get(q.accountId) ?? [])
      .filter(
        (t) => (q.from === undefined || t.postedAt >= q.from) && (q.to === undefined || t.postedAt < q.to),
      )
      .filter(
        (t) =>
          after === null ||
          t.postedAt < after.postedAt ||
          (t.postedAt === after.postedAt && t.transactionId < after.transactionId),
      )
      .slice(0, q.limit);
    return {
      accountId: q.accountId,
      items: structuredClone(items),
      nextCursor: nextCursorFor(items, q.limit),
    };
  }

  private async enter(): Promise<void> {
    this.calls++;
    if (this.gate) await this.gate;
    if (this.failWith) throw this.failWith;
  }
}

function posting(accountId: number, n: number): TransactionItem {
  return {
    transactionId: accountId * 1000 + n,
    postedAt: `2024-05-${String(28 - n).padStart(2, '0')} 09:30:00.000000`,
    direction: n % 2 === 0 ? 'credit' : 'debit',
    amount: `${n}.2500`,
    currency: 'EUR',
    balanceAfter: `${100 + n}.0000`,
    description: `posting ${n}`,
    merchant: n % 3 === 0 ? null : { merchantId: n, name: `Merchant ${n}` },
    category: n % 3 === 0 ? null : 'groceries',
  };
}

function summaryOf(accountId: number, recent: TransactionItem[]): AccountSummary {
  return {
    accountId,
    accountNumber: `DE0000${accountId}`,
    status: 'active',
    currency: 'EUR',
    openedAt: '2020-01-01 00:00:00.000000',
    owner: { customerId: accountId + 500, name: `Owner ${accountId}`, email: `o${accountId}@example.test` },
    product: { code: 'CHK', name: 'Checking', kind: 'checking' },
    branch: { code: 'B1', name: 'Main' },
    balance: { available: '150.0000', ledger: '150.0000', updatedAt: '2024-05-27 09:30:00.000000' },
    cards: { active: 1, total: 2 },
    loans: { active: 0, outstanding: '0.0000' },
    recentTransactions: recent.slice(0, 10),
  };
}

const ACCOUNTS = Array.from({ length: 40 }, (_, i) => i + 1);

function seed(bank: MemoryBank): void {
  for (const id of ACCOUNTS) {
    const items = Array.from({ length: 12 }, (_, n) => posting(id, n + 1));
    bank.postings.set(id, items);
    bank.summaries.set(id, summaryOf(id, items));
  }
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 't_shadow_api_'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const opened: { close(): Promise<unknown> | unknown }[] = [];
afterEach(async () => {
  for (const thing of opened.splice(0).reverse()) await thing.close();
});

/**
 * The bank's two endpoints, each side answered by one of the in-memory banks: the server sees
 * a definition like any user's, and each test steers the answers.
 */
function migrationOver(legacy: AccountQueries, readModel: AccountQueries): Migration {
  return defineMigration({
    name: 'api-test',
    capture: { tables: bankTableRules },
    readModels: [accountSummaryView, transactionHistoryView],
    domains: {
      accounts: {
        endpoints: {
          summary: defineEndpoint({
            route: '/accounts/:accountId/summary',
            params: z.object({ accountId: historyQuerySchema.shape.accountId }),
            legacy: ({ params }) => legacy.accountSummary(params.accountId),
            readModel: ({ params }) => readModel.accountSummary(params.accountId),
            sensitive: ['owner.name', 'owner.email', 'recentTransactions[*].description'],
            compare: {
              ignore: ['balance.updatedAt'],
              tolerance: { 'recentTransactions.*.balanceAfter': 0.005 },
            },
          }),
          history: defineEndpoint({
            route: '/accounts/:accountId/transactions',
            params: historyQuerySchema,
            legacy: ({ params }) => legacy.transactionHistory(params),
            readModel: ({ params }) => readModel.transactionHistory(params),
          }),
        },
      },
    },
  });
}

/** The endpoints above never reach a database. */
const noDatabase = {
  dialect: 'mysql' as const,
  query: () => Promise.reject(new Error('no database in this test')),
  snapshot: () => Promise.reject(new Error('no database in this test')),
};

const ADMIN_TOKEN = 'test-admin-token-0123456789';

let seq = 0;
function setup(
  initial: FlagDocumentInput,
  options: { freshness?: FreshnessPort; maxRechecks?: number; audit?: AuditLog } = {},
) {
  const legacy = new MemoryBank();
  const readModel = new MemoryBank();
  seed(legacy);
  seed(readModel);
  const migration = migrationOver(legacy, readModel);
  const recorder = new SqliteComparisonRecorder({
    path: join(dir, `compare-${++seq}.sqlite`),
    sensitive: migration.sensitiveFields,
  });
  const queue = new ShadowQueue({ concurrency: 2, maxSize: 100 });
  const flags = FileFlagStore.open({ initial });
  const registry = new Registry();
  const audit = options.audit ?? new SqliteAuditLog(':memory:');
  const app = buildServer({
    migration,
    legacy: noDatabase,
    readModels: {},
    flags,
    recorder,
    queue,
    logger: silentLogger,
    metrics: registry,
    ...(options.freshness ? { freshness: options.freshness } : {}),
    compare: { recheckDelayMs: 5, maxRechecks: options.maxRechecks ?? 3 },
    admin: { tokens: [{ name: 'ops', token: ADMIN_TOKEN }] },
    audit,
  });
  opened.push(recorder, app);
  const get = (url: string) => app.inject({ method: 'GET', url });
  /** An admin request carrying the token. */
  const admin = (request: InjectOptions) =>
    app.inject({ ...request, headers: { ...request.headers, authorization: `Bearer ${ADMIN_TOKEN}` } });
  return { app, legacy, readModel, recorder, queue, flags, registry, get, admin, audit };
}

const caughtUp: FreshnessPort = { isCaughtUp: async () => true };

describe('shadow API serving by flag mode', () => {
  it('legacy mode serves legacy and never touches the read model', async () => {
    const s = setup({ defaultMode: 'legacy' });
    const summary = await s.get('/accounts/3/summary');
    const history = await s.get('/accounts/3/transactions?limit=5');
    await s.queue.onIdle();
    expect(summary.statusCode).toBe(200);
    expect(summary.headers['x-served-by']).toBe('legacy');
    expect(summary.headers['x-flag-mode']).toBe('legacy');
    expect(summary.json()).toEqual(s.legacy.summaries.get(3));
    expect(history.json<HistoryPage>().items).toHaveLength(5);
    expect(s.legacy.calls).toBe(2);
    expect(s.readModel.calls).toBe(0);
    expect(s.recorder.list()).toEqual([]);
  });

  it('shadow mode serves legacy and records a match', async () => {
    const s = setup({ endpoints: { accounts: { mode: 'shadow' } } }, { freshness: caughtUp });
    const res = await s.get('/accounts/5/summary');
    expect(res.headers['x-served-by']).toBe('legacy');
    expect(res.headers['x-flag-mode']).toBe('shadow');
    await s.queue.onIdle();
    expect(s.readModel.calls).toBe(1);
    const [record] = s.recorder.list();
    expect(record).toMatchObject({
      endpoint: 'accounts.summary',
      subject: '5',
      requestKey: 'accountId=5',
      outcome: 'match',
      servedBy: 'legacy',
      mode: 'shadow',
      attempts: 1,
      diffCount: 0,
    });
    expect(record?.legacyMs).toBeGreaterThanOrEqual(0);
    expect(record?.readModelMs).toBeGreaterThanOrEqual(0);
  });

  it('shadow mode records a mismatch with the exact path that differs', async () => {
    const s = setup({ defaultMode: 'shadow' }, { freshness: caughtUp });
    s.readModel.summaries.get(7)!.recentTransactions[3]!.amount = '4.2600';
    s.readModel.postings.get(8)![1]!.balanceAfter = '102.00';
    const summary = await s.get('/accounts/7/summary');
    const history = await s.get('/accounts/8/transactions?limit=3');
    expect(summary.json()).toEqual(s.legacy.summaries.get(7));
    expect(history.headers['x-served-by']).toBe('legacy');
    await s.queue.onIdle();
    const bySummary = s.recorder.list({ endpoint: 'accounts.summary' });
    expect(bySummary).toHaveLength(1);
    expect(bySummary[0]).toMatchObject({ outcome: 'mismatch', diffCount: 1 });
    expect(bySummary[0]?.differences).toEqual([
      { path: 'recentTransactions[3].amount', kind: 'changed', legacy: '4.2500', readModel: '4.2600' },
    ]);
    const byHistory = s.recorder.list({ endpoint: 'accounts.history' });
    expect(byHistory[0]).toMatchObject({
      outcome: 'mismatch',
      requestKey: 'accountId=8&limit=3',
      differences: [
        { path: 'items[1].balanceAfter', kind: 'changed', legacy: '102.0000', readModel: '102.00' },
      ],
    });
    // The served answer may be stale, so a caught-up mismatch is confirmed once with fresh reads.
    expect(byHistory[0]?.attempts).toBe(2);
  });

  it('compares real values but stores the sensitive ones masked', async () => {
    const s = setup({ defaultMode: 'shadow' }, { freshness: caughtUp });
    s.readModel.summaries.get(7)!.owner.email = 'changed@example.test';
    s.readModel.summaries.get(7)!.recentTransactions[2]!.description = 'rent for Ada';
    s.readModel.summaries.delete(8);
    await s.get('/accounts/7/summary');
    await s.get('/accounts/8/summary');
    await s.queue.onIdle();
    // Diffs finish off the serving thread, so records need not land in request order.
    const records = s.recorder.list({ endpoint: 'accounts.summary' });
    const changed = records.find((r) => r.requestKey === 'accountId=7');
    const missing = records.find((r) => r.requestKey === 'accountId=8');
    const hash = (v: string) => String(maskValue(v));
    expect(changed).toMatchObject({ outcome: 'mismatch', diffCount: 2 });
    expect(changed?.differences).toEqual([
      {
        path: 'owner.email',
        kind: 'changed',
        legacy: hash('o7@example.test'),
        readModel: hash('changed@example.test'),
      },
      {
        path: 'recentTransactions[2].description',
        kind: 'changed',
        legacy: hash('posting 3'),
        readModel: hash('rent for Ada'),
      },
    ]);
    // A whole missing answer is masked first, then cut to the stored preview.
    expect(missing).toMatchObject({ outcome: 'missing' });
    const preview = String(missing?.differences[0]?.legacy);
    expect(preview).toContain(
      `"owner":{"customerId":508,"name":"${hash('Owner 8')}","email":"${hash('o8@example.test')}"}`,
    );
    expect(preview).toContain('"accountNumber":"DE00008"');
    expect(JSON.stringify(s.recorder.list())).not.toMatch(/@example\.test|Owner 8|posting 3/);
  });

  it('canary serves the slice of accounts from the read model, sticky by account id', async () => {
    const s = setup(
      { endpoints: { 'accounts.summary': { mode: 'canary', percent: 50 } } },
      { freshness: caughtUp },
    );
    const served = new Map<number, string>();
    for (const id of ACCOUNTS) {
      const res = await s.get(`/accounts/${id}/summary`);
      expect(res.statusCode).toBe(200);
      expect(res.headers['x-flag-mode']).toBe('canary');
      served.set(id, String(res.headers['x-served-by']));
    }
    for (const id of ACCOUNTS)
      expect(served.get(id)).toBe(inCanary(String(id), 50) ? 'read-model' : 'legacy');
    const fromReadModel = [...served.values()].filter((v) => v === 'read-model').length;
    expect(fromReadModel).toBeGreaterThan(0);
    expect(fromReadModel).toBeLessThan(ACCOUNTS.length);
    // Asked again, every account lands on the same side.
    for (const id of ACCOUNTS.slice(0, 10)) {
      expect((await s.get(`/accounts/${id}/summary`)).headers['x-served-by']).toBe(served.get(id));
    }
    await s.queue.onIdle();
    const records = s.recorder.list({ limit: 1000 });
    expect(records).toHaveLength(ACCOUNTS.length + 10);
    expect(records.every((r) => r.outcome === 'match')).toBe(true);
    expect(records.filter((r) => r.servedBy === 'readModel')).toHaveLength(
      fromReadModel + ACCOUNTS.slice(0, 10).filter((id) => inCanary(String(id), 50)).length,
    );
  });

  it('new mode serves the read model without comparing', async () => {
    const s = setup({ defaultMode: 'new' });
    s.readModel.summaries.get(2)!.status = 'frozen';
    const res = await s.get('/accounts/2/summary');
    await s.queue.onIdle();
    expect(res.headers['x-served-by']).toBe('read-model');
    expect(res.json<AccountSummary>().status).toBe('frozen');
    expect(s.legacy.calls).toBe(0);
    expect(s.recorder.list()).toEqual([]);
  });

  it('falls back to legacy when the read model throws, and records the error', async () => {
    const s = setup({ defaultMode: 'new' });
    s.readModel.failWith = new Error('SQLITE_BUSY: database is locked');
    const res = await s.get('/accounts/4/summary');
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-served-by']).toBe('legacy');
    expect(res.headers['x-fallback']).toBe('read-model-error');
    expect(res.json()).toEqual(s.legacy.summaries.get(4));
    expect(s.recorder.list()).toMatchObject([
      { outcome: 'error', error: 'read model: SQLITE_BUSY: database is locked', servedBy: 'legacy' },
    ]);
  });

  it('answers 503 with the cause when legacy fails', async () => {
    const s = setup({ defaultMode: 'shadow' });
    s.legacy.failWith = new Error('connect ECONNREFUSED');
    const res = await s.get('/accounts/4/summary');
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({
      error: 'LEGACY_QUERY_FAILED',
      message: 'legacy query of accounts.summary failed: connect ECONNREFUSED',
    });
  });

  it('does not hold the response while the comparison waits', async () => {
    const s = setup({ defaultMode: 'shadow' }, { freshness: caughtUp });
    let open!: () => void;
    s.readModel.gate = new Promise((resolve) => {
      open = resolve;
    });
    const res = await s.get('/accounts/6/summary');
    expect(res.statusCode).toBe(200);
    expect(s.recorder.list()).toEqual([]);
    open();
    await s.queue.onIdle();
    expect(s.recorder.list()).toMatchObject([{ outcome: 'match' }]);
  });
});

describe('forcing the mode of one request (x-cqrs-mode)', () => {
  it('lets an admin pick who answers one read, whatever the flags say, and changes no flag', async () => {
    const s = setup({ defaultMode: 'legacy' }, { freshness: caughtUp });
    s.readModel.summaries.get(3)!.status = 'frozen';
    const forced = (mode: string) =>
      s.admin({ method: 'GET', url: '/accounts/3/summary', headers: { 'x-cqrs-mode': mode } });

    const fromNew = await forced('new');
    expect(fromNew.statusCode).toBe(200);
    expect(fromNew.headers['x-served-by']).toBe('read-model');
    expect(fromNew.headers['x-flag-mode']).toBe('new');
    expect(fromNew.json<AccountSummary>().status).toBe('frozen');
    expect(s.legacy.calls).toBe(0);

    // Shadow: legacy answers and the read model is compared, as the mode does for every request.
    const shadowed = await forced('shadow');
    expect(shadowed.headers['x-served-by']).toBe('legacy');
    expect(shadowed.headers['x-flag-mode']).toBe('shadow');
    await s.queue.onIdle();
    expect(s.recorder.list()).toMatchObject([
      { endpoint: 'accounts.summary', mode: 'shadow', outcome: 'mismatch', diffCount: 1 },
    ]);

    await s.flags.set({ defaultMode: 'new' });
    const fromLegacy = await forced('legacy');
    expect(fromLegacy.headers['x-served-by']).toBe('legacy');
    expect(fromLegacy.json<AccountSummary>().status).toBe('active');
    // The header is for its request only: the next one goes by the flags.
    expect((await s.get('/accounts/3/summary')).headers['x-served-by']).toBe('read-model');
    expect(s.flags.get()).toEqual({ defaultMode: 'new', endpoints: {} });
    expect(s.audit.list({ limit: 100 })).toEqual([]);
  });

  it('refuses it without the admin token (403) and refuses an unknown mode (400), before any query', async () => {
    const s = setup({ defaultMode: 'legacy' });
    for (const authorization of [undefined, 'Bearer wrong-token-0123456789', ADMIN_TOKEN]) {
      const res = await s.app.inject({
        method: 'GET',
        url: '/accounts/1/transactions?limit=2',
        headers: { 'x-cqrs-mode': 'new', ...(authorization ? { authorization } : {}) },
      });
      expect(res.statusCode, String(authorization)).toBe(403);
      expect(res.json()).toEqual({
        error: 'FORBIDDEN',
        message: expect.stringMatching(
          /^x-cqrs-mode needs "Authorization: Bearer <token>" with an admin token/,
        ),
      });
    }
    for (const mode of ['canary', 'read-model', 'NEW', '', 'new, legacy']) {
      const res = await s.admin({
        method: 'GET',
        url: '/accounts/1/summary',
        headers: { 'x-cqrs-mode': mode },
      });
      expect(res.statusCode, mode).toBe(400);
      expect(res.json(), mode).toMatchObject({
        error: 'BAD_REQUEST',
        message: expect.stringMatching(/^invalid request header: x-cqrs-mode: /),
      });
    }
    expect(s.legacy.calls + s.readModel.calls).toBe(0);
  });
});

describe('flags at run time', () => {
  it('PATCH takes effect on the next request', async () => {
    const s = setup({ defaultMode: 'legacy' });
    expect((await s.get('/accounts/1/summary')).headers['x-served-by']).toBe('legacy');
    const patched = await s.admin({
      method: 'PATCH',
      url: '/admin/flags/accounts.summary',
      payload: { mode: 'new' },
    });
    expect(patched.statusCode).toBe(200);
    expect(patched.json()).toEqual({
      defaultMode: 'legacy',
      endpoints: { 'accounts.summary': { mode: 'new' } },
    });
    expect((await s.get('/accounts/1/summary')).headers['x-served-by']).toBe('read-model');
    expect((await s.get('/accounts/1/transactions')).headers['x-served-by']).toBe('legacy');

    await s.admin({
      method: 'PATCH',
      url: '/admin/flags/accounts',
      payload: { mode: 'canary', percent: 100 },
    });
    expect((await s.get('/accounts/1/transactions')).headers['x-served-by']).toBe('read-model');
    expect((await s.admin({ method: 'GET', url: '/admin/flags' })).json()).toEqual(s.flags.get());
  });

  it('PUT replaces the whole document; invalid documents and patches get 400 with the issues', async () => {
    const s = setup({ defaultMode: 'legacy' });
    const put = await s.admin({
      method: 'PUT',
      url: '/admin/flags',
      payload: { defaultMode: 'shadow', endpoints: { 'accounts.history': { mode: 'new' } } },
    });
    expect(put.statusCode).toBe(200);
    expect(s.flags.get().defaultMode).toBe('shadow');

    const badPut = await s.admin({
      method: 'PUT',
      url: '/admin/flags',
      payload: { defaultMode: 'sometimes', endpoints: { 'accounts.summary': { mode: 'canary' } } },
    });
    expect(badPut.statusCode).toBe(400);
    expect(badPut.json().error).toBe('BAD_REQUEST');
    expect(badPut.json().issues.map((i: { path: string }) => i.path)).toEqual([
      'defaultMode',
      'endpoints.accounts.summary.percent',
    ]);

    const unknownKey = await s.admin({
      method: 'PATCH',
      url: '/admin/flags/accounts.sumary',
      payload: { mode: 'new' },
    });
    expect(unknownKey.statusCode).toBe(400);
    expect(unknownKey.json().message).toContain('accounts.sumary');

    const badPercent = await s.admin({
      method: 'PATCH',
      url: '/admin/flags/accounts.summary',
      payload: { mode: 'canary', percent: 140 },
    });
    expect(badPercent.statusCode).toBe(400);
    expect(badPercent.json().message).toMatch(/percent/);

    const notJson = await s.admin({
      method: 'PUT',
      url: '/admin/flags',
      headers: { 'content-type': 'application/json' },
      payload: '{"defaultMode":',
    });
    expect(notJson.statusCode).toBe(400);
    // None of the rejected changes reached the store.
    expect(s.flags.get()).toEqual({
      defaultMode: 'shadow',
      endpoints: { 'accounts.history': { mode: 'new' } },
    });
  });

  it('persists to a file, survives a restart and reloads an edited file', async () => {
    const file = join(dir, `flags-${++seq}.json`);
    const first = FileFlagStore.open({ file, initial: { defaultMode: 'legacy' } });
    const changes: string[] = [];
    first.on('change', (c) => changes.push(`${c.source}:${c.current.endpoints['accounts.summary']?.mode}`));
    await first.patch('accounts.summary', { mode: 'canary', percent: 10 });
    expect(changes).toEqual(['patch:canary']);

    const reopened = FileFlagStore.open({ file, initial: { defaultMode: 'new' } });
    expect(reopened.get()).toEqual({
      defaultMode: 'legacy',
      endpoints: { 'accounts.summary': { mode: 'canary', percent: 10 } },
    });

    writeFileSync(file, JSON.stringify({ defaultMode: 'shadow', endpoints: {} }));
    expect(first.reload().defaultMode).toBe('shadow');
    expect(changes).toEqual(['patch:canary', 'reload:undefined']);

    writeFileSync(file, JSON.stringify({ defaultMode: 'shadow', endpoints: { x: { mode: 'canary' } } }));
    expect(() => first.reload()).toThrow(/x\.percent: mode "canary" needs a percent/);
    expect(first.get().defaultMode).toBe('shadow');
    expect(JSON.parse(readFileSync(file, 'utf8')).endpoints.x).toEqual({ mode: 'canary' });
  });
});

describe('admin authentication', () => {
  it('needs the token on /admin/* and /metrics, never on reads or /health, and changes nothing without it', async () => {
    const s = setup({ defaultMode: 'legacy' });
    const refused = [
      { method: 'GET' as const, url: '/admin/flags' },
      { method: 'GET' as const, url: '/admin/report' },
      { method: 'GET' as const, url: '/admin/overview' },
      { method: 'GET' as const, url: '/metrics' },
      { method: 'PATCH' as const, url: '/admin/flags/accounts.summary', payload: { mode: 'new' } },
      { method: 'PUT' as const, url: '/admin/flags', payload: { defaultMode: 'new' } },
    ];
    for (const request of refused) {
      for (const authorization of [
        undefined,
        'Bearer wrong-token-0123456789',
        `Basic ${ADMIN_TOKEN}`,
        ADMIN_TOKEN,
      ]) {
        const res = await s.app.inject({ ...request, headers: authorization ? { authorization } : {} });
        expect(res.statusCode, `${request.method} ${request.url} with ${authorization}`).toBe(401);
        expect(res.json().error).toBe('UNAUTHORIZED');
        expect(res.json().message).toMatch(/token/);
        expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
      }
    }
    // Fastify's HEAD twin of a GET admin route carries the route's guard too.
    for (const url of ['/admin/flags', '/metrics']) {
      const head = await s.app.inject({ method: 'HEAD', url });
      expect(head.statusCode, `HEAD ${url}`).toBe(401);
      expect(head.headers['www-authenticate']).toMatch(/^Bearer/);
    }
    // Fastify routes a percent-encoded spelling of an admin path like the plain one: guarded too.
    for (const url of ['/%61dmin/flags', '/admin/./flags', '/admin/flags?x=1']) {
      expect((await s.app.inject({ method: 'GET', url })).statusCode, url).toBe(401);
    }
    expect(s.flags.get()).toEqual({ defaultMode: 'legacy', endpoints: {} });
    expect((await s.get('/accounts/1/summary')).statusCode).toBe(200);
    expect((await s.get('/health')).statusCode).toBe(200);
    expect((await s.admin({ method: 'GET', url: '/admin/flags' })).statusCode).toBe(200);
    expect((await s.admin({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
  });

  it('leaves admin routes open when no token is configured', async () => {
    const legacy = new MemoryBank();
    seed(legacy);
    const recorder = new SqliteComparisonRecorder({ path: ':memory:' });
    const queue = new ShadowQueue({ concurrency: 1, maxSize: 10 });
    const app = buildServer({
      migration: migrationOver(legacy, legacy),
      legacy: noDatabase,
      readModels: {},
      flags: FileFlagStore.open({}),
      recorder,
      queue,
      logger: silentLogger,
      admin: { tokens: [] },
      audit: new SqliteAuditLog(':memory:'),
    });
    opened.push(recorder, app);
    const res = await app.inject({
      method: 'PATCH',
      url: '/admin/flags/accounts',
      payload: { mode: 'shadow' },
    });
    expect(res.statusCode).toBe(200);
    // Forcing the mode of a read is an admin's too, so it is open as well.
    const forced = await app.inject({
      method: 'GET',
      url: '/accounts/1/summary',
      headers: { 'x-cqrs-mode': 'new' },
    });
    expect(forced.statusCode).toBe(200);
    expect(forced.headers['x-served-by']).toBe('read-model');
  });
});

describe('dashboard', () => {
  it('serves its page without a token but nothing with data, under a policy that loads only its own files', async () => {
    const s = setup({ defaultMode: 'legacy' });
    const redirect = await s.get('/admin');
    expect(redirect.statusCode).toBe(308);
    expect(redirect.headers.location).toBe('/admin/');
    for (const [url, type] of [
      ['/admin/', 'text/html'],
      ['/admin/dashboard.js', 'text/javascript'],
      ['/admin/dashboard.css', 'text/css'],
    ] as const) {
      const res = await s.get(url);
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type']).toContain(type);
      expect(res.headers['content-security-policy']).toMatch(/default-src 'none'; script-src 'self'/);
    }
    expect((await s.get('/admin/')).body).toContain('<script src="dashboard.js" defer></script>');
    expect((await s.get('/admin/overview')).statusCode).toBe(401);
    expect((await s.get('/admin/index.html')).statusCode).toBe(404);
  });

  it('aggregates flags, comparisons over time, differing paths with masked samples, and the newest audit entries', async () => {
    const s = setup({ defaultMode: 'shadow' }, { freshness: caughtUp });
    s.readModel.summaries.get(7)!.owner.email = 'changed@example.test';
    s.readModel.summaries.get(7)!.status = 'frozen';
    for (const id of [5, 6, 7]) await s.get(`/accounts/${id}/summary`);
    await s.queue.onIdle();
    await s.admin({ method: 'PATCH', url: '/admin/flags/accounts.history', payload: { mode: 'legacy' } });
    await s.admin({ method: 'PATCH', url: '/admin/flags/accounts.history', payload: { mode: 'new' } });

    const res = await s.admin({
      method: 'GET',
      url: '/admin/overview?windowSeconds=600&buckets=10&samples=1',
    });
    expect(res.statusCode).toBe(200);
    const o = res.json();
    expect(o).toMatchObject({ windowSeconds: 600, bucketSeconds: 60, rollout: null });
    expect(o.health).toMatchObject({ ready: true, lagSeconds: null, deadLetters: null });
    const [domain] = o.domains;
    expect(domain.domain).toBe('accounts');
    const summary = domain.endpoints.find((e: { key: string }) => e.key === 'accounts.summary');
    const history = domain.endpoints.find((e: { key: string }) => e.key === 'accounts.history');
    expect(summary).toMatchObject({
      route: '/accounts/:accountId/summary',
      flag: { mode: 'shadow' },
      flagFrom: 'default',
      byOutcome: { match: 2, mismatch: 1, missing: 0, lag: 0, error: 0 },
      matchRate: 2 / 3,
    });
    expect(history).toMatchObject({ flag: { mode: 'new' }, flagFrom: 'endpoint', matchRate: null });
    expect(summary.paths.map((p: { path: string; count: number }) => [p.path, p.count])).toEqual([
      ['owner.email', 1],
      ['status', 1],
    ]);
    expect(summary.samples).toHaveLength(1);
    expect(summary.samples[0]).toMatchObject({
      requestKey: 'accountId=7',
      outcome: 'mismatch',
      diffCount: 2,
    });
    expect(summary.samples[0].differences).toEqual(
      expect.arrayContaining([
        { path: 'status', kind: 'changed', legacy: 'active', readModel: 'frozen' },
        {
          path: 'owner.email',
          kind: 'changed',
          legacy: maskValue('o7@example.test'),
          readModel: maskValue('changed@example.test'),
        },
      ]),
    );
    expect(res.body).not.toContain('@example.test');
    // Ten buckets, the comparisons in the newest; the older ones empty.
    expect(summary.timeline).toHaveLength(10);
    expect(summary.timeline.at(-1)).toMatchObject({ decided: 3, matched: 2, matchRate: 2 / 3 });
    expect(
      summary.timeline.slice(0, 9).every((p: { matchRate: number | null }) => p.matchRate === null),
    ).toBe(true);
    expect(Date.parse(summary.timeline[1].start) - Date.parse(summary.timeline[0].start)).toBe(60_000);
    // Newest first, each with what it changed to.
    expect(o.audit.map((a: { action: string; summary: string }) => `${a.action} ${a.summary}`)).toEqual([
      'flags.patch → new',
      'flags.patch → legacy',
    ]);
    expect(o.audit[0]).toMatchObject({ actor: 'ops', target: 'accounts.history' });
    const limited = await s.admin({ method: 'GET', url: '/admin/overview?audit=1' });
    expect(limited.json().audit).toHaveLength(1);
  });

  it('answers 400 naming the bad overview parameter', async () => {
    const s = setup({ defaultMode: 'legacy' });
    for (const [query, path] of [
      ['windowSeconds=5', 'windowSeconds'],
      ['buckets=abc', 'buckets'],
      ['buckets=500', 'buckets'],
      ['samples=-1', 'samples'],
      ['domain=accounts', ''],
    ] as const) {
      const res = await s.admin({ method: 'GET', url: `/admin/overview?${query}` });
      expect(res.statusCode, query).toBe(400);
      expect(res.json().error).toBe('BAD_REQUEST');
      if (path !== '') expect(res.json().issues[0].path, query).toBe(path);
      else expect(res.json().message).toContain('domain');
    }
  });
});

describe('audit log of flag changes', () => {
  it('records actor, time, before, after and reason of every accepted change, and nothing else', async () => {
    const s = setup({ defaultMode: 'legacy' });
    const started = new Date().toISOString();
    const patched = await s.admin({
      method: 'PATCH',
      url: '/admin/flags/accounts.summary',
      headers: { 'x-cqrs-actor': 'alice', 'x-cqrs-reason': 'INC-42 canary' },
      payload: { mode: 'canary', percent: 5 },
    });
    expect(patched.statusCode).toBe(200);
    await s.admin({ method: 'PUT', url: '/admin/flags', payload: { defaultMode: 'shadow' } });
    // Refused changes leave no entry: bad body, unknown key, no token.
    await s.admin({ method: 'PATCH', url: '/admin/flags/accounts.summary', payload: { mode: 'sometimes' } });
    await s.admin({ method: 'PATCH', url: '/admin/flags/nope.summary', payload: { mode: 'new' } });
    await s.app.inject({ method: 'PUT', url: '/admin/flags', payload: { defaultMode: 'new' } });

    const res = await s.admin({ method: 'GET', url: '/admin/audit' });
    expect(res.statusCode).toBe(200);
    const entries = res.json<AuditEntry[]>();
    expect(entries).toMatchObject([
      {
        actor: 'ops (alice)',
        action: 'flags.patch',
        target: 'accounts.summary',
        reason: 'INC-42 canary',
        before: { defaultMode: 'legacy', endpoints: {} },
        after: { defaultMode: 'legacy', endpoints: { 'accounts.summary': { mode: 'canary', percent: 5 } } },
      },
      {
        actor: 'ops',
        action: 'flags.set',
        target: null,
        reason: null,
        after: { defaultMode: 'shadow', endpoints: {} },
      },
    ]);
    expect((entries[0]?.at ?? '') >= started).toBe(true);
    const later = new Date(Date.now() + 60_000).toISOString();
    expect((await s.admin({ method: 'GET', url: `/admin/audit?since=${later}` })).json()).toEqual([]);
    expect((await s.admin({ method: 'GET', url: '/admin/audit?limit=1' })).json()).toHaveLength(1);
    expect((await s.admin({ method: 'GET', url: '/admin/audit?limit=0' })).statusCode).toBe(400);
    expect((await s.app.inject({ method: 'GET', url: '/admin/audit' })).statusCode).toBe(401);
  });

  it('undoes a change the audit log cannot record', async () => {
    const broken: AuditLog = {
      append: () => {
        throw new Error('disk I/O error');
      },
      list: () => [],
    };
    const s = setup({ defaultMode: 'legacy' }, { audit: broken });
    const res = await s.admin({ method: 'PATCH', url: '/admin/flags/accounts', payload: { mode: 'new' } });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({
      error: 'AUDIT_UNAVAILABLE',
      message: expect.stringMatching(/undone/),
    });
    expect(s.flags.get()).toEqual({ defaultMode: 'legacy', endpoints: {} });
    expect((await s.get('/accounts/1/summary')).headers['x-served-by']).toBe('legacy');
  });

  it('refuses UPDATE and DELETE on the stored entries, and keeps them across reopen', () => {
    const path = join(dir, `audit-${++seq}.db`);
    const log = new SqliteAuditLog(path);
    const flags = { defaultMode: 'legacy' as const, endpoints: {} };
    log.append({ actor: 'ops', action: 'flags.set', target: null, before: flags, after: flags, reason: 'x' });
    log.close();
    const raw = new Database(path);
    try {
      expect(() => raw.prepare("UPDATE audit SET actor = 'mallory'").run()).toThrow(/append-only/);
      expect(() => raw.prepare('DELETE FROM audit').run()).toThrow(/append-only/);
    } finally {
      raw.close();
    }
    const reopened = new SqliteAuditLog(path);
    opened.push(reopened);
    expect(reopened.list()).toMatchObject([{ actor: 'ops', reason: 'x' }]);
  });
});

describe('request validation', () => {
  it('rejects bad input with 400 and a message naming the problem', async () => {
    const s = setup({ defaultMode: 'shadow' });
    const cases: [string, RegExp][] = [
      ['/accounts/abc/summary', /accountId/],
      ['/accounts/0/summary', /accountId/],
      ['/accounts/1/transactions?limit=1000', /limit: Too big/],
      ['/accounts/1/transactions?limit=0', /limit/],
      ['/accounts/1/transactions?from=yesterday', /from: expected DATETIME\(6\)/],
      ['/accounts/1/transactions?cursor=bm9wZQ', /cursor: cursor is not one this API issued/],
      ['/accounts/1/transactions?limit=x&to=2024', /to: expected DATETIME.*; limit: expected a whole number/],
      // Aliases of real accounts and impossible times are the client's mistakes, not mismatches.
      ['/accounts/0x10/summary', /accountId: expected a whole number/],
      ['/accounts/1e3/summary', /accountId: expected a whole number/],
      ['/accounts/%201/summary', /accountId: expected a whole number/],
      ['/accounts/1/transactions?from=2024-13-45%2025:61:61.000000', /from: not a real date and time/],
    ];
    for (const [url, message] of cases) {
      const res = await s.get(url);
      expect(res.statusCode, url).toBe(400);
      expect(res.json().error, url).toBe('BAD_REQUEST');
      expect(res.json().message, url).toMatch(message);
    }
    await s.queue.onIdle();
    expect(s.legacy.calls + s.readModel.calls).toBe(0);
  });

  it('answers 404 with a message for an unknown account and an unknown route', async () => {
    const s = setup({ defaultMode: 'shadow' }, { freshness: caughtUp });
    const res = await s.get('/accounts/999/summary');
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: 'NOT_FOUND', message: 'nothing at /accounts/999/summary' });
    expect((await s.get('/nope')).statusCode).toBe(404);
    await s.queue.onIdle();
    // Both sides agree the account does not exist.
    expect(s.recorder.list()).toMatchObject([{ outcome: 'match', subject: '999' }]);
  });

  it('pages history with the cursor it returned', async () => {
    const s = setup({ defaultMode: 'legacy' });
    const first = (await s.get('/accounts/2/transactions?limit=5')).json<HistoryPage>();
    expect(first.nextCursor).not.toBeNull();
    const second = (
      await s.get(`/accounts/2/transactions?limit=5&cursor=${first.nextCursor}`)
    ).json<HistoryPage>();
    expect(second.items[0]?.transactionId).toBe(2006);
  });
});

describe('lag-aware comparison', () => {
  it('records lag when the read model was behind and converged on a re-check', async () => {
    let checks = 0;
    let s!: ReturnType<typeof setup>;
    const freshness: FreshnessPort = {
      isCaughtUp: async () => {
        checks++;
        if (checks > 1) return true;
        // The projector applies the pending change right after the first check.
        s.readModel.summaries.get(9)!.balance.ledger = s.legacy.summaries.get(9)!.balance.ledger;
        return false;
      },
    };
    s = setup({ defaultMode: 'shadow' }, { freshness });
    s.readModel.summaries.get(9)!.balance.ledger = '149.0000';
    await s.get('/accounts/9/summary');
    await s.queue.onIdle();
    expect(s.recorder.list()).toMatchObject([
      {
        outcome: 'lag',
        attempts: 2,
        differences: [{ path: 'balance.ledger', kind: 'changed', legacy: '150.0000', readModel: '149.0000' }],
      },
    ]);
  });

  it('keeps it lag when the read model stays behind through every re-check', async () => {
    const s = setup(
      { defaultMode: 'shadow' },
      { freshness: { isCaughtUp: async () => false }, maxRechecks: 2 },
    );
    s.readModel.summaries.delete(10);
    await s.get('/accounts/10/summary');
    await s.queue.onIdle();
    expect(s.recorder.list()).toMatchObject([{ outcome: 'lag', attempts: 3, differences: [{ path: '$' }] }]);
  });

  it('records a mismatch, not lag, when the read model is behind but stalled (its pipeline is down)', async () => {
    const s = setup(
      { defaultMode: 'shadow' },
      { freshness: { isCaughtUp: async () => false, isStalled: () => true }, maxRechecks: 2 },
    );
    s.readModel.summaries.get(12)!.balance.ledger = '1.0000';
    s.readModel.summaries.delete(10);
    await s.get('/accounts/12/summary');
    await s.get('/accounts/10/summary');
    await s.queue.onIdle();
    const outcomes = s.recorder
      .list()
      .map((r) => [r.requestKey, r.outcome])
      .sort();
    expect(outcomes).toEqual([
      ['accountId=10', 'missing'],
      ['accountId=12', 'mismatch'],
    ]);
  });

  it('records missing when the caught-up read model lacks the account', async () => {
    const s = setup({ defaultMode: 'shadow' }, { freshness: caughtUp });
    s.readModel.summaries.delete(10);
    await s.get('/accounts/10/summary');
    await s.queue.onIdle();
    expect(s.recorder.list()).toMatchObject([
      { outcome: 'missing', attempts: 2, differences: [{ kind: 'missing' }] },
    ]);
  });

  it('asks freshness only about differing answers, and still re-checks and records those as before', async () => {
    let checks = 0;
    const freshness: FreshnessPort = {
      isCaughtUp: async () => {
        checks++;
        return true;
      },
    };
    const s = setup({ defaultMode: 'shadow' }, { freshness });
    // A match is one whatever the read model's position: no freshness query, no second legacy run.
    await s.get('/accounts/5/summary');
    await s.queue.onIdle();
    expect(checks).toBe(0);
    expect(s.legacy.calls).toBe(1);
    s.readModel.summaries.get(12)!.balance.ledger = '1.0000';
    await s.get('/accounts/12/summary');
    await s.queue.onIdle();
    // Served answer against the read model, then both sides fresh: one check per attempt, and
    // legacy read again after the fresh difference to rule out a write during the attempt.
    expect(checks).toBe(2);
    expect(s.legacy.calls).toBe(4);
    expect(s.recorder.list({ outcome: 'mismatch' })).toMatchObject([
      {
        requestKey: 'accountId=12',
        attempts: 2,
        diffCount: 1,
        differences: [{ path: 'balance.ledger', kind: 'changed', legacy: '150.0000', readModel: '1.0000' }],
      },
    ]);
  });

  it('uses waitForCatchUp between attempts when the port has it', async () => {
    const waits: number[] = [];
    let behind = true;
    const freshness: FreshnessPort = {
      isCaughtUp: async () => !behind,
      waitForCatchUp: async (timeoutMs) => {
        waits.push(timeoutMs);
        behind = false;
        return true;
      },
    };
    const s = setup({ defaultMode: 'shadow' }, { freshness });
    s.readModel.summaries.get(11)!.cards.active = 0;
    await s.get('/accounts/11/summary');
    await s.queue.onIdle();
    // One wait (bounded by the re-check delay); once caught up the difference remains: a real mismatch.
    expect(waits).toEqual([5]);
    expect(s.recorder.list()).toMatchObject([
      { outcome: 'mismatch', attempts: 2, differences: [{ path: 'cards.active', legacy: 1, readModel: 0 }] },
    ]);
  });
});

describe('report and metrics', () => {
  it('reports recorded outcomes per endpoint, as JSON and as a table', async () => {
    const s = setup({ defaultMode: 'shadow' }, { freshness: caughtUp });
    s.readModel.summaries.get(1)!.balance.available = '1.0000';
    s.readModel.summaries.get(2)!.balance.available = '2.0000';
    s.readModel.summaries.get(2)!.owner.email = 'changed@example.test';
    for (const id of [1, 2, 3, 4, 5]) await s.get(`/accounts/${id}/summary`);
    await s.get('/accounts/1/transactions?limit=2');
    await s.queue.onIdle();

    const report = (await s.admin({ method: 'GET', url: '/admin/report' })).json<Report>();
    const summary = report.endpoints.find((e) => e.endpoint === 'accounts.summary');
    expect(summary).toMatchObject({
      total: 5,
      byOutcome: { match: 3, mismatch: 2, lag: 0, missing: 0, error: 0 },
      matchRatePct: 60,
      topPaths: [
        { path: 'balance.available', count: 2 },
        { path: 'owner.email', count: 1 },
      ],
    });
    expect(summary?.latency.legacy.count).toBe(5);
    expect(summary?.latency.readModel.p50Ms).toBeGreaterThanOrEqual(0);
    expect(report.totals).toMatchObject({ total: 6, matchRatePct: 66.7 });
    expect(report.queue).toMatchObject({ enqueued: 6, completed: 6, dropped: 0, depth: 0 });

    const text = await s.admin({ method: 'GET', url: '/admin/report?format=text' });
    expect(text.headers['content-type']).toMatch(/text\/plain/);
    expect(text.body).toMatch(/accounts\.summary\s+5\s+60\.0%\s+3\s+2\s+0\s+0\s+0/);
    expect(text.body).toMatch(/accounts\.summary\s+balance\.available\s+2/);

    const future = new Date(Date.now() + 60_000).toISOString();
    const empty = await s.admin({ method: 'GET', url: `/admin/report?since=${future}` });
    expect(empty.json<Report>().endpoints).toEqual([]);
    expect((await s.admin({ method: 'GET', url: '/admin/report?since=soon' })).statusCode).toBe(400);
  });

  it("counts what the endpoint's compare rules accepted apart, instead of as mismatches", async () => {
    const s = setup({ defaultMode: 'shadow' }, { freshness: caughtUp });
    s.readModel.summaries.get(1)!.balance.updatedAt = '2024-05-27 09:30:00.000001';
    s.readModel.summaries.get(1)!.recentTransactions[0]!.balanceAfter = '101.0040';
    s.readModel.summaries.get(2)!.recentTransactions[1]!.balanceAfter = '102.0100';
    for (const id of [1, 2]) await s.get(`/accounts/${id}/summary`);
    await s.queue.onIdle();
    const records = s.recorder.list({ endpoint: 'accounts.summary' });
    expect(records.find((r) => r.requestKey === 'accountId=1')).toMatchObject({
      outcome: 'match',
      diffCount: 0,
    });
    expect(records.find((r) => r.requestKey === 'accountId=2')).toMatchObject({
      outcome: 'mismatch',
      differences: [
        { path: 'recentTransactions[1].balanceAfter', legacy: '102.0000', readModel: '102.0100' },
      ],
    });
    const report = (await s.admin({ method: 'GET', url: '/admin/report' })).json<Report>();
    expect(report.endpoints.find((e) => e.endpoint === 'accounts.summary')).toMatchObject({
      byOutcome: { match: 1, mismatch: 1 },
      accepted: { ignored: 1, tolerated: 1 },
    });
    const text = (await s.admin({ method: 'GET', url: '/admin/report?format=text' })).body;
    expect(text).toMatch(/compare rules accepted[\s\S]*accounts\.summary\s+1\s+1\n/);
  });

  it('exposes request, latency, comparison and queue metrics', async () => {
    const s = setup({ defaultMode: 'shadow' }, { freshness: caughtUp });
    s.readModel.summaries.get(3)!.status = 'closed';
    for (const id of [1, 2, 3]) await s.get(`/accounts/${id}/summary`);
    await s.queue.onIdle();
    // Comparisons are counted once stored, and the recorder writes them in batches.
    s.recorder.flush();
    const res = await s.admin({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    const body = res.body;
    expect(body).toContain(
      'cqrs_shadow_requests_total{endpoint="accounts.summary",mode="shadow",served_by="legacy"} 3',
    );
    expect(body).toContain('cqrs_shadow_comparisons_total{endpoint="accounts.summary",outcome="match"} 2');
    expect(body).toContain('cqrs_shadow_comparisons_total{endpoint="accounts.summary",outcome="mismatch"} 1');
    expect(body).toContain(
      'cqrs_shadow_query_duration_seconds_count{endpoint="accounts.summary",side="legacy",role="serve"} 3',
    );
    expect(body).toContain(
      'cqrs_shadow_query_duration_seconds_count{endpoint="accounts.summary",side="read_model",role="shadow"} 3',
    );
    expect(body).toContain('cqrs_shadow_queue_depth 0');
    expect(body).toContain('cqrs_shadow_queue_dropped_total 0');
    expect((await s.get('/health')).json()).toMatchObject({ status: 'ok' });
  });
});

describe('OpenAPI document at /docs', () => {
  /** The bank's own definition with every admin route (rollout included), as `run` serves it. */
  function bankServer() {
    const recorder = new SqliteComparisonRecorder({ path: ':memory:' });
    const audit = new SqliteAuditLog(':memory:');
    const flags = FileFlagStore.open({});
    const { rollout } = loadConfig({ env: {}, file: undefined, overrides: {} });
    const app = buildServer({
      migration: bank,
      legacy: noDatabase,
      readModels: {},
      flags,
      recorder,
      queue: new ShadowQueue({ concurrency: 1, maxSize: 1 }),
      logger: silentLogger,
      admin: { tokens: [{ name: 'ops', token: ADMIN_TOKEN }] },
      audit,
      rollout: new RolloutController({
        migration: bank,
        flags,
        audit,
        comparisons: recorder,
        lagSeconds: () => null,
        ...rollout,
      }),
    });
    opened.push(recorder, audit, app);
    return app;
  }

  interface Operation {
    parameters?: Array<{ in: string; name: string; required: boolean; schema: Record<string, unknown> }>;
    requestBody?: { content: Record<string, { schema: Record<string, unknown> }> };
    security?: Array<Record<string, string[]>>;
    tags?: string[];
  }
  type Paths = Record<string, Record<string, Operation>>;

  it('lists every read endpoint with its parameters and every admin route behind the token', async () => {
    const app = bankServer();
    const res = await app.inject({ method: 'GET', url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json<{ openapi: string; paths: Paths; components: { securitySchemes: unknown } }>();
    expect(doc.openapi).toBe('3.1.0');
    expect(bank.endpoints).toHaveLength(5);
    for (const entry of bank.endpoints) {
      const path = entry.definition.route.replace(/:(\w+)/g, '{$1}');
      const get = doc.paths[path]?.get;
      expect(get?.tags, path).toEqual([entry.domain]);
      expect(get?.security, path).toBeUndefined();
      for (const [, name] of entry.definition.route.matchAll(/:(\w+)/g))
        expect(get?.parameters, path).toContainEqual(
          expect.objectContaining({ in: 'path', name, required: true }),
        );
    }
    const history = doc.paths['/accounts/{accountId}/transactions']?.get?.parameters ?? [];
    expect(history.map((p) => `${p.in}:${p.name}`).sort()).toEqual([
      'header:x-cqrs-as-of',
      'header:x-cqrs-mode',
      'path:accountId',
      'query:_asOf',
      'query:cursor',
      'query:from',
      'query:limit',
      'query:to',
    ]);
    // The zod schema the handler validates with, as JSON Schema: a DATETIME(6) text (up to 6
    // fraction digits, which the param pads), optional.
    expect(history.find((p) => p.name === 'from')).toMatchObject({
      required: false,
      schema: { type: 'string', pattern: expect.stringContaining('(?:\\.(\\d{1,6}))?$') },
    });

    const admin: [string, string][] = [
      ['get', '/admin/flags'],
      ['put', '/admin/flags'],
      ['patch', '/admin/flags/{endpointKey}'],
      ['get', '/admin/audit'],
      ['get', '/admin/report'],
      ['get', '/admin/rollout'],
      ['get', '/admin/rollout/{target}'],
      ['post', '/admin/rollout/{target}/advance'],
      ['post', '/admin/rollout/{target}/rollback'],
      ['post', '/admin/rollout/{target}/hold'],
      ['post', '/admin/rollout/{target}/resume'],
      ['get', '/metrics'],
    ];
    for (const [method, path] of admin)
      expect(doc.paths[path]?.[method]?.security, `${method} ${path}`).toEqual([{ adminToken: [] }]);
    expect(doc.components.securitySchemes).toEqual({
      adminToken: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
    });
    for (const open of ['/flags', '/health', '/health/live', '/health/ready'])
      expect(doc.paths[open]?.get?.security, open).toBeUndefined();
    // Bodies come from the same schemas as the handlers' parse.
    const patchBody = doc.paths['/admin/flags/{endpointKey}']?.patch?.requestBody;
    expect(patchBody?.content['application/json']?.schema).toMatchObject({
      properties: { mode: { enum: ['legacy', 'shadow', 'canary', 'new'] } },
      additionalProperties: false,
    });
    const report = doc.paths['/admin/report']?.get?.parameters ?? [];
    expect(report.find((p) => p.name === 'format')?.schema).toMatchObject({
      enum: expect.arrayContaining(['json', 'text']),
    });
    // Swagger UI's own routes are not part of the document.
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/docs'))).toEqual([]);
  });

  it('serves Swagger UI and its assets itself, open, and keeps validating as before', async () => {
    const app = bankServer();
    const page = await app.inject({ method: 'GET', url: '/docs/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).toContain('swagger-ui-bundle.js');
    const bundle = await app.inject({ method: 'GET', url: '/docs/static/swagger-ui-bundle.js' });
    expect(bundle.statusCode).toBe(200);
    expect(bundle.body.length).toBeGreaterThan(100_000);
    // Documentation only: the handler's zod parse still answers, with its own message.
    const bad = await app.inject({ method: 'GET', url: '/accounts/1/transactions?limit=x' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({
      error: 'BAD_REQUEST',
      message: expect.stringMatching(/^invalid parameters/),
    });
    const missing = await app.inject({ method: 'GET', url: '/docs/static/nope.js' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: 'NOT_FOUND' });
  });
});

describe('health', () => {
  const component: ComponentStatus = { name: 'source', state: 'up', since: 0, reason: null, restarts: 0 };

  it('is live and, without supervised components, ready', async () => {
    const s = setup({ defaultMode: 'shadow' });
    expect((await s.get('/health/live')).json()).toMatchObject({ status: 'ok' });
    expect((await s.get('/health')).json()).toMatchObject({ status: 'ok', queue: { dropped: 0 } });
    const ready = await s.get('/health/ready');
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ready', problems: [] });
  });

  it('is unready (503) naming the component that is down, or a read model staler than allowed', async () => {
    let components = [component, { ...component, name: 'projector' }];
    let lag = 1;
    const recorder = new SqliteComparisonRecorder({ path: ':memory:' });
    const app = buildServer({
      migration: migrationOver(new MemoryBank(), new MemoryBank()),
      legacy: noDatabase,
      readModels: {},
      flags: FileFlagStore.open({}),
      recorder,
      queue: new ShadowQueue({ concurrency: 1, maxSize: 1 }),
      logger: silentLogger,
      admin: { tokens: [] },
      audit: new SqliteAuditLog(':memory:'),
      health: { components: () => components, lagSeconds: () => lag, maxLagSeconds: 30 },
    });
    opened.push(recorder, app);
    const ready = () => app.inject({ method: 'GET', url: '/health/ready' });
    expect((await ready()).statusCode).toBe(200);
    components = [
      component,
      { ...component, name: 'projector', state: 'restarting', reason: 'database is locked' },
    ];
    const down = await ready();
    expect(down.statusCode).toBe(503);
    expect(down.json()).toMatchObject({
      status: 'unready',
      problems: [{ component: 'projector', reason: 'restarting: database is locked' }],
    });
    components = [component];
    lag = 31;
    expect((await ready()).json()).toMatchObject({
      status: 'unready',
      problems: [{ component: 'read-models', reason: expect.stringMatching(/^stale: 31\.0 s/) }],
    });
    // Liveness does not depend on the pipeline.
    expect((await app.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
  });
});

describe('shadow queue', () => {
  it('starts the next task on a later turn of the event loop: tasks without I/O do not hold off other work', async () => {
    const queue = new ShadowQueue({ concurrency: 1, maxSize: 10 });
    const order: string[] = [];
    const step = (name: string) => async () => {
      order.push(name);
    };
    queue.enqueue(async () => {
      order.push('task 1');
      setImmediate(() => order.push('other work'));
      queue.enqueue(step('task 2'));
      queue.enqueue(step('task 3'));
    });
    await queue.onIdle();
    expect(order).toEqual(['task 1', 'other work', 'task 2', 'task 3']);
    expect(queue.stats()).toMatchObject({ completed: 3, dropped: 0, depth: 0, running: 0 });
  });

  it('drops and counts tasks beyond its size instead of waiting, and runs at most `concurrency` at once', async () => {
    const queue = new ShadowQueue({ concurrency: 2, maxSize: 3 });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let running = 0;
    let peak = 0;
    const task = async () => {
      running++;
      peak = Math.max(peak, running);
      await gate;
      running--;
    };
    let drops = 0;
    queue.on('drop', () => drops++);
    const accepted = Array.from({ length: 8 }, () => queue.enqueue(task));
    // Nothing ran in the caller's turn; all accepted tasks wait.
    expect(running).toBe(0);
    expect(accepted).toEqual([true, true, true, false, false, false, false, false]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(queue.running).toBe(2);
    expect(queue.depth).toBe(1);
    // Running tasks free waiting slots.
    expect(queue.enqueue(task)).toBe(true);
    expect(queue.enqueue(task)).toBe(true);
    expect(queue.enqueue(task)).toBe(false);
    release();
    await queue.close();
    expect(peak).toBe(2);
    expect(drops).toBe(6);
    expect(queue.stats()).toEqual({ depth: 0, running: 0, enqueued: 5, dropped: 6, completed: 5, failed: 0 });
    expect(queue.enqueue(task)).toBe(false);
  });
});

describe('SQLite recorder', () => {
  it('caps stored differences and long values but counts them all, and keeps records across reopen', () => {
    const path = join(dir, `recorder-${++seq}.sqlite`);
    const recorder = new SqliteComparisonRecorder({ path, maxStoredDifferences: 3, maxValueChars: 20 });
    const differences = Array.from({ length: 7 }, (_, i) => ({
      path: `items[${i}].description`,
      kind: 'changed' as const,
      legacy: 'x'.repeat(50),
      readModel: 'y',
    }));
    recorder.record({
      recordedAt: new Date('2024-05-01T00:00:00Z'),
      endpoint: 'accounts.history',
      requestKey: 'accountId=1&limit=50',
      subject: '1',
      mode: 'shadow',
      servedBy: 'legacy',
      outcome: 'mismatch',
      differences,
      error: null,
      attempts: 2,
      legacyMs: 4,
      readModelMs: 1,
    });
    recorder.close();
    const reopened = new SqliteComparisonRecorder({ path });
    opened.push(reopened);
    const [stored] = reopened.list();
    expect(stored?.diffCount).toBe(7);
    expect(stored?.differences).toHaveLength(3);
    expect(stored?.differences[0]).toEqual({
      path: 'items[0].description',
      kind: 'changed',
      legacy: `"${'x'.repeat(19)}… (52 chars)`,
      readModel: 'y',
    });
    expect(reopened.stats().endpoints[0]?.topPaths).toMatchObject([
      { path: 'items[*].description', count: 1 },
    ]);
  });

  const match = (i: number): ComparisonRecord => ({
    recordedAt: new Date(),
    endpoint: 'accounts.summary',
    requestKey: `accountId=${i}`,
    subject: String(i),
    mode: 'shadow',
    servedBy: 'legacy',
    outcome: 'match',
    differences: [],
    error: null,
    attempts: 1,
    legacyMs: 1,
    readModelMs: 1,
  });

  it('computes nearest-rank p50/p99 of each side', () => {
    const recorder = new SqliteComparisonRecorder({ path: ':memory:' });
    opened.push(recorder);
    for (let i = 1; i <= 100; i++) recorder.record({ ...match(i), legacyMs: 101 - i, readModelMs: i / 10 });
    const [stats] = recorder.stats().endpoints;
    expect(stats?.latency).toEqual({
      legacy: { count: 100, p50Ms: 50, p99Ms: 99 },
      readModel: { count: 100, p50Ms: 5, p99Ms: 9.9 },
    });
  });

  it('writes batched comparisons within the flush interval, in the order recorded', async () => {
    const path = join(dir, `recorder-${++seq}.sqlite`);
    const recorder = new SqliteComparisonRecorder({ path, flushIntervalMs: 5, maxBatch: 1000 });
    opened.push(recorder);
    await Promise.all([1, 2, 3].map((i) => recorder.record(match(i))));
    // Written before any read of this recorder asked for it: another process sees them.
    const other = new Database(path, { readonly: true });
    const keys = other.prepare('SELECT request_key FROM comparisons ORDER BY id').pluck().all();
    other.close();
    expect(keys).toEqual(['accountId=1', 'accountId=2', 'accountId=3']);
  });

  it('rejects only the comparison that cannot be stored, and stores the rest of its batch', async () => {
    const recorder = new SqliteComparisonRecorder({ path: ':memory:' });
    opened.push(recorder);
    const bad = { ...match(2), servedBy: 'nobody' } as unknown as ComparisonRecord;
    const results = await Promise.allSettled([match(1), bad, match(3)].map((c) => recorder.record(c)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({
      code: 'COMPARE_RECORD_FAILED',
      message: 'cannot record comparison of accounts.summary',
    });
    expect(recorder.list().map((c) => c.requestKey)).toEqual(['accountId=3', 'accountId=1']);
  });

  it('rejects the comparisons it can no longer store once closed', async () => {
    const recorder = new SqliteComparisonRecorder({ path: ':memory:' });
    recorder.close();
    const results = await Promise.allSettled([match(1), match(2)].map((c) => recorder.record(c)));
    expect(results.map((r) => (r as PromiseRejectedResult).reason?.code)).toEqual([
      'COMPARE_RECORD_FAILED',
      'COMPARE_RECORD_FAILED',
    ]);
  });
});
