import {
  type Consumer,
  type EachBatchPayload,
  type Kafka,
  type KafkaMessage,
  Partitioners,
  type Producer,
} from 'kafkajs';
import type { Registry } from 'prom-client';
import { Counter } from 'prom-client';
import { z } from 'zod';
import { ConsumerSupervisor } from '../connectors/kafka/consumer-supervisor.js';
import {
  DOMAIN_TOPIC_CONFIG,
  deadLetterTopic,
  domainEventMessageSchema,
  domainTopic,
  EVENT_TYPE_HEADER,
} from '../connectors/kafka/domain-topics.js';
import { ensureTopics } from '../connectors/kafka/topics.js';
import type { NewDomainEvent } from '../eventstore/ports.js';
import { type AdapterError, errorMessage, StoreError } from '../lib/errors.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import type { DocumentProjection } from './ports.js';

export interface KafkaProjectorOptions {
  kafka: Kafka;
  projection: DocumentProjection;
  /** Domain topic prefix (config kafka.topicPrefix). */
  topicPrefix: string;
  /** Partitions of the domain topics, should this projector start before the translator created them. */
  partitions: number;
  /** A killed member's partitions move to the others after this long. */
  sessionTimeoutMs?: number;
  logger?: Logger;
  registry?: Registry;
  /** The consumer could not be restarted (the process should exit non-zero). */
  onError?: (err: AdapterError) => void;
}

/** One consumer group per projection: every process running it shares the partitions. */
export function projectorGroupId(topicPrefix: string, projection: string): string {
  return `${topicPrefix}.projector.${projection}`;
}

/**
 * A counter labelled by projection, shared by every projector of one registry: a process
 * projecting several read models into one store runs one KafkaProjector per read model.
 */
function projectionCounter(
  registry: Registry | undefined,
  name: string,
  help: string,
): Counter<'projection'> {
  const existing = registry?.getSingleMetric(name);
  if (existing instanceof Counter) return existing as Counter<'projection'>;
  return new Counter({ name, help, labelNames: ['projection'], registers: registry ? [registry] : [] });
}

/**
 * Feeds a DocumentProjection from the domain topics as a member of its consumer group. Each
 * fetched batch is applied in partition order and its offsets are committed only after the
 * store acknowledged the writes, so a process killed mid-batch leaves the batch to be
 * redelivered (to itself or, after the rebalance, to another member), and the projection's
 * sourceOrder guard makes the repeat a no-op. Start several processes to scale out: the
 * partitions (aggregates) are spread among them.
 */
export class KafkaProjector {
  private readonly logger: Logger;
  private supervisor: ConsumerSupervisor | null = null;
  private readonly producer: Producer;
  private readonly metrics;
  private applied = 0;
  private readonly committed = new Map<string, bigint>();

  constructor(private readonly options: KafkaProjectorOptions) {
    const { kafka, projection } = options;
    this.logger = (options.logger ?? silentLogger).child({
      component: 'kafka-projector',
      projection: projection.name,
    });
    this.producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    this.metrics = {
      applied: projectionCounter(
        options.registry,
        'cqrs_projected_events_total',
        'Domain events applied to the read model',
      ),
      invalid: projectionCounter(
        options.registry,
        'cqrs_projector_invalid_messages_total',
        'Domain-topic messages that failed validation (sent to the dead-letter topic)',
      ),
      restarts: projectionCounter(
        options.registry,
        'cqrs_projector_consumer_restarts_total',
        'Consumers started again after kafkajs gave up on one (e.g. evicted from the group)',
      ),
    };
  }

  /** Consumers started again after a crash kafkajs does not recover from. */
  restartCount(): number {
    return this.supervisor?.restartCount() ?? 0;
  }

  /** Events applied since start. */
  appliedCount(): number {
    return this.applied;
  }

  /** The next offset this member will read in a partition it owns: everything below is in the store. */
  committedOffset(topic: string, partition: number): bigint {
    return this.committed.get(`${topic}:${partition}`) ?? 0n;
  }

  async start(): Promise<void> {
    const { projection, topicPrefix } = this.options;
    await projection.migrate();
    const topics = projection.streamTypes.map((t) => domainTopic(topicPrefix, t));
    // kafkajs resolves a subscription once: a topic created after it would never be read.
    const admin = this.options.kafka.admin();
    await admin.connect();
    try {
      await ensureTopics(admin, topics, this.options.partitions, { configEntries: DOMAIN_TOPIC_CONFIG });
    } finally {
      await admin.disconnect();
    }
    await this.producer.connect();
    this.supervisor = new ConsumerSupervisor({
      name: `projector ${projection.name}`,
      logger: this.logger,
      start: () => this.startConsumer(topics),
      onRestart: () => this.metrics.restarts.inc({ projection: projection.name }),
      onGiveUp: (err) => {
        if (this.options.onError) this.options.onError(err);
        else this.logger.error({ err }, 'projector stopped');
      },
    });
    await this.supervisor.start();
    this.logger.info({ group: projectorGroupId(topicPrefix, projection.name) }, 'projector consuming');
  }

  async stop(): Promise<void> {
    await this.supervisor?.stop();
    await this.producer.disconnect();
  }

