import { connect, type Socket } from 'node:net';
import { type ISocketFactory, Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import type { SourceTransaction } from '../../connectors/change-event.js';
import type { BatchedChangeSource } from '../../connectors/kafka/debezium-source.js';
import { domainTopic } from '../../connectors/kafka/domain-topics.js';
import { DomainEventTranslator } from '../../connectors/kafka/translator.js';
import type { ChangeSource } from '../../connectors/ports.js';
import { itemChange, itemsMigration } from './support/items.js';

/**
 * A produce request the broker wrote but whose response never came back (the connection died,
 * as in a broker restart), until the client gave up. kafkajs then rolls the idempotent
 * producer's sequence numbers back, and the source re-delivers from its last commit: the next
 * request can differ in content yet reuse those numbers, which the broker answers as a
 * duplicate of what it holds without writing it. The translator must not lose that request.
 */
const PRODUCE = 0;
let losingResponses = false;

/** Connections to the real broker whose produce responses are lost while `losingResponses`. */
const socketFactory: ISocketFactory = ({ host, port, onConnect }) => {
  const socket: Socket = connect({ host, port }, onConnect);
  const write = socket.write.bind(socket) as (chunk: unknown, ...rest: unknown[]) => boolean;
  socket.write = ((chunk: unknown, ...rest: unknown[]) => {
    // A request is one buffer: size (int32), then its API key (int16).
    if (losingResponses && Buffer.isBuffer(chunk) && chunk.length > 6 && chunk.readInt16BE(4) === PRODUCE) {
      // The broker gets the request; its answer is never read and the connection dies.
      socket.pause();
      setTimeout(() => socket.destroy(new Error('connection lost before the response')), 300);
    }
    return write(chunk, ...rest);
  }) as Socket['write'];
  return socket;
};

const suffix = Math.random().toString(36).slice(2, 8);
const kafka = new Kafka({
  clientId: 'translator-lost-response',
  brokers: ['127.0.0.1:9092'],
  logLevel: logLevel.NOTHING,
  socketFactory,
  requestTimeout: 3000,
  retry: { retries: 2, initialRetryTime: 100 },
});
const topicPrefix = `lostresp_${suffix}`;

afterAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${topicPrefix}.`));
  if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => undefined);
  await admin.disconnect();
});

/** A source the test drives: each call hands the translator one group of transactions. */
function drivenSource(): ChangeSource &
  BatchedChangeSource & { deliver(txs: SourceTransaction[]): Promise<void> } {
  let sink: ((txs: SourceTransaction[]) => Promise<void>) | null = null;
  return {
    name: 'driven',
    start: () => Promise.reject(new Error('the translator must use startBatches')),
    async startBatches(s) {
      sink = s;
    },
    stop: async () => undefined,
    deliver(txs) {
      if (sink === null) throw new Error('not started');
      return sink(txs);
    },
  };
}

function tx(id: string, qty: number): SourceTransaction {
  const events = [itemChange(1, qty, id, 1)];
  return { id, events, offset: { file: 'binlog.000001', pos: events[0]?.source.pos }, snapshot: false };
}

async function quantitiesIn(topic: string): Promise<number[]> {
  const admin = kafka.admin();
  await admin.connect();
  const [end] = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const total = Number(end?.high ?? 0);
  const qtys: number[] = [];
  const consumer = kafka.consumer({ groupId: `${topicPrefix}_read` });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    if (total === 0) resolve();
    consumer
      .run({
        eachMessage: async ({ message }) => {
          const event = JSON.parse(String(message.value)) as { data: { state: { qty: number } } };
          qtys.push(event.data.state.qty);
          if (qtys.length >= total) resolve();
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return qtys;
}

describe('DomainEventTranslator: a produce response lost after the broker wrote the request', () => {
  it('publishes what the source delivers next, although it reuses the sequence numbers', async () => {
    const source = drivenSource();
    const translator = new DomainEventTranslator({
      kafka,
      source,
      rules: itemsMigration().rules,
      topicPrefix,
      partitions: 1,
    });
    await translator.start();
    try {
      await source.deliver([tx('0-1-1', 1)]);
      losingResponses = true;
      await expect(source.deliver([tx('0-1-2', 2)])).rejects.toThrow();
      losingResponses = false;
      // What a source re-reading from its commit hands over: here a later change of the same
      // item, one event for the same partition, so the request reuses the failed one's numbers.
      await source.deliver([tx('0-1-3', 3)]);
    } finally {
      losingResponses = false;
      await translator.stop();
    }
    const qtys = await quantitiesIn(domainTopic(topicPrefix, 'item'));
    // Quantity 2 was written by the request whose response was lost; 3 must be there too.
    expect(qtys).toEqual([1, 2, 3]);
  }, 60_000);
});
