import {
  type Consumer,
  type EachBatchPayload,
  type Kafka,
  type KafkaMessage,
  Partitioners,
  type Producer,
} from 'kafkajs';
import type { Registry } from 'prom-client';
import { Gauge } from 'prom-client';
import { BackgroundCommits } from '../connectors/kafka/background-commits.js';
import { ConsumerSupervisor } from '../connectors/kafka/consumer-supervisor.js';
import {
  DOMAIN_TOPIC_CONFIG,
  deadLetterTopic,
  domainTopic,
  EVENT_TYPE_HEADER,
  readDomainEvent,
} from '../connectors/kafka/domain-topics.js';
import { ensureTopics } from '../connectors/kafka/topics.js';
import type { NewDomainEvent } from '../eventstore/ports.js';
import { type AdapterError, errorMessage, StoreError } from '../lib/errors.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import { maskValue } from '../lib/masking.js';
import { sharedCounter } from '../lib/metrics.js';
import { SerialTasks } from '../lib/serial-tasks.js';
import { settledWithin } from '../lib/settled-within.js';
import { skippingInterval } from '../lib/skipping-interval.js';
import {
  type AppliedMark,
  type BatchInvalidation,
  type DocumentProjection,
  partitionKey,
  type TopicPartition,
} from './ports.js';

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
  /** The store's name (mongo, opensearch), for the data-lost gauge and the hint. */
  store?: string;
  /** How often the store's applied marks are compared with the group's committed offsets while idle. */
  storeCheckIntervalMs?: number;
  /**
   * Keep only the hash of an invalid event's value in its dead letter (the migration marks
   * columns sensitive): events carry row data under the rules' names, which a column list cannot
   * mask reliably, and topic, partition and offset still lead to the record itself.
   */
  maskInvalidEvents?: boolean;
  /**
   * Partitions whose fetched batches kafkajs hands over at once (partitionsConsumedConcurrently):
   * the batches that arrive together are applied as one store write, one applied-marks write
   * and one offset commit. Each partition's batches still come one after the other.
   */
  partitionsConcurrency?: number;
  /** The distributed read-model cache, told before each batch's writes and after them, before its commit. */
  invalidation?: BatchInvalidation;
  /** The consumer could not be restarted, or the store lost data it cannot rebuild (the process should exit non-zero). */
  onError?: (err: AdapterError) => void;
}

/** One consumer group per projection: every process running it shares the partitions. */
export function projectorGroupId(topicPrefix: string, projection: string): string {
  return `${topicPrefix}.projector.${projection}`;
}

/**
 * A gauge labelled by projection and store, shared by every projector of one registry: a process
 * projecting several read models into one store runs one KafkaProjector per read model.
 */
function projectionGauge(
  registry: Registry | undefined,
  name: string,
  help: string,
): Gauge<'projection' | 'store'> {
  const existing = registry?.getSingleMetric(name);
  if (existing instanceof Gauge) return existing as Gauge<'projection' | 'store'>;
  return new Gauge({
    name,
    help,
    labelNames: ['projection', 'store'],
    registers: registry ? [registry] : [],
  });
}

const DEFAULT_STORE_CHECK_MS = 15_000;
const DEFAULT_PARTITIONS_CONCURRENCY = 16;
/** How long stop waits for a store check or batch still running. */
const STOP_WAIT_MS = 10_000;
/**
 * The broker answers a fetch once it holds this many bytes for it, or after FETCH_MAX_WAIT_MS.
 * A batch costs the store three round trips (marks read, writes, marks written) and the
 * commit, whatever its size, and its driver CPU is per call: under load, waiting a moment
 * for a fuller batch costs far less than answering every fetch with the few events that
 * arrived meanwhile (16 events a batch at 500 row changes/s).
 */
const FETCH_MIN_BYTES = 256 * 1024;
/** What the wait for a fuller batch adds to the lag at most; also how often an idle member fetches. */
const FETCH_MAX_WAIT_MS = 100;

/** A partition's batch handed over by kafkajs, waiting to be applied with the others that came with it. */
interface QueuedBatch {
  consumer: Consumer;
  payload: EachBatchPayload;
  done(): void;
  failed(err: unknown): void;
}

