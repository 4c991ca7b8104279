import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlBinlogSource } from '../../connectors/binlog/source.js';
import type { Row, SourceTransaction } from '../../connectors/change-event.js';
import { deployConnector } from '../../connectors/debezium/cli.js';
import { mariadbConnector, signalTableDdl } from '../../connectors/debezium/config.js';
import { ConnectClient } from '../../connectors/debezium/connect-client.js';
import { type InvalidRecord, KafkaDebeziumSource } from '../../connectors/kafka/debezium-source.js';
import { openLegacyDb } from '../../connectors/legacy/index.js';
import { silentLogger } from '../../lib/logger.js';
import {
  CONNECT_URL,
  connectReachable,
  dropKafkaState,
  KAFKA_BROKERS,
  LEGACY,
  testKafka,
  uniqueSuffix,
  waitFor,
} from './support/debezium-bank.js';

const connectUp = await connectReachable();
if (!connectUp)
  console.warn(
    'debezium-mariadb-kinds: Kafka Connect is not reachable; start it with `bash stack/stack.sh up`',
  );

/**
 * MariaDB column kinds a legacy schema holds beyond the bank's, read three ways: the legacy
 * read path (what the shadow API compares), the embedded binlog reader (snapshot and stream)
 * and Debezium's MariaDB connector through the translator's source. All three must give the
 * same value, or the difference is Debezium's own loss, pinned here so a change shows.
 */
const DDL = `CREATE TABLE kinds (
  id INT PRIMARY KEY, d DATE NULL, dt DATETIME NULL, dt6 DATETIME(6), ts TIMESTAMP NULL, d_part DATE NULL,
  s SET('a','b','c'), y YEAR, b1 BIT(1), b1z BIT(1), b12 BIT(12), b12z BIT(12), b64 BIT(64), j JSON,
  tf TINYINT(1), f FLOAT(7,2), f2 FLOAT, mu MEDIUMINT UNSIGNED, dec65 DECIMAL(65,30), bin BINARY(16),
  ch CHAR(5), bl BLOB, t_neg TIME, t_big TIME(3), e ENUM('x','y'), geo POINT NULL, ui INT UNSIGNED,
  vb VARBINARY(4), note VARCHAR(10), tail_bin VARBINARY(4), line LINESTRING NULL, area POLYGON NULL,
  shapes GEOMETRYCOLLECTION NULL)`;

const ROW = `INSERT INTO kinds VALUES (1, '0000-00-00', '0000-00-00 00:00:00', '2024-01-01 00:00:00.5',
  '0000-00-00 00:00:00', '2021-05-00', 'a,c', 2024, b'1', b'0', b'101000000001', b'000000000001',
  b'1000000000000000000000000000000000000000000000000000000000000001', '{"a": [1, 2.50]}', 1, 1234.5, 0.1,
  16777215, '1.000000000000000000000000000001', UNHEX('00112233445566778899aabbccddeeff'), 'ab', x'00ff',
  '-838:59:59', '100:00:00.5', 'y', ST_GeomFromText('POINT(1 2)'), 4294967295, x'0001', 'first', x'41ff',
  ST_GeomFromText('LINESTRING(0 0, 1 1.5)'), ST_GeomFromText('POLYGON((0 0, 4 0, 4 4, 0 0))'),
  ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 2), MULTIPOINT(3 4, 5 6))'))`;

/** Zero dates (legal without NO_ZERO_DATE), which Debezium turns into null. */
const DEBEZIUM_LOSES = ['d', 'dt', 'ts', 'd_part'];

