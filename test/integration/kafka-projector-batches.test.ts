import { Client } from '@opensearch-project/opensearch';
import { Kafka, logLevel } from 'kafkajs';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { domainTopic, EVENT_TYPE_HEADER } from '../../connectors/kafka/domain-topics.js';
import { defineTableRule } from '../../connectors/mapping/rules.js';
import { defineEndpoint } from '../../definition/endpoints.js';
import { defineMigration } from '../../definition/migration.js';
import { defineProjection, defineView, type ReadModelHandle } from '../../definition/read-models.js';
import type { NewDomainEvent } from '../../eventstore/ports.js';
import { silentLogger } from '../../lib/logger.js';
import { KafkaProjector, projectorGroupId } from '../../projectors/kafka-runner.js';
import type { DocumentProjection } from '../../projectors/ports.js';
import { MongoReadModel } from '../../projectors/stores/mongo-read-models.js';
import { OpenSearchReadModel, projectionIndex } from '../../projectors/stores/opensearch-read-models.js';

/**
 * KafkaProjector applying the batches of many partitions together (partitionsConcurrency):
 * every aggregate's events must still reach its document in the order they were produced, and
 * the whole topic delivered again (the group rewound) must change nothing in the store.
 * `item-history` records each event's qty in the order it was applied, so a reordered or
 * skipped event shows; its stored version (MongoDB `_v`, OpenSearch `_seq_no`) shows a write.
 */
const suffix = Math.random().toString(36).slice(2, 8);
const MONGO = process.env.MONGO_URL ?? 'mongodb://127.0.0.1:27017';
const OPENSEARCH = process.env.OPENSEARCH_URL ?? 'http://127.0.0.1:9200';
const ITEMS = 24;
const ROUNDS = 25;
const PARTITIONS = 6;

const items = defineTableRule({
  table: 'items',
  row: z.object({ id: z.number(), name: z.string(), qty: z.number() }),
  key: 'id',
  stream: { type: 'item', id: (s) => `item-${s.id}` },
  onCreate: 'ItemAdded',
  onSnapshot: 'ItemSnapshotted',
  otherwise: 'ItemChanged',
  onDelete: 'ItemRemoved',
});
const migration = defineMigration({
  name: 'h4-batches',
  capture: { tables: [items] },
  readModels: [
    defineView({
      name: 'item',
      from: 'items',
      schema: z.object({ qty: z.number() }),
      select: (root) => ({ qty: Number(root.row.qty) }),
    }),
    defineProjection({
      name: 'item-history',
      schema: z.object({ qtys: z.array(z.number()) }),
      canHandle: ['ItemAdded', 'ItemChanged'],
      documentId: (e) => String((e.data as { state: { id: number } }).state.id),
      evolve: (doc: { qtys: number[] } | null, e) => ({
        qtys: [...(doc?.qtys ?? []), (e.data as { state: { qty: number } }).state.qty],
      }),
    }),
  ],
  domains: {
    items: {
      endpoints: {
        get: defineEndpoint({
          route: '/items/:id',
          params: z.object({ id: z.coerce.number() }),
          legacy: { sql: 'SELECT qty FROM items WHERE id = :id' },
          readModel: ({ params, readModels }) =>
            readModels.item?.get(String(params.id)) ?? Promise.resolve(null),
        }),
      },
    },
  },
});

let clock = 0;
function itemEvent(id: number, qty: number): NewDomainEvent {
  const order = `b:0000000001:${String(++clock).padStart(12, '0')}:0000000000:000000:1`;
  return {
    streamType: 'item',
    streamId: `item-${id}`,
    type: qty === 1 ? 'ItemAdded' : 'ItemChanged',
    data: { state: { id, name: `item ${id}`, qty }, changes: {} },
    metadata: {
      op: qty === 1 ? 'c' : 'u',
      table: 'items',
      sourcePosition: order,
      sourceOrder: order,
      sourceTxId: `tx-${clock}`,
      sourceTsMs: 1_700_000_000_000 + clock,
      snapshot: false,
    },
  };
}

const kafka = new Kafka({ clientId: 'h4-batches', brokers: ['127.0.0.1:9092'], logLevel: logLevel.NOTHING });

async function waitFor(what: string, done: () => Promise<boolean> | boolean, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every partition's end offset of the topic. */
async function topicEnds(topic: string): Promise<Map<number, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, BigInt(o.high)]));
  } finally {
    await admin.disconnect();
  }
}

