import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeEvent, SourceTransaction } from '../../connectors/change-event.js';
import { connectorStatus } from '../../connectors/debezium/cli.js';
import { tableTopic, transactionTopic } from '../../connectors/debezium/config.js';
import { ConnectClient } from '../../connectors/debezium/connect-client.js';
import {
  parseChangeRecord,
  parseTransactionRecord,
  type TransactionMarker,
} from '../../connectors/debezium/record.js';
import { KafkaDebeziumSource } from '../../connectors/kafka/debezium-source.js';
import { PgoutputSource } from '../../connectors/pgoutput/source.js';
import { initDefinition } from '../../definition/init/index.js';
import { createPgBankDatabase } from '../../examples/bank/postgres/db.js';
import { silentLogger } from '../../lib/logger.js';
import { REPO_INDEX } from '../support/typecheck.js';
import {
  CONNECT_URL,
  cliConnectorDeploy,
  connectReachable,
  testKafka,
  uniqueSuffix,
  waitFor,
} from './support/debezium-bank.js';
import {
  type DeployedPgConnector,
  deployPgConnector,
  dropBothPaths,
  dropPgState,
  LEGACY_PG,
  pgQuery,
  pgReachable,
} from './support/postgres.js';

const connectUp = await connectReachable();
const pgUp = await pgReachable();
if (!connectUp || !pgUp)
  console.warn(
    'debezium-postgres: needs Kafka Connect (`bash stack/stack.sh up`) and PostgreSQL (`bash scripts/legacy-pg.sh up`); skipping',
  );

// Every kind of column the embedded reader converts on its own.
const TABLE_DDL = `CREATE TABLE kinds (
  id          BIGINT PRIMARY KEY,
  amount      NUMERIC(19,4) NOT NULL,
  rate        NUMERIC(7,4)  NOT NULL,
  free        NUMERIC       NULL,
  status      TEXT NOT NULL CHECK (status IN ('pending','completed','failed')),
  created_at  TIMESTAMP(6)  NOT NULL,
  completed_at TIMESTAMP(6) NULL,
  booked_at   TIMESTAMP(0)  NOT NULL,
  plain_ts    TIMESTAMP     NULL,
  value_date  DATE          NOT NULL,
  reference   VARCHAR(64)   NULL,
  code        CHAR(3)       NULL,
  big         BIGINT        NOT NULL,
  small       SMALLINT      NULL,
  cut_off     TIME(6)       NULL,
  seen_at     TIMESTAMPTZ(6) NULL,
  ratio       DOUBLE PRECISION NULL,
  flag        BOOLEAN       NULL,
  blob        BYTEA         NULL,
  doc         JSONB         NULL,
  uid         UUID          NULL,
  tags        INT[]         NULL,
  words       TEXT[]        NULL,
  stamps      TIMESTAMP(3)[] NULL,
  zoned       TIMESTAMPTZ[] NULL,
  blobs       BYTEA[]       NULL,
  moods       mood[]        NULL,
  price       MONEY         NULL,
  local_time  TIMETZ(3)     NULL,
  flags       BIT(16)       NULL,
  one_bit     BIT(1)        NULL,
  varbits     VARBIT(20)    NULL,
  span        INTERVAL      NULL,
  search      TSVECTOR      NULL,
  spot        POINT         NULL,
  area        BOX           NULL,
  shape       POLYGON       NULL,
  spans       INT4MULTIRANGE NULL,
  lsn         PG_LSN        NULL
)`;

