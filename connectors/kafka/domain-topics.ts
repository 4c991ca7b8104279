import { z } from 'zod';
import { opSchema } from '../change-event.js';

/**
 * Domain events on Kafka: one topic per stream type (`<prefix>.events.<streamType>`), each
 * record keyed by its stream id so every aggregate's events stay on one partition, in order.
 * The value is the NewDomainEvent as JSON; the event type is also a header, so a consumer can
 * skip types it does not handle without parsing the value.
 */
export function domainTopic(prefix: string, streamType: string): string {
  return `${prefix}.events.${streamType}`;
}

/** Rows the mapping rejected, with the reason: Kafka Connect's dead-letter-queue convention. */
export function deadLetterTopic(prefix: string): string {
  return `${prefix}.dead-letters`;
}

export const EVENT_TYPE_HEADER = 'cqrs-event-type';

/**
 * The domain topics are the distributed mode's event log: a projection is rebuilt by replaying
 * them from the start, so they keep every record (the broker's default would delete after 7 days).
 */
export const DOMAIN_TOPIC_CONFIG = [{ name: 'retention.ms', value: '-1' }];

export const domainEventMessageSchema = z.object({
  streamType: z.string().min(1),
  streamId: z.string().min(1),
  type: z.string().min(1),
  data: z.record(z.string(), z.unknown()),
  metadata: z.object({
    op: opSchema,
    table: z.string(),
    sourcePosition: z.string(),
    sourceOrder: z.string(),
    sourceTxId: z.string(),
    sourceTsMs: z.number().int(),
    snapshot: z.boolean(),
  }),
});
