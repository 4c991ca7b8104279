import { Kafka, type logCreator, logLevel } from 'kafkajs';
import type { Registry } from 'prom-client';
import type { FreshnessPort } from '../compare/ports.js';
import { tableTopic } from '../connectors/debezium/config.js';
import { type CapturedTable, KafkaDebeziumSource } from '../connectors/kafka/debezium-source.js';
import { domainTopic } from '../connectors/kafka/domain-topics.js';
import { DomainEventTranslator, type TranslatorOptions } from '../connectors/kafka/translator.js';
import { parseMysqlUrl } from '../examples/bank/db.js';
import { BANK_TABLES } from '../examples/bank/generate.js';
import { bankRules } from '../examples/bank/mapping.js';
import type { Config } from '../lib/config.js';
import { ConfigError } from '../lib/errors.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import { groupLag, KafkaProjector, projectorGroupId } from '../projectors/kafka-runner.js';
import type { DocumentProjection } from '../projectors/ports.js';
import { MongoAccountSummaryProjection } from '../projectors/stores/mongo.js';
import { OpenSearchHistoryProjection } from '../projectors/stores/opensearch.js';

/**
 * The distributed mode's processes, built from the one configuration object: the translator
 * (Debezium topics → domain topics; one active, others standby) and the projectors (one
 * consumer group per read model; run as many processes as there are partitions).
 */

export const STORES = ['mongo', 'opensearch'] as const;
export type StoreName = (typeof STORES)[number];

export function kafkaFrom(config: Config, role: string, logger: Logger = silentLogger): Kafka {
  return new Kafka({
    clientId: `${config.kafka.clientId}-${role}`,
    brokers: config.kafka.brokers,
    logLevel: logLevel.WARN,
    logCreator: kafkaLogs(logger.child({ component: 'kafkajs' })),
  });
}

/**
 * kafkajs logs through the process's pino logger, so they are structured like every other
 * line. Its connection layer logs every error response at ERROR, retriable ones included
 * (a topic's leader not elected yet); real failures reach the caller as exceptions, so those
 * lines are warnings here.
 */
function kafkaLogs(logger: Logger): logCreator {
  return () =>
    ({ namespace, level, log }) => {
      const { message, timestamp: _t, logger: _l, ...fields } = log;
      const entry = { namespace, ...fields };
      if (level === logLevel.ERROR && namespace !== 'Connection') logger.error(entry, message);
      else if (level === logLevel.ERROR) logger.warn(entry, message);
      else if (level === logLevel.WARN) logger.warn(entry, message);
      else if (level === logLevel.INFO) logger.info(entry, message);
      else logger.debug(entry, message);
    };
}

/**
 * The tables the connector captures, as Debezium names their topics: by database on
 * MariaDB/MySQL, by schema on PostgreSQL (the connector captures `public`).
 */
export function capturedTables(config: Config): CapturedTable[] {
  const scope = /^postgres(ql)?:/.test(config.legacy.url)
    ? 'public'
    : (parseMysqlUrl(config.legacy.url).database ?? 'legacy_bank');
  const tables = config.cdc.tables.length > 0 ? config.cdc.tables : [...BANK_TABLES];
  return tables.map((table) => ({ scope, table }));
}

export const translatorGroupId = (config: Config) => `${config.kafka.topicPrefix}.translator`;

export interface RunningTranslator {
  translator: DomainEventTranslator;
  source: KafkaDebeziumSource;
  stop(): Promise<void>;
}

export async function startTranslator(
  config: Config,
  logger: Logger,
  registry?: Registry,
  onPublished?: TranslatorOptions['onPublished'],
): Promise<RunningTranslator> {
  const kafka = kafkaFrom(config, 'translator', logger);
  let translator: DomainEventTranslator | null = null;
  const source = new KafkaDebeziumSource({
    kafka,
    topicPrefix: config.cdc.name,
    tables: capturedTables(config),
    groupId: translatorGroupId(config),
    snapshotChunkRows: config.cdc.snapshotChunkRows,
    sessionTimeoutMs: config.kafka.sessionTimeoutMs,
    logger,
    onInvalidRecord: async (record) => translator?.deadLetterRecord(record),
  });
  translator = new DomainEventTranslator({
    kafka,
    source,
    rules: bankRules,
    topicPrefix: config.kafka.topicPrefix,
    partitions: config.kafka.partitions,
    logger,
    ...(registry ? { registry } : {}),
    ...(onPublished ? { onPublished } : {}),
  });
  await translator.start();
  const running = translator;
  return { translator: running, source, stop: () => running.stop() };
}