/**
 * Feeds a DocumentProjection from the domain topics as a member of its consumer group. Each
 * fetched batch is applied in partition order and its offsets are committed only after the
 * store acknowledged the writes, so a process killed mid-batch leaves the batch to be
 * redelivered (to itself or, after the rebalance, to another member), and the projection's
 * sourceOrder guard makes the repeat a no-op. Start several processes to scale out: the
 * partitions (aggregates) are spread among them.
 *
 * The batches of several partitions that kafkajs hands over together (partitionsConcurrency)
 * are applied as one: one applied-marks read, one store write of their events (each
 * partition's in its order; an aggregate lives on one partition, so its order is kept), one
 * applied-marks write and one offset commit. A store round trip costs the same for one event
 * or hundreds, so this is what lets a projector keep up with many partitions.
 *
 * After a batch's writes the store also records the next offset of that partition (its applied
 * mark), before the offsets are committed: the mark is never behind the committed offset unless
 * the store lost data (an in-memory store restarted, a restore from an older backup, a dropped
 * index). Every batch checks its partition's mark against the offset it starts at, and the
 * owned partitions are checked against the group's committed offsets at start and every
 * `storeCheckIntervalMs` (a store can lose data while no events come). A partition found lost
 * is replayed from its mark (from the beginning when it has none): the domain topics keep
 * every event, and the sourceOrder guard makes the replay of what survived a no-op.
 */
export class KafkaProjector {
  private readonly logger: Logger;
  private supervisor: ConsumerSupervisor | null = null;
  private readonly producer: Producer;
  private readonly metrics;
  private applied = 0;
  private readonly committed = new Map<string, bigint>();
  /** Partitions found lost, with the committed offset the replay must pass to have rebuilt them. */
  private readonly lost = new Map<string, bigint>();
  private owned: TopicPartition[] = [];
  private checkTimer: NodeJS.Timeout | null = null;
  /** Set by stop: no store check starts after it, since the caller closes the store next. */
  private stopping = false;
  /** Batches and store checks run one at a time: a replay must not interleave with a batch. */
  private readonly serial = new SerialTasks();
  /** Batches handed over while the previous ones were written: the next write takes them all. */
  private queued: QueuedBatch[] = [];
  private draining = false;
  /** Offsets of batches the store holds, committed one commit after the other, not awaited by the batches. */
  private readonly commits = new BackgroundCommits<WaitingCommit>({
    key: (w) => partitionKey(w.mark.partition),
    commit: async (waiting) => {
      // A consumer restarted by the supervisor commits the points of its predecessor too.
      const consumer = this.supervisor?.current() ?? (waiting[0] as WaitingCommit).consumer;
      await consumer.commitOffsets(
        waiting.map(({ mark: { partition, next } }) => ({ ...partition, offset: String(next) })),
      );
    },
    onCommitted: (waiting) => this.committedUpTo(waiting.map((w) => w.mark)),
    onFailed: (err) => this.logger.warn({ err }, 'offset commit failed; retried with the next one'),
  });

  constructor(private readonly options: KafkaProjectorOptions) {
    const { kafka, projection } = options;
    this.logger = (options.logger ?? silentLogger).child({
      component: 'kafka-projector',
      projection: projection.name,
    });
    this.producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    this.metrics = {
      applied: sharedCounter(
        options.registry,
        'cqrs_projected_events_total',
        'Domain events applied to the read model',
        ['projection'],
      ),
      invalid: sharedCounter(
        options.registry,
        'cqrs_projector_invalid_messages_total',
        'Domain-topic messages that failed validation (sent to the dead-letter topic)',
        ['projection'],
      ),
      restarts: sharedCounter(
        options.registry,
        'cqrs_projector_consumer_restarts_total',
        'Consumers started again after kafkajs gave up on one (e.g. evicted from the group)',
        ['projection'],
      ),
      dataLost: projectionGauge(
        options.registry,
        'cqrs_store_data_lost',
        '1 while the store lacks data the consumer group had committed (being replayed from the domain topics)',
      ),
    };
    this.metrics.dataLost.set(this.labels(), 0);
  }

  private labels() {
    return { projection: this.options.projection.name, store: this.options.store ?? 'unknown' };
  }