const ROWS = `INSERT INTO kinds VALUES
  (1, 12.34, 0.0125, 3.14159, 'pending', '2024-05-01 09:30:00.12345', NULL, '2024-05-01 09:30:00', '2024-05-01 09:30:00.5', '2024-05-01', 'first', 'EUR', 9007199254740993, 7, '09:30:00.000001', '2024-05-01 09:30:00.654321+02', 0.25, true, '\\x0102ff', '{"a": [1, 2.50]}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
   '{1,NULL,-3}', '{"a b","c,d",NULL,"e\\"f","null","",x}', '{"2024-05-01 09:30:00.5",NULL}', '{"2024-05-01 09:30:00.25+02"}',
   ARRAY['\\x0102'::bytea], '{sad,ok}', '-1234.5', '10:00:00.12+05:45', B'0000000100000010', B'1', B'10100000011',
   '1 year 2 mons -3 days -01:30:00.25', 'a fat cat', '(1.5,2)', '((0,0),(1,10000000))',
   '((0,0),(1,0),(1,1e-5))', '{[1,5), [7,9)}', '16/B374D848'),
  (2, -0.0001, 1.5, NULL, 'completed', '1999-12-31 23:59:59.999999', '2000-01-01 00:00:00.000001', '1999-12-31 23:59:59', NULL, '1000-01-01', NULL, NULL, -42, NULL, NULL, NULL, NULL, false, NULL, NULL, NULL,
   '{}', '{}', NULL, NULL, NULL, '{}', 0, '23:59:59.999+14', B'0000000000000000', B'0', B'', '00:00:00',
   NULL, NULL, NULL, NULL, NULL, NULL),
  (3, 123456789012345.6789, 0, 10, 'failed', '2024-02-29 00:00:00', NULL, '2024-02-29 12:00:00', NULL, '9999-12-31', 'x', 'USD', 0, -3, '23:59:59.999999', '2038-01-19 03:14:07.999999+00', -1e-3, NULL, '\\x', '[]', NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`;

/** The streamed transaction: an insert, an update, a delete. */
const WRITES = [
  `INSERT INTO kinds VALUES (4, 99.99, 2.25, 0.5, 'pending', '2024-05-02 10:00:00.000001', NULL, '2024-05-02 10:00:00', NULL, '2024-05-02', 'streamed', 'GBP', 18446744073709551, 1, '23:59:59.999999', '2024-05-02 10:00:00.00001+00', 1.5, true, '\\xdeadbeef', '{"b": null}', NULL, '{4,5}', '{new}', NULL, NULL, NULL, '{ok}', '99.99', '00:00:00-01', B'1000000000000001', B'1', B'1', '-1 days +02:00:00', 'rat', '(0,-0.5)', NULL, NULL, '{}', '0/0')`,
  `UPDATE kinds SET status = 'completed', completed_at = '2024-05-02 10:00:05.5', amount = amount + 0.0001 WHERE id = 1`,
  'DELETE FROM kinds WHERE id = 3',
];

const rowsOf = (events: ChangeEvent[]) =>
  [...events].sort((a, b) => Number(a.after?.id ?? a.before?.id) - Number(b.after?.id ?? b.before?.id));

