import type { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { Counter, Registry } from 'prom-client';
import { errorMessage, SourceError } from '../../lib/errors.js';
import { isObject } from '../../lib/guards.js';
import { type Logger, silentLogger } from '../../lib/logger.js';
import { sharedCounter } from '../../lib/metrics.js';
import { SerialTasks } from '../../lib/serial-tasks.js';
import { settledWithin } from '../../lib/settled-within.js';
import { skippingInterval } from '../../lib/skipping-interval.js';
import type { SourceOffset, SourceTransaction } from '../change-event.js';
import { tableTopic, transactionTopic } from '../debezium/config.js';
import { DebeziumTruncateError } from '../debezium/errors.js';
import {
  decodeRecordValue,
  parseMarkedChangeRecord,
  parseTransactionRecord,
  transactionIdOf as sourceTransactionId,
} from '../debezium/record.js';
import type { ChangeSource } from '../ports.js';
import { BackgroundCommits } from './background-commits.js';
import { ConsumerSupervisor } from './consumer-supervisor.js';
import { singleMemberAssigner } from './single-member-assigner.js';
import { ensureTopics } from './topics.js';
import {
  type CommitPoint,
  type Dropped,
  type RecordRef,
  TransactionReassembler,
} from './transaction-reassembler.js';

/**
 * Transactions handed to a batch sink at most at once: the transactions a fetch completed go
 * in one call when they are few; many are split so one sink call stays bounded.
 */
const MAX_DELIVERY = 500;

/**
 * Bytes a fetch takes of each partition, and in all. kafkajs fetches again only once every
 * batch of the last fetch was read, delivered and committed, so the fetch size bounds the
 * rate: at its default 1 MiB a partition gave ~85 records a round (a record carries its
 * table's whole schema, ~12 KB), fewer than 2,000 row changes/s need on a loaded host.
 */
const FETCH_MAX_BYTES_PER_PARTITION = 16 * 1024 * 1024;
const FETCH_MAX_BYTES = 64 * 1024 * 1024;

/** A source that can hand over several transactions at once (same order and commit rules as `start`). */
export interface BatchedChangeSource {
  startBatches(sink: (txs: SourceTransaction[]) => Promise<void>): Promise<void>;
}

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
  /**
   * An END marker still missing rows this long after it was read, while a topic it misses rows
   * of has been read to its end, is a re-sent duplicate whose rows were delivered before:
   * dropped. Also how long a table whose snapshot end was not read holds streamed
   * transactions once every topic was read to the snapshot barrier.
   */
  staleMarkerGraceMs?: number;
  logger?: Logger;
  registry?: Registry;
  onInvalidRecord?: (record: InvalidRecord) => Promise<void>;
  /** Called when consumption stops on an error (the sink threw, Kafka failed for good). */
  onError?: (err: SourceError) => void;
}

/** How long `stop` waits for a delivery or tick still running. */
const STOP_WAIT_MS = 10_000;

/** The stale-END grace when none is given (the config's default). */
const DEFAULT_GRACE_MS = 30_000;

/** One key per topic partition: the background commits and the safe points keep the newest of each. */
const pointKey = (p: CommitPoint) => `${p.topic}:${p.partition}`;

/**
 * The Debezium-on-Kafka change source: consumes the connector's table topics and its
 * transaction topic and delivers the same SourceTransactions as the embedded readers, in
 * commit order, one at a time (the next waits for the sink). Offsets are committed only up to
 * the oldest record not yet delivered, after the sink resolved, so a crash re-delivers and
 * never skips. The resume point is the consumer group's committed offsets; `from` is unused.
 * Every partition goes to one group member: more instances are hot standbys.
 *
 * The batches of one fetch (one per topic) are read in turn, then the transactions they
 * completed are delivered and the offsets committed once; `startBatches` hands those
 * transactions to the sink together, in commit order, so a sink that publishes them pays one
 * round trip for all of them. Offsets are still committed only after the sink resolved.
 *
 * The commit itself does not hold up the next fetch: kafkajs fetches again only once every
 * batch handler returned, and a commit round trip was a fifth of a round. Commits run one at
 * a time in the background, each with the newest points of every partition (a point skipped
 * for a newer one loses nothing: the newer one was computed after it was delivered); a commit
 * that fails is logged and retried with the next one, and at worst a restart re-delivers what
 * the sink already took, which the projections skip (sourceOrder).
 */
