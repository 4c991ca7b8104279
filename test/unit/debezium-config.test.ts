import { describe, expect, it } from 'vitest';
import { renderConnector } from '../../connectors/debezium/cli.js';
import {
  mariadbConnector,
  mysqlConnector,
  PIPELINE_SETTINGS,
  postgresConnector,
  serverIdFor,
  signalTableDdl,
  slotNameFor,
  tableTopic,
  transactionTopic,
} from '../../connectors/debezium/config.js';
import { ConfigError } from '../../lib/errors.js';

const binlogOpts = {
  name: 'bank-cdc',
  topicPrefix: 'bank',
  host: '127.0.0.1',
  port: 3307,
  user: 'cqrs',
  password: 'cqrs',
  database: 'legacy_bank',
  tables: ['accounts', 'balances'],
  serverId: 5501,
};

describe('mariadbConnector / mysqlConnector', () => {
  it('builds the MariaDB config with every setting the record converter relies on', () => {
    const { name, config } = mariadbConnector(binlogOpts);
    expect(name).toBe('bank-cdc');
    expect(config).toMatchObject({
      'connector.class': 'io.debezium.connector.mariadb.MariaDbConnector',
      'tasks.max': '1',
      'database.hostname': '127.0.0.1',
      'database.port': '3307',
      'database.user': 'cqrs',
      'database.password': 'cqrs',
      'database.server.id': '5501',
      'database.include.list': 'legacy_bank',
      'table.include.list': 'legacy_bank\\.accounts,legacy_bank\\.balances',
      'topic.prefix': 'bank',
      'snapshot.mode': 'initial',
      'signal.data.collection': 'legacy_bank.debezium_signal',
      'heartbeat.interval.ms': '10000',
      'poll.interval.ms': '50',
      'schema.history.internal.kafka.bootstrap.servers': '127.0.0.1:9092',
      'schema.history.internal.kafka.topic': 'schema-history.bank',
      'decimal.handling.mode': 'string',
      'time.precision.mode': 'adaptive_time_microseconds',
      'provide.transaction.metadata': 'true',
      'column.propagate.source.type': '.*',
      'include.schema.changes': 'false',
      'tombstones.on.delete': 'false',
      'skipped.operations': 'none',
      'bigint.unsigned.handling.mode': 'long',
      'binary.handling.mode': 'base64',
      'value.converter': 'org.apache.kafka.connect.json.JsonConverter',
      'value.converter.schemas.enable': 'true',
    });
    for (const v of Object.values(config)) expect(typeof v).toBe('string');
  });

  it('differs for MySQL only in the connector class', () => {
    const maria = mariadbConnector(binlogOpts).config;
    const mysql = mysqlConnector(binlogOpts).config;
    expect(mysql['connector.class']).toBe('io.debezium.connector.mysql.MySqlConnector');
    expect({ ...mysql, 'connector.class': '' }).toEqual({ ...maria, 'connector.class': '' });
  });

  it('honours options: snapshot mode, qualified tables, no signal table, heartbeat off, extra properties', () => {
    const { config } = mariadbConnector({
      ...binlogOpts,
      tables: ['other_db.t1'],
      snapshotMode: 'no_data',
      signalTable: null,
      heartbeatIntervalMs: 0,
      kafkaBootstrap: 'kafka:29092',
      snapshotLockingMode: 'none',
      extra: { 'max.batch.size': '512' },
    });
    expect(config['table.include.list']).toBe('other_db\\.t1');
    expect(config['snapshot.mode']).toBe('no_data');
    expect(config['signal.data.collection']).toBeUndefined();
    expect(config['heartbeat.interval.ms']).toBe('0');
    expect(config['schema.history.internal.kafka.bootstrap.servers']).toBe('kafka:29092');
    expect(config['snapshot.locking.mode']).toBe('none');
    expect(config['max.batch.size']).toBe('512');
  });

  it('derives a stable server id from the connector name when none is given', () => {
    const { serverId: _omit, ...withoutId } = binlogOpts;
    const a = mariadbConnector(withoutId).config['database.server.id'];
    expect(a).toBe(String(serverIdFor('bank-cdc')));
    expect(serverIdFor('bank-cdc')).not.toBe(serverIdFor('bank-cdc-2'));
    expect(serverIdFor('x')).toBeGreaterThanOrEqual(100_000);
    expect(serverIdFor('x')).toBeLessThan(4_294_967_296);
  });

  it('rejects invalid options and overrides of pipeline settings with ConfigError', () => {
    expect(() => mariadbConnector({ ...binlogOpts, topicPrefix: 'bad prefix' })).toThrow(ConfigError);
    expect(() => mariadbConnector({ ...binlogOpts, tables: [] })).toThrow(/tables/);
    expect(() => mariadbConnector({ ...binlogOpts, snapshotMode: 'sometimes' as 'initial' })).toThrow(
      ConfigError,
    );
    expect(() => mariadbConnector({ ...binlogOpts, extra: { 'decimal.handling.mode': 'precise' } })).toThrow(
      /decimal.handling.mode cannot be overridden/,
    );
  });
});

