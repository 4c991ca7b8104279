import { type Admin, Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { tableTopic, transactionTopic } from '../../connectors/debezium/config.js';
import { KafkaDebeziumSource } from '../../connectors/kafka/debezium-source.js';
import { ensureTopics } from '../../connectors/kafka/topics.js';

/**
 * The source's stale-marker tick asks the broker for end offsets on its own clock. A stop while
 * such a call runs must wait for it: the caller disconnects everything once `stop` resolves, and
 * the call then failed on a closed admin client with a warning that it would be "retried".
 */
const suffix = Math.random().toString(36).slice(2, 8);
const prefix = `h9stop_${suffix}`;
const brokers = ['127.0.0.1:9092'];
// Longer than the consumer's own leave (~5 s here), which the stop waits for anyway.
const FETCH_DELAY_MS = 8000;

/** The real broker, its end-offset reads held back so a tick's read is still running at stop. */
class SlowOffsetsKafka extends Kafka {
  inFlight = 0;
  started = 0;
  failed = 0;

  override admin(...args: Parameters<Kafka['admin']>): Admin {
    const admin = super.admin(...args);
    const fetchTopicOffsets = admin.fetchTopicOffsets.bind(admin);
    admin.fetchTopicOffsets = async (topic) => {
      this.inFlight++;
      this.started++;
      try {
        await new Promise((resolve) => setTimeout(resolve, FETCH_DELAY_MS));
        return await fetchTopicOffsets(topic);
      } catch (err) {
        this.failed++;
        throw err;
      } finally {
        this.inFlight--;
      }
    };
    return admin;
  }
}

const plain = new Kafka({ clientId: 'h9-source-stop', brokers, logLevel: logLevel.NOTHING });

afterAll(async () => {
  const admin = plain.admin();
  await admin.connect();
  await admin
    .deleteTopics({ topics: [transactionTopic(prefix), tableTopic(prefix, 'db', 'items')] })
    .catch(() => undefined);
  await admin.disconnect();
});

describe('KafkaDebeziumSource.stop', () => {
  it('waits for a stale-marker check still reading end offsets, and starts none after', async () => {
    const admin = plain.admin();
    await admin.connect();
    await ensureTopics(admin, [transactionTopic(prefix), tableTopic(prefix, 'db', 'items')], 1);
    await admin.disconnect();
    // An END whose row never comes: after the grace, each tick reads the items topic's end.
    const producer = plain.producer();
    await producer.connect();
    await producer.send({
      topic: transactionTopic(prefix),
      messages: [
        {
          value: JSON.stringify({
            status: 'END',
            id: 'tx-1',
            ts_ms: 1,
            event_count: 1,
            data_collections: [{ data_collection: 'db.items', event_count: 1 }],
          }),
        },
      ],
    });
    await producer.disconnect();

    const kafka = new SlowOffsetsKafka({ clientId: 'h9-source-stop', brokers, logLevel: logLevel.NOTHING });
    const source = new KafkaDebeziumSource({
      kafka,
      topicPrefix: prefix,
      tables: [{ scope: 'db', table: 'items' }],
      groupId: `${prefix}_group`,
      staleMarkerGraceMs: 100,
    });
    await source.startBatches(async () => undefined);
    const deadline = Date.now() + 60_000;
    while (kafka.inFlight === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(kafka.inFlight).toBe(1);

    await source.stop();
    expect(kafka.inFlight).toBe(0);
    const started = kafka.started;
    await new Promise((r) => setTimeout(r, FETCH_DELAY_MS + 500));
    expect(kafka.started).toBe(started);
    expect(kafka.failed).toBe(0);
  });
});
