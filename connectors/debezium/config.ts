import { z } from 'zod';
import { ConfigError } from '../../lib/errors.js';
import { topicSafe } from '../kafka/topic-names.js';

/**
 * Debezium 3.x connector configs for the Kafka Connect REST API. Property names and values
 * follow the Debezium 3.1 reference (connectors/mariadb, mysql, postgresql: "Connector
 * properties"). The settings in PIPELINE_SETTINGS are what connectors/debezium/record.ts
 * relies on to yield the same ChangeEvent values as the embedded binlog reader, so callers
 * cannot override them through `extra`.
 */

export type ConnectorKind = 'mariadb' | 'mysql' | 'postgresql';

export const CONNECTOR_CLASSES: Record<ConnectorKind, string> = {
  mariadb: 'io.debezium.connector.mariadb.MariaDbConnector',
  mysql: 'io.debezium.connector.mysql.MySqlConnector',
  postgresql: 'io.debezium.connector.postgresql.PostgresConnector',
};

export interface ConnectorConfig {
  name: string;
  config: Record<string, string>;
}

/** The default signal table; `signal.data.collection` points at it for incremental snapshots. */
export const SIGNAL_TABLE = 'debezium_signal';

/**
 * DDL of the signaling table (the three-column id/type/data layout Debezium's signalling
 * docs require). The connector user must be able to INSERT into it (watermarks).
 */
export function signalTableDdl(kind: ConnectorKind, table: string = SIGNAL_TABLE): string {
  if (kind === 'postgresql') {
    return `CREATE TABLE IF NOT EXISTS ${table} (id VARCHAR(42) PRIMARY KEY, type VARCHAR(32) NOT NULL, data VARCHAR(2048) NULL)`;
  }
  return `CREATE TABLE IF NOT EXISTS \`${table}\` (id VARCHAR(42) PRIMARY KEY, type VARCHAR(32) NOT NULL, data VARCHAR(2048) NULL) ENGINE=InnoDB`;
}

/**
 * Values the pipeline depends on:
 * - decimals as plain strings, temporal values at their column's precision, binary as base64,
 *   so record.ts can render them exactly like mysql2 does on the embedded path;
 * - column.propagate.source.type on every column, because with decimal.handling.mode=string a
 *   DECIMAL's Connect schema is a bare string: only the propagated type/length/scale tell the
 *   converter it is a DECIMAL(19,4) or a DATETIME(6);
 * - transaction metadata, so the consumer can regroup events into source transactions;
 * - no tombstones (the event store has nothing to compact);
 * - truncate events (skipped by default): a TRUNCATE removes rows without row deletes in the
 *   log, and the consumer must say so rather than let the read models keep them unnoticed;
 * - the JSON converter with schemas, whatever the worker's default converters are;
 * - one partition per topic Connect creates: Debezium keys records by primary key, so on a
 *   multi-partition topic the rows of one table (and the BEGIN/END markers) would be read
 *   out of commit order. Cross-table order comes from the transaction block and the source
 *   positions.
 */
const COMMON_PIPELINE_SETTINGS = {
  'decimal.handling.mode': 'string',
  'time.precision.mode': 'adaptive_time_microseconds',
  'binary.handling.mode': 'base64',
  'column.propagate.source.type': '.*',
  'provide.transaction.metadata': 'true',
  'tombstones.on.delete': 'false',
  'skipped.operations': 'none',
  'key.converter': 'org.apache.kafka.connect.json.JsonConverter',
  'key.converter.schemas.enable': 'true',
  'value.converter': 'org.apache.kafka.connect.json.JsonConverter',
  'value.converter.schemas.enable': 'true',
  'topic.creation.default.partitions': '1',
  // -1: the broker's default.replication.factor
  'topic.creation.default.replication.factor': '-1',
} as const;

/**
 * include.schema.changes=false: the adapter never reads the schema change topic. Every change
 * record carries its own Connect schema, and the connector keeps its DDL history in the
 * internal schema history topic regardless of this flag, so a second copy would only add a
 * topic the consumer must skip.
 */
const BINLOG_PIPELINE_SETTINGS = {
  ...COMMON_PIPELINE_SETTINGS,
  'include.schema.changes': 'false',
  'bigint.unsigned.handling.mode': 'long',
} as const;

/**
 * publish.via.partition.root: the publication the connector creates publishes a partitioned
 * table's changes as the root table's (PostgreSQL's publish_via_partition_root), so they reach
 * the root's topic and mapping rules instead of one topic per partition. The property is
 * read from Debezium 3.2 on (DBZ-9158); Connect passes it through unused to 3.1, which
 * creates its publication without the option: there, create the publication beforehand
 * (`CREATE PUBLICATION <publication.name> FOR TABLE … WITH (publish_via_partition_root = true)`;
 * the connector uses an existing one).
 */
