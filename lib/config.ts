import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors.js';

/**
 * The adapter's whole configuration as one validated object, read from an optional JSON
 * file and then environment variables (env wins). Every field has a default, so the demo
 * runs unconfigured against the project's own MariaDB (scripts/legacy-db.sh).
 */
const modeSchema = z.enum(['legacy', 'shadow', 'canary', 'new']);

export const configSchema = z.object({
  legacy: z
    .object({
      /** mysql://user:password@host:port/database of the legacy database. */
      url: z.string().default('mysql://cqrs:cqrs@127.0.0.1:3307/legacy_bank'),
      flavor: z.enum(['mariadb', 'mysql']).optional(),
      /** Connections the legacy read path may use. */
      poolSize: z.number().int().min(1).default(8),
    })
    .prefault({}),
  cdc: z
    .object({
      /** embedded: binlog reader in this process. kafka: consume Debezium topics. */
      mode: z.enum(['embedded', 'kafka']).default('embedded'),
      /** Replica server id of the embedded reader; unique among the source's replicas. */
      serverId: z.number().int().min(1).default(5401),
      /** Logical server name (Debezium's topic prefix). */
      name: z.string().min(1).default('legacy'),
      snapshotMode: z.enum(['initial', 'never', 'when_needed']).default('initial'),
      snapshotChunkRows: z.number().int().min(1).default(5000),
      /** Tables to capture; empty = all tables of the database. */
      tables: z.array(z.string()).default([]),
    })
    .prefault({}),
  /** Distributed mode: Debezium on Kafka Connect, domain events on Kafka. */
  kafka: z
    .object({
      brokers: z.array(z.string().min(1)).min(1).default(['127.0.0.1:9092']),
      clientId: z.string().min(1).default('cqrs-migrate'),
      /** Domain topics are `<topicPrefix>.events.<streamType>`; dead letters `<topicPrefix>.dead-letters`. */
      topicPrefix: z
        .string()
        .regex(/^[A-Za-z0-9._-]+$/)
        .default('cqrs'),
      /** Partitions of each domain topic the translator creates: the most projector processes per group that get work. */
      partitions: z.number().int().min(1).default(6),
      /** How long a silent group member keeps its partitions before the others take them over. */
      sessionTimeoutMs: z.number().int().min(6000).default(30_000),
    })
    .prefault({}),
  connect: z
    .object({
      url: z.string().url().default('http://127.0.0.1:8083'),
      /** The legacy database as the Connect workers reach it (in Docker: the service name); default legacy.url. */
      legacyUrl: z.string().optional(),
      /** Kafka as the Connect workers reach it (schema history topic); default kafka.brokers. */
      kafkaBootstrap: z.string().optional(),
    })
    .prefault({}),
  /** Server read models of the distributed mode. */
  stores: z
    .object({
      mongoUrl: z.string().default('mongodb://127.0.0.1:27017'),
      mongoDatabase: z.string().min(1).default('cqrs_read_models'),
      opensearchUrl: z.string().url().default('http://127.0.0.1:9200'),
      /** Prefix of the OpenSearch indexes the history projection writes. */
      opensearchIndexPrefix: z
        .string()
        .regex(/^[a-z0-9._-]+$/)
        .default('cqrs'),
    })
    .prefault({}),
  /** Where embedded stores keep their files. */
  dataDir: z.string().default('.data/adapter'),
  projector: z
    .object({
      batchSize: z.number().int().min(1).default(500),
      pollIntervalMs: z.number().int().min(1).default(200),
    })
    .prefault({}),
  api: z
    .object({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8080),
      /** Prometheus /metrics of the translator and projector processes (they serve no API); 0 = off. */
      metricsPort: z.number().int().min(0).max(65535).default(0),
    })
    .prefault({}),
  flags: z
    .object({
      /** Mode of any endpoint not listed below. */
      defaultMode: modeSchema.default('shadow'),
      endpoints: z
        .record(z.string(), z.object({ mode: modeSchema, percent: z.number().min(0).max(100).optional() }))
        .default({}),
      /** Persist run-time flag changes here (JSON); empty = keep them in memory. */
      file: z.string().optional(),
    })
    .prefault({}),
  compare: z
    .object({
      concurrency: z.number().int().min(1).default(2),
      queueSize: z.number().int().min(1).default(1000),
      /** Re-check a differing answer this long after the read model catches up, before calling it a mismatch. */
      recheckDelayMs: z.number().int().min(0).default(500),
      maxRechecks: z.number().int().min(0).default(3),
      /** node-cron expression of the scheduled reconciliation job; empty = off. */
      reconcileCron: z.string().default(''),
    })
    .prefault({}),
  log: z.object({ level: z.string().default('info') }).prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

/** Environment variables and the config path they set. */
const ENV_MAP: Record<string, [string[], 'string' | 'number' | 'list']> = {
  CQRS_LEGACY_URL: [['legacy', 'url'], 'string'],
  CQRS_CDC_MODE: [['cdc', 'mode'], 'string'],
  CQRS_CDC_SERVER_ID: [['cdc', 'serverId'], 'number'],
  CQRS_CDC_NAME: [['cdc', 'name'], 'string'],
  CQRS_DATA_DIR: [['dataDir'], 'string'],
  CQRS_KAFKA_BROKERS: [['kafka', 'brokers'], 'list'],
  CQRS_KAFKA_TOPIC_PREFIX: [['kafka', 'topicPrefix'], 'string'],
  CQRS_CONNECT_URL: [['connect', 'url'], 'string'],
  CQRS_CONNECT_LEGACY_URL: [['connect', 'legacyUrl'], 'string'],
  CQRS_CONNECT_KAFKA_BOOTSTRAP: [['connect', 'kafkaBootstrap'], 'string'],
  CQRS_MONGO_URL: [['stores', 'mongoUrl'], 'string'],
  CQRS_MONGO_DATABASE: [['stores', 'mongoDatabase'], 'string'],
  CQRS_OPENSEARCH_URL: [['stores', 'opensearchUrl'], 'string'],
  CQRS_OPENSEARCH_INDEX_PREFIX: [['stores', 'opensearchIndexPrefix'], 'string'],
  CQRS_API_HOST: [['api', 'host'], 'string'],
  CQRS_API_PORT: [['api', 'port'], 'number'],
  CQRS_METRICS_PORT: [['api', 'metricsPort'], 'number'],
  CQRS_FLAGS_DEFAULT_MODE: [['flags', 'defaultMode'], 'string'],
  CQRS_RECONCILE_CRON: [['compare', 'reconcileCron'], 'string'],
  LOG_LEVEL: [['log', 'level'], 'string'],
};

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}

