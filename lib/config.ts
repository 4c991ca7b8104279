import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';
import { gateConfigSchema } from '../rollout/gates.js';
import { rolloutPlanSchema } from '../rollout/stages.js';
import { ConfigError } from './errors.js';
import { isObject } from './guards.js';

/**
 * The adapter's whole configuration as one validated object, read from an optional JSON
 * file and then environment variables (env wins). Every field has a default, so the demo
 * runs unconfigured against the project's own MariaDB (scripts/legacy-db.sh).
 *
 * Every object is strict: an unknown key (a typo such as `flags.defaultMod`) is refused with
 * its path instead of being dropped, which would silently leave the default in force.
 */
const modeSchema = z.enum(['legacy', 'shadow', 'canary', 'new']);

/** The project's own MariaDB with the sample bank (scripts/legacy-db.sh): what the demo runs on. */
export const DEFAULT_LEGACY_URL = 'mysql://cqrs:cqrs@127.0.0.1:3307/legacy_bank';

export const configSchema = z.strictObject({
  legacy: z
    .strictObject({
      /** mysql://user:password@host:port/database of the legacy database. */
      url: z.string().default(DEFAULT_LEGACY_URL),
      flavor: z.enum(['mariadb', 'mysql']).optional(),
      /** Connections the legacy read path may use. */
      poolSize: z.number().int().min(1).default(8),
      /**
       * At start, have the legacy database prepare (not run) every endpoint's legacy SQL, so a
       * missing table or column refuses the start instead of failing every request.
       */
      checkQueries: z.boolean().default(true),
    })
    .prefault({}),
  cdc: z
    .strictObject({
      /** embedded: binlog reader in this process. kafka: consume Debezium topics. */
      mode: z.enum(['embedded', 'kafka']).default('embedded'),
      /** Replica server id of the embedded reader; unique among the source's replicas. */
      serverId: z.number().int().min(1).default(5401),
      /** Logical server name (Debezium's topic prefix). */
      name: z.string().min(1).default('legacy'),
      snapshotMode: z.enum(['initial', 'never', 'when_needed']).default('initial'),
      snapshotChunkRows: z.number().int().min(1).default(5000),
      /**
       * Row changes of one source transaction held in memory at most (embedded reader): a bigger
       * transaction is delivered in fragments of this many rows, staged in the event store and
       * published together at its commit, so memory does not grow with the transaction's size.
       */
      maxTransactionRows: z.number().int().min(1).default(5000),
      /**
       * While only tables it does not capture change (other tables, other databases on the
       * server), how often the embedded reader stores the position it has passed, as Debezium's
       * heartbeat.interval.ms does: a restart resumes there, and reconcile beside the run sees
       * the read models caught up. 0: only captured transactions move the stored offset.
       */
      heartbeatIntervalMs: z.number().int().min(0).default(1000),
      /** Tables to capture; empty = all tables of the database. */
      tables: z.array(z.string()).default([]),
    })
    .prefault({}),
  /** Distributed mode: Debezium on Kafka Connect, domain events on Kafka. */
  kafka: z
    .strictObject({
      brokers: z.array(z.string().min(1)).min(1).default(['127.0.0.1:9092']),
      clientId: z.string().min(1).default('cqrs-migrate'),
      /** Domain topics are `<topicPrefix>.events.<streamType>`; dead letters `<topicPrefix>.dead-letters`. */
      topicPrefix: z
        .string()
        .regex(/^[A-Za-z0-9._-]+$/)
        .default('cqrs'),
      /** Partitions of each domain topic the translator creates: the most projector processes per group that get work. */
      partitions: z.number().int().min(1).default(6),
      /**
       * How long a silent group member keeps its partitions before the others take them over (a
       * killed translator's standby takes over after this). Members heartbeat every 3 s, also
       * during long batches and slow store writes, so 10 s does not evict a busy member.
       */
      sessionTimeoutMs: z.number().int().min(6000).default(10_000),
      /**
       * A transaction END marker still missing rows this long after it was read, from a topic
       * read to its end, is a duplicate Debezium re-sent after a restart: dropped, not waited for.
       * Also how long a table whose last snapshot row was not read holds streamed transactions
       * once every topic was read to the snapshot barrier.
       */
      staleMarkerGraceMs: z.number().int().min(1000).default(30_000),
      /**
       * Partitions a projector takes batches from at once (kafkajs partitionsConsumedConcurrently);
       * the batches that arrive together are written, marked and committed as one.
       */
      projectorConcurrency: z.number().int().min(1).max(256).default(16),
      /** Most bytes of domain events the translator puts in one produce request (under the broker's message.max.bytes). */
      produceMaxBytes: z
        .number()
        .int()
        .min(1024)
        .max(64 * 1024 * 1024)
        .default(512 * 1024),
    })
    .prefault({}),
  connect: z
    .strictObject({
      url: z.string().url().default('http://127.0.0.1:8083'),
      /** The legacy database as the Connect workers reach it (in Docker: the service name); default legacy.url. */
      legacyUrl: z.string().optional(),
      /** Kafka as the Connect workers reach it (schema history topic); default kafka.brokers. */
      kafkaBootstrap: z.string().optional(),
      /** The connector's poll.interval.ms: the longest a captured change waits in Debezium's queue for a fuller batch. */
      pollIntervalMs: z.number().int().min(1).default(50),
    })
    .prefault({}),
  /**
   * Migration definition module (migration.ts or .js, default-exporting defineMigration({...})),
   * relative to the working directory. The --definition flag wins over it.
   */
  definition: z.string().min(1).optional(),
  /** Server read models of the distributed mode. */
  stores: z
    .strictObject({
      /**
       * Server store of each read model in the distributed mode, by read-model name, e.g.
       * `{ "transaction_history": "opensearch" }`. A read model not listed goes to MongoDB, so
       * the default `{}` puts them all there. OpenSearch suits full-text search and wide filters.
       */
      placement: z.record(z.string().min(1), z.enum(['mongo', 'opensearch'])).default({}),
      mongoUrl: z.string().default('mongodb://127.0.0.1:27017'),
      mongoDatabase: z.string().min(1).default('cqrs_read_models'),
      opensearchUrl: z.string().url().default('http://127.0.0.1:9200'),
      /** Prefix of the OpenSearch indexes the history projection writes. */
      opensearchIndexPrefix: z
        .string()
        .regex(/^[a-z0-9._-]+$/)
        .default('cqrs'),
      /**
       * How often an idle projector compares the store's applied marks with its consumer
       * group's committed offsets, to notice a store that lost its data (each batch checks too).
       */
      checkIntervalMs: z.number().int().min(100).default(15_000),
    })
    .prefault({}),
  /** Where embedded stores keep their files. */
  dataDir: z.string().default('.data/adapter'),
  projector: z
    .strictObject({
      batchSize: z.number().int().min(1).default(500),
      pollIntervalMs: z.number().int().min(1).default(200),
      /**
       * A projector behind by more than a batch composes view documents once per catch-up, not
       * per batch: at most this many documents wait to be composed (0: compose every batch).
       */
      deferMaxDocuments: z.number().int().min(0).default(50_000),
      /** …and for at most this long after its first deferred batch (what bounds live lag; 0: never defer). */
      deferMaxMs: z.number().int().min(0).default(1000),
      /**
       * Once caught up, the next batch starts no sooner than this after the last one that
       * applied events: a trickle of small legacy transactions is applied several per batch, so a
       * batch's fixed cost (its transaction, checkpoint and composing) is shared. Adds up to this
       * much read-model lag. 0: a batch at every append.
       */
      minBatchIntervalMs: z.number().int().min(0).max(10_000).default(0),
      /**
       * Read models that never had a document composed (a first start) are built in bulk through
       * the source's initial snapshot: views composed once, whole, at its end (as `rebuild` does).
       */
      bulkInitialBuild: z.boolean().default(true),
      /**
       * A first build (the read models' with bulkInitialBuild, and the analytics') applies
       * nothing until the source's initial snapshot is stored: the snapshot takes less time
       * (a shorter window the binlog or WAL must be kept for), the read models are served later
       * (the two no longer overlap). Off by default: the read models being served sooner is
       * what a migration waits for.
       */
      awaitInitialSnapshot: z.boolean().default(false),
      /**
       * Threads a bulk build (the first build, `rebuild`) composes its large views' documents on
       * while the projector's thread writes them, when the definition was loaded from a file
       * (each thread loads it again). 0: composed on the projector's thread, on one core.
       */
      composeThreads: z.number().int().min(0).max(16).default(2),
    })
    .prefault({}),
  api: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8080),
      /** Prometheus /metrics of the translator and projector processes (they serve no API); 0 = off. */
      metricsPort: z.number().int().min(0).max(65535).default(0),
      /** A read-model answer slower than this is served by legacy instead (a stalled store). */
      readModelTimeoutMs: z.number().int().min(1).default(2000),
      /**
       * Processes serving the public listener (node:cluster): 1 = this process alone; N > 1 =
       * N API workers sharing api.port while this process keeps the pipeline and the admin
       * listener; 'auto' = one per core (os.availableParallelism()).
       */
      workers: z.union([z.number().int().min(1).max(256), z.literal('auto')]).default(1),
      /**
       * File of admin tokens (`name:token` or a bare token per line): /admin/* and /metrics then
       * need `Authorization: Bearer <token>`. Prefer it to adminToken, which sits in the environment.
       */
      adminTokenFile: z.string().min(1).optional(),
      /** One admin token (`name:token` or bare); set it through CQRS_ADMIN_TOKEN, not the config file. */
      adminToken: z.string().min(1).optional(),
      /**
       * Serve /admin/* and /metrics without a token on a non-loopback host (behind your own
       * authenticating proxy). Without it, such a bind is refused; a warning is logged either way.
       */
      allowUnauthenticatedAdmin: z.boolean().default(false),
      /**
       * The admin surface (/admin/*, the dashboard, /metrics) listens apart from the reads, on
       * loopback by default, so opening api.host to clients does not open it. port 'public'
       * serves it on api.port instead (one-port deployments); the token rules are the same.
       */
      admin: z
        .strictObject({
          host: z.string().default('127.0.0.1'),
          /** 0 = any free port (clients then need --url); 'public' = on api.port. */
          port: z.union([z.number().int().min(0).max(65535), z.literal('public')]).default(8081),
        })
        .prefault({}),
    })
    .prefault({}),
  flags: z
    .strictObject({
      /** Mode of any endpoint not listed below. */
      defaultMode: modeSchema.default('shadow'),
      endpoints: z
        .record(
          z.string(),
          z.strictObject({
            mode: modeSchema,
            percent: z.number().min(0).max(100).optional(),
            /** Share of requests (0–1) a `new` endpoint still compares with legacy. */
            compareSample: z.number().min(0).max(1).optional(),
          }),
        )
        .default({}),
      /** Persist run-time flag changes here (JSON); default <dataDir>/flags.json. */
      file: z.string().optional(),
    })
    .prefault({}),
  /**
   * Where flags and rollout state live. Without redisUrl: files in dataDir (flags.file,
   * rollout.json), for one API process or replicas sharing a volume. With it: Redis, shared by
   * every API replica, changes announced over pub/sub and made atomically.
   */
  state: z
    .strictObject({
      /** redis://host:port/db; absent = files. */
      redisUrl: z.string().url().optional(),
      /** Prefix of the keys and channels (one per migration sharing a Redis). */
      prefix: z
        .string()
        .regex(/^[A-Za-z0-9._:-]+$/)
        .default('cqrs:state'),
    })
    .prefault({}),
  compare: z
    .strictObject({
      concurrency: z.number().int().min(1).default(2),
      queueSize: z.number().int().min(1).default(1000),
      /** Re-check a differing answer this long after the read model catches up, before calling it a mismatch. */
      recheckDelayMs: z.number().int().min(0).default(500),
      maxRechecks: z.number().int().min(0).default(3),
      /** node-cron expression of the scheduled reconciliation job; empty = off. */
      reconcileCron: z.string().default(''),
      /** How reconciliation spares the legacy database, and what it does about drift. */
      reconcile: z
        .strictObject({
          /**
           * Parameter sets per endpoint each scheduled run checks: the next slice after the
           * previous run's (the cursor is kept in <dataDir>/reconcile-cursor.json), so successive
           * runs cover every key; 0 = every key on every run. The `reconcile` command checks all.
           */
          sliceSize: z.number().int().min(0).default(0),
          /** Legacy queries per second reconciliation may issue (key listing and rechecks included); 0 = no limit. */
          maxQueriesPerSecond: z.number().min(0).default(0),
          /**
           * The scheduled job re-projects, from the event store, the read-model documents of every
           * key whose comparison settled as a mismatch (embedded pipeline only), like `reconcile --repair`.
           */
          repair: z.boolean().default(false),
        })
        .prefault({}),
    })
    .prefault({}),
  /**
   * Redis in front of the read models' key lookups (`get`: embedded, and MongoDB's on the
   * distributed path), invalidated by the projectors from the documents each batch writes; off without redisUrl. Redis down: reads go to the read models.
   */
  cache: z
    .strictObject({
      /** redis://host:port/db; absent = no cache. */
      redisUrl: z.string().url().optional(),
      ttlSeconds: z.number().int().min(1).default(60),
      /** Prefix of every key the cache writes (one per pipeline sharing a Redis). */
      prefix: z
        .string()
        .regex(/^[A-Za-z0-9._:-]+$/)
        .default('cqrs:cache'),
    })
    .prefault({}),
  /** `GET <endpoint>?_asOf=<time>`: answers rebuilt from the event store (embedded pipeline only). */
  timeTravel: z
    .strictObject({
      /** Most events one past state may replay; a time further from the store's start is a 422. */
      maxEvents: z.number().int().min(1).default(1_000_000),
      /** Past states kept for repeated questions (each a SQLite file under <dataDir>/time-travel). */
      cachedStates: z.number().int().min(1).default(2),
    })
    .prefault({}),
  /** Restarts of failed pipeline components (embedded `run`). */
  supervision: z
    .strictObject({
      /** How long a component may keep failing (restarts included) before the process gives up. */
      failureBudgetMs: z.number().int().min(0).default(60_000),
      /** Past the budget, or on a failure a restart cannot fix, exit 1; false: stay unready and keep retrying. */
      exitOnFailure: z.boolean().default(true),
      /** First restart backoff; later ones grow exponentially with jitter up to maxDelayMs. */
      initialDelayMs: z.number().int().min(1).default(200),
      maxDelayMs: z.number().int().min(1).default(5000),
    })
    .prefault({}),
  health: z
    .strictObject({
      /** /health/ready fails when the read models are older than this (seconds since the oldest unprojected commit). */
      maxLagSeconds: z.number().min(0).default(30),
      /** Behind and no progress for this long = stalled: differences then count as mismatches, not lag. */
      stallSeconds: z.number().min(0).default(15),
    })
    .prefault({}),
  /** How long comparison records and dead letters are kept (0 turns a limit off). */
  retention: z
    .strictObject({
      comparisonsMaxAgeDays: z.number().min(0).default(7),
      comparisonsMaxRows: z.number().int().min(0).default(1_000_000),
      /** Longer than comparisons: a dead letter is a divergence until it is re-driven. */
      deadLettersMaxAgeDays: z.number().min(0).default(30),
      deadLettersMaxRows: z.number().int().min(0).default(1_000_000),
      /** How often `run`/`serve` prune. */
      intervalSec: z.number().min(1).default(300),
      /** Rows per delete statement; requests are served between batches. */
      batchRows: z.number().int().min(1).default(1000),
    })
    .prefault({}),
  /** Per-domain rollout (capture → shadow → canary steps → new → retired) and its gates. */
  rollout: z
    .strictObject({
      plan: rolloutPlanSchema.prefault({}),
      gates: gateConfigSchema.prefault({}),
      /** node-cron expression on which canary steps advance while the gates hold; empty = off. */
      schedule: z.string().default(''),
      /** How often the kill switch checks the gates of what the read model serves. */
      checkIntervalMs: z.number().int().min(100).default(5000),
    })
    .prefault({}),
  log: z.strictObject({ level: z.string().default('info') }).prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