describe.skipIf(!connectUp || !pgUp)('Debezium PostgreSQL connector and the embedded pgoutput reader', () => {
  const suffix = uniqueSuffix();
  const database = `t_pgdbz_${suffix}`;
  const groupId = `t-pgdbz-${suffix}`;
  const embeddedSlot = `t_pgemb_${suffix}`;
  const kafka = testKafka(groupId);
  let connector: DeployedPgConnector | undefined;
  let embedded: PgoutputSource | undefined;

  beforeAll(async () => {
    // Only `kinds` is captured; the bank tables beside it are not.
    await createPgBankDatabase(LEGACY_PG, database);
    await pgQuery(
      database,
      "CREATE TYPE mood AS ENUM ('sad', 'ok')",
      TABLE_DDL,
      'ALTER TABLE kinds REPLICA IDENTITY FULL',
      ROWS,
    );
  });

  afterAll(() => dropBothPaths({ sources: [embedded], connector, kafka, groupId, database, embeddedSlot }));

  it('both paths yield the same events, with the values the database holds', async () => {
    const ours: SourceTransaction[] = [];
    const errors: Error[] = [];
    embedded = new PgoutputSource(
      { ...LEGACY_PG, database, slotName: embeddedSlot, tables: ['kinds'] },
      { logger: silentLogger, onError: (e) => errors.push(e) },
    );
    await embedded.start(null, async (tx) => {
      ours.push(tx);
    });

    connector = await deployPgConnector(database, suffix, ['kinds']);
    expect(
      (await connectorStatus(new ConnectClient({ url: CONNECT_URL }), connector.name)).tasks.map(
        (t) => t.state,
      ),
    ).toEqual(['RUNNING']);
    const dataTopic = tableTopic(connector.topicPrefix, 'public', 'kinds');
    const txTopic = transactionTopic(connector.topicPrefix);
    const admin = kafka.admin();
    await admin.connect();
    await waitFor('the table topic', async () => (await admin.listTopics()).includes(dataTopic), 60_000);
    // kafkajs resolves subscriptions once: create the transaction topic before subscribing.
    await admin.createTopics({ topics: [{ topic: txTopic, numPartitions: 1 }] });
    await admin.disconnect();

    const theirs: ChangeEvent[] = [];
    const markers: TransactionMarker[] = [];
    const consumer = kafka.consumer({ groupId });
    await consumer.connect();
    await consumer.subscribe({ topics: [dataTopic, txTopic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ topic, message }) => {
        if (topic === dataTopic) {
          const event = parseChangeRecord(message.value);
          if (event !== null) theirs.push(event);
        } else {
          const marker = parseTransactionRecord(message.value);
          if (marker !== null) markers.push(marker);
        }
      },
    });
    await waitFor('the Debezium snapshot', () => theirs.some((e) => e.source.snapshot === 'last'), 90_000);

    await pgQuery(database, 'BEGIN', ...WRITES, 'COMMIT');
    const ourStreamed = () => ours.filter((t) => !t.snapshot).flatMap((t) => t.events);
    await waitFor(
      'the streamed transaction on both paths',
      () => theirs.length >= 6 && markers.some((m) => m.status === 'END') && ourStreamed().length >= 3,
      90_000,
    );
    await sleep(500);
    await consumer.disconnect();
    expect(errors).toEqual([]);

    // Snapshot: one 'r' per row on each path, equal column for column.
    const ourReads = rowsOf(ours.filter((t) => t.snapshot).flatMap((t) => t.events));
    const theirReads = rowsOf(theirs.filter((e) => e.op === 'r'));
    expect(ourReads.map((e) => e.after)).toEqual(theirReads.map((e) => e.after));
    expect(ourReads).toHaveLength(3);
    // What the inserted literals are, in the contract's forms.
    const first = ourReads[0]?.after;
    expect(first).toMatchObject({
      id: 1,
      amount: '12.3400',
      rate: '0.0125',
      free: '3.14159',
      created_at: '2024-05-01 09:30:00.123450',
      booked_at: '2024-05-01 09:30:00',
      plain_ts: '2024-05-01 09:30:00.500000',
      value_date: '2024-05-01',
      code: 'EUR',
      big: '9007199254740993',
      small: 7,
      cut_off: '09:30:00.000001',
      seen_at: '2024-05-01 07:30:00.654321',
      ratio: 0.25,
      flag: true,
      blob: Buffer.from([1, 2, 255]).toString('base64'),
      // Arrays as the server prints them (Debezium's JSON arrays are written in that form).
      tags: '{1,NULL,-3}',
      words: '{"a b","c,d",NULL,"e\\"f","null","",x}',
      stamps: '{"2024-05-01 09:30:00.5",NULL}',
      zoned: '{"2024-05-01 07:30:00.25+00"}',
      blobs: '{"\\\\x0102"}',
      moods: '{sad,ok}',
      // MONEY, TIMETZ and bit strings as Debezium yields them.
      price: '-1234.50',
      local_time: '04:15:00.12Z',
      flags: Buffer.from([0x02, 0x01]).toString('base64'),
      one_bit: true,
      varbits: Buffer.from([0x03, 0x05]).toString('base64'),
      // INTERVAL as Debezium's interval.handling.mode=string: every field, each signed.
      span: 'P1Y2M-3DT-1H-30M-0.25S',
      // Types Debezium does not know, and geometry, as the server prints them.
      search: "'a' 'cat' 'fat'",
      spot: '(1.5,2)',
      area: '(1,10000000),(0,0)',
      shape: '((0,0),(1,0),(1,1e-05))',
      spans: '{[1,5),[7,9)}',
      lsn: '16/B374D848',
    });
    expect(ourReads[1]?.after).toMatchObject({
      tags: '{}',
      price: '0.00',
      local_time: '09:59:59.999Z',
      flags: '',
    });
    expect(
      ourReads.every(
        (e) =>
          e.source.connector === 'postgresql' && e.source.db === database && e.source.schema === 'public',
      ),
    ).toBe(true);

    // Streaming: c/u/d, same images, same source positions and transaction block.
    const mine = ourStreamed();
    const streamed = theirs.filter((e) => e.op !== 'r');
    expect(streamed.map((e) => e.op)).toEqual(['c', 'u', 'd']);
    expect(mine.map((e) => e.op)).toEqual(['c', 'u', 'd']);
    mine.forEach((event, i) => {
      const other = streamed[i];
      expect(event.before).toEqual(other?.before);
      expect(event.after).toEqual(other?.after);
      expect(event.source.lsn).toBe(other?.source.lsn);
      expect(event.source.txId).toBe(other?.source.txId);
      expect(event.transaction).toEqual(other?.transaction);
    });
    expect(mine[1]?.after?.amount).toBe('12.3401');
    expect(mine[1]?.after?.completed_at).toBe('2024-05-02 10:00:05.500000');
    expect(mine[2]?.before).toEqual(ourReads[2]?.after);
    expect(mine[2]?.after).toBeNull();
    expect(mine[0]?.transaction?.id).toBe(String(mine[0]?.source.txId));
    const end = markers.find((m) => m.status === 'END' && m.id === mine[0]?.transaction?.id);
    expect(end?.event_count).toBe(3);
    expect(end?.data_collections).toEqual([{ data_collection: 'public.kinds', event_count: 3 }]);
  });
});

