import { type Kafka, type Message, Partitioners, type PartitionMetadata, type Producer } from 'kafkajs';
import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';
import type { DeadLetter, NewDomainEvent } from '../../eventstore/ports.js';
import { type Logger, silentLogger } from '../../lib/logger.js';
import type { SourceTransaction } from '../change-event.js';
import { mapTransaction } from '../mapping/mapper.js';
import type { RuleSet } from '../mapping/rule-set.js';
import type { ChangeSource } from '../ports.js';
import type { DeadLetterMasking } from './dead-letter-masking.js';
import type { BatchedChangeSource, InvalidRecord } from './debezium-source.js';
import { DOMAIN_TOPIC_CONFIG, deadLetterTopic, domainTopic, EVENT_TYPE_HEADER } from './domain-topics.js';
import { ensureTopics } from './topics.js';

export interface TranslatorOptions {
  kafka: Kafka;
  /** A source that hands over several transactions at once gets them published in one request. */
  source: ChangeSource & Partial<BatchedChangeSource>;
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
  /**
   * Most bytes of messages per produce request: the transactions a source hands over together
   * go in as few requests as this allows (each partition's part stays under the broker's
   * message.max.bytes). Default 512 KiB.
   */
  maxRequestBytes?: number;
}

const DEFAULT_MAX_REQUEST_BYTES = 512 * 1024;
/** Keys whose partition is remembered (translator.placedKeys), emptied when full. */
const PLACED_KEYS_MAX = 100_000;

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
 *
 * The transactions a source hands over together are published in one produce request (or a
 * few, by size), in order: one acknowledgement round trip for all of them instead of one
 * each. Each message's partition is chosen here with the producer's own partitioner, so the
 * offset of every transaction's first record per partition is known from the request's base
 * offsets (onPublished).
 */
export class DomainEventTranslator {
  private readonly logger: Logger;
  private producer: Producer;
  /**
   * A send failed: the producer is replaced before the next one. kafkajs rolls an idempotent
   * producer's sequence numbers back when it gives up on a request, but the broker may have
   * written that request (the response was lost in a restart). The source then re-delivers
   * from its last commit, so the next request can differ in content yet reuse those sequence
   * numbers: the broker answers a range it has seen as a duplicate and writes nothing of it
   * (a silent loss), or one it has not as out of order. A new producer id starts afresh; what
   * the lost-response request wrote stays as a duplicate, which the projections skip.
   */
  private producerFailed = false;
  private readonly metrics;
  private readonly knownTopics = new Set<string>();
  /** Partition count of each topic written, for choosing partitions as the producer would. */
  private readonly partitionCounts = new Map<string, number>();
  private readonly partitioner = Partitioners.DefaultPartitioner();
  /**
   * The partition of each key lately placed, by partition count: the default partitioner
   * hashes with murmur2 on kafkajs' 64-bit Long emulation, a share of publishing's CPU, and a
   * stream's events keep coming under the same key. A key's partition depends on nothing else.
   */
  private readonly placedKeys = new Map<string, number>();

