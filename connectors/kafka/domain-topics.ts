import { z } from 'zod';
import type { NewDomainEvent } from '../../eventstore/ports.js';
import { ConfigError } from '../../lib/errors.js';
import { isName, isObject } from '../../lib/guards.js';
import { type Op, opSchema } from '../change-event.js';
import { TOPIC_NAME, topicSafe } from './topic-names.js';

/**
 * Domain events on Kafka: one topic per stream type (`<prefix>.events.<streamType>`), each
 * record keyed by its stream id so every aggregate's events stay on one partition, in order.
 * The value is the NewDomainEvent as JSON; the event type is also a header, so a consumer can
 * skip types it does not handle without parsing the value.
 */
export function domainTopic(prefix: string, streamType: string): string {
  const topic = `${prefix}.events.${streamType}`;
  if (!TOPIC_NAME.test(topic))
    throw new ConfigError(`stream type ${JSON.stringify(streamType)} cannot name a Kafka topic (${topic})`, {
      hint: `the distributed path keeps each stream type's events in <kafka.topicPrefix>.events.<type>: name the capture rule's stream.type with letters, digits, ".", "_" or "-" (at most 249 characters with the prefix), e.g. ${JSON.stringify(topicSafe(streamType))}`,
    });
  return topic;
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

const OPS: ReadonlySet<string> = new Set<Op>(opSchema.options);

/**
 * A domain-topic message's parsed value as the NewDomainEvent domainEventMessageSchema gives,
 * or the reason it is not one. Every projector reads every event it handles, so the common
 * case is checked by hand: zod's parse copied each event's data and metadata (a share of the
 * projectors' CPU and garbage per event); anything the check refuses goes through the schema,
 * which then accepts it the same way or says why not.
 */
export function readDomainEvent(
  value: unknown,
): { event: NewDomainEvent; reason?: undefined } | { event?: undefined; reason: string } {
  if (isObject(value) && isName(value.streamType) && isName(value.streamId) && isName(value.type)) {
    const { data, metadata: m } = value;
    if (
      isObject(data) &&
      isObject(m) &&
      typeof m.op === 'string' &&
      OPS.has(m.op) &&
      typeof m.table === 'string' &&
      typeof m.sourcePosition === 'string' &&
      typeof m.sourceOrder === 'string' &&
      typeof m.sourceTxId === 'string' &&
      Number.isSafeInteger(m.sourceTsMs) &&
      typeof m.snapshot === 'boolean'
    ) {
      // Only the schema's members, as its parse strips the others.
      return {
        event: {
          streamType: value.streamType,
          streamId: value.streamId,
          type: value.type,
          data,
          metadata: {
            op: m.op as Op,
            table: m.table,
            sourcePosition: m.sourcePosition,
            sourceOrder: m.sourceOrder,
            sourceTxId: m.sourceTxId,
            sourceTsMs: m.sourceTsMs as number,
            snapshot: m.snapshot,
          },
        },
      };
    }
  }
  const parsed = domainEventMessageSchema.safeParse(value);
  return parsed.success ? { event: parsed.data } : { reason: z.prettifyError(parsed.error) };
}
