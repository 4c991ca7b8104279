import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client as OpenSearchClient } from '@opensearch-project/opensearch';
import { MongoClient } from 'mongodb';
import {
  kafkaFrom,
  type RunningProjector,
  type RunningTranslator,
  startProjector,
  startTranslator,
} from '../../cli/distributed.js';
import { deployConnector } from '../../connectors/debezium/cli.js';
import { mariadbConnector, signalTableDdl, transactionTopic } from '../../connectors/debezium/config.js';
import { ConnectClient } from '../../connectors/debezium/connect-client.js';
import { parseTransactionRecord } from '../../connectors/debezium/record.js';
import type { PublishedRecord, PublishTiming } from '../../connectors/kafka/translator.js';
import { type Config, configSchema } from '../../lib/config.js';
import type { DocumentProjection } from '../../projectors/ports.js';
import { BENCH_MIGRATION } from '../adapter.js';
import type { CdcPath } from './cdc.js';
import { type MarkerTimes, stageLatencies } from './cdc-stages.js';

export const DEBEZIUM_FRESHNESS_METHOD =
  'the same marker transactions as the embedded path; lag = time from the COMMIT acknowledgement to the first ' +
  'poll (every 2 ms) at which the account-summary projector (MongoDB) has committed the Kafka offset past the ' +
  'domain event the translator published for that GTID; connector started with snapshot.mode=no_data (streaming ' +
  'only), translator and both projectors (MongoDB, OpenSearch) in the harness process';

/** Calls and time spent in one store operation of the projectors, per store. */
interface OperationTimes {
  calls: number;
  ms: number;
  events: number;
}

/**
 * Wraps a projection's store calls with timers: where a projector's batch spends its time,
 * without changing what it does.
 */
function timeStoreCalls(
  projection: DocumentProjection,
  store: string,
  times: Map<string, OperationTimes>,
): void {
  const timed =
    <A extends unknown[], R>(op: string, fn: (...args: A) => Promise<R>, count?: (...args: A) => number) =>
    async (...args: A): Promise<R> => {
      const started = performance.now();
      try {
        return await fn(...args);
      } finally {
        const key = `${store}.${op}`;
        const t = times.get(key) ?? { calls: 0, ms: 0, events: 0 };
        t.calls++;
        t.ms += performance.now() - started;
        t.events += count?.(...args) ?? 0;
        times.set(key, t);
      }
    };
  const p = projection as { -readonly [K in keyof DocumentProjection]: DocumentProjection[K] };
  p.apply = timed('apply', projection.apply.bind(projection), (events) => events.length);
  p.appliedMarks = timed('appliedMarks', projection.appliedMarks.bind(projection));
  p.markApplied = timed('markApplied', projection.markApplied.bind(projection));
  if (projection.markAppliedMany)
    p.markAppliedMany = timed(
      'markAppliedMany',
      projection.markAppliedMany.bind(projection),
      (marks) => marks.length,
    );
}

/** The run's MongoDB database and OpenSearch indexes. */
async function dropStores(config: Config): Promise<void> {
  const mongo = new MongoClient(config.stores.mongoUrl);
  try {
    await mongo.db(config.stores.mongoDatabase).dropDatabase();
  } finally {
    await mongo.close();
  }
  const opensearch = new OpenSearchClient({ node: config.stores.opensearchUrl });
  try {
    await opensearch.indices.delete({ index: `${config.stores.opensearchIndexPrefix}*` });
  } finally {
    await opensearch.close();
  }
}

/**
 * When Connect produced each marker's END record: read back from the transaction topic after
 * the level (reading it during the level would load the process being measured).
 */
