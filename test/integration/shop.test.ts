import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Row, SourceTransaction } from '../../connectors/change-event.js';
import { type OpenedLegacyDb, openLegacyDb } from '../../connectors/legacy/index.js';
import { mapTransaction } from '../../connectors/mapping/mapper.js';
import { PgoutputSource } from '../../connectors/pgoutput/source.js';
import type { EndpointDefinition, LegacyDb } from '../../definition/endpoints.js';
import type { Migration } from '../../definition/migration.js';
import type { DocumentQuery, ReadModelHandle, ReadModels } from '../../definition/read-models.js';
import {
  compareValues,
  composeDocument,
  composeFromRow,
  MemoryRows,
  runSync,
} from '../../definition/view/index.js';
import {
  createShopDatabase,
  dropShopDatabase,
  pgConnSchema,
  shopClient,
  shopPool,
  withShopClient,
} from '../../examples/shop/db.js';
import {
  customerOrdersPageSchema,
  decodeOrderCursor,
  encodeOrderCursor,
  orderDetailSchema,
  productPageSchema,
} from '../../examples/shop/documents.js';
import { countRows, generateShop, loadShop, SHOP_TABLES } from '../../examples/shop/generate.js';
import shop, { shopChecks } from '../../examples/shop/migration.js';
import { runShopWorkload } from '../../examples/shop/workload.js';
import { silentLogger } from '../../lib/logger.js';
import { dropPgState } from './support/postgres.js';

/**
 * The sample shop on the project's PostgreSQL (scripts/legacy-pg.sh): deterministic data, a
 * workload without errors, and every endpoint's legacy answer equal — as JSON text — to what
 * the view engine composes from the same rows as change-data-capture would deliver them.
 */

const CONN = pgConnSchema.parse({
  host: process.env.CQRS_LEGACY_PG_HOST ?? '127.0.0.1',
  port: Number(process.env.CQRS_LEGACY_PG_PORT ?? 5433),
});

