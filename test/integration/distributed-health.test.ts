import Fastify from 'fastify';
import { MongoClient } from 'mongodb';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { serverReadSide } from '../../cli/read-side.js';
import { ShadowQueue } from '../../compare/shadow-queue.js';
import { ConnectClient } from '../../connectors/debezium/connect-client.js';
import shopMigration from '../../examples/shop/migration.js';
import { silentLogger } from '../../lib/logger.js';
import { type ReadinessProblem, readinessOf, registerHealthRoutes } from '../../shadow-api/health.js';
import { CONNECT_URL, waitFor } from './support/debezium-bank.js';
import { faultStackReady, shopForFaults, startShopPipeline } from './support/distributed-fault.js';

/**
 * /health/ready of the distributed `run` and `serve`: unready (503, naming the component) while
 * the Debezium connector is not RUNNING, the translator or a projector has no running consumer,
 * a store lost data or does not answer, or the read models are staler than
 * health.maxLagSeconds, counting the changes the connector has not yet published; ready again
 * once each recovers.
 */

const ready = await faultStackReady('distributed-health');

interface Answer {
  code: number;
  problems: ReadinessProblem[];
  lagSeconds: number | null;
}

describe.skipIf(!ready)('distributed /health/ready (shop on PostgreSQL)', () => {
  const shop = shopForFaults('h3hlth', { heartbeatMs: 1000, health: { maxLagSeconds: 6 } });

  it('fails naming the component for each outage and recovers', async () => {
    await startShopPipeline(shop);
    const registry = new Registry();
    const side = serverReadSide(shop.config, shopMigration, silentLogger, { registry });
    const app = Fastify();
    registerHealthRoutes(app, {
      health: side.health,
      queue: new ShadowQueue(),
      admin: () => ({ listener: 'public-port' }),
    });
    let last: Answer | null = null;
    const readiness = async (): Promise<Answer> => {
      const res = await app.inject({ method: 'GET', url: '/health/ready' });
      const body = res.json<{ problems: ReadinessProblem[]; lagSeconds: number | null }>();
      last = { code: res.statusCode, problems: body.problems, lagSeconds: body.lagSeconds };
      return last;
    };
    const until = (what: string, check: (a: Answer) => boolean, ms: number) =>
      waitFor(what, async () => check(await readiness()), ms).catch((err: unknown) => {
        throw new Error(`${err instanceof Error ? err.message : String(err)}; last ${JSON.stringify(last)}`);
      });
    const names = (a: Answer) => a.problems.map((p) => p.component);
    const gauge = async (name: string) =>
      (await registry.getSingleMetric(name)?.get())?.values[0]?.value ?? 0;
    const connectorName = shop.connector?.name ?? '';
    try {
      await shop.waitCaughtUp(await shop.marker(), 150_000);
      await until('ready once caught up', (a) => a.code === 200, 90_000);
      const steady = last;

      const connect = new ConnectClient({ url: CONNECT_URL });
      await connect.pause(connectorName);
      await shop.marker();
      await until(
        'the paused connector named',
        (a) => a.code === 503 && names(a).includes('connector'),
        30_000,
      );
      await until(
        'the unpublished change to make the read models stale',
        (a) => names(a).includes('read-models'),
        30_000,
      );
      const pausedLag = await gauge('cqrs_source_connector_lag_seconds');
      await connect.resume(connectorName);
      await until('ready after the resume', (a) => a.code === 200, 120_000);

      await shop.stopTranslator();
      await until('the stopped translator named', (a) => names(a).includes('translator'), 30_000);
      await shop.startTranslator();
      await until('ready with a translator again', (a) => a.code === 200, 90_000);

      for (const p of shop.projectors) await p.stop();
      shop.projectors = [];
      const mongo = new MongoClient(shop.config.stores.mongoUrl);
      await mongo.db(shop.config.stores.mongoDatabase).dropDatabase();
      await mongo.close();
      await until(
        'the stopped projectors and the emptied store named',
        (a) =>
          ['projector order-detail', 'read-model order-detail', 'read-model product-page'].every((n) =>
            names(a).includes(n),
          ),
        30_000,
      );
      const lostAnswer = last;
      await shop.startProjectors();
      await until('ready once the projectors replayed the store', (a) => a.code === 200, 180_000);

      const broken = serverReadSide(
        {
          ...shop.config,
          stores: { ...shop.config.stores, mongoUrl: 'mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=1000' },
        },
        shopMigration,
        silentLogger,
        { registry: new Registry() },
      );
      try {
        await waitFor(
          'an unreachable store named',
          () => readinessOf(broken.health).problems.some((p) => p.component === 'store mongo'),
          30_000,
        );
      } finally {
        await broken.stop();
      }
      console.info(
        `health: steady ${JSON.stringify(steady)}; source lag while paused ${pausedLag.toFixed(1)} s; emptied store ${JSON.stringify(lostAnswer)}`,
      );
      expect(pausedLag).toBeGreaterThan(6);
    } finally {
      await app.close();
      await side.stop();
    }
  }, 600_000);
});