async function markEndTimes(config: Config, timeline: Map<string, MarkerTimes>): Promise<void> {
  const kafka = kafkaFrom(config, 'bench-timeline');
  const topic = transactionTopic(config.cdc.name);
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
  const high = BigInt(ends[0]?.high ?? '0');
  if (high === 0n) return;
  const consumer = kafka.consumer({
    groupId: `${config.kafka.topicPrefix}.bench-timeline.${randomBytes(3).toString('hex')}`,
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise<void>((done, fail) => {
      consumer
        .run({
          eachMessage: async ({ message }) => {
            const marker = parseTransactionRecord(message.value);
            const times = marker?.status === 'END' ? timeline.get(marker.id) : undefined;
            if (times !== undefined) times.produced = Number(message.timestamp);
            if (BigInt(message.offset) + 1n >= high) done();
          },
        })
        .catch(fail);
    });
  } finally {
    await consumer.disconnect();
  }
}

/** What each store operation of the projectors cost over the level, per call. */
function storeCallReport(times: Map<string, OperationTimes>) {
  return Object.fromEntries(
    [...times].map(([op, t]) => [
      op,
      {
        calls: t.calls,
        meanMs: Math.round((t.ms / Math.max(1, t.calls)) * 10) / 10,
        totalMs: Math.round(t.ms),
        ...(t.events > 0 ? { eventsPerCall: Math.round((t.events / t.calls) * 10) / 10 } : {}),
      },
    ]),
  );
}

/** The read model whose projector tells when a marker is visible, placed in MongoDB as before. */
const SUMMARY = 'account-summary';

/**
 * The distributed path: Debezium MariaDB connector on Kafka Connect → Kafka → translator →
 * projectors → MongoDB / OpenSearch. Its own topic prefix, database and indexes per run,
 * removed at stop.
 */
export const debeziumPath: CdcPath = {
  name: 'debezium-kafka',
  method: DEBEZIUM_FRESHNESS_METHOD,
  profileEveryLevel: true,
  async start(ctx) {
    const { host, port, user, password } = ctx.server;
    const database = ctx.fixture.dataset.database;
    // Named after the bench database, so runs against other databases on the same stack never collide.
    const run = `${database}_${randomBytes(3).toString('hex')}`;
    const config: Config = configSchema.parse({
      legacy: { url: `mysql://${user}:${password}@${host}:${port}/${database}` },
      cdc: { name: run },
      kafka: { topicPrefix: run, partitions: 6 },
      stores: {
        mongoDatabase: run,
        opensearchIndexPrefix: run.toLowerCase().replaceAll('_', '-'),
        placement: { [SUMMARY]: 'mongo', 'transaction-history': 'opensearch' },
      },
      log: { level: 'warn' },
    });
    await ctx.fixture.pool.query(signalTableDdl('mariadb'));
    const connect = new ConnectClient({ url: config.connect.url });
    const connectorName = run;
    await deployConnector(
      connect,
      mariadbConnector({
        name: connectorName,
        topicPrefix: config.cdc.name,
        host,
        port,
        user,
        password,
        database,
        tables: [...BENCH_MIGRATION.tables],
        serverId: 400_000 + Math.floor(Math.random() * 1_000_000),
        kafkaBootstrap: config.kafka.brokers.join(','),
        snapshotMode: 'no_data',
        snapshotLockingMode: 'none',
        pollIntervalMs: config.connect.pollIntervalMs,
      }),
      { waitMs: 120_000 },
    );
    /** Per published marker: where its events landed, offsets parsed once (polled every 2 ms). */
    const published = new Map<string, { topic: string; partition: number; offset: bigint }[]>();
    const timeline = new Map<string, MarkerTimes>();
    const storeTimes = new Map<string, OperationTimes>();
    let translator: RunningTranslator | undefined;
    const projectors: RunningProjector[] = [];
    const stop = async () => {
      await translator?.stop();
      // Stopped before their stores are dropped: a running projector would take that for lost data.
      for (const p of projectors) await p.stop();
      await dropStores(config).catch(() => undefined);
      await connect.delete(connectorName).catch(() => undefined);
      await sleep(2000);
      const admin = kafkaFrom(config, 'bench-cleanup').admin();
      await admin.connect();
      const topics = (await admin.listTopics()).filter(
        (t) =>
          t.startsWith(`${config.cdc.name}.`) ||
          t.startsWith(`${config.kafka.topicPrefix}.`) ||
          t === `schema-history.${config.cdc.name}` ||
          t === `__debezium-heartbeat.${config.cdc.name}`,
      );
      if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => undefined);
      const groups = (await admin.listGroups()).groups
        .map((g) => g.groupId)
        .filter((g) => g.startsWith(`${config.kafka.topicPrefix}.`));
      if (groups.length > 0) await admin.deleteGroups(groups).catch(() => undefined);
      await admin.disconnect();
    };
    try {
      const onPublished = (txId: string, records: PublishedRecord[], timing: PublishTiming) => {
        published.set(
          txId,
          records.map((r) => ({ topic: r.topic, partition: r.partition, offset: BigInt(r.offset) })),
        );
        const marker = timeline.get(txId);
        if (marker === undefined) return;
        marker.captured = timing.capturedAtMs;
        marker.received = timing.receivedAtMs;
        marker.published = Date.now();
      };
      translator = await startTranslator(config, BENCH_MIGRATION, ctx.logger, undefined, onPublished);
      for (const store of ['mongo', 'opensearch'] as const) {
        const running = await startProjector(config, BENCH_MIGRATION, store, ctx.logger);
        projectors.push(running);
        for (const projection of running.projections) timeStoreCalls(projection, store, storeTimes);
      }
    } catch (err) {
      await stop();
      throw err;
    }
    const mongo = projectors[0];
    const summary = mongo?.projectors[mongo.names.indexOf(SUMMARY)];
    return {
      visible(gtid, committedAtMs) {
        let marker = timeline.get(gtid);
        if (marker === undefined) {
          marker = { committed: committedAtMs };
          timeline.set(gtid, marker);
        }
        const records = published.get(gtid);
        if (records === undefined || summary === undefined) return false;
        const seen = records.every((r) => summary.committedOffset(r.topic, r.partition) > r.offset);
        if (seen) marker.visible = Date.now();
        return seen;
      },
      async levelReport() {
        await markEndTimes(config, timeline);
        const report = {
          stages: stageLatencies(timeline.values()),
          log: { storeCalls: storeCallReport(storeTimes) },
        };
        timeline.clear();
        storeTimes.clear();
        return report;
      },
      stop,
    };
  },
};
