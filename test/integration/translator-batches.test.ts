import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import type { SourceTransaction } from '../../connectors/change-event.js';
import type { BatchedChangeSource } from '../../connectors/kafka/debezium-source.js';
import { domainTopic } from '../../connectors/kafka/domain-topics.js';
import { DomainEventTranslator, type PublishedRecord } from '../../connectors/kafka/translator.js';
import type { ChangeSource } from '../../connectors/ports.js';
import type { NewDomainEvent } from '../../eventstore/ports.js';
import { itemChange, itemsMigration } from './support/items.js';

/**
 * The translator publishing the transactions a source hands over together in one produce
 * request (or several, at its byte limit): every stream's events must land in source order,
 * and the offsets it reports per transaction must be those of that transaction's records.
 */
const suffix = Math.random().toString(36).slice(2, 8);
const kafka = new Kafka({
  clientId: 'h4-translator',
  brokers: ['127.0.0.1:9092'],
  logLevel: logLevel.NOTHING,
});
const migration = itemsMigration();
const ITEMS = 12;
const TXS = 60;

/** Transaction k touches three items, each one step further than its last change. */
function transactions(): SourceTransaction[] {
  const qty = new Map<number, number>();
  return Array.from({ length: TXS }, (_, k) => {
    const id = `0-1-${k + 1}`;
    const touched = [...new Set([k % ITEMS, (k * 5 + 1) % ITEMS, (k * 7 + 3) % ITEMS])].map((i) => i + 1);
    const events = touched.map((item, n) => {
      const next = (qty.get(item) ?? 0) + 1;
      qty.set(item, next);
      return itemChange(item, next, id, n + 1);
    });
    return { id, events, offset: { file: 'binlog.000001', pos: events.at(-1)?.source.pos }, snapshot: false };
  });
}

/** A source handing its transactions over in groups, like KafkaDebeziumSource after a fetch. */
function groupedSource(groups: SourceTransaction[][]): ChangeSource & BatchedChangeSource {
  let done: Promise<void> = Promise.resolve();
  return {
    name: 'h4-grouped',
    start: () => Promise.reject(new Error('the translator must use startBatches')),
    async startBatches(sink) {
      done = (async () => {
        for (const group of groups) await sink(group);
      })();
    },
    stop: () => done,
  };
}

async function readAll(
  topic: string,
): Promise<{ partition: number; offset: string; event: NewDomainEvent }[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const total = ends.reduce((s, e) => s + Number(e.high) - Number(e.low), 0);
  const out: { partition: number; offset: string; event: NewDomainEvent }[] = [];
  const consumer = kafka.consumer({ groupId: `h4_translator_read_${suffix}_${Math.random()}` });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        eachMessage: async ({ partition, message }) => {
          out.push({ partition, offset: message.offset, event: JSON.parse(String(message.value)) });
          if (out.length >= total) resolve();
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return out;
}

const prefixes: string[] = [];

afterAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  const topics = (await admin.listTopics()).filter((t) => prefixes.some((p) => t.startsWith(`${p}.`)));
  if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => undefined);
  await admin.disconnect();
});

describe('DomainEventTranslator: transactions published together', () => {
  for (const [label, maxRequestBytes] of [
    ['one request per group', undefined],
    ['requests split at a small byte limit', 2048],
  ] as const) {
    it(`keeps every stream in source order and reports each transaction's own offsets (${label})`, async () => {
      const topicPrefix = `h4_translator_${suffix}_${maxRequestBytes ?? 'default'}`;
      prefixes.push(topicPrefix);
      const txs = transactions();
      const groups = [txs.slice(0, 1), txs.slice(1, 25), txs.slice(25, 26), txs.slice(26)];
      const published = new Map<string, PublishedRecord[]>();
      const translator = new DomainEventTranslator({
        kafka,
        source: groupedSource(groups),
        rules: migration.rules,
        topicPrefix,
        partitions: 4,
        ...(maxRequestBytes === undefined ? {} : { maxRequestBytes }),
        onPublished: (txId, records) => published.set(txId, records),
      });
      await translator.start();
      const topic = domainTopic(topicPrefix, 'item');
      const deadline = Date.now() + 60_000;
      while (published.size < TXS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await translator.stop();
      expect(published.size).toBe(TXS);

      const records = await readAll(topic);
      expect(records).toHaveLength(txs.reduce((s, tx) => s + tx.events.length, 0));
      // Per stream: the quantities in the order the source changed them.
      const byStream = new Map<string, number[]>();
      const partitionOf = new Map<string, number>();
      for (const r of [...records].sort(
        (a, b) => a.partition - b.partition || Number(a.offset) - Number(b.offset),
      )) {
        const qtys = byStream.get(r.event.streamId) ?? [];
        qtys.push((r.event.data as { state: { qty: number } }).state.qty);
        byStream.set(r.event.streamId, qtys);
        expect(partitionOf.get(r.event.streamId) ?? r.partition).toBe(r.partition);
        partitionOf.set(r.event.streamId, r.partition);
      }
      expect(byStream.size).toBe(ITEMS);
      for (const [stream, qtys] of byStream)
        expect(qtys, stream).toEqual(Array.from({ length: qtys.length }, (_, i) => i + 1));
      // Each reported offset is the transaction's first record in that partition.
      const at = new Map(records.map((r) => [`${r.partition}:${r.offset}`, r.event]));
      for (const tx of txs) {
        const reported = published.get(tx.id) ?? [];
        expect(reported.length).toBeGreaterThan(0);
        for (const r of reported) {
          expect(r.topic).toBe(topic);
          const event = at.get(`${r.partition}:${r.offset}`);
          expect(event?.metadata.sourceTxId, `${tx.id} at ${r.partition}:${r.offset}`).toBe(tx.id);
          const earlier = records.filter(
            (x) =>
              x.partition === r.partition &&
              BigInt(x.offset) < BigInt(r.offset) &&
              x.event.metadata.sourceTxId === tx.id,
          );
          expect(earlier).toEqual([]);
        }
      }
    }, 120_000);
  }
});