const POSTGRES_PIPELINE_SETTINGS = {
  ...COMMON_PIPELINE_SETTINGS,
  'plugin.name': 'pgoutput',
  'publication.autocreate.mode': 'filtered',
  'publish.via.partition.root': 'true',
  // ISO 8601 with every field ("P1Y2M-3DT4H5M6.5S"), which the embedded reader renders from
  // the server's text; the numeric default is microseconds with months as 30.4375 days.
  'interval.handling.mode': 'string',
  // Types Debezium does not know (tsvector, tsquery, box, polygon, multiranges, pg_lsn, ...)
  // come as the bytes of their text instead of being left out of the record: a row schema that
  // lists the column would send every row of the table to the dead letters.
  'include.unknown.datatypes': 'true',
} as const;

export const PIPELINE_SETTINGS: Record<ConnectorKind, Readonly<Record<string, string>>> = {
  mariadb: BINLOG_PIPELINE_SETTINGS,
  mysql: BINLOG_PIPELINE_SETTINGS,
  postgresql: POSTGRES_PIPELINE_SETTINGS,
};

// Topic prefix rule from the topic.prefix reference: alphanumerics, hyphens, dots, underscores.
const topicName = z.string().regex(/^[A-Za-z0-9._-]+$/, 'only letters, digits, ".", "_" and "-"');
const identifier = z.string().min(1).max(64);

const commonOptions = z.object({
  /** Connector name in Kafka Connect. */
  name: topicName,
  /** Logical server name: `topic.prefix`; topics are `<prefix>.<db>.<table>`. */
  topicPrefix: topicName,
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  user: z.string().min(1),
  password: z.string(),
  database: identifier,
  /** Tables to capture, unqualified (the builder qualifies them) or already qualified. */
  tables: z.array(z.string().min(1).max(200)).min(1),
  snapshotMode: z.string().default('initial'),
  /** Signal table for incremental snapshots; null disables source signalling. */
  signalTable: identifier.nullable().default(SIGNAL_TABLE),
  /** Heartbeats keep offsets moving while the captured tables are idle; 0 disables. */
  heartbeatIntervalMs: z.number().int().min(0).default(10_000),
  /**
   * `poll.interval.ms`: how long the connector's queue waits for a full batch (max.batch.size,
   * 2048) before Connect gets what it holds. Debezium's default, 500 ms, is added to every
   * change's latency below ~4,000 changes/s; 50 ms costs a few more, smaller produce requests.
   */
  pollIntervalMs: z.number().int().min(1).default(50),
  /** Further connector properties; pipeline settings cannot be overridden here. */
  extra: z.record(z.string(), z.string()).default({}),
});

const binlogSnapshotModes = z.enum([
  'always',
  'initial',
  'initial_only',
  'no_data',
  'recovery',
  'never',
  'when_needed',
  'configuration_based',
  'custom',
  'schema_only',
  'schema_only_recovery',
]);
const postgresSnapshotModes = z.enum([
  'always',
  'initial',
  'initial_only',
  'no_data',
  'never',
  'when_needed',
  'configuration_based',
  'custom',
]);

export const binlogConnectorOptions = commonOptions.extend({
  port: z.number().int().min(1).max(65535).default(3306),
  snapshotMode: binlogSnapshotModes.default('initial'),
  /** Replica server id, unique among the server's replicas; derived from `name` when omitted. */
  serverId: z.number().int().min(1).max(4_294_967_295).optional(),
  kafkaBootstrap: z.string().min(1).default('127.0.0.1:9092'),
  /** Internal DDL history topic; defaults to `schema-history.<topicPrefix>` (outside the prefix's namespace). */
  schemaHistoryTopic: topicName.optional(),
  /** `snapshot.locking.mode`; Debezium's default (minimal) takes a brief global read lock. */
  snapshotLockingMode: z.enum(['minimal', 'extended', 'none']).optional(),
});
export type BinlogConnectorOptions = z.input<typeof binlogConnectorOptions>;

export const postgresConnectorOptions = commonOptions.extend({
  port: z.number().int().min(1).max(65535).default(5432),
  snapshotMode: postgresSnapshotModes.default('initial'),
  schema: identifier.default('public'),
  /** Replication slot; lower-case letters, digits and underscores (PostgreSQL's rule). */
  slotName: z
    .string()
    .regex(/^[a-z0-9_]{1,63}$/, 'lower-case letters, digits and "_" only, at most 63')
    .optional(),
  publicationName: identifier.optional(),
});
export type PostgresConnectorOptions = z.input<typeof postgresConnectorOptions>;

function parseOptions<S extends z.ZodType>(schema: S, opts: unknown, kind: ConnectorKind): z.output<S> {
  const parsed = schema.safeParse(opts);
  if (!parsed.success) {
    throw new ConfigError(`invalid ${kind} connector options: ${z.prettifyError(parsed.error)}`, {
      cause: parsed.error,
    });
  }
  return parsed.data;
}

