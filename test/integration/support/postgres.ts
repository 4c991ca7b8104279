import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka } from 'kafkajs';
import { deployConnector } from '../../../connectors/debezium/cli.js';
import {
  postgresConnector,
  SIGNAL_TABLE,
  signalTableDdl,
  slotNameFor,
} from '../../../connectors/debezium/config.js';
import { ConnectClient } from '../../../connectors/debezium/connect-client.js';
import { pgoutputConfigFromUrl } from '../../../connectors/pgoutput/config.js';
import { dropSlot } from '../../../connectors/pgoutput/slot.js';
import {
  dropPgDatabase,
  type PgConnOptions,
  pgClient,
  pgConnSchema,
} from '../../../examples/bank/postgres/db.js';
import { CONNECT_URL, dropKafkaState } from './debezium-bank.js';

/**
 * What the PostgreSQL CDC tests share: the project's PostgreSQL (scripts/legacy-pg.sh), a
 * Debezium PostgreSQL connector on one database and the cleanup of databases and slots.
 */
export const LEGACY_PG: PgConnOptions = pgConnSchema.parse({
  host: process.env.CQRS_LEGACY_PG_HOST ?? '127.0.0.1',
  port: Number(process.env.CQRS_LEGACY_PG_PORT ?? 5433),
});

/** The URL `run` reaches `database` of the test server by. */
export const legacyPgUrl = (database: string) =>
  `postgres://${LEGACY_PG.user}:${LEGACY_PG.password}@${LEGACY_PG.host}:${LEGACY_PG.port}/${database}`;

/**
 * A database of the test server for a `run` process (CQRS_CDC_NAME `name`, the database's own
 * name): its URL and the slot its pgoutput reader is named after, as the reader names it.
 */
export function pgRunTarget(name: string): { database: string; url: string; cdcName: string; slot: string } {
  const url = legacyPgUrl(name);
  return { database: name, url, cdcName: name, slot: pgoutputConfigFromUrl(url, { name }).slotName };
}

/** Waits (30 s at most) until no reader holds `slot`: the server lets it go once it sees a killed reader's connection gone. */
export async function slotReleased(slot: string): Promise<void> {
  for (let i = 0; i < 60; i++) {
    const active = await pgQuery(
      'postgres',
      `SELECT 1 FROM pg_replication_slots WHERE slot_name = '${slot}' AND active`,
    );
    if (active.length === 0) return;
    await sleep(500);
  }
}

export async function pgReachable(): Promise<boolean> {
  const c = pgClient(LEGACY_PG, 'postgres');
  try {
    await c.connect();
    const result = await c.query('SHOW wal_level');
    return result.rows[0]?.wal_level === 'logical';
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Runs `sql` statements on `database`, returning the rows of the last one. */
export async function pgQuery(database: string, ...sql: string[]): Promise<Record<string, unknown>[]> {
  const c = pgClient(LEGACY_PG, database);
  await c.connect();
  try {
    let rows: Record<string, unknown>[] = [];
    for (const statement of sql) rows = (await c.query(statement)).rows;
    return rows;
  } finally {
    await c.end();
  }
}

/** Drops the slots (waiting for their readers to let go) and then the database; best effort. */
export async function dropPgState(database: string, slots: string[]): Promise<void> {
  const c = pgClient(LEGACY_PG, 'postgres');
  await c.connect();
  try {
    for (const slot of slots) {
      for (let i = 0; i < 40; i++) {
        const active = await c.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active', [
          slot,
        ]);
        if (active.rows.length === 0) break;
        await sleep(500);
      }
      await dropSlot(c, slot).catch(() => undefined);
    }
  } finally {
    await c.end();
  }
  await dropPgDatabase(LEGACY_PG, database);
}

export interface DeployedPgConnector {
  name: string;
  topicPrefix: string;
  slotName: string;
  remove(): Promise<void>;
}

/**
 * The end of a test that read `database` on both PostgreSQL paths: stops its sources, removes
 * the connector, then drops the Kafka topics and group and the slots and database.
 */
export async function dropBothPaths(run: {
  sources: ReadonlyArray<{ stop(): Promise<void> } | undefined>;
  connector: DeployedPgConnector | undefined;
  kafka: Kafka;
  groupId: string;
  database: string;
  embeddedSlot: string;
}): Promise<void> {
  for (const source of run.sources) await source?.stop();
  await run.connector?.remove();
  await dropKafkaState(run.kafka, run.connector ? [run.connector.topicPrefix] : [], [run.groupId]);
  await dropPgState(run.database, [run.embeddedSlot, ...(run.connector ? [run.connector.slotName] : [])]);
}

/** Deploys a Debezium PostgreSQL connector (pgoutput) on `tables` of `database` and waits until it runs. */
export async function deployPgConnector(
  database: string,
  suffix: string,
  tables: readonly string[],
  heartbeatIntervalMs = 0,
  schema = 'public',
): Promise<DeployedPgConnector> {
  // The connector's signal table lies in the schema it captures (signal.data.collection).
  await pgQuery(database, signalTableDdl('postgresql', `"${schema}".${SIGNAL_TABLE}`));
  const client = new ConnectClient({ url: CONNECT_URL });
  const name = `t-pgdbz-${suffix}`;
  const cfg = postgresConnector({
    name,
    topicPrefix: `t_pgdbz_${suffix}`,
    host: LEGACY_PG.host,
    port: LEGACY_PG.port,
    user: LEGACY_PG.user,
    password: LEGACY_PG.password,
    database,
    tables: [...tables],
    heartbeatIntervalMs,
    schema,
  });
  const deployed = await deployConnector(client, cfg, { waitMs: 90_000 });
  if (deployed.status?.state !== 'RUNNING') throw new Error(`connector ${name} is not running`);
  return {
    name,
    topicPrefix: cfg.config['topic.prefix'] as string,
    slotName: slotNameFor(name),
    async remove() {
      await client.delete(name).catch(() => undefined);
      // DELETE returns before the task stops; a task still flushing would re-create the topics.
      for (let i = 0; i < 30 && (await client.list().catch((): string[] => [])).includes(name); i++)
        await sleep(500);
      await sleep(1000);
    },
  };
}
