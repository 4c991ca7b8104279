import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPipeline } from '../../cli/pipeline.js';
import { reconcile } from '../../compare/reconcile.js';
import { SqliteComparisonRecorder } from '../../compare/recorder.js';
import { ShadowComparator } from '../../compare/shadow-compare.js';
import { openLegacyDb } from '../../connectors/legacy/index.js';
import { initDefinition } from '../../definition/init/index.js';
import { loadDefinition } from '../../definition/load.js';
import { dropDatabase } from '../../examples/bank/db.js';
import bank from '../../examples/bank/migration.js';
import { dropShopDatabase, parseShopUrl } from '../../examples/shop/db.js';
import shop from '../../examples/shop/migration.js';
import { loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { REPO_INDEX } from '../support/typecheck.js';
import { pgReachable } from './support/postgres.js';

/**
 * `cqrs-migrate init` as a new user meets it: against a live database nobody wrote a definition
 * for, the starter definition it writes type-checks, loads, and `run`s the embedded pipeline to
 * a caught-up read model whose endpoint answers equal the legacy ones for every key.
 */
const suffix = `${process.pid}_${Date.now().toString(36)}`;
const dirs: string[] = [];
const cleanups: Array<() => Promise<void>> = [];

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function initAndRun(url: string, serverId: number) {
  const dir = mkdtempSync(join(tmpdir(), 'cqrs-init-run-'));
  dirs.push(dir);
  const out = join(dir, 'migration.ts');
  const written = await initDefinition(url, { out, importFrom: REPO_INDEX });
  expect(written.tables).toBeGreaterThanOrEqual(8);
  const migration = await loadDefinition(out);
  expect(migration.tables.length).toBe(written.tables);
  expect(migration.endpoints.length).toBeGreaterThanOrEqual(1);

  const config = loadConfig({
    env: {},
    overrides: {
      legacy: { url },
      cdc: { serverId, name: `init_${suffix}` },
      dataDir: join(dir, 'data'),
      projector: { pollIntervalMs: 20 },
    },
  });
  const errors: Error[] = [];
  const pipeline = await startEmbeddedPipeline({
    config,
    migration,
    logger: silentLogger,
    onError: (e) => errors.push(e),
  });
  const legacy = openLegacyDb(url);
  const recorder = new SqliteComparisonRecorder({ path: ':memory:' });
  try {
    expect(await pipeline.waitForCatchUp(120_000)).toBe(true);
    expect(await pipeline.eventStore.countDeadLetters()).toBe(0);
    const result = await reconcile({
      migration,
      legacy,
      readModels: pipeline.readModels,
      comparator: new ShadowComparator({ recorder, freshness: pipeline.freshness, recheckDelayMs: 100 }),
    });
    expect(result.checked).toBeGreaterThan(10);
    expect(result.failures).toEqual([]);
    expect(result.byOutcome.match).toBe(result.checked);
    expect(errors).toEqual([]);
  } finally {
    recorder.close();
    await pipeline.stop();
    await legacy.close();
  }
}

describe('init writes a definition that runs', () => {
  it('on the sample bank (MariaDB)', async () => {
    const url = `mysql://cqrs:cqrs@127.0.0.1:3307/t_init_bank_${suffix}`;
    await bank.sample?.create({ url, scale: 'tiny', seed: 5, force: true, progress: () => undefined });
    cleanups.push(() =>
      dropDatabase(
        { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' },
        `t_init_bank_${suffix}`,
      ),
    );
    await initAndRun(url, 7100 + Math.floor(Math.random() * 800));
  });

  it('on the shop (PostgreSQL)', async (ctx) => {
    if (!(await pgReachable())) ctx.skip();
    const url = `postgres://cqrs:cqrs@127.0.0.1:5433/shop_t_init_${suffix}`;
    await shop.sample?.create({ url, scale: 'tiny', seed: 5, force: true, progress: () => undefined });
    cleanups.push(async () => {
      const { conn, database } = parseShopUrl(url);
      await dropShopDatabase(conn, database);
    });
    await initAndRun(url, 1);
  });
});