describe.skipIf(!connectUp)('MariaDB column kinds: legacy reads, embedded reader and Debezium agree', () => {
  const suffix = uniqueSuffix();
  const database = `t_kinds_${suffix}`;
  const prefix = `t_kinds_${suffix}`;
  const name = `t-kinds-${suffix}`;
  const groupId = `t-kinds-${suffix}`;
  const kafka = testKafka(groupId);
  const client = new ConnectClient({ url: CONNECT_URL });
  let embedded: MysqlBinlogSource | undefined;
  let viaKafka: KafkaDebeziumSource | undefined;
  const theirs: SourceTransaction[] = [];
  const invalid: InvalidRecord[] = [];

  const exec = async (...sql: string[]) => {
    const c = await mysql.createConnection({ ...LEGACY });
    try {
      // Zero dates, as a legacy server with a lax sql_mode accepts them.
      await c.query("SET SESSION sql_mode = ''");
      for (const statement of sql) await c.query(statement);
    } finally {
      await c.end();
    }
  };

  beforeAll(async () => {
    await exec(`CREATE DATABASE \`${database}\``, `USE \`${database}\``, signalTableDdl('mariadb'), DDL, ROW);
  });

  afterAll(async () => {
    await embedded?.stop();
    await viaKafka?.stop();
    await client.delete(name).catch(() => undefined);
    await dropKafkaState(kafka, [prefix], [groupId]);
    await exec(`DROP DATABASE IF EXISTS \`${database}\``);
  });

  it('gives every kind the same value on each path, but for what Debezium loses', async () => {
    const errors: Error[] = [];
    const ours: SourceTransaction[] = [];
    embedded = new MysqlBinlogSource(
      { ...LEGACY, database, serverId: 300_000 + Math.floor(Math.random() * 100_000), tables: ['kinds'] },
      { logger: silentLogger, onError: (e) => errors.push(e) },
    );
    await embedded.start(null, async (tx) => {
      ours.push(tx);
    });
    const cfg = mariadbConnector({
      name,
      topicPrefix: prefix,
      host: LEGACY.host,
      port: LEGACY.port,
      user: LEGACY.user,
      password: LEGACY.password,
      database,
      tables: ['kinds'],
      serverId: 200_000 + Math.floor(Math.random() * 1_000_000),
      kafkaBootstrap: KAFKA_BROKERS.join(','),
      heartbeatIntervalMs: 0,
      snapshotLockingMode: 'none',
    });
    await deployConnector(client, cfg, { waitMs: 90_000 });
    viaKafka = new KafkaDebeziumSource({
      kafka,
      topicPrefix: prefix,
      tables: [{ scope: database, table: 'kinds' }],
      groupId,
      logger: silentLogger,
      onError: (e) => errors.push(e),
      onInvalidRecord: async (r) => {
        invalid.push(r);
      },
    });
    await viaKafka.start(null, async (tx) => {
      theirs.push(tx);
    });
    const images = (txs: SourceTransaction[], snapshot: boolean) =>
      txs.filter((t) => t.snapshot === snapshot).flatMap((t) => t.events.map((e) => e.after as Row));
    await waitFor(
      'both snapshots',
      () => images(ours, true).length > 0 && images(theirs, true).length > 0,
      90_000,
    );
    await exec(`USE \`${database}\``, "UPDATE kinds SET note = 'streamed' WHERE id = 1");
    await waitFor(
      'the update on both paths',
      () => images(ours, false).length > 0 && images(theirs, false).length > 0,
      60_000,
    );
    expect(errors).toEqual([]);

    const legacy = openLegacyDb(
      `mysql://${LEGACY.user}:${LEGACY.password}@${LEGACY.host}:${LEGACY.port}/${database}`,
    );
    const [read] = await legacy.query('SELECT * FROM kinds', {}).finally(() => legacy.close());
    const [snapshot] = images(ours, true);
    const [streamed] = images(ours, false);
    const [theirSnapshot] = images(theirs, true);
    const [theirStreamed] = images(theirs, false);
    expect(snapshot).toEqual({ ...read, note: 'first' });
    expect(streamed).toEqual({ ...read, note: 'streamed' });
    const kept = (row: Row | undefined) =>
      Object.fromEntries(Object.entries(row ?? {}).filter(([k]) => !DEBEZIUM_LOSES.includes(k)));
    expect(kept(theirSnapshot)).toEqual(kept(snapshot));
    expect(kept(theirStreamed)).toEqual(kept(streamed));

    // The values themselves, in the contract's forms (Debezium's for BIT: boolean, or bytes
    // least significant first where the server hands them most significant first).
    expect(read).toMatchObject({
      d: '0000-00-00',
      dt: '0000-00-00 00:00:00',
      d_part: '2021-05-00',
      dt6: '2024-01-01 00:00:00.500000',
      s: 'a,c',
      y: 2024,
      b1: true,
      b1z: false,
      b12: Buffer.from([0x01, 0x0a]).toString('base64'),
      b12z: Buffer.from([0x01, 0x00]).toString('base64'),
      b64: Buffer.from([1, 0, 0, 0, 0, 0, 0, 0x80]).toString('base64'),
      f: 1234.5,
      f2: 0.1,
      dec65: '1.000000000000000000000000000001',
      ch: 'ab',
      t_neg: '-838:59:59',
      t_big: '100:00:00.500',
      ui: 4294967295,
      // Geometry as mysql2 gives it; Debezium's WKB is read into the same shape.
      geo: '{"x":1,"y":2}',
      line: '[{"x":0,"y":0},{"x":1,"y":1.5}]',
      area: '[[{"x":0,"y":0},{"x":4,"y":0},{"x":4,"y":4},{"x":0,"y":0}]]',
      shapes: '[{"x":1,"y":2},[{"x":3,"y":4},{"x":5,"y":6}]]',
      // After the POINT, the text and binary columns keep their own charsets (geometry-charsets.ts).
      vb: Buffer.from([0, 1]).toString('base64'),
      tail_bin: Buffer.from([0x41, 0xff]).toString('base64'),
    });
    // What Debezium loses: zero dates become null (a zero TIMESTAMP streamed, the epoch).
    expect(theirSnapshot).toMatchObject({ d: null, dt: null, ts: null, d_part: null });
    expect(theirStreamed).toMatchObject({ d: null, dt: null, ts: '1970-01-01 00:00:00', d_part: null });
    expect(invalid).toEqual([]);
  });

  it('dead-letters a TRUNCATE on the Debezium path with the table and what to do, and goes on', async () => {
    await exec(`USE \`${database}\``, 'TRUNCATE kinds', "INSERT INTO kinds (id, note) VALUES (2, 'after')");
    await waitFor(
      'the row written after the TRUNCATE',
      () => theirs.some((t) => t.events.some((e) => e.after?.id === 2)),
      60_000,
    );
    expect(invalid.map((r) => r.reason)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^TRUNCATE of ${database}\\.kinds at .+: the log has no row deletes for it, so the read models keep the rows it removed: \`cqrs-migrate reconcile\``,
        ),
      ),
    ]);
  });
});
