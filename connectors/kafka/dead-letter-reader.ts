import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka } from 'kafkajs';
import { z } from 'zod';
import { deadLetterTopic } from './domain-topics.js';

/** What the translator (a row the rules reject, a record no parser accepts) and the projectors write there. */
const deadLetterValueSchema = z
  .object({
    reason: z.string(),
    table: z.string().optional(),
    op: z.string().optional(),
    sourcePosition: z.string().optional(),
    sourceTxId: z.string().optional(),
  })
  .loose();

export interface TopicDeadLetter {
  partition: number;
  offset: string;
  /** When the broker appended it. */
  recordedAt: Date;
  key: string | null;
  reason: string;
  table: string | null;
  op: string | null;
  sourcePosition: string | null;
  sourceTxId: string | null;
}

/**
 * How many records `<topicPrefix>.dead-letters` holds (0 while it does not exist), from the
 * partitions' offsets alone: cheap enough for a dashboard that asks every few seconds.
 */
export async function countDeadLetterTopic(kafka: Kafka, topicPrefix: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topic = deadLetterTopic(topicPrefix);
    if (!(await admin.listTopics()).includes(topic)) return 0;
    return totalOf(await admin.fetchTopicOffsets(topic));
  } finally {
    await admin.disconnect();
  }
}

const totalOf = (offsets: readonly { high: string; low: string }[]) =>
  offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);

/**
 * The dead letters of the distributed mode, from `<topicPrefix>.dead-letters`: how many the
 * topic holds and the newest `limit` of them. Read with a throwaway consumer group (deleted
 * afterwards), so it commits nothing any running process depends on.
 */
export async function readDeadLetterTopic(
  kafka: Kafka,
  topicPrefix: string,
  limit: number,
  timeoutMs = 30_000,
): Promise<{ total: number; letters: TopicDeadLetter[] }> {
  const topic = deadLetterTopic(topicPrefix);
  const admin = kafka.admin();
  await admin.connect();
  try {
    if (!(await admin.listTopics()).includes(topic)) return { total: 0, letters: [] };
    const offsets = await admin.fetchTopicOffsets(topic);
    const total = totalOf(offsets);
    if (total === 0 || limit === 0) return { total, letters: [] };
    const groupId = `${topicPrefix}.dead-letters-reader.${randomBytes(4).toString('hex')}`;
    const consumer = kafka.consumer({ groupId });
    const letters: TopicDeadLetter[] = [];
    const done = new Map(offsets.map((p) => [p.partition, Number(p.low) >= Number(p.high)]));
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          const high = Number(offsets.find((p) => p.partition === partition)?.high ?? 0);
          if (Number(message.offset) >= high) return;
          letters.push(toLetter(partition, message.offset, message.timestamp, message.key, message.value));
          if (Number(message.offset) + 1 >= high) done.set(partition, true);
        },
      });
      const deadline = Date.now() + timeoutMs;
      while ([...done.values()].some((d) => !d) && Date.now() < deadline) await sleep(100);
    } finally {
      await consumer.disconnect();
      await admin.deleteGroups([groupId]).catch(() => undefined);
    }
    letters.sort((a, b) => a.recordedAt.getTime() - b.recordedAt.getTime());
    return { total, letters: letters.slice(-limit) };
  } finally {
    await admin.disconnect();
  }
}

function toLetter(
  partition: number,
  offset: string,
  timestamp: string,
  key: Buffer | null,
  value: Buffer | null,
): TopicDeadLetter {
  let parsed: z.infer<typeof deadLetterValueSchema> | null = null;
  try {
    const result = deadLetterValueSchema.safeParse(JSON.parse(value?.toString('utf8') ?? 'null'));
    parsed = result.success ? result.data : null;
  } catch {
    parsed = null;
  }
  return {
    partition,
    offset,
    recordedAt: new Date(Number(timestamp)),
    key: key?.toString('utf8') ?? null,
    reason: parsed?.reason ?? 'unreadable dead letter (not the JSON the translator writes)',
    table: parsed?.table ?? null,
    op: parsed?.op ?? null,
    sourcePosition: parsed?.sourcePosition ?? null,
    sourceTxId: parsed?.sourceTxId ?? null,
  };
}
