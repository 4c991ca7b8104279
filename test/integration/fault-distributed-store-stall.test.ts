import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { openServerReadModels } from '../../cli/distributed.js';
import type { ComparisonRecord } from '../../compare/ports.js';
import { ShadowComparator } from '../../compare/shadow-compare.js';
import { ShadowQueue } from '../../compare/shadow-queue.js';
import { legacyAnswer, readModelAnswer } from '../../definition/endpoint-calls.js';
import shopMigration from '../../examples/shop/migration.js';
import { runShopWorkload } from '../../examples/shop/workload.js';
import { silentLogger } from '../../lib/logger.js';
import { FileFlagStore } from '../../shadow-api/flag-store.js';
import { createShadowMetrics } from '../../shadow-api/metrics.js';
import { ReadPath } from '../../shadow-api/read-path.js';
import { waitFor } from './support/debezium-bank.js';
import { faultStackReady, shopForFaults, startShopPipeline } from './support/distributed-fault.js';
import { RENAME_HEAVY_MIX } from './support/shop-checks.js';
import { stackPid } from './support/shop-distributed.js';

/**
 * The document store frozen (SIGSTOP of the MongoDB-wire process) for longer than the consumer
 * session timeout, under write load. Reads in `new` mode fall back to legacy within the
 * read-model timeout instead of hanging; the projectors keep (or regain) their group membership
 * and, once the store thaws, catch up: every read-model answer equals legacy's.
 */

const ready = await faultStackReady('fault-distributed-store-stall');

describe.skipIf(!ready)('fault: MongoDB stalled longer than the session timeout (distributed shop)', () => {
  const shop = shopForFaults('fstl');

  it('serves legacy while the store is frozen and projects everything once it thaws', async () => {
    await startShopPipeline(shop);

    const orderId = Number(
      (await shop.pool.query<{ id: number }>('SELECT min(id)::int AS id FROM orders')).rows[0]?.id,
    );
    const endpoint = findEndpoint('orders.detail');
    const opened = openServerReadModels(shop.config, shopMigration);
    const records: ComparisonRecord[] = [];
    const queue = new ShadowQueue();
    const readPath = new ReadPath({
      flags: FileFlagStore.open({ initial: { defaultMode: 'new' } }),
      queue,
      comparator: new ShadowComparator({
        recorder: {
          record: async (r) => {
            records.push(r);
          },
          list: () => [],
          stats: () => {
            throw new Error('unused');
          },
          timeline: () => [],
          close: () => undefined,
        },
      }),
      metrics: createShadowMetrics(new Registry(), queue),
      logger: silentLogger,
      readModelTimeoutMs: 1000,
    });
    const params = endpoint.params.parse({ orderId: String(orderId) });
    const read = () =>
      readPath.serve({
        endpoint: 'orders.detail',
        subject: String(orderId),
        requestKey: `orders.detail:${orderId}`,
        query: (side) =>
          side === 'legacy'
            ? legacyAnswer(endpoint, params, shop.legacyDb)
            : readModelAnswer(endpoint, params, opened.readModels),
      });
    // Warm: the client holds an open connection when the store freezes.
    await waitFor(
      'a read served by the read model',
      async () => (await read()).servedBy === 'readModel',
      60_000,
    );
    records.length = 0;

    const load = runShopWorkload(shop.pool, {
      seed: 41,
      ratePerSec: 40,
      durationMs: 0,
      maxOps: 300,
      mix: RENAME_HEAVY_MIX,
    });
    await sleep(1500);
    const mongo = await stackPid('mongo');
    let stalledRead: { ms: number; servedBy: string; fellBack: boolean };
    process.kill(mongo, 'SIGSTOP');
    try {
      await sleep(1000);
      const t0 = performance.now();
      const served = await read();
      stalledRead = { ms: performance.now() - t0, servedBy: served.servedBy, fellBack: served.fellBack };
      // Longer than the session timeout (8 s): a batch waiting on the store outlives it.
      await sleep(11_000);
    } finally {
      process.kill(mongo, 'SIGCONT');
    }
    const stats = await load;
    expect(stats.errors).toBe(0);
    await shop.waitCaughtUp(await shop.marker(), 150_000);
    await opened.close();
    const { checks, differences } = await shop.compare();
    console.info(
      `read during the stall: ${JSON.stringify(stalledRead)}; projector consumer restarts ${await shop.metric('cqrs_projector_consumer_restarts_total')}; ${checks} checks`,
    );
    expect(stalledRead).toMatchObject({ servedBy: 'legacy', fellBack: true });
    expect(stalledRead.ms).toBeLessThan(8000);
    expect(records.some((r) => r.outcome === 'error' && /did not answer within/.test(r.error ?? ''))).toBe(
      true,
    );
    expect(differences).toEqual([]);
    expect(checks).toBeGreaterThan(300);
  }, 300_000);
});

function findEndpoint(key: string) {
  const entry = shopMigration.endpoints.find((e) => e.key === key);
  if (entry === undefined) throw new Error(`no endpoint ${key}`);
  return entry.definition;
}
