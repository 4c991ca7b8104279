import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChangeEvent, sourcePositionOf } from '../../connectors/change-event.js';
import { connectorStatus, deleteConnector, deployConnector } from '../../connectors/debezium/cli.js';
import {
  mariadbConnector,
  signalTableDdl,
  tableTopic,
  transactionTopic,
} from '../../connectors/debezium/config.js';
import { ConnectClient } from '../../connectors/debezium/connect-client.js';
import {
  ConnectConfigInvalidError,
  ConnectRequestError,
  ConnectUnreachableError,
} from '../../connectors/debezium/errors.js';
import {
  parseChangeRecord,
  parseTransactionRecord,
  type TransactionMarker,
} from '../../connectors/debezium/record.js';
import { initDefinition } from '../../definition/init/index.js';
import { MYSQL_TYPE_OPTIONS } from '../../lib/mysql-types.js';
import { REPO_INDEX } from '../support/typecheck.js';
import { CONNECT_URL, cliConnectorDeploy, KAFKA_BROKERS } from './support/debezium-bank.js';

const DB = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
// Debezium renders TIMESTAMP columns in UTC; a UTC session makes mysql2 read them the same way.
const UTC_SESSION = "SET time_zone = '+00:00'";

async function connectReachable(): Promise<boolean> {
  try {
    const res = await fetch(`${CONNECT_URL}/connector-plugins`, { signal: AbortSignal.timeout(3000) });
    return res.ok;
  } catch {
    return false;
  }
}

const connectUp = await connectReachable();
if (!connectUp) {
  console.warn(
    `debezium-connect: Kafka Connect is not reachable at ${CONNECT_URL}; skipping the live tests (start it with \`bash stack/stack.sh up connect\`)`,
  );
}

