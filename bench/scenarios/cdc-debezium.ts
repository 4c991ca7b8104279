import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  kafkaFrom,
  type RunningProjector,
  type RunningTranslator,
  startProjector,
  startTranslator,
} from '../../cli/distributed.js';
import { deployConnector } from '../../connectors/debezium/cli.js';
import { mariadbConnector, signalTableDdl } from '../../connectors/debezium/config.js';
import { ConnectClient } from '../../connectors/debezium/connect-client.js';
import type { PublishedRecord } from '../../connectors/kafka/translator.js';
import { type Config, configSchema } from '../../lib/config.js';
import { BENCH_MIGRATION } from '../adapter.js';
import type { CdcPath } from './cdc.js';

export const DEBEZIUM_FRESHNESS_METHOD =
  'the same marker transactions as the embedded path; lag = time from the COMMIT acknowledgement to the first ' +
  'poll (every 2 ms) at which the account-summary projector (MongoDB) has committed the Kafka offset past the ' +
  'domain event the translator published for that GTID; connector started with snapshot.mode=no_data (streaming ' +
  'only), translator and both projectors (MongoDB, OpenSearch) in the harness process';

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
  async start(ctx) {
    const suffix = randomBytes(3).toString('hex');
    const { host, port, user, password } = ctx.server;
    const database = ctx.fixture.dataset.database;
    const config: Config = configSchema.parse({
      legacy: { url: `mysql://${user}:${password}@${host}:${port}/${database}` },
      cdc: { name: `bench_${suffix}` },
      kafka: { topicPrefix: `bench_${suffix}`, partitions: 6 },
      stores: {
        mongoDatabase: `bench_${suffix}`,
        opensearchIndexPrefix: `bench-${suffix}`,
        placement: { [SUMMARY]: 'mongo', 'transaction-history': 'opensearch' },
      },
      log: { level: 'warn' },
    });
    await ctx.fixture.pool.query(signalTableDdl('mariadb'));
    const connect = new ConnectClient({ url: config.connect.url });
    const connectorName = `bench-${suffix}`;
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
      }),
      { waitMs: 120_000 },
    );
    const published = new Map<string, PublishedRecord[]>();
    let translator: RunningTranslator | undefined;
    const projectors: RunningProjector[] = [];
    const stop = async () => {
      await translator?.stop();
      for (const p of projectors) {
        for (const projection of p.projections) await projection.reset().catch(() => undefined);
        await p.stop();
      }
      await connect.delete(connectorName).catch(() => undefined);
      await sleep(2000);
      const admin = kafkaFrom(config, 'bench-cleanup').admin();
      await admin.connect();
      const topics = (await admin.listTopics()).filter(
        (t) => t.startsWith(`${config.cdc.name}.`) || t.startsWith(`${config.kafka.topicPrefix}.`),
      );
      if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => undefined);
      await admin.disconnect();
    };
    try {
      translator = await startTranslator(config, BENCH_MIGRATION, ctx.logger, undefined, (txId, records) => {
        published.set(txId, records);
      });
      projectors.push(await startProjector(config, BENCH_MIGRATION, 'mongo', ctx.logger));
      projectors.push(await startProjector(config, BENCH_MIGRATION, 'opensearch', ctx.logger));
    } catch (err) {
      await stop();
      throw err;
    }
    const mongo = projectors[0];
    const summary = mongo?.projectors[mongo.names.indexOf(SUMMARY)];
    return {
      visible(gtid) {
        const records = published.get(gtid);
        if (records === undefined || summary === undefined) return false;
        return records.every((r) => summary.committedOffset(r.topic, r.partition) > BigInt(r.offset));
      },
      stop,
    };
  },
};
