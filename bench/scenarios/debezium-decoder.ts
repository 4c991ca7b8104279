import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import { z } from 'zod';
import type { BinlogPosition } from '../../connectors/binlog/config.js';
import { deployConnector } from '../../connectors/debezium/cli.js';
import { mariadbConnector, signalTableDdl, transactionTopic } from '../../connectors/debezium/config.js';
import { ConnectClient } from '../../connectors/debezium/connect-client.js';
import { parseTransactionRecord } from '../../connectors/debezium/record.js';
import { BANK_TABLES } from '../../examples/bank/generate.js';
import { configSchema } from '../../lib/config.js';
import type { ScenarioContext } from '../context.js';
import { BenchError } from '../errors.js';
import { rate } from '../stats.js';
import type { BinlogDecoder } from './decode.js';

/**
 * Debezium's MariaDB connector reading the same binlog range as the embedded reader: started
 * once without a snapshot (so it has its schema history), stopped, its Connect-managed offset
 * moved to the range's start (Kafka Connect's offsets API), then started again. The rate counts
 * the records it wrote to Kafka while it streamed the range; Debezium's per-record work
 * includes the JSON conversion and the produce.
 */
export const debeziumDecoder: BinlogDecoder = {
  name: 'debezium',
  async decode(ctx: ScenarioContext, from: BinlogPosition, _to: BinlogPosition, rowChanges: number) {
    const config = configSchema.parse({});
    const { host, port, user, password } = ctx.server;
    const database = ctx.fixture.dataset.database;
    // Named after the bench database, so runs against other databases on the same stack never collide.
    const name = `${database}_decode_${randomBytes(3).toString('hex')}`;
    const prefix = name;
    const connect = new ConnectClient({ url: config.connect.url });
    const kafka = new Kafka({ clientId: name, brokers: config.kafka.brokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await ctx.fixture.pool.query(signalTableDdl('mariadb'));
    const [idRows] = await ctx.fixture.pool.query('SELECT @@server_id AS id');
    const serverId = z.array(z.object({ id: z.coerce.number() })).parse(idRows)[0]?.id ?? 1;
    const topics = [...BANK_TABLES.map((t) => `${prefix}.${database}.${t}`), transactionTopic(prefix)];
    const rowTopics = topics.filter((t) => t !== transactionTopic(prefix));
    // Only topics that exist: kafkajs retries the metadata of a missing one for seconds, which
    // held the loop before the connector had created them (over two minutes a run).
    const countRecords = async () => {
      const existing = new Set(await admin.listTopics());
      let rows = 0;
      for (const topic of rowTopics.filter((t) => existing.has(t))) {
        // A topic just created may have no leader yet: counted at the next poll.
        const ends = await admin.fetchTopicOffsets(topic).catch(() => []);
        rows += ends.reduce((sum, p) => sum + Number(p.high), 0);
      }
      return { rows };
    };
    try {
      const cfg = mariadbConnector({
        name,
        topicPrefix: prefix,
        host,
        port,
        user,
        password,
        database,
        tables: [...BANK_TABLES],
        serverId: 500_000 + Math.floor(Math.random() * 1_000_000),
        kafkaBootstrap: config.kafka.brokers.join(','),
        snapshotMode: 'no_data',
        snapshotLockingMode: 'none',
        heartbeatIntervalMs: 500,
        // The server holds other databases: recording only the bank's DDL keeps start-up short.
        extra: {
          'schema.history.internal.store.only.captured.databases.ddl': 'true',
          'schema.history.internal.store.only.captured.tables.ddl': 'true',
        },
      });
      await deployConnector(connect, cfg, { waitMs: 120_000 });
      // Streaming has begun (so the schema history is recorded) once the first heartbeat commits an offset.
      for (let i = 0; (await connect.offsets(name)).length === 0; i++) {
        if (i > 600) throw new BenchError('BENCH_CONNECT', `connector ${name} never committed an offset`);
        await sleep(200);
      }
      await connect.stop(name);
      await waitForState(connect, name, 'STOPPED');
      await connect.alterOffsets(name, [
        {
          partition: { server: prefix },
          offset: { file: from.file, pos: from.pos, gtids: from.gtid, server_id: serverId },
        },
      ]);
      // The history the first start recorded sits after `from`; a history rebuilt from the
      // current table definitions at the moved offset (snapshot.mode=recovery) is valid there,
      // since the range has no DDL. The new config starts the task, which reads the range now.
      await admin.deleteTopics({ topics: [`schema-history.${prefix}`] });
      const before = await countRecords();
      const started = performance.now();
      await connect.deploy({ ...cfg, config: { ...cfg.config, 'snapshot.mode': 'recovery' } });
      await connect.resume(name);
      // Debezium's task start-up (connect, schema recovery) takes seconds under load: the clock
      // runs from the first poll that saw records of the range to the poll that saw the range's
      // last one, over the records in between. The range's size is known (the write load counted
      // its row changes), so the clock stops there: waiting for the count to settle and the
      // connector's offset to pass the range's end timed the wait for the next binlog event
      // (tens of seconds on an idle server) as decoding. A range that arrives within one poll is
      // too small to time so; it is then timed from the start request, start-up included.
      let first = 0;
      let atFirst = 0;
      let last = 0;
      let counts = before;
      const deadline = Date.now() + 900_000;
      while (counts.rows - before.rows < rowChanges) {
        await sleep(50);
        counts = await countRecords();
        const now = performance.now();
        if (counts.rows > before.rows && first === 0) {
          first = now;
          atFirst = counts.rows;
        }
        last = now;
        if (Date.now() > deadline)
          throw new BenchError('BENCH_DECODE_TIMEOUT', 'Debezium did not reach the end of the range');
      }
      // More records than the range holds would mean the offset was not moved where asked.
      if (counts.rows - before.rows !== rowChanges)
        throw new BenchError(
          'BENCH_DECODE_RANGE',
          `Debezium delivered ${counts.rows - before.rows} row changes for a range of ${rowChanges}`,
        );
      return {
        reader: 'debezium',
        rowChanges:
          last - first >= 500
            ? rate(counts.rows - atFirst, last - first)
            : rate(counts.rows - before.rows, Math.max(1, last - started)),
        transactions: await transactionsWithRows(kafka, transactionTopic(prefix)),
      };
    } finally {
      await connect.delete(name).catch(() => undefined);
      await sleep(1500);
      await admin
        .deleteTopics({ topics: topics.concat(`schema-history.${prefix}`, `__debezium-heartbeat.${prefix}`) })
        .catch(() => undefined);
      await admin.disconnect();
    }
  },
};

async function waitForState(connect: ConnectClient, name: string, state: string): Promise<void> {
  for (let i = 0; i < 120; i++) {
    if ((await connect.status(name)).connector.state === state) return;
    await sleep(250);
  }
  throw new BenchError('BENCH_CONNECT', `connector ${name} did not reach ${state}`);
}

/** END markers on the transaction topic that counted row events: the transactions Debezium delivered. */
async function transactionsWithRows(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  const end = (await admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high), 0);
  await admin.disconnect();
  if (end === 0) return 0;
  const consumer = kafka.consumer({ groupId: `${topic}.count` });
  let read = 0;
  let transactions = 0;
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const done = new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ message }) => {
        read++;
        const marker = parseTransactionRecord(message.value);
        if (marker?.status === 'END' && (marker.event_count ?? 0) > 0) transactions++;
        if (read >= end) resolve();
      },
    });
  });
  await Promise.race([done, sleep(60_000)]);
  await consumer.disconnect();
  return transactions;
}
