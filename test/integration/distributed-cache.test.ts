import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { MongoClient } from 'mongodb';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startProjector } from '../../cli/distributed.js';
import { serverReadSide } from '../../cli/read-side.js';
import { domainTopic, EVENT_TYPE_HEADER } from '../../connectors/kafka/domain-topics.js';
import { defineTableRule } from '../../connectors/mapping/rules.js';
import { defineEndpoint } from '../../definition/endpoints.js';
import { defineMigration } from '../../definition/migration.js';
import type { ReadModelHandle } from '../../definition/read-models.js';
import { defineView } from '../../definition/read-models.js';
import type { NewDomainEvent } from '../../eventstore/ports.js';
import { loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { KafkaProjector } from '../../projectors/kafka-runner.js';
import { MongoReadModel } from '../../projectors/stores/mongo-read-models.js';
import { DistributedReadModelCache } from '../../shadow-api/distributed-cache.js';
import { itemsMigration } from './support/items.js';
import { startTcpProxy } from './support/tcp-proxy.js';

/**
 * The distributed read-model cache with writes racing reads: a projector applies batches to a
 * real MongoDB read model and invalidates each batch's documents before it would commit (what
 * KafkaProjector does with `invalidate`), while readers look the same documents up through the
 * cache in a loop. Each write bumps an item's qty; a reader records the store's qty before each
 * cached lookup, and the cached answer must be at least that new. With invalidation switched
 * off the same race must produce stale answers (the check can fail).
 */
const suffix = Math.random().toString(36).slice(2, 8);
const REDIS = 'redis://127.0.0.1:6379';
const MONGO = process.env.MONGO_URL ?? 'mongodb://127.0.0.1:27017';
const database = `h5_cache_${suffix}`;
const migration = itemsMigration();
const ITEMS = 4;
const redis = new Redis(REDIS);
let client: MongoClient;
let clock = 0;

function itemChanged(itemId: number, qty: number): NewDomainEvent {
  const order = `b:0000000001:${String(++clock).padStart(12, '0')}:0000000000:000000:1`;
  return {
    streamType: 'item',
    streamId: `item-${itemId}`,
    type: clock <= ITEMS ? 'ItemAdded' : 'ItemChanged',
    data: { state: { itemId, name: `item ${itemId}`, qty }, changes: {} },
    metadata: {
      op: clock <= ITEMS ? 'c' : 'u',
      table: 'items',
      sourcePosition: order,
      sourceOrder: order,
      sourceTxId: `tx-${clock}`,
      sourceTsMs: 1_700_000_000_000 + clock,
      snapshot: false,
    },
  };
}

const qtyOf = (doc: unknown) => (doc as { qty: number } | null)?.qty ?? -1;

async function lookups(registry: Registry, result: string): Promise<number> {
  const metric = await registry.getSingleMetric('cqrs_cache_lookups_total')?.get();
  return (metric?.values ?? []).filter((v) => v.labels.result === result).reduce((s, v) => s + v.value, 0);
}

/** One race; returns stale answers, hits and checked lookups. */
async function race(run: string, invalidate: boolean) {
  const prefix = `h5_cache_${suffix}_${run}`;
  const registry = new Registry();
  const projectorCache = new DistributedReadModelCache({
    url: REDIS,
    ttlSeconds: 60,
    prefix,
    logger: silentLogger,
  });
  const readerCache = new DistributedReadModelCache({
    url: REDIS,
    ttlSeconds: 60,
    prefix,
    logger: silentLogger,
    registry,
  });
  const projection = new MongoReadModel({
    migration,
    readModel: 'item',
    client,
    database: `${database}_${run}`,
    logger: silentLogger,
  });
  await projection.migrate();
  projection.drainTouched();
  const store: ReadModelHandle = projection.handle();
  const cached = readerCache.wrap(projection.name, store);
  const qty = new Map<number, number>();
  const apply = async (events: NewDomainEvent[]) => {
    // What KafkaProjector.onBatch does with an invalidation.
    const begun = await projection.addressedBy(events);
    if (invalidate) await projectorCache.begin(begun);
    await projection.apply(events);
    const touched = projection.drainTouched();
    if (invalidate) await projectorCache.end(begun, touched);
  };
  await apply(Array.from({ length: ITEMS }, (_, i) => itemChanged(i + 1, 0)));
  for (let i = 1; i <= ITEMS; i++) qty.set(i, 0);

  let writing = true;
  let stale = 0;
  let checked = 0;
  const writer = (async () => {
    for (let round = 0; round < 150; round++) {
      const ids = [1 + (round % ITEMS), 1 + ((round * 3 + 1) % ITEMS)];
      const batch = [...new Set(ids)].map((id) => {
        const next = (qty.get(id) ?? 0) + 1;
        qty.set(id, next);
        return itemChanged(id, next);
      });
      await apply(batch);
      await new Promise((r) => setTimeout(r, 5));
    }
    writing = false;
  })();
  const reader = async (n: number) => {
    for (let i = n; writing; i++) {
      const key = String(1 + (i % ITEMS));
      const before = qtyOf(await store.get(key));
      const answer = qtyOf(await cached.get(key));
      checked++;
      if (answer < before) stale++;
    }
  };
  await Promise.all([writer, reader(0), reader(1), reader(2)]);
  const hits = await lookups(registry, 'hit');
  projectorCache.close();
  readerCache.close();
  await client.db(`${database}_${run}`).dropDatabase();
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  return { stale, hits, checked };
}

describe('distributed read-model cache (MongoDB)', () => {
  beforeAll(async () => {
    client = new MongoClient(MONGO);
    await client.connect();
  });

  afterAll(async () => {
    await client?.close();
    redis.disconnect();
  });

  it('never answers older than the store was when the lookup began, and hits', async () => {
    const result = await race('on', true);
    expect(result.checked).toBeGreaterThan(100);
    expect(result.hits).toBeGreaterThan(0);
    expect(result.stale).toBe(0);
  }, 120_000);

  it('answers stale without the projector invalidation (the check can fail)', async () => {
    const result = await race('off', false);
    expect(result.hits).toBeGreaterThan(0);
    expect(result.stale).toBeGreaterThan(0);
  }, 120_000);

  it('a KafkaProjector with the cache as its invalidation: racing readers never go back, and see the last write', async () => {
    const run = 'kafka';
    const topicPrefix = `h5_cache_${suffix}`;
    const prefix = `h5_cache_${suffix}_${run}`;
    const registry = new Registry();
    const kafka = new Kafka({
      clientId: 'h5-cache',
      brokers: ['127.0.0.1:9092'],
      logLevel: logLevel.NOTHING,
    });
    const projectorCache = new DistributedReadModelCache({ url: REDIS, ttlSeconds: 60, prefix });
    const readerCache = new DistributedReadModelCache({ url: REDIS, ttlSeconds: 60, prefix, registry });
    const projection = new MongoReadModel({
      migration,
      readModel: 'item',
      client,
      database: `${database}_${run}`,
      logger: silentLogger,
    });
    const projector = new KafkaProjector({
      kafka,
      projection,
      topicPrefix,
      partitions: 2,
      store: 'mongo',
      invalidation: projectorCache,
    });
    await projector.start();
    const producer = kafka.producer();
    await producer.connect();
    const store = projection.handle();
    const cached = readerCache.wrap(projection.name, store);
    const send = (events: NewDomainEvent[]) =>
      producer.send({
        topic: domainTopic(topicPrefix, 'item'),
        acks: -1,
        messages: events.map((e) => ({
          key: e.streamId,
          value: JSON.stringify(e),
          headers: { [EVENT_TYPE_HEADER]: e.type },
        })),
      });
    const ROUNDS = 60;
    let writing = true;
    let stale = 0;
    let checked = 0;
    const writer = (async () => {
      for (let round = 1; round <= ROUNDS; round++) {
        await send(Array.from({ length: ITEMS }, (_, i) => itemChanged(i + 1, round)));
        await new Promise((r) => setTimeout(r, 20));
      }
      // Until the projector applied the last round everywhere.
      for (;;) {
        const docs = await Promise.all(Array.from({ length: ITEMS }, (_, i) => store.get(String(i + 1))));
        if (docs.every((d) => qtyOf(d) === ROUNDS)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      writing = false;
    })();
    const reader = async (n: number) => {
      for (let i = n; writing; i++) {
        const key = String(1 + (i % ITEMS));
        const before = qtyOf(await store.get(key));
        const answer = qtyOf(await cached.get(key));
        checked++;
        if (answer < before) stale++;
      }
    };
    try {
      await Promise.all([writer, reader(0), reader(1)]);
      const last = await Promise.all(Array.from({ length: ITEMS }, (_, i) => cached.get(String(i + 1))));
      expect(last.map(qtyOf)).toEqual(Array.from({ length: ITEMS }, () => ROUNDS));
      expect(checked).toBeGreaterThan(50);
      expect(await lookups(registry, 'hit')).toBeGreaterThan(0);
      expect(stale).toBe(0);
    } finally {
      await producer.disconnect();
      await projector.stop();
      projectorCache.close();
      readerCache.close();
      await client.db(`${database}_${run}`).dropDatabase();
      const admin = kafka.admin();
      await admin.connect();
      await admin.deleteTopics({ topics: [domainTopic(topicPrefix, 'item')] }).catch(() => undefined);
      await admin.deleteGroups([`${topicPrefix}.projector.item`]).catch(() => undefined);
      await admin.disconnect();
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
    }
  }, 180_000);

  it("names every view document a looked-up row's change reaches, before and after the writes", async () => {
    const owners = defineTableRule({
      table: 'owners',
      row: z.object({ ownerId: z.number(), name: z.string() }),
      key: 'ownerId',
      stream: { type: 'owner', id: (s) => `owner-${s.ownerId}` },
      onCreate: 'OwnerAdded',
      otherwise: 'OwnerChanged',
      onDelete: 'OwnerRemoved',
    });
    const accounts = defineTableRule({
      table: 'accounts',
      row: z.object({ accountId: z.number(), ownerId: z.number() }),
      key: 'accountId',
      stream: { type: 'account', id: (s) => `account-${s.accountId}` },
      onCreate: 'AccountOpened',
      otherwise: 'AccountChanged',
      onDelete: 'AccountRemoved',
    });
    const withOwners = defineMigration({
      name: 'h5-owners',
      capture: { tables: [owners, accounts] },
      readModels: [
        defineView({
          name: 'account',
          from: 'accounts',
          join: { owner: { table: 'owners', on: 'ownerId', required: true } },
          schema: z.object({ owner: z.string() }),
          select: (root) => {
            const o = root.joins.owner;
            return o && !Array.isArray(o) ? { owner: String(o.row.name) } : null;
          },
        }),
      ],
      domains: {
        accounts: {
          endpoints: {
            get: defineEndpoint({
              route: '/accounts/:accountId',
              params: z.object({ accountId: z.coerce.number() }),
              legacy: { sql: 'SELECT name AS owner FROM owners WHERE 1 = 0' },
              readModel: ({ params, readModels }) =>
                readModels.account?.get(String(params.accountId)) ?? Promise.resolve(null),
            }),
          },
        },
      },
    });
    let order = 0;
    const change = (table: string, streamType: string, type: string, state: Record<string, unknown>) => {
      const at = `b:0000000001:${String(++order).padStart(12, '0')}:0000000000:000000:1`;
      return {
        streamType,
        streamId: `${streamType}-${order}`,
        type,
        data: { state, changes: {} },
        metadata: {
          op: type.endsWith('Removed') ? ('d' as const) : ('u' as const),
          table,
          sourcePosition: at,
          sourceOrder: at,
          sourceTxId: `tx-${order}`,
          sourceTsMs: 1_700_000_000_000 + order,
          snapshot: false,
        },
      };
    };
    const run = 'view';
    const projection = new MongoReadModel({
      migration: withOwners,
      readModel: 'account',
      client,
      database: `${database}_${run}`,
      logger: silentLogger,
    });
    try {
      await projection.migrate();
      projection.drainTouched();
      await projection.apply([
        change('owners', 'owner', 'OwnerAdded', { ownerId: 1, name: 'Ann' }),
        change('owners', 'owner', 'OwnerAdded', { ownerId: 2, name: 'Bob' }),
        ...[1, 2, 3].map((id) =>
          change('accounts', 'account', 'AccountOpened', { accountId: id, ownerId: 1 }),
        ),
        change('accounts', 'account', 'AccountOpened', { accountId: 4, ownerId: 2 }),
      ]);
      expect(
        projection
          .drainTouched()
          .map(([, key]) => key)
          .sort(),
      ).toEqual(['1', '2', '3', '4']);
      const sorted = (docs: [string, string][]) => docs.map(([m, key]) => `${m}/${key}`).sort();
      // A rename reaches every account of the owner, and nothing else.
      const rename = [change('owners', 'owner', 'OwnerChanged', { ownerId: 1, name: 'Anne' })];
      expect(sorted(await projection.addressedBy(rename))).toEqual(['account/1', 'account/2', 'account/3']);
      await projection.apply(rename);
      expect(sorted(projection.drainTouched())).toEqual(['account/1', 'account/2', 'account/3']);
      // An account moving to another owner, and a removed owner (the required lookup drops documents).
      const moved = [change('accounts', 'account', 'AccountChanged', { accountId: 3, ownerId: 2 })];
      expect(sorted(await projection.addressedBy(moved))).toEqual(['account/3']);
      await projection.apply(moved);
      expect(sorted(projection.drainTouched())).toEqual(['account/3']);
      const removed = [change('owners', 'owner', 'OwnerRemoved', { ownerId: 2, name: 'Bob' })];
      expect(sorted(await projection.addressedBy(removed))).toEqual(['account/3', 'account/4']);
      await projection.apply(removed);
      expect(sorted(projection.drainTouched())).toEqual(['account/3', 'account/4']);
      expect(await projection.handle().get('4')).toBeNull();
    } finally {
      await client.db(`${database}_${run}`).dropDatabase();
    }
  });

  it('a projector cut off from Redis waits out the entries, then bumps the epoch when Redis is back', async () => {
    const prefix = `h5_cache_${suffix}_outage`;
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: 6379 });
    const ttlSeconds = 2;
    const projectorCache = new DistributedReadModelCache({
      url: `redis://127.0.0.1:${proxy.port}`,
      ttlSeconds,
      prefix,
      retryMs: 100,
    });
    // The readers still reach Redis: only the projector is cut off.
    const readerCache = new DistributedReadModelCache({ url: REDIS, ttlSeconds, prefix });
    const docs = new Map<string, { qty: number }>([
      ['1', { qty: 0 }],
      ['3', { qty: 0 }],
    ]);
    let reads = 0;
    const store: ReadModelHandle = {
      get: async (key) => {
        reads++;
        return docs.get(key) ?? null;
      },
      find: async () => [],
    };
    const cached = readerCache.wrap('item', store);
    const settle = () => new Promise((r) => setTimeout(r, 100));
    try {
      await projectorCache.begin([]);
      await projectorCache.end([], []);
      await cached.get('1');
      await settle();
      const before = reads;
      expect(qtyOf(await cached.get('1'))).toBe(0);
      expect(reads).toBe(before);

      proxy.outage();
      const started = performance.now();
      await projectorCache.begin([['item', '1']]);
      // Gave up only once every entry that could predate the write had expired.
      expect(performance.now() - started).toBeGreaterThanOrEqual(ttlSeconds * 1000);
      docs.set('1', { qty: 1 });
      await projectorCache.end([['item', '1']], [['item', '1']]);
      expect(qtyOf(await cached.get('1'))).toBe(1);
      // Filled while the projector was cut off, from a store it may have changed unseen.
      await cached.get('3');
      await settle();
      const epoch = Number(await redis.get(`${prefix}:d:epoch`));

      proxy.restore();
      await projectorCache.begin([['item', '5']]);
      await projectorCache.end([['item', '5']], [['item', '5']]);
      expect(Number(await redis.get(`${prefix}:d:epoch`))).toBe(epoch + 1);
      const afterBump = reads;
      await cached.get('3');
      expect(reads).toBe(afterBump + 1);
      expect(await redis.get(`${prefix}:d:p:item:5`)).toBeNull();
    } finally {
      projectorCache.close();
      readerCache.close();
      await proxy.close();
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
    }
  }, 60_000);

  it('wired: a `project` process and the read side of `serve` with cache.redisUrl set', async () => {
    const run = 'wired';
    const topicPrefix = `h5_cache_${suffix}_${run}`;
    const prefix = `h5_cache_${suffix}_${run}`;
    const config = loadConfig({
      env: {},
      file: undefined,
      overrides: {
        legacy: { url: 'mysql://cqrs:cqrs@127.0.0.1:3307/h5_unused' },
        cdc: { name: `h5cdc${suffix}` },
        kafka: { topicPrefix, partitions: 2, sessionTimeoutMs: 8000 },
        stores: { mongoDatabase: `${database}_${run}`, checkIntervalMs: 1000 },
        cache: { redisUrl: REDIS, ttlSeconds: 60, prefix },
      },
    });
    const registry = new Registry();
    const projector = await startProjector(config, migration, 'mongo', silentLogger, new Registry());
    const side = serverReadSide(config, migration, silentLogger, { registry });
    const kafka = new Kafka({
      clientId: 'h5-cache',
      brokers: ['127.0.0.1:9092'],
      logLevel: logLevel.NOTHING,
    });
    const producer = kafka.producer();
    await producer.connect();
    const item = side.readModels.item as ReadModelHandle;
    const send = (qty: number) =>
      producer.send({
        topic: domainTopic(topicPrefix, 'item'),
        acks: -1,
        messages: [itemChanged(1, qty)].map((e) => ({
          key: e.streamId,
          value: JSON.stringify(e),
          headers: { [EVENT_TYPE_HEADER]: e.type },
        })),
      });
    const until = async (qty: number) => {
      for (let i = 0; i < 300 && qtyOf(await item.get('1')) !== qty; i++)
        await new Promise((r) => setTimeout(r, 100));
      return qtyOf(await item.get('1'));
    };
    try {
      await send(1);
      expect(await until(1)).toBe(1);
      expect(qtyOf(await item.get('1'))).toBe(1);
      expect(await lookups(registry, 'hit')).toBeGreaterThan(0);
      // A cached document is replaced by the next write, through the projector's invalidation.
      await send(2);
      expect(await until(2)).toBe(2);
      expect((await redis.keys(`${prefix}:d:e:item:1`)).length).toBe(1);
    } finally {
      await producer.disconnect();
      await side.stop();
      await projector.stop();
      await client.db(`${database}_${run}`).dropDatabase();
      const admin = kafka.admin();
      await admin.connect();
      await admin.deleteTopics({ topics: [domainTopic(topicPrefix, 'item')] }).catch(() => undefined);
      await admin.deleteGroups([`${topicPrefix}.projector.item`]).catch(() => undefined);
      await admin.disconnect();
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
    }
  }, 120_000);
});
