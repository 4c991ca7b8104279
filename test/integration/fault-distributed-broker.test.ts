import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runShopWorkload } from '../../examples/shop/workload.js';
import { connectReachable, waitFor } from './support/debezium-bank.js';
import { pgReachable } from './support/postgres.js';
import { RENAME_HEAVY_MIX } from './support/shop-checks.js';
import { ShopDistributed, stack, stackManaged } from './support/shop-distributed.js';

/**
 * A Kafka broker restart under write load: Connect rides the outage and re-sends what it had
 * not flushed (Debezium is at-least-once), the translator's and projectors' clients reconnect.
 * Afterwards nothing is wedged, lost or duplicated: every read-model answer equals legacy's.
 */

const ready = (await connectReachable()) && (await pgReachable()) && (await stackManaged());
if (!ready)
  console.warn('fault-distributed-broker: needs the stack started by stack.sh and PostgreSQL; skipping');

describe.skipIf(!ready)('fault: Kafka broker restarted under load (distributed shop)', () => {
  const shop = new ShopDistributed('fbrk');

  beforeAll(async () => {
    await shop.setup();
  });

  afterAll(async () => {
    await shop.close();
  });

  it('recovers by itself with zero drift', async () => {
    const translator = await shop.startTranslator();
    await shop.startProjectors();
    await waitFor(
      'the snapshot to reach the domain topics',
      () => translator.source.deliveredCount() > 0,
      60_000,
    );
    const load = runShopWorkload(shop.pool, {
      seed: 21,
      ratePerSec: 40,
      durationMs: 0,
      maxOps: 400,
      mix: RENAME_HEAVY_MIX,
    });
    await sleep(2000);
    const t0 = Date.now();
    await stack('restart', 'kafka');
    const restartMs = Date.now() - t0;
    const stats = await load;
    expect(stats.errors).toBe(0);
    const marker = await shop.marker();
    await shop.waitCaughtUp(marker, 150_000);
    const { checks, differences } = await shop.compare();
    const dropped = await shop.metric('cqrs_source_duplicates_dropped_total');
    console.info(
      `broker restart took ${restartMs} ms; ${stats.ops} ops; ${checks} checks; duplicates dropped ${dropped}; ` +
        `consumer restarts ${await shop.metric('cqrs_translator_consumer_restarts_total')} translator, ` +
        `${await shop.metric('cqrs_projector_consumer_restarts_total')} projectors`,
    );
    expect(differences).toEqual([]);
    expect(checks).toBeGreaterThan(300);
    expect(shop.log.lines.filter((l) => /"level":50/.test(l) && /stopped for good/.test(l))).toEqual([]);
  }, 300_000);
});
