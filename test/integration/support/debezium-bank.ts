import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import type { Pool } from 'mysql2/promise';
import { deployConnector } from '../../../connectors/debezium/cli.js';
import { mariadbConnector, signalTableDdl } from '../../../connectors/debezium/config.js';
import { ConnectClient } from '../../../connectors/debezium/connect-client.js';
import type { NewDomainEvent } from '../../../eventstore/ports.js';
import { BANK_TABLES } from '../../../examples/bank/generate.js';

/**
 * What the distributed-path tests share: a Debezium MariaDB connector on one bank database,
 * its cleanup (connector, topics, consumer groups), and the comparison form of domain events.
 */
export const CONNECT_URL = process.env.CQRS_CONNECT_URL ?? 'http://127.0.0.1:8083';
export const KAFKA_BROKERS = (process.env.CQRS_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
export const LEGACY = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };

export async function connectReachable(): Promise<boolean> {
  try {
    const res = await fetch(`${CONNECT_URL}/connector-plugins`, { signal: AbortSignal.timeout(3000) });
    return res.ok;
  } catch {
    return false;
  }
}

export function testKafka(clientId: string): Kafka {
  return new Kafka({ clientId, brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
}

export const uniqueSuffix = () => randomBytes(4).toString('hex');

/** The real `cqrs-migrate connector deploy` of `definition` on this Connect, as a user runs it. */
export function cliConnectorDeploy(
  name: string,
  definition: string,
  env: Record<string, string>,
): SpawnSyncReturns<string> {
  return spawnSync(
    process.execPath,
    ['--import', 'tsx', 'cli/main.ts', 'connector', 'deploy', '--name', name, '--definition', definition],
    {
      env: { ...process.env, CQRS_CONNECT_URL: CONNECT_URL, ...env },
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
}

export interface DeployedBankConnector {
  name: string;
  topicPrefix: string;
  remove(): Promise<void>;
}

/** Deploys a MariaDB connector capturing every bank table of `database` and waits until it runs. */
export async function deployBankConnector(
  pool: Pool,
  database: string,
  suffix: string,
): Promise<DeployedBankConnector> {
  await pool.query(signalTableDdl('mariadb'));
  const client = new ConnectClient({ url: CONNECT_URL });
  const name = `t-bank-${suffix}`;
  const topicPrefix = `t_bank_${suffix}`;
  const cfg = mariadbConnector({
    name,
    topicPrefix,
    host: LEGACY.host,
    port: LEGACY.port,
    user: LEGACY.user,
    password: LEGACY.password,
    database,
    tables: [...BANK_TABLES],
    serverId: 200_000 + Math.floor(Math.random() * 1_000_000),
    kafkaBootstrap: KAFKA_BROKERS.join(','),
    heartbeatIntervalMs: 0,
    // Other tests share the server: no global read lock during the snapshot.
    snapshotLockingMode: 'none',
  });
  const deployed = await deployConnector(client, cfg, { waitMs: 90_000 });
  if (deployed.status?.state !== 'RUNNING') throw new Error(`connector ${name} is not running`);
  return {
    name,
    topicPrefix,
    async remove() {
      await client.delete(name).catch(() => undefined);
      // DELETE returns before the task stops; a task still flushing would re-create the topics.
      for (let i = 0; i < 30 && (await client.list().catch((): string[] => [])).includes(name); i++)
        await sleep(500);
      await sleep(1000);
    },
  };
}

/** Deletes every topic with one of the prefixes and the given consumer groups; best effort. */
export async function dropKafkaState(kafka: Kafka, prefixes: string[], groups: string[]): Promise<void> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    const topics = (await admin.listTopics()).filter((t) =>
      prefixes.some(
        (p) => t.startsWith(`${p}.`) || t === `schema-history.${p}` || t === `__debezium-heartbeat.${p}`,
      ),
    );
    if (topics.length > 0) await admin.deleteTopics({ topics });
    if (groups.length > 0) await admin.deleteGroups(groups).catch(() => undefined);
  } catch {
    // leftovers of a random prefix harm nobody
  } finally {
    await admin.disconnect();
  }
}

/** An event without its source-position fields: what both CDC paths must agree on. */
export function comparable(e: NewDomainEvent) {
  return {
    streamType: e.streamType,
    streamId: e.streamId,
    type: e.type,
    data: e.data,
    op: e.metadata.op,
    table: e.metadata.table,
    snapshot: e.metadata.snapshot,
  };
}

/**
 * Per aggregate: its snapshot events as a set (the two paths read tables in different orders)
 * and its streamed events in order.
 */
export function perAggregate(events: NewDomainEvent[]) {
  const out = new Map<string, { snapshot: string[]; streamed: ReturnType<typeof comparable>[] }>();
  for (const e of events) {
    let entry = out.get(e.streamId);
    if (!entry) {
      entry = { snapshot: [], streamed: [] };
      out.set(e.streamId, entry);
    }
    if (e.metadata.snapshot) entry.snapshot.push(JSON.stringify(comparable(e)));
    else entry.streamed.push(comparable(e));
  }
  for (const entry of out.values()) entry.snapshot.sort();
  return Object.fromEntries([...out].sort(([a], [b]) => a.localeCompare(b)));
}

export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

/** Commits one real change in its own transaction and returns its GTID: a marker both paths must reach. */
export async function markerTransaction(pool: Pool): Promise<string> {
  const conn = await pool.getConnection();
  try {
    await conn.query(
      'UPDATE balances SET updated_at = NOW(6) WHERE account_id = (SELECT MIN(account_id) FROM (SELECT account_id FROM balances) b)',
    );
    const [rows] = await conn.query('SELECT @@last_gtid AS gtid');
    const gtid = (rows as Array<{ gtid: string }>)[0]?.gtid;
    if (!gtid) throw new Error('no GTID for the marker transaction');
    return gtid;
  } finally {
    conn.release();
  }
}