  constructor(private readonly options: TranslatorOptions) {
    this.logger = (options.logger ?? silentLogger).child({ component: 'translator' });
    // The default (murmur2, Java-compatible) partitioner: any Kafka client maps a stream id to the same partition.
    this.producer = this.newProducer();
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

  private newProducer(): Producer {
    return this.options.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
  }

  /** The producer after a failed send: disconnected and replaced by one with a new producer id. */
  private async renewProducer(): Promise<void> {
    const old = this.producer;
    await old.disconnect().catch(() => undefined);
    const fresh = this.newProducer();
    // Stays marked failed until the new one is connected: a broker still down fails the next try too.
    await fresh.connect();
    this.producer = fresh;
    this.producerFailed = false;
    this.logger.warn('producer replaced after a failed send (new producer id)');
  }

  /** Runs a send on a producer that has not failed before (see producerFailed). */
  private async withProducer<T>(send: (producer: Producer) => Promise<T>): Promise<T> {
    if (this.producerFailed) await this.renewProducer();
    try {
      return await send(this.producer);
    } catch (err) {
      this.producerFailed = true;
      throw err;
    }
  }

  async start(): Promise<void> {
    await this.producer.connect();
    await this.ensureTopics();
    const { source } = this.options;
    if (source.startBatches) await source.startBatches((txs) => this.publish(txs));
    else await source.start(null, (tx) => this.publish([tx]));
    this.logger.info({ source: this.options.source.name }, 'translating change events to domain topics');
  }

  async stop(): Promise<void> {
    await this.options.source.stop();
    await this.producer.disconnect();
  }

  /** Sends a record the source could not parse to the dead-letter topic. */
  async deadLetterRecord(invalid: InvalidRecord): Promise<void> {
    const record = this.options.masking?.record(invalid) ?? invalid;
    await this.withProducer((producer) =>
      producer.send({
        topic: deadLetterTopic(this.options.topicPrefix),
        acks: -1,
        messages: [
          {
            key: `${record.topic}:${record.partition}:${record.offset}`,
            value: JSON.stringify({ reason: record.reason, source: record }),
          },
        ],
      }),
    );
    this.metrics.deadLetters.inc();
  }

  private async publish(txs: readonly SourceTransaction[]): Promise<void> {
    const receivedAtMs = Date.now();
    const mapped = txs.map((tx) => this.messagesOf(tx));
    const topics = new Set(mapped.flatMap((m) => m.messages.map((o) => o.topic)));
    if (topics.size === 0) return;
    await this.ensureTopics([...topics]);
    const placed = mapped.map((m) => m.messages.map((o) => this.place(o.topic, o.message)));
    const offsets = await this.withProducer((producer) => this.send(producer, placed.flat()));
    let at = 0;
    for (const [i, tx] of txs.entries()) {
      const { events, deadLetters } = mapped[i] as MappedMessages;
      const first = new Map<string, PublishedRecord>();
      for (const p of placed[i] as Placed[]) {
        const key = `${p.topic}:${p.partition}`;
        if (!first.has(key))
          first.set(key, { topic: p.topic, partition: p.partition, offset: offsets[at] ?? '-1' });
        at++;
      }
      if (first.size > 0)
        this.options.onPublished?.(tx.id, [...first.values()], {
          capturedAtMs: tx.events[0]?.ts_ms,
          receivedAtMs,
        });
      this.metrics.events.inc(events);
      this.metrics.deadLetters.inc(deadLetters);
    }
    const last = txs[txs.length - 1];
    const commitMs = last?.events[0]?.source.ts_ms;
    if (last !== undefined && !last.snapshot && commitMs !== undefined)
      this.metrics.lag.set(Date.now() - commitMs);
  }

  /** A transaction's domain events (and dead letters) as messages, in order. */
  private messagesOf(tx: SourceTransaction): MappedMessages {
    const { events, deadLetters } = mapTransaction(tx, this.options.rules);
    const messages = events.map((event) => ({
      topic: domainTopic(this.options.topicPrefix, event.streamType),
      message: toMessage(event),
    }));
    if (deadLetters.length > 0) {
      const mask = this.options.masking?.row ?? ((d: DeadLetter) => d);
      const topic = deadLetterTopic(this.options.topicPrefix);
      for (const d of deadLetters) {
        messages.push({ topic, message: deadLetterMessage(mask(d)) });
        this.logger.warn({ table: d.table, op: d.op, reason: d.reason }, 'row dead-lettered');
      }
    }
    return { messages, events: events.length, deadLetters: deadLetters.length };
  }

  /** The message with the partition the producer's partitioner gives its key. */
  private place(topic: string, message: Message): Placed {
    const count = this.partitionCounts.get(topic) ?? this.options.partitions;
    const { key } = message;
    const cacheKey = typeof key === 'string' ? `${count}:${key}` : null;
    let partition = cacheKey === null ? undefined : this.placedKeys.get(cacheKey);
    if (partition === undefined) {
      partition = this.partitioner({ topic, partitionMetadata: partitionsOf(count), message });
      if (cacheKey !== null) {
        if (this.placedKeys.size >= PLACED_KEYS_MAX) this.placedKeys.clear();
        this.placedKeys.set(cacheKey, partition);
      }
    }
    return { topic, partition, message: { ...message, partition } };
  }

  /**
   * Sends the messages in order, in as few requests as maxRequestBytes allows, one after the
   * other (the idempotent producer keeps one request in flight); returns each message's
   * offset. A request writes each partition's messages contiguously from its base offset.
   */
  private async send(producer: Producer, messages: readonly Placed[]): Promise<string[]> {
    const limit = this.options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
    const offsets: string[] = [];
    let chunk: Placed[] = [];
    let bytes = 0;
    const flush = async () => {
      if (chunk.length === 0) return;
      const byTopic = new Map<string, Message[]>();
      for (const p of chunk) {
        const list = byTopic.get(p.topic);
        if (list) list.push(p.message);
        else byTopic.set(p.topic, [p.message]);
      }
      const acknowledged = await producer.sendBatch({
        acks: -1,
        topicMessages: [...byTopic].map(([topic, list]) => ({ topic, messages: list })),
      });
      const next = new Map<string, bigint>(
        acknowledged.map((r) => [`${r.topicName}:${r.partition}`, BigInt(r.baseOffset ?? '-1')]),
      );
      for (const p of chunk) {
        const key = `${p.topic}:${p.partition}`;
        const offset = next.get(key) ?? -1n;
        offsets.push(String(offset));
        if (offset >= 0n) next.set(key, offset + 1n);
      }
      chunk = [];
      bytes = 0;
    };
    for (const p of messages) {
      const size = messageBytes(p.message);
      if (chunk.length > 0 && bytes + size > limit) await flush();
      chunk.push(p);
      bytes += size;
    }
    await flush();
    return offsets;
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
      // Read once: partitions added later are used from the next start (the keys' partitions change then anyway).
      const { topics } = await admin.fetchTopicMetadata({ topics: missing });
      for (const t of topics) this.partitionCounts.set(t.name, t.partitions.length);
      for (const t of missing) this.knownTopics.add(t);
    } finally {
      await admin.disconnect();
    }
  }
}

interface MappedMessages {
  messages: { topic: string; message: Message }[];
  events: number;
  deadLetters: number;
}

interface Placed {
  topic: string;
  partition: number;
  message: Message;
}

/** What the default partitioner reads of a topic's metadata: how many partitions it has (built once per count). */
const partitionLists = new Map<number, PartitionMetadata[]>();
function partitionsOf(count: number): PartitionMetadata[] {
  let list = partitionLists.get(count);
  if (list === undefined) {
    list = Array.from({ length: count }, (_, partitionId) => ({
      partitionErrorCode: 0,
      partitionId,
      leader: 0,
      replicas: [0],
      isr: [0],
    }));
    partitionLists.set(count, list);
  }
  return list;
}

/** A message's size as the request limit counts it (key, value, headers). */
function messageBytes(message: Message): number {
  const size = (v: unknown) =>
    typeof v === 'string' ? Buffer.byteLength(v) : Buffer.isBuffer(v) ? v.length : 0;
  let bytes = size(message.key) + size(message.value) + 64;
  for (const [k, v] of Object.entries(message.headers ?? {})) bytes += k.length + size(v);
  return bytes;
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
