import type { Kafka } from 'kafkajs';
import { Gauge, type Registry } from 'prom-client';
import { ConnectClient } from '../connectors/debezium/connect-client.js';
import {
  connectorOffsetTimeMs,
  connectorReached,
  heartbeatTopic,
  type LegacyEndProbe,
  legacyEndProbe,
} from '../connectors/debezium/source-distance.js';
import { countDeadLetterTopic } from '../connectors/kafka/dead-letter-reader.js';
import { domainTopic } from '../connectors/kafka/domain-topics.js';
import type { LegacyEnd } from '../connectors/source-factory.js';
import type { Migration } from '../definition/migration.js';
import type { Config } from '../lib/config.js';
import { errorMessage } from '../lib/errors.js';
import { FreshnessTracker } from '../lib/freshness-tracker.js';
import type { Logger } from '../lib/logger.js';
import type { ComponentState, ComponentStatus } from '../lib/supervisor.js';
import { projectorGroupId } from '../projectors/kafka-runner.js';
import { partitionKey, type TopicPartition } from '../projectors/ports.js';
import type { HealthPort } from '../shadow-api/health.js';
import {
  distributedLag,
  type OpenedStore,
  type SourceConnectorState,
  sourceConnectorState,
  translatorGroupId,
} from './distributed.js';

/**
 * /health/ready and the lag gauge of the distributed mode, for `run` (pipeline in this process)
 * and `serve` (pipeline elsewhere) alike, from what every process can see: the Debezium
 * connector's state and committed source offset against the legacy change log's end, the
 * consumer groups' members and lag, the stores' answers and their applied marks against the
 * groups' committed offsets.
 *
 * Lag is the larger of two ages. Before Kafka: the age of the oldest sample of the legacy
 * change log's end the connector has not yet published past (FreshnessTracker, as the embedded
 * path measures its source): a sample is passed once the connector's committed offset is at or
 * beyond it, or a heartbeat was written after it was taken (the connector had nothing left to
 * read). A Connect restart, a stopped task or a backlog reads as growing lag instead of 0.
 * After Kafka: how long the consumer groups have not been at the end of their topics.
 */

/** A sample: the change log's end, and how many heartbeats the connector had written then. */
interface SourceSample {
  end: LegacyEnd;
  heartbeats: string;
}

const MEASURE_INTERVAL_MS = 2000;

export interface DistributedMonitorOptions {
  config: Config;
  migration: Migration;
  kafka: Kafka;
  /** The stores the read models are placed in (their read models and clients). */
  stores: readonly OpenedStore[];
  logger: Logger;
  registry?: Registry;
}

export class DistributedMonitor {
  private readonly statuses = new Map<string, ComponentStatus>();
  private readonly tracker: FreshnessTracker<SourceSample>;
  private heartbeatTopicOf = new Map<string, string>();
  /** The connector found on Connect before: an unanswered Connect then reads as that connector down. */
  private connectorSeen: string | null = null;
  private readonly probe: LegacyEndProbe;
  private readonly connect: ConnectClient;
  private timer: NodeJS.Timeout | null = null;
  private measuring: Promise<void> | null = null;
  private groupsBehindSince: number | null = null;
  private lag: number | null = null;
  /** Records of the dead-letter topic at the last measure; null until one succeeds. */
  private deadLetters: number | null = null;
  private source: number | null = null;
  private readonly gauges;

  constructor(private readonly options: DistributedMonitorOptions) {
    this.tracker = new FreshnessTracker(options.config.health.stallSeconds * 1000, Date.now());
    this.probe = legacyEndProbe(options.config.legacy.url);
    this.connect = new ConnectClient({ url: options.config.connect.url });
    const registers = options.registry ? [options.registry] : [];
    this.gauges = {
      lag: new Gauge({
        name: 'cqrs_read_model_lag_seconds',
        help: 'Seconds since the oldest legacy commit not yet in the read models (0 when caught up): the connector distance to the change log, then consumer-group lag',
        registers,
      }),
      source: new Gauge({
        name: 'cqrs_source_connector_lag_seconds',
        help: 'Seconds since the oldest legacy change-log end the Debezium connector has not yet published past',
        registers,
      }),
    };
  }