/** How a variable's text becomes a value; `port` is a number or a word such as 'public' or 'auto'. */
type EnvType = 'string' | 'number' | 'list' | 'boolean' | 'port';

/** Environment variables and the config path they set. */
const ENV_MAP: Record<string, [string[], EnvType]> = {
  CQRS_LEGACY_URL: [['legacy', 'url'], 'string'],
  CQRS_LEGACY_CHECK_QUERIES: [['legacy', 'checkQueries'], 'boolean'],
  CQRS_CDC_MODE: [['cdc', 'mode'], 'string'],
  CQRS_CDC_SERVER_ID: [['cdc', 'serverId'], 'number'],
  CQRS_CDC_NAME: [['cdc', 'name'], 'string'],
  CQRS_CDC_SNAPSHOT_CHUNK_ROWS: [['cdc', 'snapshotChunkRows'], 'number'],
  CQRS_PROJECTOR_DEFER_MAX_DOCUMENTS: [['projector', 'deferMaxDocuments'], 'number'],
  CQRS_PROJECTOR_DEFER_MAX_MS: [['projector', 'deferMaxMs'], 'number'],
  CQRS_PROJECTOR_MIN_BATCH_INTERVAL_MS: [['projector', 'minBatchIntervalMs'], 'number'],
  CQRS_PROJECTOR_BULK_INITIAL_BUILD: [['projector', 'bulkInitialBuild'], 'boolean'],
  CQRS_PROJECTOR_AWAIT_INITIAL_SNAPSHOT: [['projector', 'awaitInitialSnapshot'], 'boolean'],
  CQRS_PROJECTOR_COMPOSE_THREADS: [['projector', 'composeThreads'], 'number'],
  CQRS_CDC_MAX_TRANSACTION_ROWS: [['cdc', 'maxTransactionRows'], 'number'],
  CQRS_CDC_HEARTBEAT_INTERVAL_MS: [['cdc', 'heartbeatIntervalMs'], 'number'],
  CQRS_DATA_DIR: [['dataDir'], 'string'],
  CQRS_DEFINITION: [['definition'], 'string'],
  CQRS_KAFKA_BROKERS: [['kafka', 'brokers'], 'list'],
  CQRS_KAFKA_TOPIC_PREFIX: [['kafka', 'topicPrefix'], 'string'],
  CQRS_CONNECT_URL: [['connect', 'url'], 'string'],
  CQRS_CONNECT_LEGACY_URL: [['connect', 'legacyUrl'], 'string'],
  CQRS_CONNECT_KAFKA_BOOTSTRAP: [['connect', 'kafkaBootstrap'], 'string'],
  CQRS_CONNECT_POLL_INTERVAL_MS: [['connect', 'pollIntervalMs'], 'number'],
  CQRS_KAFKA_PROJECTOR_CONCURRENCY: [['kafka', 'projectorConcurrency'], 'number'],
  CQRS_KAFKA_PRODUCE_MAX_BYTES: [['kafka', 'produceMaxBytes'], 'number'],
  CQRS_MONGO_URL: [['stores', 'mongoUrl'], 'string'],
  CQRS_MONGO_DATABASE: [['stores', 'mongoDatabase'], 'string'],
  CQRS_OPENSEARCH_URL: [['stores', 'opensearchUrl'], 'string'],
  CQRS_OPENSEARCH_INDEX_PREFIX: [['stores', 'opensearchIndexPrefix'], 'string'],
  CQRS_API_HOST: [['api', 'host'], 'string'],
  CQRS_API_PORT: [['api', 'port'], 'number'],
  CQRS_METRICS_PORT: [['api', 'metricsPort'], 'number'],
  CQRS_ADMIN_HOST: [['api', 'admin', 'host'], 'string'],
  CQRS_ADMIN_PORT: [['api', 'admin', 'port'], 'port'],
  CQRS_API_READ_MODEL_TIMEOUT_MS: [['api', 'readModelTimeoutMs'], 'number'],
  CQRS_API_WORKERS: [['api', 'workers'], 'port'],
  CQRS_FLAGS_DEFAULT_MODE: [['flags', 'defaultMode'], 'string'],
  CQRS_RECONCILE_CRON: [['compare', 'reconcileCron'], 'string'],
  CQRS_RECONCILE_SLICE_SIZE: [['compare', 'reconcile', 'sliceSize'], 'number'],
  CQRS_RECONCILE_MAX_QPS: [['compare', 'reconcile', 'maxQueriesPerSecond'], 'number'],
  CQRS_RECONCILE_REPAIR: [['compare', 'reconcile', 'repair'], 'boolean'],
  CQRS_ROLLOUT_SCHEDULE: [['rollout', 'schedule'], 'string'],
  CQRS_STATE_REDIS_URL: [['state', 'redisUrl'], 'string'],
  CQRS_STATE_PREFIX: [['state', 'prefix'], 'string'],
  CQRS_CACHE_REDIS_URL: [['cache', 'redisUrl'], 'string'],
  CQRS_CACHE_TTL_SECONDS: [['cache', 'ttlSeconds'], 'number'],
  CQRS_CACHE_PREFIX: [['cache', 'prefix'], 'string'],
  CQRS_TIME_TRAVEL_MAX_EVENTS: [['timeTravel', 'maxEvents'], 'number'],
  CQRS_TIME_TRAVEL_CACHED_STATES: [['timeTravel', 'cachedStates'], 'number'],
  CQRS_SUPERVISION_FAILURE_BUDGET_MS: [['supervision', 'failureBudgetMs'], 'number'],
  CQRS_SUPERVISION_EXIT_ON_FAILURE: [['supervision', 'exitOnFailure'], 'boolean'],
  CQRS_HEALTH_MAX_LAG_SECONDS: [['health', 'maxLagSeconds'], 'number'],
  CQRS_HEALTH_STALL_SECONDS: [['health', 'stallSeconds'], 'number'],
  CQRS_ADMIN_TOKEN_FILE: [['api', 'adminTokenFile'], 'string'],
  CQRS_ADMIN_TOKEN: [['api', 'adminToken'], 'string'],
  CQRS_ALLOW_UNAUTHENTICATED_ADMIN: [['api', 'allowUnauthenticatedAdmin'], 'boolean'],
  CQRS_RETENTION_COMPARISONS_DAYS: [['retention', 'comparisonsMaxAgeDays'], 'number'],
  CQRS_RETENTION_DEAD_LETTERS_DAYS: [['retention', 'deadLettersMaxAgeDays'], 'number'],
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

/** "true"/"false" become booleans; any other text stays text, so the schema names the variable's bad value. */
function envValue(value: string, type: EnvType): unknown {
  switch (type) {
    case 'number':
      return Number(value);
    case 'port':
      return /^\d+$/.test(value) ? Number(value) : value;
    case 'list':
      return value.split(',');
    case 'boolean':
      return value === 'true' ? true : value === 'false' ? false : value;
    case 'string':
      return value;
  }
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
    setPath(raw, path, envValue(value, type));
  }
  const merged = deepMerge(raw, (options.overrides ?? {}) as Record<string, unknown>);
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const issues = parsed.error.issues.flatMap(issueLines).join('\n');
    throw new ConfigError(`invalid configuration:\n${issues}`, {
      cause: parsed.error,
      hint: 'see "Configuration" in README.md for every option and its environment variable',
    });
  }
  return parsed.data;
}

