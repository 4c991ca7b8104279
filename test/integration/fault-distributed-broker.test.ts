import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { DROP_REASONS } from '../../connectors/kafka/transaction-reassembler.js';
import { runShopWorkload } from '../../examples/shop/workload.js';
import { faultStackReady, shopForFaults, startShopPipeline } from './support/distributed-fault.js';
import { orderLossDiagnosis } from './support/loss-diagnosis.js';
import { RENAME_HEAVY_MIX } from './support/shop-checks.js';
import { stack } from './support/shop-distributed.js';

/**
 * A Kafka broker restart under write load: Connect rides the outage and re-sends what it had
 * not flushed (Debezium is at-least-once), the translator's and projectors' clients reconnect.
 * Afterwards nothing is wedged, lost or duplicated: every read-model answer equals legacy's.
 */

const ready = await faultStackReady('fault-distributed-broker');

describe.skipIf(!ready)('fault: Kafka broker restarted under load (distributed shop)', () => {
  const shop = shopForFaults('fbrk');

  it('recovers by itself with zero drift', async () => {
    await startShopPipeline(shop);
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
    // A drift is diagnosed from why the translator let records go: say it either way.
    const byReason = await Promise.all(
      DROP_REASONS.map(
        async (reason) =>
          `${reason} ${await shop.metric('cqrs_source_duplicates_dropped_total', { reason })}`,
      ),
    );
    console.info(
      `broker restart took ${restartMs} ms; ${stats.ops} ops; ${checks} checks; duplicates dropped ${dropped} (${byReason.join(', ')}); ` +
        `consumer restarts ${await shop.metric('cqrs_translator_consumer_restarts_total')} translator, ` +
        `${await shop.metric('cqrs_projector_consumer_restarts_total')} projectors`,
    );
    // CI shows the assertion's message, not always the output before it, and may keep only
    // its end: the diagnosis goes there, after a few of the last warnings.
    const diagnosis =
      differences.length === 0
        ? ''
        : `last warnings:\n${shop.log.lines
            .filter((l) => /"level":[45]0/.test(l))
            .slice(-8)
            .join('\n')}\n${byReason.join(', ')}\n${await orderLossDiagnosis(
            shop,
            differences.map((d) => d.path),
          )}`;
    expect(differences, diagnosis).toEqual([]);
    expect(checks).toBeGreaterThan(300);
    expect(shop.log.lines.filter((l) => /"level":50/.test(l) && /stopped for good/.test(l))).toEqual([]);
  }, 300_000);
});
