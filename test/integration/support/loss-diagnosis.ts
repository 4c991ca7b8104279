import type { Kafka } from 'kafkajs';
import { domainTopic } from '../../../connectors/kafka/domain-topics.js';
import { isObject } from '../../../lib/guards.js';
import type { ShopDistributed } from './shop-distributed.js';

/**
 * Where the events of orders that differ went missing, when a distributed shop test drifts:
 * does the connector's `order_items` topic hold the order's rows, and the domain `order`
 * topic its OrderLine events? With the translator's commits, that names the layer that lost
 * them (Connect, the translator, the projectors) from CI's output alone.
 */
export async function orderLossDiagnosis(shop: ShopDistributed, paths: readonly string[]): Promise<string> {
  const orderIds = new Set(
    paths.flatMap((p) => {
      const id = /^\/orders\/(\d+)/.exec(p)?.[1];
      return id === undefined ? [] : [Number(id)];
    }),
  );
  if (orderIds.size === 0 || shop.connector === undefined) return 'no order to trace';
  const rowsTopic = `${shop.connector.topicPrefix}.public.order_items`;
  const ordersTopic = `${shop.connector.topicPrefix}.public.orders`;
  const eventsTopic = domainTopic(shop.config.kafka.topicPrefix, 'order');
  try {
    const rows = await scan(shop.kafka, rowsTopic, (value) => {
      const payload = asRecord(asRecord(value)?.payload ?? value);
      const after = asRecord(payload?.after) ?? asRecord(payload?.before);
      const id = Number(after?.order_id);
      return orderIds.has(id)
        ? `order ${id} line ${String(after?.line_no)} op ${String(payload?.op)} tx ${String(asRecord(payload?.transaction)?.id)} total_order ${String(asRecord(payload?.transaction)?.total_order)} lsn ${String(asRecord(payload?.source)?.lsn)} snapshot ${String(asRecord(payload?.source)?.snapshot)}`
        : null;
    });
    const orders = await scan(shop.kafka, ordersTopic, (value) => {
      const payload = asRecord(asRecord(value)?.payload ?? value);
      const after = asRecord(payload?.after) ?? asRecord(payload?.before);
      const id = Number(after?.id);
      return orderIds.has(id)
        ? `order ${id} op ${String(payload?.op)} status ${String(after?.status)} tx ${String(asRecord(payload?.transaction)?.id)}`
        : null;
    });
    const events = await scan(shop.kafka, eventsTopic, (value) => {
      const event = asRecord(value);
      const id = Number(/^order-(\d+)$/.exec(String(event?.streamId))?.[1]);
      return orderIds.has(id)
        ? `order ${id} ${String(event?.type)} tx ${String(asRecord(event?.metadata)?.sourceTxId)}`
        : null;
    });
    return [
      `${rowsTopic}:\n  ${rows.join('\n  ') || '(none)'}`,
      `${ordersTopic}:\n  ${orders.join('\n  ') || '(none)'}`,
      `${eventsTopic}:\n  ${events.join('\n  ') || '(none)'}`,
    ].join('\n');
  } catch (err) {
    return `diagnosis failed: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/** Every record of a topic (all partitions, up to their ends now) that `pick` describes, with its offset. */
async function scan(kafka: Kafka, topic: string, pick: (value: unknown) => string | null): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
  const remaining = new Map(
    ends.filter((e) => BigInt(e.high) > BigInt(e.low)).map((e) => [e.partition, BigInt(e.high)]),
  );
  const found: string[] = [];
  if (remaining.size === 0) return found;
  const consumer = kafka.consumer({ groupId: `diagnosis-${topic}-${Date.now()}` });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`reading ${topic} took over 60 s`)), 60_000);
      consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            const value =
              message.value === null ? null : (JSON.parse(message.value.toString('utf8')) as unknown);
            const line = pick(value);
            if (line !== null) found.push(`[${partition}]@${message.offset} ${line}`);
            const high = remaining.get(partition);
            if (high !== undefined && BigInt(message.offset) + 1n >= high) remaining.delete(partition);
            if (remaining.size === 0) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return found;
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return isObject(v) ? v : undefined;
}