interface StoreUnderTest {
  open(readModel: string): DocumentProjection & { handle(): ReadModelHandle };
  /** Each document of the projection with its stored version. */
  history(): Promise<Map<string, { qtys: number[]; version: unknown }>>;
  cleanup(): Promise<void>;
}

/** Projects the topic with both read models until every partition is committed to its end; returns the projectors' apply calls. */
async function project(store: StoreUnderTest, topicPrefix: string, ends: Map<number, bigint>) {
  const topic = domainTopic(topicPrefix, 'item');
  let applyCalls = 0;
  const projectors = ['item', 'item-history'].map((name) => {
    const projection = store.open(name);
    const apply = projection.apply.bind(projection);
    projection.apply = (events) => {
      applyCalls++;
      return apply(events);
    };
    return new KafkaProjector({
      kafka,
      projection,
      topicPrefix,
      partitions: PARTITIONS,
      partitionsConcurrency: PARTITIONS,
      store: 'test',
    });
  });
  for (const p of projectors) await p.start();
  try {
    await waitFor('every partition committed', () =>
      projectors.every((p) =>
        [...ends].every(([partition, end]) => p.committedOffset(topic, partition) === end),
      ),
    );
  } finally {
    for (const p of projectors) await p.stop();
  }
  return applyCalls;
}

async function produceAll(topicPrefix: string): Promise<number> {
  const producer = kafka.producer();
  await producer.connect();
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [{ topic: domainTopic(topicPrefix, 'item'), numPartitions: PARTITIONS }],
  });
  await admin.disconnect();
  let sent = 0;
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const events = Array.from({ length: ITEMS }, (_, i) => itemEvent(i + 1, round));
      await producer.send({
        topic: domainTopic(topicPrefix, 'item'),
        acks: -1,
        messages: events.map((e) => ({
          key: e.streamId,
          value: JSON.stringify(e),
          headers: { [EVENT_TYPE_HEADER]: e.type },
        })),
      });
      sent += events.length;
    }
  } finally {
    await producer.disconnect();
  }
  return sent;
}

async function rewind(topicPrefix: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (const name of ['item', 'item-history'])
      await admin.resetOffsets({
        groupId: projectorGroupId(topicPrefix, name),
        topic: domainTopic(topicPrefix, 'item'),
        earliest: true,
      });
  } finally {
    await admin.disconnect();
  }
}

async function dropKafka(topicPrefix: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [domainTopic(topicPrefix, 'item')] }).catch(() => undefined);
  await admin
    .deleteGroups(['item', 'item-history'].map((n) => projectorGroupId(topicPrefix, n)))
    .catch(() => undefined);
  await admin.disconnect();
}

const expected = Array.from({ length: ROUNDS }, (_, i) => i + 1);

async function checkOrderAndRedelivery(store: StoreUnderTest, topicPrefix: string) {
  await produceAll(topicPrefix);
  const ends = await topicEnds(domainTopic(topicPrefix, 'item'));
  expect([...ends.values()].filter((end) => end > 0n).length).toBeGreaterThan(1);
  const firstCalls = await project(store, topicPrefix, ends);
  const first = await store.history();
  expect(first.size).toBe(ITEMS);
  for (const [id, doc] of first) expect(doc.qtys, `item ${id}`).toEqual(expected);
  const view = store.open('item').handle();
  for (let id = 1; id <= ITEMS; id++) expect(await view.get(String(id))).toEqual({ qty: ROUNDS });
  // Everything was produced before the projectors started: each fetches every partition's
  // batch at once and writes them together, where one write per partition would take 2 × 6.
  expect(firstCalls).toBeGreaterThan(0);
  expect(firstCalls).toBeLessThan(2 * PARTITIONS);

  await rewind(topicPrefix);
  await project(store, topicPrefix, ends);
  const again = await store.history();
  expect(again).toEqual(first);
  for (let id = 1; id <= ITEMS; id++) expect(await view.get(String(id))).toEqual({ qty: ROUNDS });
  const marks = await store
    .open('item-history')
    .appliedMarks(
      [...ends.keys()].map((partition) => ({ topic: domainTopic(topicPrefix, 'item'), partition })),
    );
  for (const [partition, end] of ends)
    if (end > 0n) expect(marks.get(`${domainTopic(topicPrefix, 'item')}:${partition}`)).toBe(end);
}

