import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaFrom, lagFreshness } from '../../cli/distributed.js';
import { ConnectClient } from '../../connectors/debezium/connect-client.js';
import shopMigration from '../../examples/shop/migration.js';
import { silentLogger } from '../../lib/logger.js';
import { CONNECT_URL, connectReachable, waitFor } from './support/debezium-bank.js';
import { pgReachable } from './support/postgres.js';
import { ShopDistributed } from './support/shop-distributed.js';

/**
 * A source connector that stops capturing (paused here; failed or restarting alike) leaves
 * every consumer group at the end of its topics while the legacy database moves on: freshness
 * must not say "caught up" then, or the comparison would count real drift as lag.
 */

const ready = (await connectReachable()) && (await pgReachable());

describe.skipIf(!ready)('freshness sees the source connector (distributed shop)', () => {
  const shop = new ShopDistributed('fcon');
  const connect = new ConnectClient({ url: CONNECT_URL });

  beforeAll(async () => {
    await shop.setup();
  });

  afterAll(async () => {
    if (shop.connector) await connect.resume(shop.connector.name).catch(() => undefined);
    await shop.close();
  });

  it('is not caught up while the connector is paused, although every group is at the end', async () => {
    const name = shop.connector?.name ?? '';
    await shop.startTranslator();
    await shop.startProjectors();
    await shop.waitCaughtUp(await shop.marker(), 150_000);
    // Every table's snapshot end was read by its mark (last_in_data_collection), none by the grace.
    expect(await shop.metric('cqrs_translator_snapshot_tables_unclosed_total')).toBe(0);
    expect(shop.translator?.source.describe()).toMatchObject({ openSnapshotTables: [] });
    const freshness = lagFreshness(shop.config, shopMigration, kafkaFrom(shop.config, 'test', silentLogger));
    expect(await freshness.isCaughtUp()).toBe(true);

    await connect.pause(name);
    await waitFor(
      'the connector to be paused',
      async () => (await connect.status(name)).connector.state === 'PAUSED',
      60_000,
    );
    expect(await freshness.isCaughtUp()).toBe(false);

    await connect.resume(name);
    await waitFor('freshness to be caught up again', () => freshness.isCaughtUp(), 60_000);
  }, 300_000);
});