  /** Partitions whose store data is lost and not yet replayed (empty when the store holds everything committed). */
  lostPartitions(): string[] {
    return [...this.lost.keys()];
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
    // Starts the projection's tracking: what it addressed before is nobody's concern.
    if (this.options.invalidation) projection.drainTouched?.();
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
    // A slow store must not pile checks up behind it.
    this.checkTimer = skippingInterval(
      () => this.checkStoreOrWarn(),
      this.options.storeCheckIntervalMs ?? DEFAULT_STORE_CHECK_MS,
    );
    this.logger.info({ group: projectorGroupId(topicPrefix, projection.name) }, 'projector consuming');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.checkTimer !== null) clearInterval(this.checkTimer);
    // What the store holds is committed before the consumer leaves: less to re-deliver after.
    await this.commits.settled();
    await this.supervisor?.stop();
    // A store check still running reads the store, which the caller closes once this resolves:
    // it ran into a closed client and logged a failure that would be "tried again later". A
    // stalled store does not hold the stop for longer than STOP_WAIT_MS.
    if (!(await settledWithin(this.serial.idle(), STOP_WAIT_MS)))
      this.logger.warn(
        { waitedMs: STOP_WAIT_MS },
        'a store call was still running at stop; not waiting for it',
      );
    await this.producer.disconnect();
  }

  private checkStoreOrWarn(): Promise<void> {
    return this.checkStore().catch((err: unknown) =>
      this.logger.warn({ err }, 'applied marks check failed; trying again later'),
    );
  }

  /**
   * The owned partitions' applied marks against the group's committed offsets: a committed
   * offset ahead of the mark (or a commit without a mark) is data the store lost.
   */
  checkStore(): Promise<void> {
    return this.serial.run(async () => {
      if (this.stopping) return;
      const consumer = this.supervisor?.current() ?? null;
      const owned = this.owned;
      if (consumer === null || owned.length === 0) return;
      const { kafka, projection, topicPrefix } = this.options;
      const admin = kafka.admin();
      await admin.connect();
      let committed: Map<string, bigint>;
      try {
        const topics = [...new Set(owned.map((p) => p.topic))];
        const fetched = await admin.fetchOffsets({
          groupId: projectorGroupId(topicPrefix, projection.name),
          topics,
        });
        committed = new Map(
          fetched.flatMap((t) =>
            t.partitions
              .filter((p) => BigInt(p.offset) >= 0n)
              .map(
                (p) => [partitionKey({ topic: t.topic, partition: p.partition }), BigInt(p.offset)] as const,
              ),
          ),
        );
      } finally {
        await admin.disconnect();
      }
      const marks = await projection.appliedMarks(owned);
      for (const p of owned) {
        const key = partitionKey(p);
        const at = committed.get(key);
        if (at === undefined || this.lost.has(key)) continue;
        const mark = marks.get(key);
        if (mark === undefined ? at > 0n : mark < at) await this.recover(consumer, p, mark ?? 0n, at);
      }
    });
  }

  /** Replays a partition whose store data is gone, from its mark (or the beginning). */
  private async recover(
    consumer: Consumer,
    p: TopicPartition,
    from: bigint,
    committed: bigint,
  ): Promise<void> {
    const { projection, kafka } = this.options;
    const key = partitionKey(p);
    const store = this.options.store ?? 'the store';
    this.lost.set(key, committed);
    this.metrics.dataLost.set(this.labels(), 1);
    const admin = kafka.admin();
    await admin.connect();
    let low: bigint;
    try {
      const offsets = await admin.fetchTopicOffsets(p.topic);
      low = BigInt(offsets.find((o) => o.partition === p.partition)?.low ?? '0');
    } finally {
      await admin.disconnect();
    }
    if (from < low) {
      const err = new StoreError(
        'STORE_DATA_LOST',
        `${store} lost ${projection.name}'s data of ${key} below offset ${committed}, and the topic no longer holds offsets below ${low} to replay it`,
        {
          hint: `the domain topics must keep every event (retention.ms=-1); re-snapshot the source into them, then run \`cqrs-migrate rebuild --store ${store}\` with the projectors stopped`,
        },
      );
      this.logger.error({ err, partition: key }, 'read-model store lost data it cannot replay');
      this.options.onError?.(err);
      return;
    }
    this.logger.error(
      { partition: key, storeMark: from, committed, store },
      `${store} lacks ${projection.name}'s data the consumer group committed (restored from an older backup, emptied or restarted in memory): replaying ${key} from offset ${from}; nothing to do unless this repeats (then check that the store persists its data)`,
    );
    await projection.migrate();
    consumer.seek({ topic: p.topic, partition: p.partition, offset: String(from) });
  }

  private async startConsumer(topics: string[]): Promise<Consumer> {
    const { kafka, projection, topicPrefix, sessionTimeoutMs } = this.options;
    const consumer = kafka.consumer({
      groupId: projectorGroupId(topicPrefix, projection.name),
      minBytes: FETCH_MIN_BYTES,
      maxWaitTimeInMs: FETCH_MAX_WAIT_MS,
      ...(sessionTimeoutMs === undefined ? {} : { sessionTimeout: sessionTimeoutMs }),
    });
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      this.owned = Object.entries(payload.memberAssignment).flatMap(([topic, partitions]) =>
        partitions.map((partition) => ({ topic, partition })),
      );
      // A partition moved away mid-replay: its new owner goes on from the committed offset.
      const owned = new Set(this.owned.map(partitionKey));
      for (const key of this.lost.keys()) if (!owned.has(key)) this.lost.delete(key);
      if (this.lost.size === 0) this.metrics.dataLost.set(this.labels(), 0);
      // At start and after each rebalance: a store that lost data while nothing was consumed.
      void this.checkStoreOrWarn();
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: this.options.partitionsConcurrency ?? DEFAULT_PARTITIONS_CONCURRENCY,
        eachBatch: (payload) => this.enqueue(consumer, payload),
      });
      return consumer;
    } catch (err) {
      await consumer.disconnect().catch(() => undefined);
      throw err;
    }
  }

  /** Queues a partition's batch; it settles once written and committed with the others that came with it. */
  private enqueue(consumer: Consumer, payload: EachBatchPayload): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queued.push({ consumer, payload, done: resolve, failed: reject });
      if (this.draining) return;
      this.draining = true;
      // kafkajs hands a fetch's batches over within a few microtasks: let them all arrive.
      setImmediate(() => void this.drain());
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queued.length > 0) {
        const taken = this.queued.splice(0);
        // A consumer restarted by the supervisor leaves its batches stale; never mix members.
        for (const consumer of new Set(taken.map((q) => q.consumer))) {
          const group = taken.filter((q) => q.consumer === consumer);
          try {
            await this.serial.run(() =>
              this.onBatches(
                consumer,
                group.map((q) => q.payload),
              ),
            );
            for (const q of group) q.done();
          } catch (err) {
            for (const q of group) q.failed(err);
          }
        }
      }
    } finally {
      this.draining = false;
    }
  }

  /**
   * Applies the batches of several partitions as one: marks checked, events written, marks
   * written, offsets committed, each in one call. A partition found lost is replayed instead
   * (recover) and its batch left uncommitted, as the seek already moved it.
   */
  private async onBatches(consumer: Consumer, payloads: readonly EachBatchPayload[]) {
    const { projection } = this.options;
    const live = payloads.filter((p) => p.batch.messages.length > 0 && p.isRunning() && !p.isStale());
    if (live.length === 0) return;
    const heartbeat = (live[0] as EachBatchPayload).heartbeat;
    const checked = live.filter((p) => !this.lost.has(partitionKey(p.batch)));
    const marks =
      checked.length === 0
        ? new Map<string, bigint>()
        : await projection.appliedMarks(
            checked.map(({ batch }) => ({ topic: batch.topic, partition: batch.partition })),
          );
    const applying: EachBatchPayload[] = [];
    for (const payload of live) {
      const { batch } = payload;
      const partition = { topic: batch.topic, partition: batch.partition };
      const key = partitionKey(partition);
      const first = BigInt(batch.firstOffset() ?? '0');
      if (!this.lost.has(key)) {
        const mark = marks.get(key);
        // The batch starts where the group committed; the store's mark is never behind that.
        if (mark === undefined ? first > 0n : mark < first) {
          await this.recover(consumer, partition, mark ?? 0n, first);
          continue;
        }
      }
      applying.push(payload);
    }
    if (applying.length === 0) return;
    const applied: AppliedMark[] = applying.map(({ batch }) => ({
      partition: { topic: batch.topic, partition: batch.partition },
      next: BigInt((batch.messages[batch.messages.length - 1] as KafkaMessage).offset) + 1n,
    }));
    const events: NewDomainEvent[] = [];
    for (const { batch } of applying) {
      for (const message of batch.messages) {
        const type = message.headers?.[EVENT_TYPE_HEADER]?.toString();
        if (type !== undefined && !projection.handles.has(type)) continue;
        const event = await this.decode(batch.topic, batch.partition, message);
        if (event !== null && projection.handles.has(event.type)) events.push(event);
      }
    }
    const { invalidation } = this.options;
    const begun = invalidation === undefined ? [] : ((await projection.addressedBy?.(events)) ?? []);
    const write = async () => {
      if (invalidation) await invalidation.begin(begun);
      if (events.length > 0) await projection.apply(events);
      if (invalidation) await invalidation.end(begun, projection.drainTouched?.() ?? []);
    };
    // The marks go with the writes, not after them: one round trip less a batch. A mark ahead
    // of writes that then fail is harmless: nothing is committed, the batch comes again from
    // the committed offset, which the mark is not behind (no loss is seen), and is applied.
    await whileBeating(heartbeat, () => settledBoth(write(), markAppliedAll(projection, applied)));
    for (const { batch, resolveOffset } of applying) {
      resolveOffset((batch.messages[batch.messages.length - 1] as KafkaMessage).offset);
    }
    // Not awaited: the next batch need not wait for the commit round trip; a restart meanwhile
    // re-delivers batches the store holds, which the sourceOrder guard makes no-ops.
    this.commits.add(applied.map((mark) => ({ consumer, mark })));
    this.applied += events.length;
    this.metrics.applied.inc({ projection: projection.name }, events.length);
    await heartbeat();
  }

  /** Partitions committed up to these marks: what a replay of lost data waited for. */
  private committedUpTo(marks: readonly AppliedMark[]): void {
    for (const { partition, next } of marks) {
      const key = partitionKey(partition);
      this.committed.set(key, next);
      const rebuiltAt = this.lost.get(key);
      if (rebuiltAt !== undefined && next >= rebuiltAt) {
        this.lost.delete(key);
        if (this.lost.size === 0) this.metrics.dataLost.set(this.labels(), 0);
        this.logger.warn({ partition: key, offset: next }, 'lost read-model data replayed');
      }
    }
  }

  private async decode(
    topic: string,
    partition: number,
    message: KafkaMessage,
  ): Promise<NewDomainEvent | null> {
    let reason: string;
    try {
      const read = readDomainEvent(JSON.parse(message.value?.toString('utf8') ?? 'null'));
      if (read.event !== undefined) return read.event;
      reason = read.reason;
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
              value: this.deadLetterValue(message.value),
            },
          }),
        },
      ],
    });
    return null;
  }

  private deadLetterValue(value: Buffer | null): string | null {
    if (value === null) return null;
    const text = value.toString('utf8');
    return this.options.maskInvalidEvents === true ? String(maskValue(text)) : text;
  }
}

interface WaitingCommit {
  consumer: Consumer;
  mark: AppliedMark;
}

/** Waits for both, then fails with the first failure: no write is left running behind a failed batch. */
async function settledBoth(a: Promise<unknown>, b: Promise<unknown>): Promise<void> {
  const [x, y] = await Promise.allSettled([a, b]);
  if (x.status === 'rejected') throw x.reason;
  if (y.status === 'rejected') throw y.reason;
}

/** The marks of several partitions in one store write when the store can (else one after the other). */
function markAppliedAll(projection: DocumentProjection, marks: readonly AppliedMark[]): Promise<void> {
  if (projection.markAppliedMany) return projection.markAppliedMany(marks);
  return marks.reduce<Promise<void>>(
    (chain, { partition, next }) => chain.then(() => projection.markApplied(partition, next)),
    Promise.resolve(),
  );
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
