import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { serverReadSide } from '../../cli/read-side.js';
import shopMigration from '../../examples/shop/migration.js';
import { runShopWorkload } from '../../examples/shop/workload.js';
import { silentLogger } from '../../lib/logger.js';
import { faultStackReady, shopForFaults, startShopPipeline } from './support/distributed-fault.js';
import { RENAME_HEAVY_MIX } from './support/shop-checks.js';
import { stack } from './support/shop-distributed.js';

/**
 * Kafka Connect restarted under write load. Debezium re-sends what followed its last flushed
 * offset; nothing may wedge, every read-model answer equals legacy's afterwards, and while
 * Connect is down the measured lag grows (the connector's distance to the legacy change log)
 * instead of reading 0 because every consumer group sits at the end of its topics.
 */

const ready = await faultStackReady('fault-distributed-connect-restart');

describe.skipIf(!ready)('fault: Kafka Connect restarted under load (distributed shop)', () => {
  const shop = shopForFaults('h3crst', { heartbeatMs: 1000 });

  it('recovers by itself with zero drift, and lag rises during the restart', async () => {
    await startShopPipeline(shop);
    const side = serverReadSide(shop.config, shopMigration, silentLogger, { registry: new Registry() });
    const lagNow = () => side.health?.lagSeconds() ?? 0;
    try {
      await shop.waitCaughtUp(await shop.marker(), 150_000);
      const load = runShopWorkload(shop.pool, {
        seed: 33,
        ratePerSec: 40,
        durationMs: 0,
        maxOps: 400,
        mix: RENAME_HEAVY_MIX,
      });
      await sleep(2000);
      let maxLag = 0;
      let watching = true;
      const watch = (async () => {
        while (watching) {
          maxLag = Math.max(maxLag, lagNow());
          await sleep(250);
        }
      })();
      const t0 = Date.now();
      await stack('restart', 'connect');
      const restartMs = Date.now() - t0;
      const stats = await load;
      expect(stats.errors).toBe(0);
      await shop.waitCaughtUp(await shop.marker(), 240_000);
      watching = false;
      await watch;
      const { checks, differences } = await shop.compare();
      console.info(
        `connect restart took ${restartMs} ms; ${stats.ops} ops; ${checks} checks; max lag ${maxLag.toFixed(1)} s; ` +
          `duplicates dropped ${await shop.metric('cqrs_source_duplicates_dropped_total')}`,
      );
      expect(differences).toEqual([]);
      expect(checks).toBeGreaterThan(300);
      expect(maxLag).toBeGreaterThan(3);
      expect(shop.log.lines.filter((l) => /"level":50/.test(l) && /stopped for good/.test(l))).toEqual([]);
    } finally {
      await side.stop();
    }
  }, 420_000);
});
