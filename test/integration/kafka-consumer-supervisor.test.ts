import { Partitioners } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { ConsumerSupervisor } from '../../connectors/kafka/consumer-supervisor.js';
import { AdapterError } from '../../lib/errors.js';
import {
  connectReachable,
  dropKafkaState,
  testKafka,
  uniqueSuffix,
  waitFor,
} from './support/debezium-bank.js';

/**
 * kafkajs leaves a consumer stopped after a crash it does not call retriable (e.g. "the
 * coordinator is not aware of this member" once a slow batch got the member evicted): the
 * supervisor must start another one, and tell its owner to exit when that keeps failing.
 */

const up = await connectReachable();

describe.skipIf(!up)('ConsumerSupervisor on a real broker', () => {
  const suffix = uniqueSuffix();
  const topic = `t_sup_${suffix}.events`;
  const groupId = `t_sup_${suffix}.group`;
  const kafka = testKafka(`t-sup-${suffix}`);

  afterAll(async () => {
    await dropKafkaState(kafka, [`t_sup_${suffix}`], [groupId]);
  });

  it('starts a new consumer after a crash kafkajs does not restart, which resumes from the committed offset', async () => {
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    await producer.send({ topic, messages: [1, 2, 3, 4, 5].map((n) => ({ value: String(n) })) });
    await producer.disconnect();

    const seen: string[] = [];
    let crashes = 0;
    const supervisor = new ConsumerSupervisor({
      name: 'test',
      initialDelayMs: 200,
      maxDelayMs: 500,
      onGiveUp: () => {
        throw new Error('must not give up');
      },
      async start() {
        const consumer = kafka.consumer({ groupId, sessionTimeout: 6000, retry: { retries: 0 } });
        await consumer.connect();
        await consumer.subscribe({ topics: [topic], fromBeginning: true });
        await consumer.run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            if (crashes === 0) {
              crashes++;
              // As kafkajs marks "UNKNOWN_MEMBER_ID": not retriable, so it does not restart.
              throw Object.assign(new Error('The coordinator is not aware of this member'), {
                retriable: false,
              });
            }
            for (const m of batch.messages) seen.push(m.value?.toString() ?? '');
            const last = batch.messages.at(-1);
            if (last)
              await consumer.commitOffsets([
                { topic, partition: batch.partition, offset: String(Number(last.offset) + 1) },
              ]);
          },
        });
        return consumer;
      },
    });
    await supervisor.start();
    try {
      await waitFor('the restarted consumer to read every message', () => new Set(seen).size >= 5, 60_000);
      expect(supervisor.restartCount()).toBe(1);
      expect(supervisor.running).toBe(true);
      // Kafka delivers at least once: the topic has three partitions, and a batch the crashed
      // consumer had fetched for another partition may be handled again by the new one.
      expect([...new Set(seen)].sort()).toEqual(['1', '2', '3', '4', '5']);
    } finally {
      await supervisor.stop();
    }
  }, 90_000);

  it('tells its owner to give up when starting a consumer keeps failing', async () => {
    let gaveUp: AdapterError | null = null;
    let starts = 0;
    const supervisor = new ConsumerSupervisor({
      name: 'test',
      maxRestarts: 2,
      initialDelayMs: 100,
      maxDelayMs: 200,
      onGiveUp: (err) => {
        gaveUp = err;
      },
      async start() {
        starts++;
        if (starts > 1) throw new Error('broker unreachable');
        const consumer = kafka.consumer({ groupId: `${groupId}-2`, retry: { retries: 0 } });
        await consumer.connect();
        await consumer.subscribe({ topics: [topic], fromBeginning: true });
        await consumer.run({
          eachBatch: async () => {
            throw Object.assign(new Error('poison'), { retriable: false });
          },
        });
        return consumer;
      },
    });
    await supervisor.start();
    try {
      await waitFor('the supervisor to give up', () => gaveUp !== null, 60_000);
      expect(gaveUp).toBeInstanceOf(AdapterError);
      expect((gaveUp as AdapterError | null)?.code).toBe('KAFKA_CONSUMER_DEAD');
      expect(starts).toBe(3);
      expect(supervisor.running).toBe(false);
    } finally {
      await supervisor.stop();
      await dropKafkaState(kafka, [], [`${groupId}-2`]);
    }
  }, 90_000);
});