export class KafkaDebeziumSource implements ChangeSource, BatchedChangeSource {
  readonly name: string;
  private readonly logger: Logger;
  private readonly tableTopics: string[];
  private readonly txTopic: string;
  private readonly reassembler: TransactionReassembler;
  private consumer: Consumer | null = null;
  private supervisor: ConsumerSupervisor | null = null;
  private admin: Admin | null = null;
  private sink: ((txs: SourceTransaction[]) => Promise<void>) | null = null;
  /** Transactions a sink call takes at most. */
  private deliveryMax = MAX_DELIVERY;
  private delivered = 0;
  private lastDelivered: SourceTransaction | null = null;
  /**
   * Group joins seen (GROUP_JOIN). A join only bumps it: the reassembler is reset and seeded
   * from the committed offsets by the next read of the new generation, inside `serial`, so a
   * read or flush still running for a batch of the old one (kafkajs rejoins while other
   * partitions' batches are in flight) never mixes with a reset. Batches of an older
   * generation are dropped unread: the new assignment re-reads from the commits.
   */
  private generation = 0;
  /** The generation the reassembler holds the state of; -1 before the first read. */
  private seeded = -1;
  /** Batches and the stale-marker check run one at a time (both deliver and commit). */
  private readonly serial = new SerialTasks();
  /** The flush batches read since the last one started will join (of one generation). */
  private pendingFlush: { generation: number; done: Promise<void> } | null = null;
  private staleTimer: NodeJS.Timeout | null = null;
  private stopping = false;
  /** Offset commits of delivered points, one after the other, not awaited by the batches. */
  private readonly commits = new BackgroundCommits<CommitPoint>({
    key: pointKey,
    commit: async (points) => {
      if (this.consumer === null) throw new Error('no consumer running');
      await this.consumer.commitOffsets(points);
    },
    // A rebalance or a broker hiccup: retried with the next commit (a restart re-delivers meanwhile).
    onFailed: (err) =>
      this.logger.warn({ err: errorMessage(err) }, 'offset commit failed; retried with the next one'),
  });
  /**
   * Per partition, the newest offset below which everything was delivered (the group's
   * commits at a join, then every commit point): where a failed delivery reads again from.
   */
  private safe = new Map<string, CommitPoint>();
  private readonly dropped: Counter<'reason'>;
  private readonly restarts: Counter;
  private readonly unclosedTables: Counter;

  constructor(private readonly options: KafkaDebeziumSourceOptions) {
    this.name = `debezium:${options.topicPrefix}`;
    this.logger = (options.logger ?? silentLogger).child({ component: 'kafka-debezium-source' });
    this.tableTopics = options.tables.map((t) => tableTopic(options.topicPrefix, t.scope, t.table));
    this.txTopic = transactionTopic(options.topicPrefix);
    this.dropped = sharedCounter(
      options.registry,
      'cqrs_source_duplicates_dropped_total',
      'Records taken for what Debezium re-sent: a certain duplicate (duplicate-end, duplicate-row) is dropped; a transaction let go without all its records (the other reasons) has its rows delivered anyway',
      ['reason'],
    );
    this.restarts = sharedCounter(
      options.registry,
      'cqrs_translator_consumer_restarts_total',
      'Consumers of the Debezium topics started again after kafkajs gave up on one',
    );
    this.unclosedTables = sharedCounter(
      options.registry,
      'cqrs_translator_snapshot_tables_unclosed_total',
      'Snapshotted tables whose last snapshot row the translator never read: their hold on streamed transactions was let go after the grace',
    );
    this.reassembler = new TransactionReassembler({
      collections: new Map(
        options.tables.map((t) => [
          `${t.scope}.${t.table}`,
          tableTopic(options.topicPrefix, t.scope, t.table),
        ]),
      ),
      snapshotChunkRows: options.snapshotChunkRows ?? 2000,
      offsetOf: (records) => ({ kafka: highestPerPartition(records) }),
      onDrop: (d) => this.onDrop(d),
      snapshotTableGraceMs: options.staleMarkerGraceMs ?? DEFAULT_GRACE_MS,
      onSnapshotTablesUnclosed: (topics) => {
        this.unclosedTables.inc(topics.length);
        this.logger.warn(
          { topics },
          "snapshot tables without a last-row mark: streamed transactions go on after the grace (a connector that does not mark each table's last snapshot row?)",
        );
      },
    });
  }