describe('KafkaProjector: batches of several partitions applied together', () => {
  let mongo: MongoClient;
  let opensearch: Client;

  beforeAll(async () => {
    mongo = new MongoClient(MONGO);
    await mongo.connect();
    opensearch = new Client({ node: OPENSEARCH });
  });

  afterAll(async () => {
    await mongo?.close();
    await opensearch?.close();
  });

  it('MongoDB: keeps each aggregate in order, and a redelivered topic changes nothing', async () => {
    const topicPrefix = `h4_batches_m_${suffix}`;
    const database = `h4_batches_${suffix}`;
    const store: StoreUnderTest = {
      open: (readModel) =>
        new MongoReadModel({ migration, readModel, client: mongo, database, logger: silentLogger }),
      async history() {
        const docs = await mongo
          .db(database)
          .collection<{ _id: string; doc: { qtys: number[] }; _v: number }>('item-history')
          .find()
          .toArray();
        return new Map(docs.map((d) => [d._id, { qtys: d.doc.qtys, version: d._v }]));
      },
      cleanup: () =>
        mongo
          .db(database)
          .dropDatabase()
          .then(() => undefined),
    };
    try {
      await checkOrderAndRedelivery(store, topicPrefix);
    } finally {
      await store.cleanup();
      await dropKafka(topicPrefix);
    }
  }, 240_000);

  it('stop waits for a store check still running: nothing reads the store once it resolved', async () => {
    const topicPrefix = `h4_stop_${suffix}`;
    const database = `h4_stop_${suffix}`;
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: domainTopic(topicPrefix, 'item'), numPartitions: PARTITIONS }],
    });
    await admin.disconnect();
    const projection = new MongoReadModel({
      migration,
      readModel: 'item',
      client: mongo,
      database,
      logger: silentLogger,
    });
    // Each check's marks read takes 2 s, longer than the consumer takes to leave the group:
    // a stop that does not wait for it returns while it still reads the store.
    let reading = 0;
    let reads = 0;
    const appliedMarks = projection.appliedMarks.bind(projection);
    projection.appliedMarks = async (partitions) => {
      reading++;
      try {
        await new Promise((r) => setTimeout(r, 2000));
        return await appliedMarks(partitions);
      } finally {
        reading--;
        reads++;
      }
    };
    const projector = new KafkaProjector({
      kafka,
      projection,
      topicPrefix,
      partitions: PARTITIONS,
      store: 'test',
      storeCheckIntervalMs: 10,
    });
    try {
      await projector.start();
      await waitFor('a store check under way', () => reading > 0);
    } finally {
      await projector.stop();
    }
    try {
      expect(reading).toBe(0);
      const readsAtStop = reads;
      // The timer fired every 10 ms until the stop: no check starts after it.
      await new Promise((r) => setTimeout(r, 300));
      expect(reading).toBe(0);
      expect(reads).toBe(readsAtStop);
    } finally {
      await mongo.db(database).dropDatabase();
      await dropKafka(topicPrefix);
    }
  }, 120_000);

  it('OpenSearch: keeps each aggregate in order, and a redelivered topic changes nothing', async () => {
    const topicPrefix = `h4_batches_o_${suffix}`;
    const indexPrefix = `h4-batches-${suffix}`;
    const store: StoreUnderTest = {
      open: (readModel) =>
        new OpenSearchReadModel({
          migration,
          readModel,
          client: opensearch,
          indexPrefix,
          logger: silentLogger,
        }),
      async history() {
        const index = projectionIndex(indexPrefix, 'item-history');
        await opensearch.indices.refresh({ index });
        const response = await opensearch.search({
          index,
          body: { size: 1000, seq_no_primary_term: true, query: { match_all: {} } },
        });
        const hits = response.body.hits.hits as {
          _id: string;
          _seq_no: number;
          _source: { doc: { qtys: number[] } };
        }[];
        return new Map(hits.map((h) => [h._id, { qtys: h._source.doc.qtys, version: h._seq_no }]));
      },
      async cleanup() {
        await opensearch.indices.delete({ index: `${indexPrefix}*` }).catch(() => undefined);
      },
    };
    try {
      await checkOrderAndRedelivery(store, topicPrefix);
    } finally {
      await store.cleanup();
      await dropKafka(topicPrefix);
    }
  }, 240_000);
});
