import { ConfigResourceTypes } from 'kafkajs';
import { MongoClient } from 'mongodb';
import { afterAll, describe, expect, it } from 'vitest';
import { deadLetterRetentionMs, startProjector } from '../../cli/distributed.js';
import type { SourceTransaction } from '../../connectors/change-event.js';
import { deadLetterMasking } from '../../connectors/kafka/dead-letter-masking.js';
import { deadLetterTopic, domainTopic } from '../../connectors/kafka/domain-topics.js';
import { ensureTopics } from '../../connectors/kafka/topics.js';
import { DomainEventTranslator } from '../../connectors/kafka/translator.js';
import type { ChangeSource } from '../../connectors/ports.js';
import bank from '../../examples/bank/migration.js';
import { loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { isMaskedValue } from '../../lib/masking.js';
import { projectorGroupId } from '../../projectors/kafka-runner.js';
import {
  connectReachable,
  dropKafkaState,
  testKafka,
  uniqueSuffix,
  waitFor,
} from './support/debezium-bank.js';

/**
 * The translator masks capture.sensitive columns in what it writes to the dead-letter topic
 * (a rejected row's images, and a Debezium record no parser accepted), as the embedded store
 * masks its dead letters, and creates that topic with retention.ms from
 * retention.deadLettersMaxAgeDays. A projector keeps only the hash of a domain event it cannot
 * read. Real Kafka and MongoDB; the change source hands over one transaction.
 */

const up = await connectReachable();

const customer = {
  id: 7,
  first_name: 'Ada',
  last_name: 'Lovelace',
  email: 'ada@example.com',
  phone: '+44 1',
  birth_date: '1815-12-10',
  branch_id: 1,
};

describe.skipIf(!up)('dead-letter topic masking and retention', () => {
  const prefix = `h3_dlm_${uniqueSuffix()}`;
  const kafka = testKafka(prefix);

  afterAll(async () => {
    await dropKafkaState(kafka, [prefix], [`${prefix}.check`]);
  });

  it('masks sensitive columns of both kinds of letters and sets the topic retention', async () => {
    const config = loadConfig({ env: {}, overrides: { retention: { deadLettersMaxAgeDays: 2 } } });
    // An update without an after image: the rules reject it, with the before image kept.
    const tx: SourceTransaction = {
      id: 'tx-1',
      snapshot: false,
      offset: {},
      events: [
        {
          op: 'u',
          before: customer,
          after: null,
          ts_ms: Date.now(),
          transaction: null,
          source: {
            version: 'test',
            connector: 'mariadb',
            name: prefix,
            ts_ms: Date.now(),
            snapshot: 'false',
            db: 'bank',
            table: 'customers',
            file: 'b.1',
            pos: 4,
          },
        },
      ],
    };
    const source: ChangeSource = {
      name: 'one transaction',
      start: async (_from, sink) => sink(tx),
      stop: async () => undefined,
    };
    const translator = new DomainEventTranslator({
      kafka,
      source,
      rules: bank.rules,
      topicPrefix: prefix,
      partitions: 1,
      masking: deadLetterMasking(bank.sensitiveColumns),
      deadLetterRetentionMs: deadLetterRetentionMs(config),
    });
    await translator.start();
    await translator.deadLetterRecord({
      topic: `${prefix}_cdc.bank.customers`,
      partition: 0,
      offset: '3',
      reason: 'unparseable',
      value: JSON.stringify({ schema: {}, payload: { op: 'c', before: null, after: customer } }),
    });
    await translator.stop();

    const values: string[] = [];
    const consumer = kafka.consumer({ groupId: `${prefix}.check` });
    await consumer.connect();
    await consumer.subscribe({ topics: [deadLetterTopic(prefix)], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => void values.push(message.value?.toString() ?? ''),
    });
    await waitFor('both dead letters', () => values.length >= 2, 30_000);
    await consumer.disconnect();

    const text = values.join('\n');
    for (const secret of ['Ada', 'Lovelace', 'ada@example.com', '+44 1', '1815-12-10'])
      expect(text).not.toContain(secret);
    const row = JSON.parse(values.find((v) => v.includes('"sourcePosition"')) ?? '{}');
    expect(isMaskedValue(row.change.before.email)).toBe(true);
    expect(row.change.before.branch_id).toBe(1);
    const record = JSON.parse(JSON.parse(values.find((v) => v.includes('unparseable')) ?? '{}').source.value);
    expect(isMaskedValue(record.payload.after.first_name)).toBe(true);
    expect(record.payload.after.id).toBe(7);

    const admin = kafka.admin();
    await admin.connect();
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [
        { type: ConfigResourceTypes.TOPIC, name: deadLetterTopic(prefix), configNames: ['retention.ms'] },
      ],
    });
    await admin.disconnect();
    expect(described.resources[0]?.configEntries[0]?.configValue).toBe(String(2 * 86_400_000));
  }, 90_000);

  it('a projector dead-letters an unreadable domain event with its value masked', async () => {
    const topicPrefix = `${prefix}_p`;
    const mongoDatabase = `${topicPrefix}_rm`;
    const config = loadConfig({
      env: {},
      overrides: { kafka: { topicPrefix, partitions: 1 }, stores: { mongoDatabase } },
    });
    const projector = await startProjector(config, bank, 'mongo', silentLogger);
    const producer = kafka.producer();
    const consumer = kafka.consumer({ groupId: `${topicPrefix}.check` });
    try {
      const streamType = projector.projections[0]?.streamTypes[0] ?? 'customer';
      await producer.connect();
      // Valid JSON with row data in it, but no domain event: the projector cannot apply it.
      await producer.send({
        topic: domainTopic(topicPrefix, streamType),
        messages: [{ key: '7', value: JSON.stringify({ customer }) }],
      });
      const values: string[] = [];
      // The translator creates the dead-letter topic in a real deployment; none runs here.
      const admin = kafka.admin();
      await admin.connect();
      await ensureTopics(admin, [deadLetterTopic(topicPrefix)], 1);
      await admin.disconnect();
      await consumer.connect();
      await consumer.subscribe({ topics: [deadLetterTopic(topicPrefix)], fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => void values.push(message.value?.toString() ?? ''),
      });
      await waitFor('the projector dead letter', () => values.length >= 1, 60_000);
      const letter = JSON.parse(values[0] ?? '{}');
      expect(letter.reason).toMatch(/^projection /);
      expect(letter.source.topic).toBe(domainTopic(topicPrefix, streamType));
      expect(isMaskedValue(letter.source.value)).toBe(true);
      for (const secret of ['Ada', 'Lovelace', 'ada@example.com']) expect(values[0]).not.toContain(secret);
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await projector.stop();
      await dropKafkaState(
        kafka,
        [topicPrefix],
        [`${topicPrefix}.check`, ...projector.projections.map((p) => projectorGroupId(topicPrefix, p.name))],
      );
      const mongo = new MongoClient(config.stores.mongoUrl);
      await mongo.db(mongoDatabase).dropDatabase();
      await mongo.close();
    }
  }, 120_000);
});