  private async startConsumer(topics: string[]): Promise<Consumer> {
    const { kafka, projection, topicPrefix, sessionTimeoutMs } = this.options;
    const consumer = kafka.consumer({
      groupId: projectorGroupId(topicPrefix, projection.name),
      ...(sessionTimeoutMs === undefined ? {} : { sessionTimeout: sessionTimeoutMs }),
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: (payload) => this.onBatch(consumer, payload),
      });
      return consumer;
    } catch (err) {
      await consumer.disconnect().catch(() => undefined);
      throw err;
    }
  }

  private async onBatch(
    consumer: Consumer,
    { batch, resolveOffset, isRunning, isStale, heartbeat }: EachBatchPayload,
  ) {
    if (batch.messages.length === 0 || !isRunning() || isStale()) return;
    const { projection } = this.options;
    const events: NewDomainEvent[] = [];
    for (const message of batch.messages) {
      const type = message.headers?.[EVENT_TYPE_HEADER]?.toString();
      if (type !== undefined && !projection.handles.has(type)) continue;
      const event = await this.decode(batch.topic, batch.partition, message);
      if (event !== null && projection.handles.has(event.type)) events.push(event);
    }
    if (events.length > 0) await whileBeating(heartbeat, () => projection.apply(events));
    const last = batch.messages[batch.messages.length - 1];
    if (last === undefined) return;
    resolveOffset(last.offset);
    const next = BigInt(last.offset) + 1n;
    await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: String(next) }]);
    this.committed.set(`${batch.topic}:${batch.partition}`, next);
    this.applied += events.length;
    this.metrics.applied.inc({ projection: projection.name }, events.length);
    await heartbeat();
  }

  private async decode(
    topic: string,
    partition: number,
    message: KafkaMessage,
  ): Promise<NewDomainEvent | null> {
    let reason: string;
    try {
      const parsed = domainEventMessageSchema.safeParse(
        JSON.parse(message.value?.toString('utf8') ?? 'null'),
      );
      if (parsed.success) return parsed.data;
      reason = z.prettifyError(parsed.error);
    } catch (err) {
      reason = `not JSON: ${errorMessage(err)}`;
    }
    const { projection, topicPrefix } = this.options;
    this.logger.warn({ topic, partition, offset: message.offset, reason }, 'invalid domain event skipped');
    this.metrics.invalid.inc({ projection: projection.name });
    await this.producer.send({
      topic: deadLetterTopic(topicPrefix),
      acks: -1,
      messages: [
        {
          key: `${topic}:${partition}:${message.offset}`,
          value: JSON.stringify({
            reason: `projection ${projection.name}: ${reason}`,
            source: {
              topic,
              partition,
              offset: message.offset,
              value: message.value?.toString('utf8') ?? null,
            },
          }),
        },
      ],
    });
    return null;
  }
}

/**
 * Keeps the group membership alive while a slow store write runs: a batch longer than the
 * session timeout would otherwise get this member evicted and its commit refused.
 */
async function whileBeating<T>(heartbeat: () => Promise<void>, work: () => Promise<T>): Promise<T> {
  const timer = setInterval(() => {
    heartbeat().catch(() => undefined);
  }, 1000);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/** How far a consumer group is behind the end of its topics, per topic and in total. */
export async function groupLag(
  kafka: Kafka,
  groupId: string,
  topics: readonly string[],
): Promise<{ total: number; topics: Record<string, number> }> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const present = topics.filter((t) => existing.has(t));
    const committed = await admin.fetchOffsets({ groupId, topics: present });
    const result: Record<string, number> = {};
    let total = 0;
    for (const topic of present) {
      const ends = await admin.fetchTopicOffsets(topic);
      const done = committed.find((c) => c.topic === topic)?.partitions ?? [];
      let lag = 0;
      for (const end of ends) {
        const at = Number(done.find((p) => p.partition === end.partition)?.offset ?? '-1');
        // -1: nothing committed yet, the group starts from the beginning.
        lag += Number(end.high) - (at < 0 ? Number(end.low) : at);
      }
      result[topic] = lag;
      total += lag;
    }
    return { total, topics: result };
  } finally {
    await admin.disconnect();
  }
}

/**
 * Empties a projection's store and moves its consumer group back to the start of the domain
 * topics, so the next projector processes rebuild it from the full event log. Kafka only
 * resets the offsets of a group without members: its projector processes must be stopped.
 */
export async function rebuildProjection(
  kafka: Kafka,
  projection: DocumentProjection,
  topicPrefix: string,
): Promise<void> {
  const groupId = projectorGroupId(topicPrefix, projection.name);
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [group] = (await admin.describeGroups([groupId])).groups;
    if (group !== undefined && group.members.length > 0) {
      throw new StoreError(
        'PROJECTOR_RUNNING',
        `consumer group ${groupId} has ${group.members.length} running member(s)`,
        { hint: `stop every \`project\` process of ${projection.name} first, then rebuild` },
      );
    }
    await projection.migrate();
    await projection.reset();
    const existing = new Set(await admin.listTopics());
    for (const topic of projection.streamTypes.map((t) => domainTopic(topicPrefix, t))) {
      if (existing.has(topic)) await admin.resetOffsets({ groupId, topic, earliest: true });
    }
  } finally {
    await admin.disconnect();
  }
}