/**
 * `?schema=<name>` on the distributed path: the connector `cqrs-migrate connector deploy` renders
 * for a schema other than public captures that schema's tables (not the same-named ones of
 * public) and the translator's source reads them from `<prefix>.<schema>.<table>`, with the
 * same events as the embedded pgoutput reader given the same schema. Names that need quotes
 * (a mixed-case schema, a table with a space) reach the topic Debezium names after them, with
 * the characters Kafka refuses replaced by "_".
 */
describe.skipIf(!connectUp || !pgUp)('Debezium PostgreSQL connector on a schema other than public', () => {
  const suffix = uniqueSuffix();
  const database = `t_pgsch_${suffix}`;
  const groupId = `t-pgsch-${suffix}`;
  const embeddedSlot = `t_pgsche_${suffix}`;
  const kafka = testKafka(groupId);
  let connector: DeployedPgConnector | undefined;
  let embedded: PgoutputSource | undefined;
  let viaKafka: KafkaDebeziumSource | undefined;

  beforeAll(async () => {
    await pgQuery('postgres', `CREATE DATABASE "${database}"`);
    await pgQuery(
      database,
      'CREATE SCHEMA "Clinic"',
      'CREATE TABLE "Clinic"."Visit Log" (id INT PRIMARY KEY, at TIMESTAMPTZ(3) NOT NULL, note TEXT)',
      'ALTER TABLE "Clinic"."Visit Log" REPLICA IDENTITY FULL',
      // Same name in public: neither reader may deliver its rows.
      'CREATE TABLE public."Visit Log" (id INT PRIMARY KEY, junk TEXT)',
      `INSERT INTO public."Visit Log" VALUES (1, 'not this one')`,
      `INSERT INTO "Clinic"."Visit Log" VALUES (1, '2026-12-01 09:00:00.5+01', 'first'), (2, '2026-12-02 09:00Z', NULL)`,
    );
  });

  afterAll(() =>
    dropBothPaths({ sources: [embedded, viaKafka], connector, kafka, groupId, database, embeddedSlot }),
  );

  it('captures that schema on both paths, with the same events', async () => {
    const errors: Error[] = [];
    const collect = (into: SourceTransaction[]) => async (tx: SourceTransaction) => {
      into.push(tx);
    };
    const ours: SourceTransaction[] = [];
    const theirs: SourceTransaction[] = [];
    embedded = new PgoutputSource(
      { ...LEGACY_PG, database, schema: 'Clinic', slotName: embeddedSlot, tables: ['Visit Log'] },
      { logger: silentLogger, onError: (e) => errors.push(e) },
    );
    await embedded.start(null, collect(ours));
    connector = await deployPgConnector(database, suffix, ['Visit Log'], 0, 'Clinic');
    viaKafka = new KafkaDebeziumSource({
      kafka,
      topicPrefix: connector.topicPrefix,
      tables: [{ scope: 'Clinic', table: 'Visit Log' }],
      groupId,
      logger: silentLogger,
      onError: (e) => errors.push(e),
    });
    await viaKafka.start(null, collect(theirs));
    const events = (txs: SourceTransaction[], snapshot: boolean) =>
      txs.filter((t) => t.snapshot === snapshot).flatMap((t) => t.events);
    await waitFor(
      'both snapshots',
      () => events(ours, true).length >= 2 && events(theirs, true).length >= 2,
      120_000,
    );

    await pgQuery(
      database,
      'BEGIN',
      `INSERT INTO "Clinic"."Visit Log" VALUES (3, '2026-12-05 10:00+02', 'new')`,
      `UPDATE "Clinic"."Visit Log" SET note = 'moved' WHERE id = 2`,
      `UPDATE public."Visit Log" SET junk = 'still not this one'`,
      'COMMIT',
    );
    await waitFor(
      'the streamed transaction on both paths',
      () => events(ours, false).length >= 2 && events(theirs, false).length >= 2,
      120_000,
    );
    expect(errors).toEqual([]);

    const rows = (list: ChangeEvent[]) =>
      list.map((e) => ({ op: e.op, table: e.source.table, schema: e.source.schema, after: e.after }));
    const byId = (list: ChangeEvent[]) => [...list].sort((a, b) => Number(a.after?.id) - Number(b.after?.id));
    expect(rows(byId(events(ours, true)))).toEqual([
      {
        op: 'r',
        table: 'Visit Log',
        schema: 'Clinic',
        after: { id: 1, at: '2026-12-01 08:00:00.500', note: 'first' },
      },
      {
        op: 'r',
        table: 'Visit Log',
        schema: 'Clinic',
        after: { id: 2, at: '2026-12-02 09:00:00.000', note: null },
      },
    ]);
    expect(rows(byId(events(theirs, true)))).toEqual(rows(byId(events(ours, true))));
    const streamed = [
      {
        op: 'c',
        table: 'Visit Log',
        schema: 'Clinic',
        after: { id: 3, at: '2026-12-05 08:00:00.000', note: 'new' },
      },
      {
        op: 'u',
        table: 'Visit Log',
        schema: 'Clinic',
        after: { id: 2, at: '2026-12-02 09:00:00.000', note: 'moved' },
      },
    ];
    expect(rows(events(ours, false))).toEqual(streamed);
    expect(rows(events(theirs, false))).toEqual(streamed);
    // public's "Visit Log" update was in the same transaction: no reader delivered it.
    expect([...ours, ...theirs].every((t) => t.events.every((e) => e.source.schema === 'Clinic'))).toBe(true);
  });
});