/** A local port nobody listens on: bind one, then release it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('ConnectClient without Kafka Connect', () => {
  it('reports an unreachable worker with its URL and how to start Connect', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const client = new ConnectClient({ url, timeoutMs: 2000 });
    const err = await client.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectUnreachableError);
    const e = err as ConnectUnreachableError;
    expect(e.code).toBe('CONNECT_UNREACHABLE');
    expect(e.message).toContain(url);
    expect(e.hint).toContain('bash stack/stack.sh up connect');
    expect(e.cause).toBeDefined();
  });
});

const TABLE_DDL = `CREATE TABLE transfers (
  id          BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  amount      DECIMAL(19,4)   NOT NULL,
  rate        DECIMAL(7,4)    NOT NULL,
  status      ENUM('pending','completed','failed') NOT NULL,
  created_at  DATETIME(6)     NOT NULL,
  completed_at DATETIME(6)    NULL,
  booked_at   DATETIME        NOT NULL,
  value_date  DATE            NOT NULL,
  reference   VARCHAR(64)     NULL,
  big         BIGINT          NOT NULL,
  cut_off     TIME(6)         NULL,
  seen_at     TIMESTAMP(6)    NULL,
  ratio       DOUBLE          NULL
) ENGINE=InnoDB`;

describe.skipIf(!connectUp)(`Debezium MariaDB connector on Kafka Connect (${CONNECT_URL})`, () => {
  const suffix = randomBytes(4).toString('hex');
  const database = `t_dbz_${suffix}`;
  const prefix = `t_dbz_${suffix}`;
  const connectorName = `t-dbz-${suffix}`;
  const client = new ConnectClient({ url: CONNECT_URL });
  const kafka = new Kafka({
    clientId: `t-dbz-${suffix}`,
    brokers: KAFKA_BROKERS,
    logLevel: logLevel.NOTHING,
  });
  const cfg = mariadbConnector({
    name: connectorName,
    topicPrefix: prefix,
    host: DB.host,
    port: DB.port,
    user: DB.user,
    password: DB.password,
    database,
    tables: ['transfers'],
    serverId: 100_000 + Math.floor(Math.random() * 1_000_000),
    kafkaBootstrap: KAFKA_BROKERS.join(','),
    heartbeatIntervalMs: 0,
    // Other tests share the server: no global read lock during the snapshot.
    snapshotLockingMode: 'none',
  });
  let conn: mysql.Connection;

  beforeAll(async () => {
    conn = await mysql.createConnection({ ...DB, ...MYSQL_TYPE_OPTIONS, multipleStatements: false });
    await conn.query(UTC_SESSION);
    await conn.query(`CREATE DATABASE \`${database}\``);
    await conn.query(`USE \`${database}\``);
    await conn.query(TABLE_DDL);
    await conn.query(signalTableDdl('mariadb'));
    await conn.query(
      `INSERT INTO transfers VALUES
        (1, 12.34, 0.0125, 'pending', '2024-05-01 09:30:00.123456', NULL, '2024-05-01 09:30:00', '2024-05-01', 'first', 9007199254740993, '09:30:00.000001', '2024-05-01 09:30:00.654321', 0.25),
        (2, -0.0001, 1.5, 'completed', '1999-12-31 23:59:59.999999', '2000-01-01 00:00:00.000001', '1999-12-31 23:59:59', '1000-01-01', NULL, -42, NULL, NULL, NULL),
        (3, 123456789012345.6789, 0, 'failed', '2024-02-29 00:00:00.000000', NULL, '2024-02-29 12:00:00', '9999-12-31', 'x', 0, '-01:00:00', '2038-01-19 03:14:07.999999', -1e-3)`,
    );
  });

  afterAll(async () => {
    await client.delete(connectorName).catch(() => undefined);
    // DELETE returns before the task has stopped; a task still flushing would re-create
    // the topics deleted below (the broker auto-creates topics on metadata requests).
    const listed = () => client.list().catch((): string[] => []);
    for (let i = 0; i < 30 && (await listed()).includes(connectorName); i++) await sleep(500);
    await sleep(2000);
    await conn?.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await conn?.end();
    const admin = kafka.admin();
    try {
      await admin.connect();
      const topics = (await admin.listTopics()).filter(
        (t) => t.startsWith(`${prefix}.`) || t === `schema-history.${prefix}`,
      );
      if (topics.length > 0) await admin.deleteTopics({ topics });
      await admin.deleteGroups([`t-dbz-${suffix}`]);
    } catch {
      // best effort: leftover topics of a random prefix harm nobody
    } finally {
      await admin.disconnect();
    }
  });

  it('rejects a bad config with Connect’s own messages, on deploy and on validate', async () => {
    const bad = {
      name: `${connectorName}-bad`,
      config: { ...cfg.config, 'database.server.id': 'not-a-number', 'snapshot.mode': 'sometimes' },
    };
    // What Connect itself answers to this request, read without our client:
    const raw = await fetch(`${CONNECT_URL}/connectors/${bad.name}/config`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(bad.config),
    });
    const rawBody = (await raw.json()) as { message: string };
    expect(raw.status).toBeGreaterThanOrEqual(400);

    const err = await client.deploy(bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectRequestError);
    const e = err as ConnectRequestError;
    expect(e.status).toBe(raw.status);
    expect(e.connectMessage).toBe(rawBody.message);
    expect(e.message).toContain(rawBody.message);

    const invalid = await deployConnector(client, bad).catch((x: unknown) => x);
    expect(invalid).toBeInstanceOf(ConnectConfigInvalidError);
    const fields = (invalid as ConnectConfigInvalidError).fieldErrors.map((f) => f.field);
    expect(fields).toEqual(expect.arrayContaining(['database.server.id', 'snapshot.mode']));
    for (const f of (invalid as ConnectConfigInvalidError).fieldErrors) {
      expect((invalid as Error).message).toContain(f.messages[0]);
    }
    expect(await client.list()).not.toContain(bad.name);
  });

  it('validates, deploys and runs the connector; its records convert to the database’s exact values', async () => {
    expect((await client.listPlugins()).map((p) => p.class)).toContain(cfg.config['connector.class']);
    const validation = await client.validate(cfg);
    expect(validation.fieldErrors).toEqual([]);
    expect(validation.errorCount).toBe(0);

    const deployed = await deployConnector(client, cfg, { waitMs: 90_000 });
    expect(deployed.created).toBe(true);
    expect(deployed.status?.state).toBe('RUNNING');
    expect((await connectorStatus(client, connectorName)).tasks.map((t) => t.state)).toEqual(['RUNNING']);

    const events: ChangeEvent[] = [];
    const markers: TransactionMarker[] = [];
    const dataTopic = tableTopic(prefix, database, 'transfers');
    const txTopic = transactionTopic(prefix);
    const admin = kafka.admin();
    await admin.connect();
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const topics = await admin.listTopics();
      if (topics.includes(dataTopic)) break;
      await sleep(500);
    }
    // The transaction topic appears only with the first streamed transaction, and kafkajs
    // resolves subscriptions once: create it (as Connect would, one partition) beforehand.
    await admin.createTopics({ topics: [{ topic: txTopic, numPartitions: 1 }] });
    await admin.disconnect();

    const consumer = kafka.consumer({ groupId: `t-dbz-${suffix}` });
    await consumer.connect();
    await consumer.subscribe({ topics: [dataTopic, txTopic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ topic, message }) => {
        if (topic === dataTopic) {
          const event = parseChangeRecord(message.value);
          if (event !== null) events.push(event);
        } else if (topic === txTopic) {
          const marker = parseTransactionRecord(message.value);
          if (marker !== null) markers.push(marker);
        }
      },
    });
    // RUNNING does not mean snapshotted: write only once the snapshot's last read is out,
    // or the snapshot would read the streamed changes' results.
    const snapshotDeadline = Date.now() + 60_000;
    while (Date.now() < snapshotDeadline && !events.some((e) => e.source.snapshot === 'last'))
      await sleep(250);
    const snapshotRows = (await conn.query('SELECT * FROM transfers ORDER BY id'))[0] as Record<
      string,
      unknown
    >[];

    // One streamed transaction: insert, update, delete.
    await conn.beginTransaction();
    await conn.query(
      `INSERT INTO transfers VALUES (4, 99.99, 2.25, 'pending', '2024-05-02 10:00:00.000001', NULL, '2024-05-02 10:00:00', '2024-05-02', 'streamed', 18446744073709551, '23:59:59.999999', '2024-05-02 10:00:00.000010', 1.5)`,
    );
    await conn.query(
      `UPDATE transfers SET status = 'completed', completed_at = '2024-05-02 10:00:05.500000', amount = amount + 0.0001 WHERE id = 1`,
    );
    await conn.query('DELETE FROM transfers WHERE id = 3');
    await conn.commit();
    const rowsAfter = (await conn.query('SELECT * FROM transfers ORDER BY id'))[0] as Record<
      string,
      unknown
    >[];

    const until = Date.now() + 60_000;
    while (Date.now() < until && (events.length < 6 || !markers.some((m) => m.status === 'END')))
      await sleep(250);
    await consumer.disconnect();

    // Snapshot: one 'r' per row, identical to what mysql2 reads from the table.
    const reads = events.filter((e) => e.op === 'r');
    expect(reads.at(-1)?.source.snapshot).toBe('last');
    reads.sort((a, b) => Number(a.after?.id) - Number(b.after?.id));
    expect(reads.map((e) => e.after)).toEqual(snapshotRows);
    expect(reads[0]?.after?.amount).toBe('12.3400');
    expect(reads[0]?.after?.created_at).toBe('2024-05-01 09:30:00.123456');
    expect(reads[0]?.after?.big).toBe('9007199254740993');
    expect(reads.every((e) => e.source.connector === 'mariadb' && e.source.db === database)).toBe(true);

    // Streaming: c/u/d with the values the database holds, in one source transaction.
    const streamed = events.filter((e) => e.op !== 'r');
    expect(streamed.map((e) => e.op)).toEqual(['c', 'u', 'd']);
    const [created, updated, deleted] = streamed;
    expect(created?.after).toEqual(rowsAfter.find((r) => r.id === 4));
    expect(updated?.before).toEqual(snapshotRows.find((r) => r.id === 1));
    expect(updated?.after).toEqual(rowsAfter.find((r) => r.id === 1));
    expect(updated?.after?.amount).toBe('12.3401');
    expect(updated?.after?.completed_at).toBe('2024-05-02 10:00:05.500000');
    expect(deleted?.before).toEqual(snapshotRows.find((r) => r.id === 3));
    expect(deleted?.after).toBeNull();

    const txIds = new Set(streamed.map((e) => e.transaction?.id));
    expect(txIds.size).toBe(1);
    const [txId] = [...txIds];
    expect(txId).toMatch(/^\d+-\d+-\d+$/); // a MariaDB GTID, as on the embedded path
    expect(streamed.map((e) => e.transaction?.total_order)).toEqual([1, 2, 3]);
    expect(streamed.every((e) => e.source.gtid === txId && typeof e.source.pos === 'number')).toBe(true);
    // Each row event has its own position: a re-send after a restart is told by it (row-identity.ts).
    expect(new Set(streamed.map((e) => sourcePositionOf(e))).size).toBe(3);
    const end = markers.find((m) => m.status === 'END' && m.id === txId);
    expect(end?.event_count).toBe(3);
    expect(end?.data_collections).toEqual([{ data_collection: `${database}.transfers`, event_count: 3 }]);
    expect(markers.find((m) => m.status === 'BEGIN' && m.id === txId)?.event_count).toBeNull();

    const removed = await deleteConnector(client, connectorName);
    expect(removed.action).toBe('delete');
    expect(await client.list()).not.toContain(connectorName);
  });

  it('`connector deploy` makes run’s checks first: a user without the replication grants is refused before Connect', async () => {
    const user = `t_dep_${suffix}`;
    const dir = mkdtempSync(join(tmpdir(), 'cqrs-dep-'));
    await conn.query(`CREATE USER '${user}'@'%' IDENTIFIED BY 'pw'`);
    try {
      await conn.query(`GRANT SELECT ON \`${database}\`.* TO '${user}'@'%'`);
      const out = join(dir, 'migration.ts');
      await initDefinition(`mysql://${DB.user}:${DB.password}@${DB.host}:${DB.port}/${database}`, {
        out,
        importFrom: REPO_INDEX,
        tables: ['transfers'],
      });
      const name = `t-dep-${suffix}`;
      const deploy = cliConnectorDeploy(name, out, {
        CQRS_LEGACY_URL: `mysql://${user}:pw@${DB.host}:${DB.port}/${database}`,
      });
      expect(deploy.status).toBe(1);
      expect(deploy.stderr).toMatch(/MISSING_PRIVILEGES/);
      expect(deploy.stderr).toMatch(
        new RegExp(`GRANT REPLICATION SLAVE, .*SELECT ON \\*\\.\\* TO .*${user}`),
      );
      expect(await client.list()).not.toContain(name);
    } finally {
      await conn.query(`DROP USER '${user}'@'%'`);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
