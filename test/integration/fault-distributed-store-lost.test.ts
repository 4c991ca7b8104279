import { Client } from '@opensearch-project/opensearch';
import { MongoClient } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { runShopWorkload } from '../../examples/shop/workload.js';
import { waitFor } from './support/debezium-bank.js';
import { faultStackReady, shopForFaults, startShopPipeline } from './support/distributed-fault.js';
import { RENAME_HEAVY_MIX } from './support/shop-checks.js';

/**
 * A read-model store that lost its data behind the projectors' back (the MongoDB database
 * dropped and every OpenSearch index deleted: what a restore from an empty backup, or a restart
 * of an in-memory store, leaves) while the consumer groups' offsets say everything is applied.
 * Each projector notices it without a new event arriving (its applied marks are gone while
 * offsets are committed), reports it, and replays the domain topics: afterwards every
 * read-model answer equals legacy's again.
 */

const ready = await faultStackReady('fault-distributed-store-lost');

describe.skipIf(!ready)('fault: read-model stores emptied behind the projectors (distributed shop)', () => {
  const shop = shopForFaults('h3slost', { stores: { checkIntervalMs: 1000 } });

  it('detects the loss, reports it and rebuilds every document from the domain topics', async () => {
    await startShopPipeline(shop);
    const load = await runShopWorkload(shop.pool, {
      seed: 5,
      ratePerSec: 40,
      durationMs: 0,
      maxOps: 150,
      mix: RENAME_HEAVY_MIX,
    });
    expect(load.errors).toBe(0);
    await shop.waitCaughtUp(await shop.marker(), 150_000);
    expect((await shop.compare()).differences).toEqual([]);

    const mongo = new MongoClient(shop.config.stores.mongoUrl);
    await mongo.db(shop.config.stores.mongoDatabase).dropDatabase();
    await mongo.close();
    const search = new Client({ node: shop.config.stores.opensearchUrl });
    await search.indices.delete({ index: `${shop.config.stores.opensearchIndexPrefix}-*` });
    await search.close();
    const emptied = await shop.compare();
    expect(emptied.differences.length).toBeGreaterThan(0);

    // No event arrives: the idle check alone must notice.
    const projectors = shop.projectors.flatMap((p) => p.projectors);
    await waitFor(
      'every projector to notice its store lost data',
      () => shop.log.lines.filter((l) => /lacks .* data the consumer group committed/.test(l)).length >= 3,
      30_000,
    );
    const detected = shop.log.lines.filter((l) => /lacks .* data the consumer group committed/.test(l));
    await waitFor(
      'the lost partitions to be replayed',
      async () =>
        projectors.every((p) => p.lostPartitions().length === 0) &&
        (await shop.metric('cqrs_store_data_lost')) === 0,
      120_000,
    );
    await shop.waitCaughtUp(await shop.marker(), 150_000);
    const after = await shop.compare();
    console.info(
      `store-lost: ${detected.length} partitions detected; ${after.checks} checks after the replay; first detection: ${detected[0]}`,
    );
    expect(new Set(detected.map((l) => /"projection":"([^"]+)"/.exec(l)?.[1]))).toEqual(
      new Set(['order-detail', 'product-page', 'customer-orders']),
    );
    expect(after.differences).toEqual([]);
    expect(after.checks).toBeGreaterThan(100);
    expect(shop.log.lines.filter((l) => /STORE_DATA_LOST|stopped for good/.test(l))).toEqual([]);
  }, 300_000);
});
