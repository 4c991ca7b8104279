import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Pool } from 'mysql2/promise';
import { type Browser, chromium, type Page } from 'playwright-core';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedPipeline, startEmbeddedPipeline } from '../../cli/pipeline.js';
import { type RunningApi, startApi } from '../../cli/serve.js';
import { type OpenedLegacyDb, openLegacyDb } from '../../connectors/legacy/index.js';
import { createBankDatabase, dropDatabase, openPool } from '../../examples/bank/db.js';
import { generateBank } from '../../examples/bank/generate.js';
import bank from '../../examples/bank/migration.js';
import { loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { LEGACY, uniqueSuffix, waitFor } from './support/debezium-bank.js';

/**
 * The dashboard in a real browser (Debian's Chromium driven by playwright-core) over the real
 * API: the bank on MariaDB, the embedded pipeline and its SQLite read models. The operator
 * opens /admin/, gives the token, sees the endpoints; a read model that drifts shows up as
 * mismatching field paths with masked samples side by side; a gate refuses an advance and the
 * page says why; the rollback button sends the domain back to legacy answers and the audit log
 * on the page shows the step.
 */
const CHROMIUM = '/usr/bin/chromium';
const database = `h2_dashboard_${uniqueSuffix()}`;
const token = `dashboard-test:${uniqueSuffix()}${uniqueSuffix()}`;
const bearer = token.slice(token.indexOf(':') + 1);
let dataDir: string;
let pool: Pool;
let pipeline: EmbeddedPipeline;
let legacy: OpenedLegacyDb;
let api: RunningApi;
let browser: Browser;
let accountIds: number[];

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `Chromium is missing (${CHROMIUM}): run scripts/browser.sh, which installs Debian's chromium`,
    );
  dataDir = mkdtempSync(join(tmpdir(), 'h2_dashboard-'));
  await createBankDatabase(LEGACY, database, { dropExisting: true });
  pool = openPool(LEGACY, database);
  await generateBank(pool, { seed: 11, scale: 'tiny' });
  const [rows] = await pool.query('SELECT id FROM accounts ORDER BY id LIMIT 6');
  accountIds = (rows as Array<{ id: number }>).map((r) => r.id);
  const config = loadConfig({
    env: {},
    overrides: {
      legacy: { url: `mysql://cqrs:cqrs@127.0.0.1:3307/${database}` },
      cdc: { serverId: 8000 + Math.floor(Math.random() * 1000) },
      dataDir,
      api: { host: '127.0.0.1', port: 0, adminToken: token, admin: { port: 0 } },
      projector: { pollIntervalMs: 20 },
      flags: { defaultMode: 'shadow' },
      compare: { recheckDelayMs: 50 },
      // The kill switch stays out of the way: every step here is the operator's.
      rollout: { checkIntervalMs: 3_600_000 },
    },
  });
  pipeline = await startEmbeddedPipeline({ config, migration: bank, logger: silentLogger });
  expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
  legacy = openLegacyDb(config.legacy.url);
  api = await startApi(config, bank, pipeline, legacy, silentLogger, new Registry());
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await api?.close();
  await pipeline?.stop();
  await legacy?.close();
  await pool?.end();
  await dropDatabase(LEGACY, database);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function adminJson(path: string, init: RequestInit = {}): Promise<unknown> {
  const res = await fetch(`${api.adminUrl}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', ...init.headers },
  });
  expect(res.status, path).toBeLessThan(300);
  return res.json();
}

async function summaries(): Promise<void> {
  for (const id of accountIds) {
    const res = await fetch(`${api.url}/accounts/${id}/summary`);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
  }
  await api.queue.onIdle();
}

const text = async (page: Page, selector: string) =>
  (await page.locator(selector).first().textContent()) ?? '';

describe('the dashboard at /admin/', () => {
  it('shows endpoints, mismatches and gates, and rolls a domain back from the page', async () => {
    // The page itself holds no data and loads without a token; its data does not.
    expect((await fetch(`${api.adminUrl}/admin/overview`)).status).toBe(401);
    // The admin listener is apart from the reads: the public port does not serve the dashboard.
    expect(api.adminUrl).not.toBe(api.url);
    expect((await fetch(`${api.url}/admin/`)).status).toBe(404);
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    const shell = await page.goto(`${api.adminUrl}/admin`);
    expect(shell?.status()).toBe(200);
    expect(page.url()).toBe(`${api.adminUrl}/admin/`);

    // A wrong token is refused and asked again; the right one opens the board.
    await page.fill('#token', 'not-the-token-0123456789');
    await page.click('#login button[type=submit]');
    await page.locator('#login-error').filter({ hasText: 'refused' }).waitFor();
    await page.fill('#token', bearer);
    await page.click('#login button[type=submit]');
    for (const key of ['accounts.summary', 'accounts.history'])
      await page.locator(`[data-endpoint="${key}"] [data-mode="shadow"]`).waitFor();
    expect(await page.locator('#login').isVisible()).toBe(false);
    // Kept in the tab's session storage only (the test's tsconfig has no DOM types: a string).
    expect(await page.evaluate('sessionStorage.length')).toBe(1);
    expect(await text(page, '#dead-letters')).toBe('0');
    await page.locator('#lag').filter({ hasText: / s/ }).waitFor();

    // Clean traffic first: matches only.
    await summaries();
    await page
      .locator('[data-endpoint="accounts.summary"] .count-match')
      .filter({ hasText: String(accountIds.length) })
      .waitFor();
    expect(await text(page, '[data-endpoint="accounts.summary"] .match-rate')).toBe('100.00%');

    // The read model drifts behind the pipeline's back: status and the (sensitive) owner e-mail.
    const rm = new Database(join(dataDir, 'read-models.db'));
    rm.pragma('busy_timeout = 5000');
    const drifted = rm
      .prepare(
        `UPDATE "rm_doc__account-summary" SET doc = json_set(doc, '$.status', 'drifted', '$.owner.email', 'drift@example.invalid')
         WHERE key = ?`,
      )
      .run(String(accountIds[0])).changes;
    rm.close();
    expect(drifted).toBe(1);
    await summaries();

    const card = '[data-endpoint="accounts.summary"]';
    await page.locator(`${card} tr.mismatch-path[data-path="status"]`).waitFor();
    await page.locator(`${card} tr.mismatch-path[data-path="owner.email"]`).waitFor();
    expect(await text(page, `${card} .count-mismatch`)).toBe('1');
    // Side by side, the differing field highlighted; the sensitive one masked on both sides.
    const status = `${card} .sample tr[data-path="status"]`;
    expect(await text(page, `${status} td.read-model`)).toBe('"drifted"');
    expect(await text(page, `${status} td.legacy`)).not.toBe('"drifted"');
    const highlight = await page.evaluate(
      `getComputedStyle(document.querySelector('${status} td.path')).backgroundColor`,
    );
    expect(highlight).toBe('rgb(255, 227, 227)');
    const email = `${card} .sample tr[data-path="owner.email"]`;
    for (const side of ['legacy', 'read-model'])
      expect(await text(page, `${email} td.${side}`)).toMatch(/^"\*\*\*[0-9a-f]{6}"$/);
    expect(await page.content()).not.toContain('drift@example.invalid');
    // The match rate over time has a bar that is not all green.
    expect(await page.locator(`${card} .timeline .bar.some-mismatch`).count()).toBe(1);

    // The gates refuse an advance, and the page says which one and why.
    const row = 'tr[data-target="accounts"]';
    await page.click(`${row} button[data-action="advance"]`);
    await page.locator('#action-result .refused').filter({ hasText: 'ROLLOUT_GATES_FAILED' }).waitFor();
    expect(await text(page, '#action-result li.fail[data-gate="comparisons"]')).toMatch(
      /decided comparisons/,
    );
    expect((api.flags.get().endpoints.accounts ?? { mode: 'shadow' }).mode).toBe('shadow');

    // Part of the domain is served by the read model (set through the flags API), then the
    // operator rolls it back to legacy answers from the page.
    await adminJson('/admin/flags/accounts', {
      method: 'PATCH',
      body: JSON.stringify({ mode: 'canary', percent: 10 }),
    });
    await page.locator(`${row} td.stage`).filter({ hasText: 'canary 10%' }).waitFor();
    await page.fill('#reason', 'dashboard test: drift in account-summary');
    await page.selectOption(`select[data-rollback-to="accounts"]`, 'capture');
    await page.click(`${row} button[data-action="rollback"]`);
    await page.locator('#action-result .ok').filter({ hasText: 'canary 10% → capture' }).waitFor();
    const flags = (await adminJson('/admin/flags')) as { endpoints: Record<string, { mode: string }> };
    expect(flags.endpoints.accounts?.mode).toBe('legacy');
    await page.locator(`${card} [data-mode="legacy"]`).waitFor();
    const audit = page.locator('#audit tr[data-action="rollout.rollback"]');
    await audit.waitFor();
    expect(await audit.textContent()).toContain('canary 10% → capture');
    expect(await audit.textContent()).toContain('dashboard test: drift in account-summary');
    await waitFor(
      'held shown after the rollback',
      async () => (await text(page, `${row} td.stage`)).includes('held'),
      10_000,
    );
    // Held after a rollback; the operator resumes it from the page.
    await page.click(`${row} button[data-action="resume"]`);
    await page.locator('#audit tr[data-action="rollout.resume"]').waitFor();
    await page.locator(`${row} button[data-action="hold"]`).waitFor();
    expect(api.rollout.statusOf('accounts').state.held).toBe(false);

    const shot = process.env.DASHBOARD_SCREENSHOT ?? join(tmpdir(), `h2_dashboard-${uniqueSuffix()}.png`);
    await page.setViewportSize({ width: 1400, height: 900 });
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`dashboard screenshot: ${shot}`);
    expect(errors).toEqual([]);
  }, 180_000);
});