describe('postgresConnector', () => {
  it('builds a pgoutput config with slot, filtered publication and schema-qualified tables', () => {
    const { config } = postgresConnector({
      name: 'Bank.PG-cdc',
      topicPrefix: 'bankpg',
      host: '127.0.0.1',
      port: 5433,
      user: 'cqrs',
      password: 'cqrs',
      database: 'legacy_bank',
      tables: ['accounts'],
    });
    expect(config).toMatchObject({
      'connector.class': 'io.debezium.connector.postgresql.PostgresConnector',
      'database.dbname': 'legacy_bank',
      'database.port': '5433',
      'plugin.name': 'pgoutput',
      'slot.name': 'bank_pg_cdc',
      'publication.name': 'bank_pg_cdc_pub',
      'publication.autocreate.mode': 'filtered',
      'table.include.list': 'public\\.accounts',
      'signal.data.collection': 'public.debezium_signal',
      'time.precision.mode': 'adaptive_time_microseconds',
      'decimal.handling.mode': 'string',
      'provide.transaction.metadata': 'true',
      // A partitioned table's changes under the root table's name (Debezium 3.2+; see config.ts).
      'publish.via.partition.root': 'true',
    });
    expect(config['schema.history.internal.kafka.topic']).toBeUndefined();
    expect(config['database.server.id']).toBeUndefined();
    expect(slotNameFor('A.b-c')).toBe('a_b_c');
  });
});

describe('helpers', () => {
  it('matches a database name with regex characters literally in the include lists', () => {
    const { config } = mariadbConnector({ ...binlogOpts, database: 'shop$eu-1', tables: ['order.items'] });
    expect(config['database.include.list']).toBe('shop\\$eu-1');
    expect(config['table.include.list']).toBe('order\\.items');
  });

  it("names a table's topic as Debezium does: characters Kafka refuses become _", () => {
    expect(tableTopic('legacy', 'shop-eu', 'orders')).toBe('legacy.shop-eu.orders');
    expect(tableTopic('legacy', 'Sales', 'Order Lines')).toBe('legacy.Sales.Order_Lines');
    expect(tableTopic('legacy', 'public', 'prénom$1')).toBe('legacy.public.pr_nom_1');
  });

  it('renders the REST body as pretty JSON', () => {
    const text = renderConnector('mariadb', binlogOpts);
    expect(JSON.parse(text)).toEqual(mariadbConnector(binlogOpts));
    expect(text).toContain('\n  "name": "bank-cdc"');
  });

  it('exposes the signal-table DDL per flavour and the transaction topic', () => {
    expect(signalTableDdl('mariadb')).toMatch(
      /^CREATE TABLE IF NOT EXISTS `debezium_signal` \(id VARCHAR\(42\) PRIMARY KEY/,
    );
    expect(signalTableDdl('postgresql', 'sig')).toMatch(/^CREATE TABLE IF NOT EXISTS sig \(id VARCHAR\(42\)/);
    expect(transactionTopic('bank')).toBe('bank.transaction');
  });

  it('pins the same converter-facing settings on every flavour', () => {
    for (const kind of ['mariadb', 'mysql', 'postgresql'] as const) {
      expect(PIPELINE_SETTINGS[kind]['decimal.handling.mode']).toBe('string');
      expect(PIPELINE_SETTINGS[kind]['column.propagate.source.type']).toBe('.*');
    }
  });
});