/** One line per problem; an unknown key is named by its full path, with the keys allowed there. */
function issueLines(issue: z.core.$ZodIssue): string[] {
  const at = (path: readonly PropertyKey[]) => formatPath(path) || '(root)';
  if (issue.code !== 'unrecognized_keys') return [`  ${at(issue.path)}: ${issue.message}`];
  const known = knownKeysAt(issue.path);
  const allowed = known.length > 0 ? ` (allowed here: ${known.join(', ')})` : '';
  return issue.keys.map((key) => `  ${at([...issue.path, key])}: unknown key${allowed}`);
}

/** `flags.endpoints["accounts.summary"].mode`: keys holding a dot are quoted so the path reads unambiguously. */
function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((key, i) =>
      typeof key === 'string' && /^[A-Za-z_][\w-]*$/.test(key)
        ? `${i === 0 ? '' : '.'}${key}`
        : `[${typeof key === 'number' ? key : JSON.stringify(String(key))}]`,
    )
    .join('');
}

/** Generic view of a zod schema's definition: just the parts knownKeysAt walks through. */
interface SchemaDef {
  type: string;
  innerType?: z.core.$ZodType;
  shape?: Record<string, z.core.$ZodType>;
  valueType?: z.core.$ZodType;
}

/** The keys configSchema accepts at `path` (through defaults, optionals and records). */
function knownKeysAt(path: readonly PropertyKey[]): string[] {
  let schema: z.core.$ZodType | undefined = configSchema;
  let rest = [...path];
  while (schema !== undefined) {
    const def = schema._zod.def as unknown as SchemaDef;
    if (def.innerType !== undefined) schema = def.innerType;
    else if (def.type === 'record' && rest.length > 0) {
      schema = def.valueType;
      rest = rest.slice(1);
    } else if (def.type === 'object' && def.shape !== undefined) {
      if (rest.length === 0) return Object.keys(def.shape);
      schema = def.shape[String(rest[0])];
      rest = rest.slice(1);
    } else return [];
  }
  return [];
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isObject(v) && isObject(b) ? deepMerge(b, v) : v === undefined ? b : (v as unknown);
  }
  return out;
}

/** How many processes serve the public listener: api.workers, 'auto' resolved to the cores. */
export function apiWorkerCount(config: Config): number {
  const { workers } = config.api;
  return workers === 'auto' ? availableParallelism() : workers;
}

export function dataPath(config: Config, file: string): string {
  return resolve(config.dataDir, file);
}