/**
 * `cqrs-migrate connector deploy` on PostgreSQL checks what `run` checks before the connector
 * exists: Debezium's publication would make PostgreSQL refuse the monolith's UPDATE and DELETE
 * on a captured table without a replica identity (no primary key, only a UNIQUE key).
 */
describe.skipIf(!connectUp || !pgUp)('connector deploy on PostgreSQL', () => {
  it('refuses before deploying when a captured table lacks REPLICA IDENTITY FULL, and the writes go on', async () => {
    const suffix = uniqueSuffix();
    const database = `t_pgdep_${suffix}`;
    const dir = mkdtempSync(join(tmpdir(), 'cqrs-pgdep-'));
    await pgQuery('postgres', `CREATE DATABASE ${database}`);
    try {
      await pgQuery(
        database,
        'CREATE TABLE user_roles (user_id int NOT NULL, role text NOT NULL, UNIQUE (user_id, role))',
        "INSERT INTO user_roles VALUES (1, 'admin')",
      );
      const url = `postgres://${LEGACY_PG.user}:${LEGACY_PG.password}@${LEGACY_PG.host}:${LEGACY_PG.port}/${database}`;
      const out = join(dir, 'migration.ts');
      await initDefinition(url, { out, importFrom: REPO_INDEX });
      const name = `t-pgdep-${suffix}`;
      const deploy = cliConnectorDeploy(name, out, {
        CQRS_LEGACY_URL: url,
        CQRS_CDC_NAME: `pgdep_${suffix}`,
      });
      expect(deploy.status).toBe(1);
      expect(deploy.stderr).toMatch(/REPLICA_IDENTITY/);
      expect(deploy.stderr).toMatch(/ALTER TABLE \S*user_roles REPLICA IDENTITY FULL;/);
      expect(await new ConnectClient({ url: CONNECT_URL }).list()).not.toContain(name);
      expect(await pgQuery(database, 'SELECT pubname FROM pg_publication')).toEqual([]);
      await pgQuery(database, "UPDATE user_roles SET role = 'owner' WHERE user_id = 1");
    } finally {
      await dropPgState(database, []);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