function assertNoPipelineOverride(kind: ConnectorKind, extra: Record<string, string>): void {
  const clashes = Object.keys(extra).filter((k) => k in PIPELINE_SETTINGS[kind]);
  if (clashes.length > 0) {
    throw new ConfigError(
      `connector option(s) ${clashes.join(', ')} cannot be overridden: the Debezium record converter depends on them`,
      { hint: 'remove them from `extra`' },
    );
  }
}

/** Anchored include-list regex for one captured table; a bare name is qualified by `scope`. */
function tablePattern(scope: string, table: string): string {
  return regexLiteral(table.includes('.') ? table : `${scope}.${table}`);
}

/** `text` as a Java regex that matches exactly it (Debezium's include lists are regexes). */
function regexLiteral(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}

/** A stable id in MySQL's server-id range, away from the small ids real servers use. */
export function serverIdFor(name: string): number {
  let h = 0x811c9dc5;
  for (const ch of name) {
    h ^= ch.codePointAt(0) ?? 0;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return 100_000 + (h % 1_000_000_000);
}

function commonSettings(o: z.output<typeof commonOptions>, kind: ConnectorKind, scope: string) {
  const settings: Record<string, string> = {
    'connector.class': CONNECTOR_CLASSES[kind],
    'tasks.max': '1',
    'database.hostname': o.host,
    'database.port': String(o.port),
    'database.user': o.user,
    'database.password': o.password,
    'topic.prefix': o.topicPrefix,
    'table.include.list': o.tables.map((t) => tablePattern(scope, t)).join(','),
    'snapshot.mode': o.snapshotMode,
    'heartbeat.interval.ms': String(o.heartbeatIntervalMs),
    'poll.interval.ms': String(o.pollIntervalMs),
  };
  if (o.signalTable !== null) settings['signal.data.collection'] = `${scope}.${o.signalTable}`;
  return settings;
}

function binlogConnector(kind: 'mariadb' | 'mysql', opts: BinlogConnectorOptions): ConnectorConfig {
  const o = parseOptions(binlogConnectorOptions, opts, kind);
  assertNoPipelineOverride(kind, o.extra);
  const config: Record<string, string> = {
    ...commonSettings(o, kind, o.database),
    'database.server.id': String(o.serverId ?? serverIdFor(o.name)),
    'database.include.list': regexLiteral(o.database),
    'schema.history.internal.kafka.bootstrap.servers': o.kafkaBootstrap,
    'schema.history.internal.kafka.topic': o.schemaHistoryTopic ?? `schema-history.${o.topicPrefix}`,
    // On a shared server, recording every database's DDL would make the snapshot read (and
    // lock) schemas the connector never captures.
    'schema.history.internal.store.only.captured.databases.ddl': 'true',
    'schema.history.internal.store.only.captured.tables.ddl': 'true',
    ...(o.snapshotLockingMode === undefined ? {} : { 'snapshot.locking.mode': o.snapshotLockingMode }),
    ...o.extra,
    ...PIPELINE_SETTINGS[kind],
  };
  return { name: o.name, config };
}

export function mariadbConnector(opts: BinlogConnectorOptions): ConnectorConfig {
  return binlogConnector('mariadb', opts);
}

export function mysqlConnector(opts: BinlogConnectorOptions): ConnectorConfig {
  return binlogConnector('mysql', opts);
}

export function postgresConnector(opts: PostgresConnectorOptions): ConnectorConfig {
  const o = parseOptions(postgresConnectorOptions, opts, 'postgresql');
  assertNoPipelineOverride('postgresql', o.extra);
  const slot = o.slotName ?? slotNameFor(o.name);
  const config: Record<string, string> = {
    ...commonSettings(o, 'postgresql', o.schema),
    'database.dbname': o.database,
    'slot.name': slot,
    'publication.name': o.publicationName ?? `${slot}_pub`,
    ...o.extra,
    ...PIPELINE_SETTINGS.postgresql,
  };
  return { name: o.name, config };
}

/** Slot names allow only [a-z0-9_]; connector names also allow "-", "." and upper case. */
export function slotNameFor(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 59);
}

export type ConnectorOptions<K extends ConnectorKind> = K extends 'postgresql'
  ? PostgresConnectorOptions
  : BinlogConnectorOptions;

export function buildConnector<K extends ConnectorKind>(kind: K, opts: ConnectorOptions<K>): ConnectorConfig {
  if (kind === 'postgresql') return postgresConnector(opts as PostgresConnectorOptions);
  return binlogConnector(kind as 'mariadb' | 'mysql', opts as BinlogConnectorOptions);
}

/** Topic of one captured table: `<prefix>.<db>.<table>` (PostgreSQL: `<prefix>.<schema>.<table>`). */
export function tableTopic(topicPrefix: string, scope: string, table: string): string {
  // As Debezium names it: table `Order Lines` → `<prefix>.<schema>.Order_Lines`.
  return topicSafe(`${topicPrefix}.${scope}.${table}`);
}

/** Where provide.transaction.metadata=true writes BEGIN/END markers. */
export function transactionTopic(topicPrefix: string): string {
  return `${topicPrefix}.transaction`;
}
