import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@opensearch-project/opensearch';
import { MongoClient } from 'mongodb';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  distributedLag,
  openServerReadModels,
  openStore,
  type RunningTranslator,
  startTranslator,
} from '../../cli/distributed.js';
import { type OpenedLegacyDb, openLegacyDb } from '../../connectors/legacy/index.js';
import { shopPool } from '../../examples/shop/db.js';
import type { OrderDetail } from '../../examples/shop/documents.js';
import { SHOP_TABLES } from '../../examples/shop/generate.js';
import shop from '../../examples/shop/migration.js';
import { runShopWorkload } from '../../examples/shop/workload.js';
import { type Config, loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { OpenSearchReadModel } from '../../projectors/stores/opensearch-read-models.js';
import {
  connectReachable,
  dropKafkaState,
  testKafka,
  uniqueSuffix,
  waitFor,
} from './support/debezium-bank.js';
import {
  type DeployedPgConnector,
  deployPgConnector,
  dropPgState,
  LEGACY_PG,
  pgReachable,
} from './support/postgres.js';
import { exited, ProjectorProcesses } from './support/projector-processes.js';
import { compareShopChecks, FANOUT_SQL, RENAME_HEAVY_MIX } from './support/shop-checks.js';
import { capturingLogger, translatorDiagnosis } from './support/translator-diagnosis.js';

/**
 * The shop definition on the distributed path: Debezium's PostgreSQL connector → Kafka → the
 * translator (in this process) → domain topics → projector processes into MongoDB (order
 * details, product pages) and OpenSearch (customer order pages), with a MongoDB projector
 * SIGKILLed and replaced in the middle of a write burst; then every check equal.
 */

const connectUp = await connectReachable();
const pgUp = await pgReachable();
if (!connectUp || !pgUp)
  console.warn(
    'e2e-shop-distributed: needs the stack (`bash stack/stack.sh up`) and PostgreSQL (`bash scripts/legacy-pg.sh up`); skipping',
  );

const projectors = new ProjectorProcesses();
const stderr = projectors.stderr;
const spawnProjector = (configFile: string, store: string) => projectors.spawn(configFile, store);

describe.skipIf(!connectUp || !pgUp)(
  'distributed path end to end on the sample shop: Debezium PostgreSQL → Kafka → MongoDB and OpenSearch',
  () => {
    const suffix = uniqueSuffix();
    const database = `shop_dist_${suffix}`;
    const url = `postgres://${LEGACY_PG.user}:${LEGACY_PG.password}@${LEGACY_PG.host}:${LEGACY_PG.port}/${database}`;
    const dir = mkdtempSync(join(tmpdir(), 'cqrs-dist-shop-'));
    const configFile = join(dir, 'config.json');
    const kafka = testKafka(`t-dshop-${suffix}`);
    const children: ChildProcess[] = [];
    let pool: pg.Pool;
    let legacyDb: OpenedLegacyDb;
    let connector: DeployedPgConnector | undefined;
    let translator: RunningTranslator | undefined;
    let config: Config;

    async function one<T>(sql: string, params: unknown[] = []): Promise<T> {
      const row = (await pool.query(sql, params)).rows[0] as T | undefined;
      if (row === undefined) throw new Error(`no row for ${sql}`);
      return row;
    }

    beforeAll(async () => {
      const create = shop.sample?.create;
      if (create === undefined) throw new Error('the shop definition has no sample hooks');
      await create({ url, scale: 'tiny', seed: 7, force: false, progress: () => undefined });
      pool = shopPool(LEGACY_PG, database, 2);
      connector = await deployPgConnector(database, `shop_${suffix}`, SHOP_TABLES);
      legacyDb = openLegacyDb(url, { poolSize: 2 });
      const file = {
        legacy: { url },
        definition: 'examples/shop/migration.ts',
        cdc: { name: connector.topicPrefix, snapshotChunkRows: 500 },
        kafka: { topicPrefix: `t_dshop_${suffix}`, partitions: 4, sessionTimeoutMs: 8000 },
        stores: {
          // Documents by key in MongoDB; the keyset-paged customer order lists in OpenSearch.
          placement: { 'order-detail': 'mongo', 'product-page': 'mongo', 'customer-orders': 'opensearch' },
          mongoDatabase: `t_dshop_${suffix}`,
          opensearchIndexPrefix: `t-dshop-${suffix}`,
        },
      };
      writeFileSync(configFile, JSON.stringify(file));
      config = loadConfig({ file: configFile, env: {} });
    });

    afterAll(async () => {
      for (const child of children) child.kill('SIGKILL');
      await Promise.all(children.map(exited));
      await translator?.stop();
      await connector?.remove();
      if (config !== undefined) {
        await dropKafkaState(
          kafka,
          [connector?.topicPrefix ?? '', config.kafka.topicPrefix],
          [
            `${config.kafka.topicPrefix}.translator`,
            ...shop.readModels.map((m) => `${config.kafka.topicPrefix}.projector.${m.name}`),
          ],
        );
        const mongo = new MongoClient(config.stores.mongoUrl);
        await mongo
          .db(config.stores.mongoDatabase)
          .dropDatabase()
          .catch(() => undefined);
        await mongo.close();
        const os = new Client({ node: config.stores.opensearchUrl });
        await os.indices.delete({ index: `${config.stores.opensearchIndexPrefix}-*` }).catch(() => undefined);
        await os.close();
      }
      await legacyDb?.close();
      await pool?.end();
      await dropPgState(database, connector ? [connector.slotName] : []);
      rmSync(dir, { recursive: true, force: true });
    });

    it('read models equal the legacy JOIN answers for every order, product and customer page, with a projector killed and replaced mid-burst', async () => {
      const translatorLog = capturingLogger();
      translator = await startTranslator(config, shop, translatorLog.logger);
      const mongoA = spawnProjector(configFile, 'mongo');
      const mongoB = spawnProjector(configFile, 'mongo');
      const searchProjector = spawnProjector(configFile, 'opensearch');
      children.push(mongoA, mongoB, searchProjector);
      const lag = () => distributedLag(config, shop, kafka);

      // The fan-out subjects, before any change: a product on an order, a customer's latest order.
      const target = await one<{ orderId: number; productId: number; name: string }>(
        FANOUT_SQL.productOnOrder,
      );
      const customer = await one<{ orderId: number; customerId: number; first: string; last: string }>(
        FANOUT_SQL.customerWithOrder,
      );

      // The snapshot flows through first; the burst starts while it is still being projected.
      await waitFor(
        'the snapshot to reach the domain topics',
        () => (translator?.source.deliveredCount() ?? 0) > 0,
        120_000,
      );
      const burst = runShopWorkload(pool, {
        seed: 13,
        ratePerSec: 120,
        durationMs: 0,
        maxOps: 360,
        mix: RENAME_HEAVY_MIX,
      });
      await sleep(600);
      // Renames forced in the burst, on the pool's second connection.
      await pool.query('UPDATE products SET name = $2, updated_at = now() WHERE id = $1', [
        target.productId,
        `E2E Renamed ${database}`,
      ]);
      await sleep(600);
      mongoA.kill('SIGKILL');
      await exited(mongoA);
      await pool.query(
        'UPDATE customers SET first_name = $2, last_name = $3, updated_at = now() WHERE id = $1',
        [customer.customerId, 'Renamed', `While-Killed-${suffix}`],
      );
      await sleep(1000);
      children.push(spawnProjector(configFile, 'mongo'));
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

      // A marker transaction: once the translator has published it, everything before it is in Kafka.
      const marker = await one<{ xid: string }>(
        `WITH touched AS (UPDATE suppliers SET email = email WHERE id = (SELECT min(id) FROM suppliers) RETURNING id)
         SELECT (txid_current() % 4294967296)::text AS xid FROM touched`,
      );
      await waitFor(
        'the translator to publish the marker transaction',
        () => translator?.source.lastTransaction()?.id === marker.xid,
        120_000,
      ).catch(async (err: unknown) => {
        throw new Error(
          `${err instanceof Error ? err.message : String(err)} (marker ${marker.xid}); ${await translatorDiagnosis(translator, config, kafka, connector?.name, translatorLog.lines)}`,
        );
      });
      let last: unknown;
      try {
        await waitFor(
          'every consumer group to reach the end of its topics',
          async () => {
            const report = await lag();
            last = report;
            return report.total === 0;
          },
          120_000,
        );
      } catch (err) {
        // Say which group is behind and what the projector processes said.
        throw new Error(
          `${err instanceof Error ? err.message : String(err)}; lag ${JSON.stringify(last)}; projectors: ${stderr.join('').slice(0, 2000)}`,
        );
      }
      expect(mongoA.signalCode).toBe('SIGKILL');
      const search = openStore(config, shop, 'opensearch', silentLogger);
      for (const model of search.readModels) if (model instanceof OpenSearchReadModel) await model.refresh();
      await search.close();

      const opened = openServerReadModels(config, shop);
      try {
        const { checks, seen, differences } = await compareShopChecks(legacyDb, opened.readModels);
        expect(differences).toEqual([]);
        expect(checks).toBeGreaterThan(300);
        expect(seen['orders.detail']).toBeGreaterThan(200);
        expect(seen['catalog.product']).toBeGreaterThan(30);
        expect(seen['orders.byCustomer']).toBeGreaterThan(50);
        expect(seen.nulls).toBe(2);

        // The fan-out, concretely: the order shows the product's and the customer's names as they are now.
        const now = await one<{ name: string }>('SELECT name FROM products WHERE id = $1', [
          target.productId,
        ]);
        expect(now.name).not.toBe(target.name);
        const order = (await opened.readModels['order-detail']?.get(
          String(target.orderId),
        )) as OrderDetail | null;
        expect(order?.items.find((l) => l.productId === target.productId)?.name).toBe(now.name);
        const c = await one<{ first: string; last: string }>(
          'SELECT first_name AS first, last_name AS last FROM customers WHERE id = $1',
          [customer.customerId],
        );
        expect(`${c.first} ${c.last}`).not.toBe(`${customer.first} ${customer.last}`);
        const placed = (await opened.readModels['order-detail']?.get(
          String(customer.orderId),
        )) as OrderDetail | null;
        expect(placed?.customer).toMatchObject({
          customerId: customer.customerId,
          name: `${c.first} ${c.last}`,
        });
      } finally {
        await opened.close();
      }
      expect(stderr.filter((line) => /error/i.test(line))).toEqual([]);
    }, 300_000);
  },
);
