import type { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { errorMessage, SourceError } from '../../lib/errors.js';
import { type Logger, silentLogger } from '../../lib/logger.js';
import type { SourceOffset, SourceTransaction } from '../change-event.js';
import { tableTopic, transactionTopic } from '../debezium/config.js';
import {
  decodeRecordValue,
  parseChangeRecord,
  parseTransactionRecord,
  transactionIdOf as sourceTransactionId,
} from '../debezium/record.js';
import type { ChangeSource } from '../ports.js';
import { singleMemberAssigner } from './single-member-assigner.js';
import { ensureTopics } from './topics.js';
import { type CommitPoint, type RecordRef, TransactionReassembler } from './transaction-reassembler.js';

export interface CapturedTable {
  /** The database (MariaDB/MySQL) or schema (PostgreSQL) of the table. */
  scope: string;
  table: string;
}

/** A record no parser accepted: handed to the caller (dead-letter topic) and skipped. */
export interface InvalidRecord {
  topic: string;
  partition: number;
  offset: string;
  reason: string;
  value: string | null;
}

export interface KafkaDebeziumSourceOptions {
  kafka: Kafka;
  /** The connector's topic.prefix. */
  topicPrefix: string;
  tables: readonly CapturedTable[];
  /** Consumer group; its committed offsets are the resume point. */
  groupId: string;
  snapshotChunkRows?: number;
  /** A standby takes over this long after the active member went silent. */
  sessionTimeoutMs?: number;
  logger?: Logger;
  onInvalidRecord?: (record: InvalidRecord) => Promise<void>;
  /** Called when consumption stops on an error (the sink threw, Kafka failed for good). */
  onError?: (err: SourceError) => void;
}

/**
 * The Debezium-on-Kafka change source: consumes the connector's table topics and its
 * transaction topic and delivers the same SourceTransactions as the embedded readers, in
 * commit order, one at a time (the next waits for the sink). Offsets are committed only up to
 * the oldest record not yet delivered, after the sink resolved, so a crash re-delivers and
 * never skips. The resume point is the consumer group's committed offsets; `from` is unused.
 * Every partition goes to one group member: more instances are hot standbys.
 */
export class KafkaDebeziumSource implements ChangeSource {
  readonly name: string;
  private readonly logger: Logger;
  private readonly tableTopics: string[];
  private readonly txTopic: string;
  private readonly reassembler: TransactionReassembler;
  private consumer: Consumer | null = null;
  private admin: Admin | null = null;
  private sink: ((tx: SourceTransaction) => Promise<void>) | null = null;
  private delivered = 0;
  private lastDelivered: SourceTransaction | null = null;

  constructor(private readonly options: KafkaDebeziumSourceOptions) {
    this.name = `debezium:${options.topicPrefix}`;
    this.logger = (options.logger ?? silentLogger).child({ component: 'kafka-debezium-source' });
    this.tableTopics = options.tables.map((t) => tableTopic(options.topicPrefix, t.scope, t.table));
    this.txTopic = transactionTopic(options.topicPrefix);
    this.reassembler = new TransactionReassembler({
      collections: new Set(options.tables.map((t) => `${t.scope}.${t.table}`)),
      snapshotChunkRows: options.snapshotChunkRows ?? 2000,
      offsetOf: (records) => ({ kafka: highestPerPartition(records) }),
    });
  }

  /** Source transactions delivered since start. */
  deliveredCount(): number {
    return this.delivered;
  }

  /** The last delivered transaction (its events carry the source position). */
  lastTransaction(): SourceTransaction | null {
    return this.lastDelivered;
  }

  /** Records read but not yet delivered (waiting for their END marker or the snapshot barrier). */
  bufferedCount(): number {
    return this.reassembler.buffered;
  }

  async start(_from: SourceOffset | null, sink: (tx: SourceTransaction) => Promise<void>): Promise<void> {
    const { kafka, groupId } = this.options;
    this.sink = sink;
    const admin = kafka.admin();
    this.admin = admin;
    await admin.connect();
    // kafkajs resolves a subscription once: a topic Connect creates later would never be read.
    // One partition each, as the connector config asks (commit order within a table).
    await ensureTopics(admin, [...this.tableTopics, this.txTopic], 1);
    const consumer = kafka.consumer({
      groupId,
      partitionAssigners: [singleMemberAssigner],
      ...(this.options.sessionTimeoutMs === undefined
        ? {}
        : { sessionTimeout: this.options.sessionTimeoutMs }),
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, () => this.reassembler.reset());
    consumer.on(consumer.events.CRASH, (e) => {
      if (!e.payload.restart) this.fail(e.payload.error);
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [...this.tableTopics, this.txTopic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (payload) => this.onBatch(payload),
    });
    this.logger.info({ groupId, topics: this.tableTopics.length + 1 }, 'consuming Debezium topics');
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
    await this.admin?.disconnect();
    this.consumer = null;
    this.admin = null;
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload) {
    for (const message of batch.messages) {
      if (!isRunning() || isStale()) return;
      const ref = { topic: batch.topic, partition: batch.partition, offset: message.offset };
      if (batch.topic === this.txTopic) this.readMarker(ref, message);
      else await this.readChange(ref, message);
      resolveOffset(message.offset);
      await this.drain(false, heartbeat);
    }
    if (!isRunning() || isStale()) return;
    if (this.reassembler.needsBarrier) this.reassembler.setBarrier(await this.endOffsets());
    await this.drain(true, heartbeat);
    await this.commit(this.reassembler.commitPoints());
  }

  private readMarker(ref: RecordRef, message: KafkaMessage): void {
    try {
      const marker = parseTransactionRecord(message.value);
      if (marker === null) this.reassembler.skip(ref);
      else this.reassembler.addMarker(ref, marker);
    } catch (err) {
      // A marker we cannot read stalls its transaction: that needs an operator, not a skip.
      throw new SourceError('KAFKA_MARKER_INVALID', `unreadable transaction marker at ${at(ref)}`, {
        cause: err,
        hint: 'check that the connector writes transaction metadata with the JSON converter',
      });
    }
  }

  private async readChange(ref: RecordRef, message: KafkaMessage): Promise<void> {
    try {
      const event = parseChangeRecord(message.value);
      if (event === null) this.reassembler.skip(ref);
      else this.reassembler.addChange(ref, event);
    } catch (err) {
      this.reassembler.addUnreadable(ref, unreadableTransactionId(message.value));
      const value = message.value === null ? null : message.value.toString('utf8');
      this.logger.warn({ ...ref, err: errorMessage(err) }, 'unreadable change record skipped');
      await this.options.onInvalidRecord?.({ ...ref, reason: errorMessage(err), value });
    }
  }

  private async drain(endOfBatch: boolean, heartbeat: () => Promise<void>): Promise<void> {
    const sink = this.sink;
    if (sink === null) return;
    for (let unit = this.reassembler.next(endOfBatch); unit; unit = this.reassembler.next(endOfBatch)) {
      await sink(unit.tx);
      this.delivered++;
      this.lastDelivered = unit.tx;
      await heartbeat();
    }
  }

  private async commit(points: CommitPoint[]): Promise<void> {
    if (points.length > 0) await this.consumer?.commitOffsets(points);
  }

  /** End offsets of the table topics: the snapshot barrier. */
  private async endOffsets(): Promise<CommitPoint[]> {
    const admin = this.admin;
    if (admin === null) return [];
    const ends = await Promise.all(
      this.tableTopics.map(async (topic) =>
        (await admin.fetchTopicOffsets(topic)).map((p) => ({
          topic,
          partition: p.partition,
          offset: p.high,
        })),
      ),
    );
    return ends.flat();
  }

  private fail(err: unknown): void {
    const error =
      err instanceof SourceError
        ? err
        : new SourceError('KAFKA_SOURCE_FAILED', `Debezium topic consumer stopped: ${errorMessage(err)}`, {
            cause: err,
          });
    if (this.options.onError) this.options.onError(error);
    else this.logger.error({ err: error }, 'Debezium topic consumer stopped');
  }
}

function at(ref: RecordRef): string {
  return `${ref.topic}[${ref.partition}]@${ref.offset}`;
}

function highestPerPartition(records: RecordRef[]): CommitPoint[] {
  const next = new Map<string, CommitPoint>();
  for (const r of records) {
    const key = `${r.topic}:${r.partition}`;
    const offset = String(BigInt(r.offset) + 1n);
    const seen = next.get(key);
    if (seen === undefined || BigInt(seen.offset) < BigInt(offset))
      next.set(key, { topic: r.topic, partition: r.partition, offset });
  }
  return [...next.values()];
}

/** The transaction id of a record that failed validation, when its JSON still says it. */
function unreadableTransactionId(raw: Buffer | null): string | null {
  try {
    const value = decodeRecordValue(raw);
    const payload = isRecord(value) && isRecord(value.payload) ? value.payload : value;
    if (!isRecord(payload) || !isRecord(payload.transaction)) return null;
    return typeof payload.transaction.id === 'string' ? sourceTransactionId(payload.transaction.id) : null;
  } catch {
    return null;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