export function documentProjection(config: Config, store: StoreName, logger: Logger): DocumentProjection {
  switch (store) {
    case 'mongo':
      return new MongoAccountSummaryProjection({
        url: config.stores.mongoUrl,
        database: config.stores.mongoDatabase,
        logger,
      });
    case 'opensearch':
      return new OpenSearchHistoryProjection({
        url: config.stores.opensearchUrl,
        indexPrefix: config.stores.opensearchIndexPrefix,
        logger,
      });
  }
}

export function parseStore(value: string | undefined): StoreName {
  const store = STORES.find((s) => s === value);
  if (store === undefined) {
    throw new ConfigError(`--store must be one of ${STORES.join(', ')} (got ${JSON.stringify(value)})`);
  }
  return store;
}

export interface RunningProjector {
  projector: KafkaProjector;
  projection: DocumentProjection;
  stop(): Promise<void>;
}

export async function startProjector(
  config: Config,
  store: StoreName,
  logger: Logger,
  registry?: Registry,
): Promise<RunningProjector> {
  const projection = documentProjection(config, store, logger);
  const projector = new KafkaProjector({
    kafka: kafkaFrom(config, `projector-${store}`, logger),
    projection,
    topicPrefix: config.kafka.topicPrefix,
    partitions: config.kafka.partitions,
    sessionTimeoutMs: config.kafka.sessionTimeoutMs,
    logger,
    ...(registry ? { registry } : {}),
  });
  await projector.start();
  return {
    projector,
    projection,
    async stop() {
      await projector.stop();
      await projection.close();
    },
  };
}

export interface LagReport {
  /** Debezium records the translator has not yet published as domain events. */
  translator: number;
  /** Domain events each projector group has not yet applied. */
  projectors: Record<string, number>;
  total: number;
}

export type ProjectionTopics = Pick<DocumentProjection, 'name' | 'streamTypes'>;

/** Consumer-group lag of every stage of the distributed pipeline. */
export async function distributedLag(
  config: Config,
  kafka: Kafka,
  projections: readonly ProjectionTopics[],
): Promise<LagReport> {
  const sourceTopics = capturedTables(config).map((t) => tableTopic(config.cdc.name, t.scope, t.table));
  const translator = await groupLag(kafka, translatorGroupId(config), [
    ...sourceTopics,
    `${config.cdc.name}.transaction`,
  ]);
  const projectors: Record<string, number> = {};
  for (const projection of projections) {
    const topics = projection.streamTypes.map((t) => domainTopic(config.kafka.topicPrefix, t));
    projectors[projection.name] = (
      await groupLag(kafka, projectorGroupId(config.kafka.topicPrefix, projection.name), topics)
    ).total;
  }
  const total = translator.total + Object.values(projectors).reduce((a, b) => a + b, 0);
  return { translator: translator.total, projectors, total };
}

/**
 * Freshness of the server read models: caught up when every stage has consumed everything
 * Debezium has published. Debezium's own distance to the binlog head is not seen here (its
 * offsets are flushed periodically), so a change not yet captured reads as caught up and a
 * comparison against it is re-checked (compare.maxRechecks) before it counts as a mismatch.
 */
export function lagFreshness(
  config: Config,
  kafka: Kafka,
  projections: readonly ProjectionTopics[],
): FreshnessPort {
  const isCaughtUp = async () => (await distributedLag(config, kafka, projections)).total === 0;
  return {
    isCaughtUp,
    async waitForCatchUp(timeoutMs: number) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (await isCaughtUp()) return true;
        if (Date.now() >= deadline) return false;
        await new Promise((r) => setTimeout(r, 250));
      }
    },
  };
}
