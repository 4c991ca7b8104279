import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin } from 'kafkajs';
import { SourceError } from '../../lib/errors.js';

/**
 * Creates the topics that do not exist yet and waits until the broker serves metadata for
 * every partition with a leader. Right after creation a KRaft broker can still answer
 * "unknown topic or partition" for a moment, and kafkajs fails a subscription (or its own
 * waitForLeaders) on that answer instead of retrying.
 */
export async function ensureTopics(
  admin: Admin,
  topics: readonly string[],
  numPartitions: number,
  options: { configEntries?: Array<{ name: string; value: string }>; timeoutMs?: number } = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t));
  if (missing.length === 0) return;
  await admin.createTopics({
    waitForLeaders: false,
    topics: missing.map((topic) => ({
      topic,
      numPartitions,
      ...(options.configEntries ? { configEntries: options.configEntries } : {}),
    })),
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const { topics: meta } = await admin.fetchTopicMetadata({ topics: missing });
      if (meta.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) return;
    } catch (err) {
      if (Date.now() > deadline) {
        throw new SourceError('KAFKA_TOPICS_UNAVAILABLE', `topics ${missing.join(', ')} have no leaders`, {
          cause: err,
          hint: 'check the Kafka broker (bash stack/stack.sh status)',
        });
      }
    }
    await sleep(200);
  }
}
