import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@opensearch-project/opensearch';
import type { Kafka } from 'kafkajs';
import { MongoClient } from 'mongodb';
import type pg from 'pg';
import { Registry } from 'prom-client';
import {
  distributedLag,
  openServerReadModels,
  openStore,
  type RunningProjector,
  type RunningTranslator,
  startProjector,
  startTranslator,
} from '../../../cli/distributed.js';
import { type OpenedLegacyDb, openLegacyDb } from '../../../connectors/legacy/index.js';
import { shopPool } from '../../../examples/shop/db.js';
import { SHOP_TABLES } from '../../../examples/shop/generate.js';
import shop from '../../../examples/shop/migration.js';
import { type Config, type ConfigInput, loadConfig } from '../../../lib/config.js';
import { silentLogger } from '../../../lib/logger.js';
import { OpenSearchReadModel } from '../../../projectors/stores/opensearch-read-models.js';
import { dropKafkaState, testKafka, uniqueSuffix, waitFor } from './debezium-bank.js';
import { type DeployedPgConnector, deployPgConnector, dropPgState, LEGACY_PG } from './postgres.js';
import { compareShopChecks, type ShopComparison } from './shop-checks.js';
import { capturingLogger, translatorDiagnosis } from './translator-diagnosis.js';

export type ShopOverrides = Pick<ConfigInput, 'kafka' | 'stores' | 'health'> & { heartbeatMs?: number };

/**
 * The sample shop on the distributed path for fault tests: a PostgreSQL database, its Debezium
 * connector, the translator and one projector per store in this process, and the end-of-test
 * check that every read-model answer equals its legacy answer. PostgreSQL, not MariaDB: the
 * MariaDB connector reads the server-wide binlog, where another test's DDL can stop it.
 */
export class ShopDistributed {
  readonly suffix = uniqueSuffix();
  readonly database: string;
  readonly kafka: Kafka;
  readonly registry = new Registry();
  readonly translatorRegistries: Registry[] = [];
  readonly log = capturingLogger();
  readonly dir = mkdtempSync(join(tmpdir(), 'cqrs-fault-'));
  readonly configFile = join(this.dir, 'config.json');
  config!: Config;
  pool!: pg.Pool;
  legacyDb!: OpenedLegacyDb;
  connector: DeployedPgConnector | undefined;
  translator: RunningTranslator | undefined;
  projectors: RunningProjector[] = [];

  constructor(readonly tag: string) {
    this.database = `shop_${tag}_${this.suffix}`;
    this.kafka = testKafka(`t-${tag}-${this.suffix}`);
  }

  get url(): string {
    return `postgres://${LEGACY_PG.user}:${LEGACY_PG.password}@${LEGACY_PG.host}:${LEGACY_PG.port}/${this.database}`;
  }

  /** `heartbeatMs`: the connector's heartbeat, which moves its offset past other databases' WAL. */
  async setup(overrides: ShopOverrides = {}): Promise<void> {
    const create = shop.sample?.create;
    if (create === undefined) throw new Error('the shop definition has no sample hooks');
    await create({ url: this.url, scale: 'tiny', seed: 7, force: false, progress: () => undefined });
    this.pool = shopPool(LEGACY_PG, this.database, 3);
    this.connector = await deployPgConnector(
      this.database,
      `${this.tag}_${this.suffix}`,
      SHOP_TABLES,
      overrides.heartbeatMs ?? 0,
    );
    this.legacyDb = openLegacyDb(this.url, { poolSize: 2 });
    const file = {
      legacy: { url: this.url },
      definition: 'examples/shop/migration.ts',
      cdc: { name: this.connector.topicPrefix, snapshotChunkRows: 500 },
      kafka: {
        topicPrefix: `t_${this.tag}_${this.suffix}`,
        partitions: 2,
        sessionTimeoutMs: 8000,
        staleMarkerGraceMs: 5000,
        ...overrides.kafka,
      },
      stores: {
        placement: { 'order-detail': 'mongo', 'product-page': 'mongo', 'customer-orders': 'opensearch' },
        mongoDatabase: `t_${this.tag}_${this.suffix}`,
        opensearchIndexPrefix: `t-${this.tag}-${this.suffix}`,
        ...overrides.stores,
      },
      ...(overrides.health ? { health: overrides.health } : {}),
    };
    writeFileSync(this.configFile, JSON.stringify(file));
    this.config = loadConfig({ file: this.configFile, env: {} });
  }

  /** A translator with its own metrics registry (a restarted process starts from zero). */
  async startTranslator(): Promise<RunningTranslator> {
    const registry = new Registry();
    this.translatorRegistries.push(registry);
    this.translator = await startTranslator(this.config, shop, this.log.logger, registry);
    return this.translator;
  }

