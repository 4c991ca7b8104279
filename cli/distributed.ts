import { Client } from '@opensearch-project/opensearch';
import { Kafka, type logCreator, logLevel } from 'kafkajs';
import { MongoClient } from 'mongodb';
import type { Registry } from 'prom-client';
import type { FreshnessPort } from '../compare/ports.js';
import { tableTopic } from '../connectors/debezium/config.js';
import { ConnectClient, type ConnectorState } from '../connectors/debezium/connect-client.js';
import { deadLetterMasking } from '../connectors/kafka/dead-letter-masking.js';
import { type CapturedTable, KafkaDebeziumSource } from '../connectors/kafka/debezium-source.js';
import { domainTopic } from '../connectors/kafka/domain-topics.js';
import { DomainEventTranslator, type TranslatorOptions } from '../connectors/kafka/translator.js';
import { parseLegacyUrl, requireDatabase, schemaOf } from '../connectors/legacy/url.js';
import type { Migration } from '../definition/migration.js';
import type { ReadModelHandle, ReadModels } from '../definition/read-models.js';
import type { Config } from '../lib/config.js';
import { type AdapterError, ConfigError } from '../lib/errors.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import { groupLag, KafkaProjector, projectorGroupId, rebuildProjection } from '../projectors/kafka-runner.js';
import type { DocumentProjection } from '../projectors/ports.js';
import { maintainedVersions, type StoreVersions } from '../projectors/stores/document-versions.js';
import { MongoReadModel } from '../projectors/stores/mongo-read-models.js';
import { MongoVersions } from '../projectors/stores/mongo-versions.js';
import { OpenSearchReadModel } from '../projectors/stores/opensearch-read-models.js';
import { OpenSearchVersions } from '../projectors/stores/opensearch-versions.js';
import { readModelTopics } from '../projectors/stores/read-model-documents.js';
import { VersionedProjectors } from './distributed-versions.js';
import { cachedLiveHandle, openServerCache } from './server-cache.js';

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
 * MariaDB/MySQL (the legacy URL's database: there is no default), by schema on PostgreSQL
 * (the connector captures the URL's `?schema=`, else `public`). `cdc.tables` narrows them; empty means every table the
 * migration captures.
 */
export function capturedTables(config: Config, migration: Migration): CapturedTable[] {
  const url = parseLegacyUrl(config.legacy.url);
  const scope = url.dialect === 'postgres' ? schemaOf(url) : requireDatabase(config.legacy.url, url);
  const tables = config.cdc.tables.length > 0 ? config.cdc.tables : [...migration.tables];
  return tables.map((table) => ({ scope, table }));
}

export const translatorGroupId = (config: Config) => `${config.kafka.topicPrefix}.translator`;

export interface RunningTranslator {
  translator: DomainEventTranslator;
  source: KafkaDebeziumSource;
  /** Settles when consumption stopped for good (its consumer could not be restarted). */
  failed: Promise<AdapterError>;
  stop(): Promise<void>;
}

/** Debezium topics → the migration's capture rules → domain topics. */
export async function startTranslator(
  config: Config,
  migration: Migration,
  logger: Logger,
  registry?: Registry,
  onPublished?: TranslatorOptions['onPublished'],
): Promise<RunningTranslator> {
  const kafka = kafkaFrom(config, 'translator', logger);
  let translator: DomainEventTranslator | null = null;
  let fail: (err: AdapterError) => void = () => undefined;
  const failed = new Promise<AdapterError>((resolve) => {
    fail = resolve;
  });
  const source = new KafkaDebeziumSource({
    kafka,
    topicPrefix: config.cdc.name,
    tables: capturedTables(config, migration),
    groupId: translatorGroupId(config),
    snapshotChunkRows: config.cdc.snapshotChunkRows,
    sessionTimeoutMs: config.kafka.sessionTimeoutMs,
    staleMarkerGraceMs: config.kafka.staleMarkerGraceMs,
    logger,
    ...(registry ? { registry } : {}),
    onInvalidRecord: async (record) => translator?.deadLetterRecord(record),
    onError: (err) => fail(err),
  });
  translator = new DomainEventTranslator({
    kafka,
    source,
    rules: migration.rules,
    topicPrefix: config.kafka.topicPrefix,
    partitions: config.kafka.partitions,
    masking: deadLetterMasking(migration.sensitiveColumns),
    deadLetterRetentionMs: deadLetterRetentionMs(config),
    maxRequestBytes: config.kafka.produceMaxBytes,
    logger,
    ...(registry ? { registry } : {}),
    ...(onPublished ? { onPublished } : {}),
  });
  await translator.start();
  const running = translator;
  return { translator: running, source, failed, stop: () => running.stop() };
}

/**
 * retention.ms of the dead-letter topic: `retention.deadLettersMaxAgeDays`, as the embedded
 * store prunes its dead letters (0: no limit). Kafka has no row limit, so
 * `retention.deadLettersMaxRows` does not apply to the topic.
 */
export function deadLetterRetentionMs(config: Config): number {
  const days = config.retention.deadLettersMaxAgeDays;
  return days === 0 ? -1 : Math.round(days * 86_400_000);
}

export function parseStore(value: string | undefined): StoreName {
  const store = STORES.find((s) => s === value);
  if (store === undefined) {
    throw new ConfigError(`--store must be one of ${STORES.join(', ')} (got ${JSON.stringify(value)})`);
  }
  return store;
}

/**
 * The server store of every read model: `stores.placement[name]`, else MongoDB. A placement
 * naming a read model the migration does not have is refused, since it is most likely a typo
 * that would silently leave the intended read model on the default store.
 */
export function placementOf(config: Config, migration: Migration): Map<string, StoreName> {
  const placement: Readonly<Record<string, string>> = config.stores.placement ?? {};
  const names = migration.readModels.map((m) => m.name);
  const unknown = Object.keys(placement).filter((name) => !names.includes(name));
  if (unknown.length > 0) {
    throw new ConfigError(
      `stores.placement names read model(s) ${unknown.join(', ')} that ${migration.name} does not define`,
      {
        hint: `read models of ${migration.name}: ${names.join(', ')}`,
      },
    );
  }
  return new Map(names.map((name) => [name, parseStore(placement[name] ?? 'mongo')]));
}

/** Names of the read models placed in `store`, in definition order. */
export function readModelsIn(config: Config, migration: Migration, store: StoreName): string[] {
  return [...placementOf(config, migration)].filter(([, s]) => s === store).map(([name]) => name);
}

/** A read model in a server store: fed by a projector, read through its handle. */
export type ServerReadModel = DocumentProjection & { handle(): ReadModelHandle };

/** The read models placed in one server store, sharing one client; `close` closes it. */
export interface OpenedStore {
  store: StoreName;
  readModels: ServerReadModel[];
  /** The read models' versions (blue/green replays) in this store. */
  versions: StoreVersions;
  /** Rejects when the store does not answer. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Opens `store` with every read model placed in it (or only `names`). */
export function openStore(
  config: Config,
  migration: Migration,
  store: StoreName,
  logger: Logger,
  names: readonly string[] = readModelsIn(config, migration, store),
): OpenedStore {
  if (store === 'mongo') {
    const client = new MongoClient(config.stores.mongoUrl);
    const readModels = names.map(
      (readModel) =>
        new MongoReadModel({ migration, readModel, client, database: config.stores.mongoDatabase, logger }),
    );
    const ping = async () => {
      await client.db(config.stores.mongoDatabase).command({ ping: 1 });
    };
    const versions = new MongoVersions({ migration, client, database: config.stores.mongoDatabase, logger });
    return { store, readModels, versions, ping, close: () => client.close() };
  }
  const client = new Client({ node: config.stores.opensearchUrl });
  const readModels = names.map(
    (readModel) =>
      new OpenSearchReadModel({
        migration,
        readModel,
        client,
        indexPrefix: config.stores.opensearchIndexPrefix,
        logger,
      }),
  );
  const ping = async () => {
    await client.cluster.health({ timeout: '5s' });
  };
  const versions = new OpenSearchVersions({
    migration,
    client,
    indexPrefix: config.stores.opensearchIndexPrefix,
    logger,
  });
  return { store, readModels, versions, ping, close: () => client.close() };
}

export interface RunningProjector {
  /** Read models this process projects. */
  names: string[];
  projectors: KafkaProjector[];
  projections: DocumentProjection[];
  /** Settles when a projector stopped for good (its consumer could not be restarted). */
  failed: Promise<AdapterError>;
  stop(): Promise<void>;
}

/** What every KafkaProjector of `store` takes from the configuration and the definition. */
export function projectorSettings(config: Config, migration: Migration, store: StoreName, logger: Logger) {
  return {
    topicPrefix: config.kafka.topicPrefix,
    partitions: config.kafka.partitions,
    sessionTimeoutMs: config.kafka.sessionTimeoutMs,
    partitionsConcurrency: config.kafka.projectorConcurrency,
    store,
    storeCheckIntervalMs: config.stores.checkIntervalMs,
    maskInvalidEvents: migration.sensitiveColumns.size > 0,
    logger,
  };
}

/**
 * One projector process for a server store: a KafkaProjector (its own consumer group) per
 * maintained version of each read model placed there (VersionedProjectors; version 1 only
 * until a replay adds one). Start several processes to share each group's partitions.
 */
export async function startProjector(
  config: Config,
  migration: Migration,
  store: StoreName,
  logger: Logger,
  registry?: Registry,
): Promise<RunningProjector> {
  const opened = openStore(config, migration, store, logger);
  const cache = openServerCache(config, logger, registry);
  let fail: (err: AdapterError) => void = () => undefined;
  const failed = new Promise<AdapterError>((resolve) => {
    fail = resolve;
  });
  const versioned = new VersionedProjectors({
    readModels: opened.readModels.map((m) => m.name),
    versions: opened.versions,
    firstVersions: new Map(opened.readModels.map((m) => [m.name, m])),
    intervalMs: config.stores.checkIntervalMs,
    logger,
    start: async (projection) => {
      const projector = new KafkaProjector({
        ...projectorSettings(config, migration, store, logger),
        kafka: kafkaFrom(config, `projector-${store}`, logger),
        projection,
        ...(registry ? { registry } : {}),
        ...(cache ? { invalidation: cache } : {}),
        onError: (err) => fail(err),
      });
      await projector.start();
      return projector;
    },
  });
  try {
    await versioned.start();
  } catch (err) {
    await versioned.stop();
    await opened.close();
    cache?.close();
    throw err;
  }
  return {
    names: opened.readModels.map((p) => p.name),
    projectors: versioned.projectors,
    projections: versioned.projections,
    failed,
    async stop() {
      await versioned.stop();
      await opened.close();
      cache?.close();
    },
  };
}

/**
 * Empties every read model placed in `store` (each maintained version of it) and rewinds their
 * consumer groups, so the next projectors replay the domain topics from the start. Refused
 * while a projector of one of them is running (rebuildProjection). Returns the read models
 * rebuilt.
 */
export async function rebuildStore(
  config: Config,
  migration: Migration,
  store: StoreName,
  logger: Logger,
): Promise<string[]> {
  const opened = openStore(config, migration, store, logger);
  const kafka = kafkaFrom(config, 'rebuild', logger);
  try {
    for (const projection of opened.readModels) {
      const record = await opened.versions.registry.read(projection.name);
      for (const version of maintainedVersions(record)) {
        const stored = version === 1 ? projection : opened.versions.adapter(projection.name, version);
        await rebuildProjection(kafka, stored, config.kafka.topicPrefix);
      }
    }
    return opened.readModels.map((p) => p.name);
  } finally {
    await opened.close();
  }
}

/** The Debezium connector writing `cdc.name`'s topics, as Kafka Connect reports it. */
export interface SourceConnectorState {
  name: string;
  /**
   * RUNNING when the connector and every task run; else the first state that is not.
   * UNREACHABLE: Kafka Connect did not answer about a connector it ran before.
   */
  state: ConnectorState | 'UNREACHABLE';
}

/**
 * The connector whose `topic.prefix` is `cdc.name`, or null when Connect has none (the
 * connector is managed elsewhere) or cannot be asked and no connector was seen before. A
 * connector that is not running is a source that stopped capturing: consumer-group lag stays 0
 * while the legacy database moves on. So is one whose Connect stopped answering (a restart, a
 * crash): `seen` names the connector found on an earlier call, which then reads UNREACHABLE
 * instead of "none".
 */
export async function sourceConnectorState(
  config: Config,
  seen: string | null = null,
): Promise<SourceConnectorState | null> {
  const client = new ConnectClient({ url: config.connect.url });
  try {
    for (const name of await client.list()) {
      if ((await client.config(name))['topic.prefix'] !== config.cdc.name) continue;
      const status = await client.status(name);
      const down = [status.connector.state, ...status.tasks.map((t) => t.state)].find((s) => s !== 'RUNNING');
      return { name, state: status.tasks.length === 0 ? (down ?? 'UNASSIGNED') : (down ?? 'RUNNING') };
    }
    return null;
  } catch {
    return seen === null ? null : { name: seen, state: 'UNREACHABLE' };
  }
}

export interface LagReport {
  /** The source connector, when Kafka Connect runs one for `cdc.name`. */
  connector: SourceConnectorState | null;
  /** Debezium records the translator has not yet published as domain events. */
  translator: number;
  /** Domain events each read model's projector group has not yet applied. */
  projectors: Record<string, number>;
  total: number;
}

/** Consumer-group lag of every stage of the distributed pipeline, for every read model of the migration. */
export async function distributedLag(
  config: Config,
  migration: Migration,
  kafka: Kafka,
  knownConnector?: SourceConnectorState | null,
): Promise<LagReport> {
  const sourceTopics = capturedTables(config, migration).map((t) =>
    tableTopic(config.cdc.name, t.scope, t.table),
  );
  const translator = await groupLag(kafka, translatorGroupId(config), [
    ...sourceTopics,
    `${config.cdc.name}.transaction`,
  ]);
  const projectors: Record<string, number> = {};
  for (const model of migration.readModels) {
    const topics = readModelTopics(migration, model).streamTypes.map((t) =>
      domainTopic(config.kafka.topicPrefix, t),
    );
    projectors[model.name] = (
      await groupLag(kafka, projectorGroupId(config.kafka.topicPrefix, model.name), topics)
    ).total;
  }
  const total = translator.total + Object.values(projectors).reduce((a, b) => a + b, 0);
  const connector = knownConnector === undefined ? await sourceConnectorState(config) : knownConnector;
  return { connector, translator: translator.total, projectors, total };
}

/**
 * Freshness of the server read models: caught up when the source connector runs and every
 * stage has consumed everything Debezium has published. A connector (or task) that is not
 * RUNNING is never caught up: it stopped capturing, so group lag says 0 while the legacy
 * database moves on. Debezium's distance to the binlog/WAL head while it runs is not seen
 * here (its offsets are flushed periodically and do not move on a shared server's other
 * databases), so a change not yet captured reads as caught up and a comparison against it is
 * re-checked (compare.maxRechecks) before it counts as a mismatch. OpenSearch searches lag
 * their writes by up to the refresh interval (1 s) on top of this.
 */
export function lagFreshness(config: Config, migration: Migration, kafka: Kafka): FreshnessPort {
  let seen: string | null = null;
  const isCaughtUp = async () => {
    const connector = await sourceConnectorState(config, seen);
    seen = connector?.name ?? seen;
    const lag = await distributedLag(config, migration, kafka, connector);
    return lag.total === 0 && (lag.connector === null || lag.connector.state === 'RUNNING');
  };
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

/** The read models of every server store, by name, each from the store it is placed in; `close` closes the clients. */
export function openServerReadModels(
  config: Config,
  migration: Migration,
  logger: Logger = silentLogger,
  /** With `cache`, key lookups go through the distributed read-model cache (serve, run). */
  cached?: { registry: Registry },
): { readModels: ReadModels; stores: OpenedStore[]; close(): Promise<void> } {
  const placement = placementOf(config, migration);
  const stores = STORES.filter((store) => [...placement.values()].includes(store)).map((store) =>
    openStore(config, migration, store, logger),
  );
  const cache = cached === undefined ? null : openServerCache(config, logger, cached.registry);
  const readModels: Record<string, ReadModelHandle> = {};
  // Each through its live version: a switch (replay, read-model switch/rollback) reaches every reader.
  for (const opened of stores)
    for (const model of opened.readModels)
      readModels[model.name] =
        cache === null
          ? opened.versions.liveHandle(model.name)
          : cachedLiveHandle(opened.versions, model.name, cache);
  return {
    readModels,
    stores,
    async close() {
      await Promise.all(stores.map((opened) => opened.close()));
      cache?.close();
    },
  };
}