  /** What the consumer holds and waits for (diagnosis of a pipeline that does not move). */
  describe(): Record<string, unknown> {
    return {
      delivered: this.delivered,
      lastTransaction: this.lastDelivered?.id ?? null,
      ...this.reassembler.describe(),
    };
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

  start(_from: SourceOffset | null, sink: (tx: SourceTransaction) => Promise<void>): Promise<void> {
    // One a call: a sink failing on one has taken every one before it, and only those.
    this.deliveryMax = 1;
    return this.startBatches(async (txs) => {
      for (const tx of txs) await sink(tx);
    });
  }

  async startBatches(sink: (txs: SourceTransaction[]) => Promise<void>): Promise<void> {
    const { kafka, groupId } = this.options;
    this.sink = sink;
    const admin = kafka.admin();
    this.admin = admin;
    await admin.connect();
    // kafkajs resolves a subscription once: a topic Connect creates later would never be read.
    // One partition each, as the connector config asks (commit order within a table).
    await ensureTopics(admin, [...this.tableTopics, this.txTopic], 1);
    this.supervisor = new ConsumerSupervisor({
      name: `translator ${groupId}`,
      logger: this.logger,
      start: () => this.startConsumer(),
      onRestart: () => this.restarts.inc(),
      onGiveUp: (err) => this.fail(err),
    });
    await this.supervisor.start();
    const graceMs = this.options.staleMarkerGraceMs ?? DEFAULT_GRACE_MS;
    // No batch comes while the topics are quiet: the check of a stuck END, and the end of a
    // snapshot table's grace, need their own clock.
    this.staleTimer = skippingInterval(
      () =>
        this.serial
          .run(() => this.onTick(graceMs))
          .catch((err: unknown) =>
            this.logger.warn({ err: errorMessage(err) }, 'stale END marker check failed; retried'),
          ),
      Math.max(250, Math.min(5000, Math.floor(graceMs / 2))),
    );
    this.staleTimer.unref();
    this.logger.info({ groupId, topics: this.tableTopics.length + 1 }, 'consuming Debezium topics');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.staleTimer) clearInterval(this.staleTimer);
    this.staleTimer = null;
    // A tick still running asks the admin client for end offsets and may deliver and commit:
    // it finishes before the consumer and the admin client go (it ran into closed clients and
    // logged a failure nobody would retry). A stalled broker does not hold the stop longer.
    if (!(await settledWithin(this.serial.idle(), STOP_WAIT_MS)))
      this.logger.warn(
        { waitedMs: STOP_WAIT_MS },
        'a delivery or stale-marker check was still running at stop',
      );
    // What was delivered is committed before the consumer leaves: less to re-deliver after.
    await this.commits.settled();
    await this.supervisor?.stop();
    await this.admin?.disconnect();
    this.consumer = null;
    this.supervisor = null;
    this.admin = null;
  }

  /** A fresh group member; a crash kafkajs does not recover from starts another (ConsumerSupervisor). */
  private async startConsumer(): Promise<Consumer> {
    const { kafka, groupId, sessionTimeoutMs } = this.options;
    const consumer = kafka.consumer({
      groupId,
      partitionAssigners: [singleMemberAssigner(Date.now())],
      maxBytesPerPartition: FETCH_MAX_BYTES_PER_PARTITION,
      maxBytes: FETCH_MAX_BYTES,
      ...(sessionTimeoutMs === undefined ? {} : { sessionTimeout: sessionTimeoutMs }),
    });
    consumer.on(consumer.events.GROUP_JOIN, () => {
      this.generation++;
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [...this.tableTopics, this.txTopic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        // Every topic's batch of a fetch at once, so they share one delivery and commit.
        partitionsConsumedConcurrently: this.tableTopics.length + 1,
        eachBatch: (payload) => this.onBatch(payload),
      });
    } catch (err) {
      await consumer.disconnect().catch(() => undefined);
      throw err;
    }
    this.consumer = consumer;
    return consumer;
  }