export interface LoadConfigOptions {
  /** JSON file; when omitted, ./cqrs-migrate.config.json is read if it exists. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Applied last: used by tests and CLI flags. */
  overrides?: ConfigInput;
}

export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const file = options.file ?? env.CQRS_CONFIG ?? 'cqrs-migrate.config.json';
  let raw: Record<string, unknown> = {};
  if (existsSync(file)) {
    try {
      raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (cause) {
      throw new ConfigError(`config file ${resolve(file)} is not valid JSON`, { cause });
    }
  } else if (options.file !== undefined || env.CQRS_CONFIG !== undefined) {
    throw new ConfigError(`config file ${resolve(file)} does not exist`);
  }
  for (const [name, [path, type]] of Object.entries(ENV_MAP)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    setPath(raw, path, type === 'number' ? Number(value) : type === 'list' ? value.split(',') : value);
  }
  const merged = deepMerge(raw, (options.overrides ?? {}) as Record<string, unknown>);
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('\n');
    throw new ConfigError(`invalid configuration:\n${issues}`, {
      cause: parsed.error,
      hint: 'see "Configuration" in README.md for every option and its environment variable',
    });
  }
  return parsed.data;
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlainObject(v) && isPlainObject(b) ? deepMerge(b, v) : v === undefined ? b : (v as unknown);
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function dataPath(config: Config, file: string): string {
  return resolve(config.dataDir, file);
}