  async stopTranslator(): Promise<void> {
    await this.translator?.stop();
    this.translator = undefined;
  }

  async startProjectors(): Promise<void> {
    for (const store of ['mongo', 'opensearch'] as const)
      this.projectors.push(await startProjector(this.config, shop, store, this.log.logger, this.registry));
  }

  /** A transaction committed now: once the translator published it, everything before it is in Kafka. */
  async marker(): Promise<string> {
    const { rows } = await this.pool.query<{ xid: string }>(
      `WITH touched AS (UPDATE suppliers SET email = email WHERE id = (SELECT min(id) FROM suppliers) RETURNING id)
       SELECT (txid_current() % 4294967296)::text AS xid FROM touched`,
    );
    const xid = rows[0]?.xid;
    if (xid === undefined) throw new Error('no marker transaction');
    return xid;
  }

  /** Waits until the translator published the marker and every group reached the end of its topics. */
  async waitCaughtUp(marker: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await waitFor(
      'the translator to publish the marker transaction',
      () => this.translator?.source.lastTransaction()?.id === marker,
      timeoutMs,
    ).catch(async (err: unknown) => {
      throw new Error(
        `${err instanceof Error ? err.message : String(err)} (marker ${marker}); ${await translatorDiagnosis(this.translator, this.config, this.kafka, this.connector?.name, this.log.lines)}`,
      );
    });
    let last: unknown;
    await waitFor(
      'every consumer group to reach the end of its topics',
      async () => {
        const lag = await distributedLag(this.config, shop, this.kafka);
        last = lag;
        return lag.total === 0;
      },
      Math.max(10_000, deadline - Date.now()),
    ).catch((err: unknown) => {
      throw new Error(`${err instanceof Error ? err.message : String(err)}; lag ${JSON.stringify(last)}`);
    });
  }

  /** Every check of the shop: legacy answer against read-model answer. */
  async compare(): Promise<ShopComparison> {
    const search = openStore(this.config, shop, 'opensearch', silentLogger);
    for (const model of search.readModels) if (model instanceof OpenSearchReadModel) await model.refresh();
    await search.close();
    const opened = openServerReadModels(this.config, shop);
    try {
      return await compareShopChecks(this.legacyDb, opened.readModels);
    } finally {
      await opened.close();
    }
  }

  /** A metric's total over the labels that match, from every registry of this harness. */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    let total = 0;
    for (const registry of [this.registry, ...this.translatorRegistries]) {
      const m = await registry.getSingleMetric(name)?.get();
      for (const v of m?.values ?? []) {
        if (Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)) total += v.value;
      }
    }
    return total;
  }

  async close(): Promise<void> {
    for (const p of this.projectors) await p.stop().catch(() => undefined);
    await this.translator?.stop().catch(() => undefined);
    await this.connector?.remove();
    if (this.config !== undefined) {
      const prefix = this.config.kafka.topicPrefix;
      await dropKafkaState(
        this.kafka,
        [this.connector?.topicPrefix ?? '', prefix],
        [`${prefix}.translator`, ...shop.readModels.map((m) => `${prefix}.projector.${m.name}`)],
      );
      const mongo = new MongoClient(this.config.stores.mongoUrl);
      await mongo
        .db(this.config.stores.mongoDatabase)
        .dropDatabase()
        .catch(() => undefined);
      await mongo.close();
      const os = new Client({ node: this.config.stores.opensearchUrl });
      await os.indices
        .delete({ index: `${this.config.stores.opensearchIndexPrefix}-*` })
        .catch(() => undefined);
      await os.close();
    }
    await this.legacyDb?.close();
    await this.pool?.end();
    await dropPgState(this.database, this.connector ? [this.connector.slotName] : []);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const run = promisify(execFile);

/**
 * `bash stack/stack.sh <args>` (restart kafka, status…). STACK_HOME, when set, names the stack
 * folder whose services are running (another checkout's).
 */
export async function stack(...args: string[]): Promise<string> {
  const { stdout } = await run('bash', ['stack/stack.sh', ...args], { env: process.env, timeout: 240_000 });
  return stdout;
}

/** Whether the running services were started by stack.sh (so a fault test may restart or pause them). */
export async function stackManaged(): Promise<boolean> {
  return stack('status')
    .then((out) => /^kafka\s+healthy\s+\d+/m.test(out))
    .catch(() => false);
}

/** The pid of a stack service, from `stack.sh status`. */
export async function stackPid(service: string): Promise<number> {
  const out = await stack('status', service);
  const pid = Number(new RegExp(`^${service}\\s+\\S+\\s+(\\d+)`, 'm').exec(out)?.[1]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no pid for ${service} in: ${out}`);
  return pid;
}