  /**
   * Reads a partition's batch into the reassembler, then joins the next flush: the batches
   * kafkajs hands over together (one per topic) are read one after the other and their
   * transactions delivered and committed once.
   */
  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const generation = this.generation;
    await this.serial.run(() => this.read(payload, generation));
    await this.flushSoon(payload, generation);
  }

  private async read(
    { batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload,
    generation: number,
  ) {
    if (generation !== this.generation) return;
    if (this.seeded !== generation) {
      // What the old generation buffered goes: the new assignment reads it again from the commits.
      this.reassembler.reset();
      const committed = await this.committedOffsets();
      this.reassembler.seed(committed);
      if (generation !== this.generation) return;
      this.safe = new Map(committed.map((c) => [pointKey(c), c]));
      this.seeded = generation;
    }
    for (const message of batch.messages) {
      if (!isRunning() || isStale() || generation !== this.generation) return;
      const ref = { topic: batch.topic, partition: batch.partition, offset: message.offset };
      if (batch.topic === this.txTopic) this.readMarker(ref, message);
      else await this.readChange(ref, message);
      resolveOffset(message.offset);
      // A long batch of rows waiting for their END must not cost the group membership.
      await heartbeat();
    }
  }

  /**
   * The flush every batch read before it starts joins: it runs once the batches handed over
   * together had their turn to be read (they queue on `one` ahead of it).
   */
  private flushSoon(payload: EachBatchPayload, generation: number): Promise<void> {
    if (this.pendingFlush?.generation === generation) return this.pendingFlush.done;
    const done = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      if (this.pendingFlush?.generation === generation) this.pendingFlush = null;
      return this.serial.run(() => this.flush(payload, generation));
    });
    this.pendingFlush = { generation, done };
    return done;
  }

  /**
   * Delivers what the reads completed, in commit order, then commits: only after the sink
   * resolved, and never past a record still buffered (commitPoints).
   */
  private async flush(
    { heartbeat, isRunning, isStale }: EachBatchPayload,
    generation: number,
  ): Promise<void> {
    // After a rejoin the new generation's first read resets the reassembler and reads from the commits.
    if (!isRunning() || isStale() || generation !== this.generation || this.seeded !== generation) return;
    if (this.reassembler.needsBarrier) this.reassembler.setBarrier(await this.endOffsets(this.tableTopics));
    const ready: SourceTransaction[] = [];
    this.take(ready, true);
    await this.deliverOrRewind(ready, heartbeat);
    this.commitSoon(this.reassembler.commitPoints());
  }

  /**
   * Delivers `ready`; when the sink fails, what it did not take is read again: the reassembler
   * starts over from the last safe points and the consumer seeks there (kafkajs would go on
   * from the records already read, and those transactions left the reassembler when taken),
   * then the failure goes to kafkajs, which fetches again.
   */
  private async deliverOrRewind(ready: SourceTransaction[], heartbeat: () => Promise<void>): Promise<void> {
    try {
      await this.deliver(ready, heartbeat);
    } catch (err) {
      this.rewind(ready);
      throw err;
    }
  }

  private rewind(undelivered: readonly SourceTransaction[]): void {
    this.reassembler.undeliver(undelivered.map((tx) => tx.id));
    this.reassembler.reset();
    const points = [...this.safe.values()];
    this.reassembler.seed(points);
    for (const p of points) {
      // No commit yet: from the beginning, as a new group member would.
      this.consumer?.seek({
        topic: p.topic,
        partition: p.partition,
        offset: BigInt(p.offset) < 0n ? '-2' : p.offset,
      });
    }
    this.logger.warn(
      { transactions: undelivered.length },
      'delivery failed; reading again from the last delivered offsets',
    );
  }

  /** Moves every unit the reassembler has ready into `ready`. */
  private take(ready: SourceTransaction[], endOfBatch: boolean): void {
    for (let unit = this.reassembler.next(endOfBatch); unit; unit = this.reassembler.next(endOfBatch))
      ready.push(unit.tx);
  }

  /** Hands `ready` to the sink, at most deliveryMax transactions a call, and empties it. */
  private async deliver(ready: SourceTransaction[], heartbeat: () => Promise<void>): Promise<void> {
    const sink = this.sink;
    if (sink === null) return;
    while (ready.length > 0) {
      const txs = ready.slice(0, this.deliveryMax);
      // Left in `ready` until the sink resolved: what a failure leaves there is read again.
      await sink(txs);
      ready.splice(0, txs.length);
      this.delivered += txs.length;
      this.lastDelivered = txs[txs.length - 1] ?? this.lastDelivered;
      await heartbeat();
    }
  }

  /**
   * A head END still missing rows a grace period after it was read, from a topic read to its
   * end, is a duplicate Debezium re-sent (its rows were delivered before): dropped, and what
   * queued behind it goes on.
   */
  private async onTick(graceMs: number): Promise<void> {
    if (this.stopping || this.seeded !== this.generation) return;
    const blocked = this.reassembler.blockedHead();
    if (blocked !== null && Date.now() - blocked.readAtMs >= graceMs) {
      this.reassembler.dropExhausted(await this.endOffsets(blocked.missingTopics), graceMs);
    }
    if (this.reassembler.hasOldOrphans(graceMs)) {
      this.reassembler.dropOrphansExhausted(await this.endOffsets([this.txTopic]), graceMs);
    }
    // What the drops let go, or a snapshot table's grace that ran out.
    const ready: SourceTransaction[] = [];
    this.take(ready, true);
    if (ready.length === 0) return;
    await this.deliverOrRewind(ready, async () => undefined);
    this.commitSoon(this.reassembler.commitPoints());
  }

  private onDrop(d: Dropped): void {
    this.dropped.inc({ reason: d.reason }, Math.max(1, d.records));
    const certain = d.reason === 'duplicate-end' || d.reason === 'duplicate-row';
    this.logger.warn(
      { reason: d.reason, txId: d.txId, records: d.records },
      certain
        ? 'duplicate from the source dropped (Debezium re-sent what was delivered before)'
        : 'transaction let go without all its records (probably a re-send); its rows are delivered as they come',
    );
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
      const change = parseMarkedChangeRecord(message.value);
      if (change === null) this.reassembler.skip(ref);
      else this.reassembler.addChange(ref, change.event, change.lastOfTable);
    } catch (err) {
      this.reassembler.addUnreadable(ref, unreadableTransactionId(message.value));
      const value = message.value === null ? null : message.value.toString('utf8');
      if (err instanceof DebeziumTruncateError) {
        const reason = `${err.message}: ${err.hint}`;
        this.logger.error(
          { ...ref, reason },
          'TRUNCATE of a captured table: its rows stay in the read models',
        );
        await this.options.onInvalidRecord?.({ ...ref, reason, value });
        return;
      }
      this.logger.warn({ ...ref, err: errorMessage(err) }, 'unreadable change record skipped');
      await this.options.onInvalidRecord?.({ ...ref, reason: errorMessage(err), value });
    }
  }

  /**
   * Commits `points` after the commits before them, without waiting: only called once the
   * sink resolved for everything below them (their output is acknowledged by Kafka).
   */
  private commitSoon(points: CommitPoint[]): void {
    for (const p of points) this.safe.set(pointKey(p), p);
    this.commits.add(points);
  }

  /** The group's committed offsets of every topic consumed (-1: none yet). */
  private async committedOffsets(): Promise<CommitPoint[]> {
    const admin = this.admin;
    if (admin === null) return [];
    const topics = await admin.fetchOffsets({
      groupId: this.options.groupId,
      topics: [...this.tableTopics, this.txTopic],
    });
    return topics.flatMap(({ topic, partitions }) =>
      partitions.map((p) => ({ topic, partition: p.partition, offset: p.offset })),
    );
  }

  /** End offsets of table topics: the snapshot barrier, a stuck END's exhaustion check. */
  private async endOffsets(topics: readonly string[]): Promise<CommitPoint[]> {
    const admin = this.admin;
    if (admin === null) return [];
    const ends = await Promise.all(
      topics.map(async (topic) =>
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
    const payload = isObject(value) && isObject(value.payload) ? value.payload : value;
    if (!isObject(payload) || !isObject(payload.transaction)) return null;
    return typeof payload.transaction.id === 'string' ? sourceTransactionId(payload.transaction.id) : null;
  } catch {
    return null;
  }
}
