import { type Kafka, type Message, Partitioners, type Producer } from 'kafkajs';
import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';
import type { DeadLetter, NewDomainEvent } from '../../eventstore/ports.js';
import { type Logger, silentLogger } from '../../lib/logger.js';
import type { SourceTransaction } from '../change-event.js';
import { mapTransaction } from '../mapping/mapper.js';
import type { RuleSet } from '../mapping/rule-set.js';
import type { ChangeSource } from '../ports.js';
import type { DeadLetterMasking } from './dead-letter-masking.js';
import type { InvalidRecord } from './debezium-source.js';
import { DOMAIN_TOPIC_CONFIG, deadLetterTopic, domainTopic, EVENT_TYPE_HEADER } from './domain-topics.js';
import { ensureTopics } from './topics.js';

export interface TranslatorOptions {
  kafka: Kafka;
  source: ChangeSource;
  rules: RuleSet;
  /** Domain topic prefix (config kafka.topicPrefix). */
  topicPrefix: string;
  /** Partitions of the domain topics it creates. */
  partitions: number;
  logger?: Logger;
  registry?: Registry;
  /**
   * Called after a source transaction's events are acknowledged, with the offset of its first
   * record in each partition it wrote to (freshness measurements follow a transaction so).
   */
  onPublished?: (txId: string, records: PublishedRecord[], timing: PublishTiming) => void;
  /** Masks sensitive columns of what goes to the dead-letter topic; without it letters are produced as they are. */
  masking?: DeadLetterMasking;
  /** retention.ms of the dead-letter topic when this translator creates it; -1 keeps every letter. */
  deadLetterRetentionMs?: number;
}

/** When a transaction reached the stages before its acknowledgement (epoch ms). */
export interface PublishTiming {
  /** When the connector read its first change (Debezium's ts_ms). */
  capturedAtMs: number | undefined;
  /** When the source handed the whole transaction to the translator. */
  receivedAtMs: number;
}

export interface PublishedRecord {
  topic: string;
  partition: number;
  offset: string;
}

/**
 * The distributed path's mapping step: change transactions from a source (Debezium topics)
 * → the declarative row→event rules → domain events on Kafka, one topic per stream type, keyed
 * by stream id so each aggregate's events stay in order on one partition. The idempotent
 * producer keeps retries from duplicating or reordering; the source commits its offsets only
 * after a transaction's events are acknowledged, so a crash re-publishes rather than loses,
 * and projections skip what they already hold (sourceOrder). Rows the rules reject go to the
 * dead-letter topic with the reason; the pipeline goes on.
 */
export class DomainEventTranslator {
  private readonly logger: Logger;
  private readonly producer: Producer;
  private readonly metrics;
  private readonly knownTopics = new Set<string>();

  constructor(private readonly options: TranslatorOptions) {
    this.logger = (options.logger ?? silentLogger).child({ component: 'translator' });
    // The default (murmur2, Java-compatible) partitioner: any Kafka client maps a stream id to the same partition.
    this.producer = options.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    const registers = options.registry ? [options.registry] : [];
    this.metrics = {
      events: new Counter({
        name: 'cqrs_translated_events_total',
        help: 'Domain events published',
        registers,
      }),
      deadLetters: new Counter({
        name: 'cqrs_dead_letters_total',
        help: 'Rows sent to the dead-letter topic',
        registers,
      }),
      lag: new Gauge({
        name: 'cqrs_cdc_lag_ms',
        help: 'Source commit to domain-event publication, last transaction',
        registers,
      }),
    };
  }

  async start(): Promise<void> {
    await this.producer.connect();
    await this.ensureTopics();
    await this.options.source.start(null, (tx) => this.publish(tx));
    this.logger.info({ source: this.options.source.name }, 'translating change events to domain topics');
  }

  async stop(): Promise<void> {
    await this.options.source.stop();
    await this.producer.disconnect();
  }

  /** Sends a record the source could not parse to the dead-letter topic. */
  async deadLetterRecord(invalid: InvalidRecord): Promise<void> {
    const record = this.options.masking?.record(invalid) ?? invalid;
    await this.producer.send({
      topic: deadLetterTopic(this.options.topicPrefix),
      acks: -1,
      messages: [
        {
          key: `${record.topic}:${record.partition}:${record.offset}`,
          value: JSON.stringify({ reason: record.reason, source: record }),
        },
      ],
    });
    this.metrics.deadLetters.inc();
  }

  private async publish(tx: SourceTransaction): Promise<void> {
    const receivedAtMs = Date.now();
    const { events, deadLetters } = mapTransaction(tx, this.options.rules);
    const byTopic = new Map<string, Message[]>();
    for (const event of events) {
      const topic = domainTopic(this.options.topicPrefix, event.streamType);
      const list = byTopic.get(topic);
      const message = toMessage(event);
      if (list) list.push(message);
      else byTopic.set(topic, [message]);
    }
    if (deadLetters.length > 0) {
      const mask = this.options.masking?.row ?? ((d: DeadLetter) => d);
      byTopic.set(
        deadLetterTopic(this.options.topicPrefix),
        deadLetters.map((d) => deadLetterMessage(mask(d))),
      );
      for (const d of deadLetters)
        this.logger.warn({ table: d.table, op: d.op, reason: d.reason }, 'row dead-lettered');
    }
    if (byTopic.size === 0) return;
    await this.ensureTopics([...byTopic.keys()]);
    const acknowledged = await this.producer.sendBatch({
      acks: -1,
      topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
    });
    this.options.onPublished?.(
      tx.id,
      acknowledged.map((r) => ({ topic: r.topicName, partition: r.partition, offset: r.baseOffset ?? '-1' })),
      { capturedAtMs: tx.events[0]?.ts_ms, receivedAtMs },
    );
    this.metrics.events.inc(events.length);
    this.metrics.deadLetters.inc(deadLetters.length);
    const commitMs = tx.events[0]?.source.ts_ms;
    if (!tx.snapshot && commitMs !== undefined) this.metrics.lag.set(Date.now() - commitMs);
  }

  /**
   * Domain topics are created with the configured partition count before the first send:
   * an auto-created topic would get the broker's default, which caps projector scale-out.
   */
  private async ensureTopics(extra: string[] = []): Promise<void> {
    const wanted = new Set([
      ...this.options.rules.rules.map((r) => domainTopic(this.options.topicPrefix, r.streamType)),
      deadLetterTopic(this.options.topicPrefix),
      ...extra,
    ]);
    const missing = [...wanted].filter((t) => !this.knownTopics.has(t));
    if (missing.length === 0) return;
    const admin = this.options.kafka.admin();
    await admin.connect();
    const deadLetters = deadLetterTopic(this.options.topicPrefix);
    try {
      const domain = missing.filter((t) => t !== deadLetters);
      await ensureTopics(admin, domain, this.options.partitions, { configEntries: DOMAIN_TOPIC_CONFIG });
      if (missing.includes(deadLetters)) {
        await ensureTopics(admin, [deadLetters], this.options.partitions, {
          configEntries: [{ name: 'retention.ms', value: String(this.options.deadLetterRetentionMs ?? -1) }],
        });
      }
      for (const t of missing) this.knownTopics.add(t);
    } finally {
      await admin.disconnect();
    }
  }
}

function toMessage(event: NewDomainEvent): Message {
  return {
    key: event.streamId,
    value: JSON.stringify(event),
    headers: { [EVENT_TYPE_HEADER]: event.type },
  };
}

function deadLetterMessage(d: DeadLetter): Message {
  return { key: `${d.table}:${d.sourcePosition}`, value: JSON.stringify(d) };
}