async function reachable(): Promise<boolean> {
  const c = shopClient(CONN, 'postgres');
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

const pgUp = await reachable();
if (!pgUp)
  console.warn('shop: PostgreSQL is not reachable on 5433; start it with `bash scripts/legacy-pg.sh up`');

const urlOf = (database: string) =>
  `postgres://${CONN.user}:${CONN.password}@${CONN.host}:${CONN.port}/${database}`;

/** Every captured row, read from the legacy database and parsed by its capture rule, in memory. */
async function captureRows(migration: Migration, db: LegacyDb): Promise<MemoryRows> {
  const rows = new MemoryRows();
  for (const table of migration.tables) {
    const rule = migration.ruleOf(table);
    if (rule === undefined) throw new Error(`no rule for ${table}`);
    for (const raw of await db.query(`SELECT * FROM ${table}`)) {
      const parsed = rule.parse(raw as Row);
      if (!parsed.ok)
        throw new Error(`${table} row ${JSON.stringify(raw)} is a dead letter: ${parsed.reason}`);
      rows.put(table, rule.rowKey(parsed.state), parsed.state);
    }
  }
  return rows;
}

/** Read models answered by the view engine over in-memory rows (what a store does, minus the store). */
function memoryReadModels(migration: Migration, rows: MemoryRows): ReadModels {
  const handles: Record<string, ReadModelHandle<unknown>> = {};
  for (const [name, plan] of migration.viewPlans) {
    handles[name] = {
      get: async (key) => runSync(composeDocument(plan, key), rows),
      async find(query: DocumentQuery) {
        const orderBy = query.orderBy ?? [];
        let roots = rows.find(plan.root.table, query.where ?? {}, orderBy);
        const after = query.after;
        if (after !== undefined) {
          roots = roots.filter((row) => {
            for (const [i, o] of orderBy.entries()) {
              const c = compareValues(row[o.field], after[i]);
              if (c !== 0) return o.direction === 'desc' ? c < 0 : c > 0;
            }
            return false;
          });
        }
        const docs: unknown[] = [];
        for (const row of roots) {
          if (docs.length === query.limit) break;
          const doc = runSync(composeFromRow(plan, row), rows);
          if (doc !== null) docs.push(doc);
        }
        return docs;
      },
    };
  }
  return handles;
}

function endpoint(migration: Migration, key: string): EndpointDefinition {
  const entry = migration.endpoints.find((e) => e.key === key);
  if (entry === undefined) throw new Error(`no endpoint ${key}`);
  return entry.definition;
}

/** Params as HTTP gives them (text), parsed by the endpoint's schema. */
function parseParams(def: EndpointDefinition, params: Record<string, unknown>) {
  return def.params.parse(Object.fromEntries(Object.entries(params).map(([k, v]) => [k, String(v)])));
}

async function legacyAnswer(def: EndpointDefinition, params: Record<string, unknown>, db: LegacyDb) {
  const { legacy } = def;
  if (typeof legacy === 'function') return legacy({ params, db });
  const rows = await db.query(legacy.sql, params);
  return legacy.map ? legacy.map(rows, params) : rows;
}

const answerSchemas = {
  'orders.detail': orderDetailSchema.nullable(),
  'orders.byCustomer': customerOrdersPageSchema,
  'catalog.product': productPageSchema.nullable(),
} as const;

/** Compares every check's two answers; returns how many were compared and the first mismatches. */
async function compareAll(migration: Migration, db: LegacyDb, rows?: MemoryRows) {
  const readModels = memoryReadModels(migration, rows ?? (await captureRows(migration, db)));
  const checks = await shopChecks(db, { pagedCustomers: 10 });
  const mismatches: string[] = [];
  const seen = { 'orders.detail': 0, 'orders.byCustomer': 0, 'catalog.product': 0, nulls: 0, pages: 0 };
  for (const check of checks) {
    const def = endpoint(migration, check.key);
    const params = parseParams(def, check.params);
    const legacy = await legacyAnswer(def, params, db);
    const model = await def.readModel({ params, readModels, analytics: {} });
    answerSchemas[check.key].parse(legacy);
    seen[check.key]++;
    if (legacy === null) seen.nulls++;
    if (check.key === 'orders.byCustomer' && 'cursor' in check.params) seen.pages++;
    if (JSON.stringify(legacy) !== JSON.stringify(model) && mismatches.length < 3) {
      mismatches.push(
        `${check.path}\n  legacy: ${JSON.stringify(legacy)}\n  model:  ${JSON.stringify(model)}`,
      );
    }
  }
  return { seen, mismatches, checks: checks.length };
}

describe.skipIf(!pgUp)('the sample shop on PostgreSQL', () => {
  const suffix = `${process.pid}_${Date.now().toString(36)}`;
  const database = `shop_t_${suffix}`;
  const twin = `shop_t_${suffix}_twin`;
  const cdc = `shop_t_${suffix}_cdc`;
  const sample = shop.sample;
  let db: OpenedLegacyDb;

  beforeAll(async () => {
    if (sample === undefined) throw new Error('the shop definition has no sample hooks');
    const lines: string[] = [];
    const { rows } = await sample.create({
      url: urlOf(database),
      scale: 'tiny',
      seed: 7,
      force: false,
      progress: (line) => lines.push(line),
    });
    expect(rows).toBe(countRows(generateShop(7, 'tiny')));
    expect(lines.length).toBeGreaterThan(SHOP_TABLES.length);
    db = openLegacyDb(urlOf(database), { poolSize: 2 });
  });

  afterAll(async () => {
    await db?.close();
    await dropShopDatabase(CONN, database);
    await dropShopDatabase(CONN, twin);
    await dropPgState(cdc, [cdc]);
  });

  it('is a valid migration definition: 11 captured tables, 3 views, 3 endpoints in two domains', () => {
    expect(shop.tables).toHaveLength(11);
    expect([...shop.viewPlans.keys()]).toEqual(['order-detail', 'customer-orders', 'product-page']);
    expect(shop.endpoints.map((e) => e.key)).toEqual([
      'orders.detail',
      'orders.byCustomer',
      'catalog.product',
    ]);
    expect(shop.sample?.scales).toEqual(['tiny', 'small']);
  });

  it('generates the same rows for the same seed, other rows for another, at the documented size', async () => {
    const a = generateShop(7, 'tiny');
    expect(generateShop(7, 'tiny')).toEqual(a);
    expect(generateShop(8, 'tiny')).not.toEqual(a);
    expect(countRows(a)).toBeGreaterThan(1000);
    expect(countRows(a)).toBeLessThan(2500);
    const small = countRows(generateShop(7, 'small'));
    expect(small).toBeGreaterThan(50_000);
    expect(small).toBeLessThan(110_000);

    // A second database from the same seed holds the same rows, checked by the server.
    await createShopDatabase(CONN, twin);
    await withShopClient(CONN, twin, (c) => loadShop(c, a));
    const digest = (name: string) =>
      withShopClient(CONN, name, async (c) => {
        const parts: string[] = [];
        for (const table of SHOP_TABLES) {
          const r = await c.query(
            `SELECT count(*) AS n, md5(string_agg(t::text, '|' ORDER BY t::text)) AS h FROM ${table} t`,
          );
          parts.push(`${table}:${r.rows[0].n}:${r.rows[0].h}`);
        }
        return parts;
      });
    expect(await digest(twin)).toEqual(await digest(database));
  });

  it('refuses to replace a database it did not create unless forced, and replaces its own', async () => {
    // `twin` was made by createShopDatabase directly: to the sample hooks it is someone else's.
    await expect(
      sample?.create({ url: urlOf(twin), scale: 'tiny', seed: 1, force: false, progress: () => undefined }),
    ).rejects.toMatchObject({ code: 'SAMPLE_DB_FOREIGN' });
    await expect(
      sample?.create({ url: urlOf(twin), scale: 'tiny', seed: 1, force: true, progress: () => undefined }),
    ).resolves.toMatchObject({ rows: countRows(generateShop(1, 'tiny')) });
    await expect(
      sample?.create({ url: urlOf(twin), scale: 'tiny', seed: 1, force: false, progress: () => undefined }),
    ).resolves.toMatchObject({ rows: countRows(generateShop(1, 'tiny')) });
  });

  it('parses params as HTTP gives them and refuses a forged cursor', () => {
    const byCustomer = endpoint(shop, 'orders.byCustomer');
    const cursor = encodeOrderCursor({ placedAt: '2024-01-02 03:04:05.000006', orderId: 9 });
    expect(decodeOrderCursor(cursor)).toEqual({ placedAt: '2024-01-02 03:04:05.000006', orderId: 9 });
    expect(byCustomer.params.parse({ customerId: '3', limit: '5', cursor })).toEqual({
      customerId: 3,
      limit: 5,
      cursor,
    });
    expect(byCustomer.params.safeParse({ customerId: '3', cursor: 'bm90IGEgY3Vyc29y' }).success).toBe(false);
    expect(byCustomer.params.safeParse({ customerId: '3', limit: '1000' }).success).toBe(false);
    expect(endpoint(shop, 'orders.detail').params.safeParse({ orderId: 'x' }).success).toBe(false);
  });

  it('answers every endpoint the same from the legacy JOINs and from the views, on the loaded data', async () => {
    const { seen, mismatches, checks } = await compareAll(shop, db);
    expect(mismatches).toEqual([]);
    expect(seen['orders.detail']).toBeGreaterThan(200);
    expect(seen['catalog.product']).toBeGreaterThan(30);
    expect(seen['orders.byCustomer']).toBeGreaterThan(50);
    expect(seen.pages).toBeGreaterThan(5);
    expect(seen.nulls).toBe(2);
    expect(checks).toBeGreaterThan(300);
  });

  it('runs a workload of every operation kind without errors, and the answers still agree after it', async () => {
    const pool = shopPool(CONN, database, 1);
    try {
      const stats = await runShopWorkload(pool, { seed: 11, ratePerSec: 10_000, durationMs: 0, maxOps: 400 });
      expect(stats.errorSamples).toEqual([]);
      expect(stats.errors).toBe(0);
      expect(stats.ops).toBeGreaterThan(350);
      expect(stats.rowChanges).toBeGreaterThan(stats.ops);
      for (const kind of [
        'rename_product',
        'rename_customer',
        'categorize',
        'uncategorize',
        'cancel',
        'place_order',
      ] as const) {
        expect(stats.byKind[kind], kind).toBeGreaterThan(0);
      }
    } finally {
      await pool.end();
    }
    const { mismatches } = await compareAll(shop, db);
    expect(mismatches).toEqual([]);
  });

  it('through the embedded pgoutput reader: snapshot and workload map without dead letters, and the rows the events carry answer like the legacy database', async () => {
    await sample?.create({
      url: urlOf(cdc),
      scale: 'tiny',
      seed: 5,
      force: false,
      progress: () => undefined,
    });
    const rows = new MemoryRows();
    const types = new Map<string, number>();
    const deadLetters: string[] = [];
    let streamed = 0;
    const source = new PgoutputSource({ ...CONN, database: cdc, slotName: cdc }, { logger: silentLogger });
    const apply = async (tx: SourceTransaction) => {
      if (!tx.snapshot) streamed++;
      const mapped = mapTransaction(tx, shop.rules);
      deadLetters.push(...mapped.deadLetters.map((d) => JSON.stringify(d).slice(0, 300)));
      for (const event of mapped.events) {
        types.set(event.type, (types.get(event.type) ?? 0) + 1);
        const rule = shop.ruleOf(event.metadata.table);
        if (rule === undefined) throw new Error(`no rule for ${event.metadata.table}`);
        const state = (event.data as { state: Record<string, unknown> }).state;
        if (shop.toDomainEvent(event).removed) rows.delete(rule.table, rule.rowKey(state));
        else rows.put(rule.table, rule.rowKey(state), state);
      }
    };
    const legacy = openLegacyDb(urlOf(cdc), { poolSize: 2 });
    const pool = shopPool(CONN, cdc, 1);
    try {
      await source.start(null, apply);
      const stats = await runShopWorkload(pool, { seed: 12, ratePerSec: 10_000, durationMs: 0, maxOps: 300 });
      expect(stats.errors).toBe(0);
      for (let i = 0; i < 240 && streamed < stats.ops; i++) await sleep(250);
      expect(streamed).toBe(stats.ops);
      expect(deadLetters).toEqual([]);
      for (const type of [
        'ProductRenamed',
        'CustomerRenamed',
        'ProductCategorized',
        'ProductUncategorized',
        'OrderLineRemoved',
        'OrderStatusChanged',
        'ReviewRemoved',
      ]) {
        expect(types.get(type) ?? 0, type).toBeGreaterThan(0);
      }
      const { mismatches, checks } = await compareAll(shop, legacy, rows);
      expect(mismatches).toEqual([]);
      expect(checks).toBeGreaterThan(300);
    } finally {
      await source.stop();
      await pool.end();
      await legacy.close();
    }
  });
});