  start(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), MEASURE_INTERVAL_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    await this.measuring;
    await this.probe.close();
  }

  health(): HealthPort {
    return {
      components: () => [...this.statuses.values()],
      lagSeconds: () => this.lag,
      maxLagSeconds: this.options.config.health.maxLagSeconds,
      deadLetters: async () => this.deadLetters,
    };
  }

  /** Seconds behind before Kafka (the connector); null when no connector of `cdc.name` runs on Connect. */
  sourceLagSeconds(): number | null {
    return this.source;
  }

  private tick(): void {
    this.measuring ??= this.measure()
      .catch((err: unknown) => this.options.logger.warn({ err }, 'distributed health measure failed'))
      .finally(() => {
        this.measuring = null;
      });
  }

  private set(name: string, state: ComponentState, reason: string | null): void {
    const now = Date.now();
    const before = this.statuses.get(name);
    this.statuses.set(name, {
      name,
      state,
      since: before !== undefined && before.state === state ? before.since : now,
      reason: state === 'up' ? null : reason,
      restarts: 0,
    });
  }

  private async measure(): Promise<void> {
    const { config, migration, kafka } = this.options;
    const now = Date.now();
    const connector = await sourceConnectorState(config, this.connectorSeen);
    this.connectorSeen = connector?.name ?? this.connectorSeen;
    await this.measureSource(connector, now);
    let groupsLag: number | null = null;
    try {
      groupsLag = (await distributedLag(config, migration, kafka, connector)).total;
    } catch (err) {
      this.options.logger.debug({ err }, 'consumer-group lag unknown');
    }
    if (groupsLag === 0) this.groupsBehindSince = null;
    else this.groupsBehindSince ??= now;
    const groups = this.groupsBehindSince === null ? 0 : (now - this.groupsBehindSince) / 1000;
    this.lag = Math.max(this.source ?? 0, groups);
    this.gauges.lag.set(this.lag);
    await this.measureGroups();
    await this.measureStores();
    try {
      this.deadLetters = await countDeadLetterTopic(kafka, config.kafka.topicPrefix);
    } catch (err) {
      this.options.logger.debug({ err }, 'dead-letter count unknown');
    }
  }

  private async measureSource(connector: SourceConnectorState | null, now: number): Promise<void> {
    if (connector === null) {
      this.statuses.delete('connector');
      this.source = null;
      return;
    }
    this.set(
      'connector',
      connector.state === 'RUNNING' ? 'up' : 'down',
      connector.state === 'UNREACHABLE'
        ? `Kafka Connect at ${this.options.config.connect.url} does not answer: Debezium connector ${connector.name} is not known to run`
        : `Debezium connector ${connector.name} (or a task) is ${connector.state}`,
    );
    let end: LegacyEnd | null = null;
    try {
      end = await this.probe.read();
    } catch (err) {
      this.options.logger.debug(
        { err },
        'legacy change-log end unknown; source lag measured from the last known',
      );
    }
    const heartbeats = await this.heartbeats(connector.name);
    const offset = await this.connectorOffset(connector.name);
    const state = this.tracker.observe({
      now,
      end: end === null ? null : { end, heartbeats: String(heartbeats) },
      reached: (s) => connectorReached(offset, s.end) || heartbeats > BigInt(s.heartbeats),
      checkpoint: 0,
      head: 0,
      oldestUnprojectedCommitMs: null,
    });
    this.source = state.lagSeconds;
    this.gauges.source.set(state.lagSeconds);
  }

  private async heartbeats(connector: string): Promise<bigint> {
    let topic = this.heartbeatTopicOf.get(connector);
    if (topic === undefined) {
      topic = await heartbeatTopicOf(this.connect, connector).catch(() => undefined);
      if (topic === undefined) return -1n;
      this.heartbeatTopicOf.set(connector, topic);
    }
    return heartbeatCount(this.options.kafka, topic);
  }

  private async connectorOffset(name: string): Promise<Readonly<Record<string, unknown>> | null> {
    try {
      return (await this.connect.offsets(name))[0]?.offset ?? null;
    } catch {
      return null;
    }
  }

  /** Translator and projectors run when their consumer groups have members. */
  private async measureGroups(): Promise<void> {
    const { config, migration, kafka } = this.options;
    const groups = new Map([
      [translatorGroupId(config), 'translator'],
      ...migration.readModels.map(
        (m) => [projectorGroupId(config.kafka.topicPrefix, m.name), `projector ${m.name}`] as const,
      ),
    ]);
    const admin = kafka.admin();
    try {
      await admin.connect();
      const described = await admin.describeGroups([...groups.keys()]);
      for (const [groupId, name] of groups) {
        const group = described.groups.find((g) => g.groupId === groupId);
        const members = group?.members.length ?? 0;
        this.set(name, members > 0 ? 'up' : 'down', `no running member in consumer group ${groupId}`);
      }
    } catch (err) {
      for (const name of groups.values()) this.set(name, 'down', `Kafka unreachable: ${errorMessage(err)}`);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** Each store answers, and holds what its consumer groups committed (its applied marks are not behind). */
  private async measureStores(): Promise<void> {
    const { config, kafka } = this.options;
    for (const opened of this.options.stores) {
      try {
        await opened.ping();
        this.set(`store ${opened.store}`, 'up', null);
      } catch (err) {
        this.set(`store ${opened.store}`, 'down', `unreachable: ${errorMessage(err)}`);
        continue;
      }
      for (const model of opened.readModels) {
        const name = `read-model ${model.name}`;
        const admin = kafka.admin();
        try {
          await admin.connect();
          const topics = model.streamTypes.map((t) => domainTopic(config.kafka.topicPrefix, t));
          const existing = new Set(await admin.listTopics());
          // Committed offsets first: marks only move forward past them, so reading them second
          // cannot make a batch committed in between look lost.
          const committed = await admin.fetchOffsets({
            groupId: projectorGroupId(config.kafka.topicPrefix, model.name),
            topics: topics.filter((t) => existing.has(t)),
          });
          const partitions: Array<TopicPartition & { at: bigint }> = committed.flatMap((t) =>
            t.partitions
              .filter((p) => BigInt(p.offset) > 0n)
              .map((p) => ({ topic: t.topic, partition: p.partition, at: BigInt(p.offset) })),
          );
          const marks = await model.appliedMarks(partitions);
          const lost = partitions.filter((p) => (marks.get(partitionKey(p)) ?? -1n) < p.at);
          this.set(
            name,
            lost.length === 0 ? 'up' : 'down',
            `${opened.store} lacks data its projectors committed (${lost.map(partitionKey).join(', ')}): being replayed, or no projector runs to replay it`,
          );
        } catch (err) {
          this.set(name, 'down', `applied marks unreadable: ${errorMessage(err)}`);
        } finally {
          await admin.disconnect().catch(() => undefined);
        }
      }
    }
  }
}

/** The connector against the legacy change log once, for `cqrs lag`. */
export interface ConnectorDistance {
  /** The connector passed the change log's end read at the start (within the wait). */
  caughtUp: boolean;
  offset: Readonly<Record<string, unknown>> | null;
  legacyEnd: LegacyEnd;
  /**
   * When behind: the age of the last commit the connector published. The oldest change it has
   * not published was committed after that, so this bounds the source lag from above.
   */
  atMostSeconds: number | null;
}

async function heartbeatTopicOf(connect: ConnectClient, connector: string): Promise<string> {
  return heartbeatTopic(await connect.config(connector));
}

/** Heartbeats the connector has written so far (the heartbeat topic's end); -1 when it writes none. */
async function heartbeatCount(kafka: Kafka, topic: string): Promise<bigint> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    if (!(await admin.listTopics()).includes(topic)) return -1n;
    return (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + BigInt(p.high), 0n);
  } catch {
    return -1n;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Reads the change log's end once, then waits up to `waitMs` for the connector to pass it
 * (its committed offset, or a heartbeat written after the read).
 */
export async function connectorDistance(
  config: Config,
  kafka: Kafka,
  connector: string,
  waitMs = 15_000,
): Promise<ConnectorDistance> {
  const probe = legacyEndProbe(config.legacy.url);
  const connect = new ConnectClient({ url: config.connect.url });
  try {
    const legacyEnd = await probe.read();
    const topic = await heartbeatTopicOf(connect, connector);
    const heartbeats = await heartbeatCount(kafka, topic);
    const deadline = Date.now() + waitMs;
    let offset: Readonly<Record<string, unknown>> | null = null;
    let caughtUp = false;
    for (;;) {
      offset = (await connect.offsets(connector))[0]?.offset ?? null;
      caughtUp = connectorReached(offset, legacyEnd) || (await heartbeatCount(kafka, topic)) > heartbeats;
      if (caughtUp || Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const at = connectorOffsetTimeMs(offset);
    return {
      caughtUp,
      offset,
      legacyEnd,
      atMostSeconds: caughtUp ? 0 : at === null ? null : Math.max(0, (Date.now() - at) / 1000),
    };
  } finally {
    await probe.close();
  }
}
