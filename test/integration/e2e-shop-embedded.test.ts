import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedPipeline, startEmbeddedPipeline } from '../../cli/pipeline.js';
import { openLegacyDb } from '../../connectors/legacy/index.js';
import type { ReadModels } from '../../definition/read-models.js';
import { shopPool } from '../../examples/shop/db.js';
import type { OrderDetail } from '../../examples/shop/documents.js';
import { countRows, generateShop } from '../../examples/shop/generate.js';
import shop from '../../examples/shop/migration.js';
import { runShopWorkload } from '../../examples/shop/workload.js';
import { dataPath, loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { dropPgState, LEGACY_PG, pgReachable } from './support/postgres.js';
import { compareShopChecks, FANOUT_SQL, RENAME_HEAVY_MIX } from './support/shop-checks.js';

/**
 * The shop definition through the embedded pipeline on PostgreSQL (pgoutput): snapshot, a
 * write burst with renames and many-to-many changes, the whole pipeline restarted in its
 * middle, and then every endpoint's read-model answer equal to its legacy JOIN answer.
 */

const pgUp = await pgReachable();
if (!pgUp)
  console.warn('e2e-shop-embedded: PostgreSQL (wal_level=logical) is not reachable on 5433; skipped');

const database = `shop_e2e_${Math.random().toString(36).slice(2, 8)}`;
// The slot is named after cdc.name: one of its own, so parallel runs never share a position.
const slot = `cqrs_${database}`;
const url = `postgres://${LEGACY_PG.user}:${LEGACY_PG.password}@${LEGACY_PG.host}:${LEGACY_PG.port}/${database}`;
let dataDir: string;
let pool: pg.Pool;
let pipeline: EmbeddedPipeline | undefined;

function configFor() {
  return loadConfig({
    env: {},
    file: undefined,
    overrides: {
      legacy: { url },
      cdc: { name: database, snapshotChunkRows: 500 },
      dataDir,
      projector: { batchSize: 64, pollIntervalMs: 20 },
    },
  });
}

/** The projector checkpoint as stored in the read-model database (the pipeline stopped). */
function storedCheckpoint(): number {
  const db = new Database(dataPath(configFor(), 'read-models.db'), { readonly: true });
  try {
    const position = db.prepare('SELECT max(position) FROM projector_checkpoints').pluck().get();
    return typeof position === 'number' ? position : 0;
  } finally {
    db.close();
  }
}

async function one<T>(sql: string, params: unknown[] = []): Promise<T> {
  const result = await pool.query(sql, params);
  const row = result.rows[0] as T | undefined;
  if (row === undefined) throw new Error(`no row for ${sql}`);
  return row;
}

describe.skipIf(!pgUp)('embedded pipeline end to end on the sample shop (PostgreSQL)', () => {
  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'cqrs-e2e-shop-'));
    const create = shop.sample?.create;
    if (create === undefined) throw new Error('the shop definition has no sample hooks');
    await create({ url, scale: 'tiny', seed: 7, force: false, progress: () => undefined });
    pool = shopPool(LEGACY_PG, database, 2);
  });

  afterAll(async () => {
    await pipeline?.stop().catch(() => undefined);
    await pool?.end();
    await dropPgState(database, [slot]);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('read models equal the legacy JOIN answers for every order, product and customer page after a burst, across a restart mid-burst', async () => {
    const errors: Error[] = [];
    const start = () =>
      startEmbeddedPipeline({
        config: configFor(),
        migration: shop,
        logger: silentLogger,
        onError: (e) => errors.push(e),
      });
    pipeline = await start();
    expect(await pipeline.waitForCatchUp(60_000)).toBe(true);

    // The fan-out subjects: a product on some order, and a customer with orders.
    const target = await one<{ orderId: number; productId: number; name: string }>(FANOUT_SQL.productOnOrder);
    const customer = await one<{ orderId: number; customerId: number; first: string; last: string }>(
      FANOUT_SQL.customerWithOrder,
    );
    const before = (await pipeline.readModels['order-detail']?.get(
      String(target.orderId),
    )) as OrderDetail | null;
    expect(before?.items.find((l) => l.productId === target.productId)?.name).toBe(target.name);

    const burst = runShopWorkload(pool, {
      seed: 11,
      ratePerSec: 150,
      durationMs: 0,
      maxOps: 400,
      // More renames and many-to-many changes than the default mix.
      mix: RENAME_HEAVY_MIX,
    });
    await sleep(600);
    // Renames forced in the burst, on the second connection of the pool, while the pipeline runs…
    const renamedProduct = `E2E Renamed ${database}`;
    await pool.query('UPDATE products SET name = $2, updated_at = now() WHERE id = $1', [
      target.productId,
      renamedProduct,
    ]);
    await sleep(600);
    // …then the whole pipeline is stopped and started again while the burst goes on.
    const running = pipeline;
    pipeline = undefined;
    await running.stop();
    const checkpoint = storedCheckpoint();
    expect(checkpoint).toBeGreaterThan(0);
    await pool.query(
      'UPDATE customers SET first_name = $2, last_name = $3, updated_at = now() WHERE id = $1',
      [customer.customerId, 'Renamed', `While-Down-${database}`],
    );
    await sleep(500);
    pipeline = await start();
    // Resumed from the stored checkpoint (it may already have moved on), not from zero.
    expect(pipeline.runner.checkpoint()).toBeGreaterThanOrEqual(checkpoint);

    const stats = await burst;
    expect(stats.errorSamples).toEqual([]);
    expect(stats.errors).toBe(0);
    expect(stats.ops).toBeGreaterThanOrEqual(300);
    for (const kind of [
      'rename_product',
      'rename_customer',
      'categorize',
      'uncategorize',
      'place_order',
    ] as const) {
      expect(stats.byKind[kind], kind).toBeGreaterThan(0);
    }
    expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
    expect(errors).toEqual([]);

    const legacyDb = openLegacyDb(url, { poolSize: 2 });
    try {
      const readModels: ReadModels = pipeline.readModels;
      const { checks, seen, differences } = await compareShopChecks(legacyDb, readModels);
      expect(differences).toEqual([]);
      expect(checks).toBeGreaterThan(300);
      expect(seen['orders.detail']).toBeGreaterThan(200);
      expect(seen['catalog.product']).toBeGreaterThan(30);
      expect(seen['orders.byCustomer']).toBeGreaterThan(50);
      expect(seen.nulls).toBe(2);

      // The fan-out, concretely: the order shows the product's name as it is now, not as it was.
      const now = await one<{ name: string }>('SELECT name FROM products WHERE id = $1', [target.productId]);
      expect(now.name).not.toBe(target.name);
      const order = (await readModels['order-detail']?.get(String(target.orderId))) as OrderDetail | null;
      const line = order?.items.find((l) => l.productId === target.productId);
      expect(line?.name).toBe(now.name);
      const c = await one<{ first: string; last: string }>(
        'SELECT first_name AS first, last_name AS last FROM customers WHERE id = $1',
        [customer.customerId],
      );
      expect(`${c.first} ${c.last}`).not.toBe(`${customer.first} ${customer.last}`);
      const placed = (await readModels['order-detail']?.get(String(customer.orderId))) as OrderDetail | null;
      expect(placed?.customer).toMatchObject({
        customerId: customer.customerId,
        name: `${c.first} ${c.last}`,
      });
    } finally {
      await legacyDb.close();
    }

    // Nothing was applied twice: every stored row change of the stream is there once.
    const stored = pipeline.eventStore
      .readAfterSync(0, 1_000_000)
      .filter((e) => !e.metadata.snapshot)
      .map((e) => `${e.metadata.sourcePosition}|${e.metadata.table}|${e.type}`);
    expect(stored.length).toBeGreaterThan(stats.ops);
    expect(new Set(stored).size).toBe(stored.length);
    // …and the restart resumed the stream: the snapshot was taken once, one event per loaded row.
    const snapshotEvents = pipeline.eventStore.readAfterSync(0, 1_000_000).filter((e) => e.metadata.snapshot);
    expect(snapshotEvents.length).toBe(countRows(generateShop(7, 'tiny')));
    expect(await pipeline.eventStore.countDeadLetters()).toBe(0);
    await pipeline.stop();
    pipeline = undefined;
  });
});
