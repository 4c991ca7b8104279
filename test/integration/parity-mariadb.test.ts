import type { Pool } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlBinlogSource } from '../../connectors/binlog/source.js';
import type { SourceTransaction } from '../../connectors/change-event.js';
import { KafkaDebeziumSource } from '../../connectors/kafka/debezium-source.js';
import { mapTransaction } from '../../connectors/mapping/mapper.js';
import type { NewDomainEvent } from '../../eventstore/ports.js';
import { createBankDatabase, dropDatabase, openPool } from '../../examples/bank/db.js';
import { BANK_TABLES, generateBank } from '../../examples/bank/generate.js';
import bank from '../../examples/bank/migration.js';
import { runWorkload } from '../../examples/bank/workload.js';
import { silentLogger } from '../../lib/logger.js';
import {
  connectReachable,
  type DeployedBankConnector,
  deployBankConnector,
  dropKafkaState,
  LEGACY,
  markerTransaction,
  perAggregate,
  testKafka,
  uniqueSuffix,
  waitFor,
} from './support/debezium-bank.js';

const connectUp = await connectReachable();
if (!connectUp)
  console.warn('parity-mariadb: Kafka Connect is not reachable; start it with `bash stack/stack.sh up`');

class Collector {
  readonly events: NewDomainEvent[] = [];
  readonly txIds = new Set<string>();
  deadLetters = 0;
  readonly sink = async (tx: SourceTransaction) => {
    const mapped = mapTransaction(tx, bank.rules);
    this.events.push(...mapped.events);
    this.deadLetters += mapped.deadLetters.length;
    // Data transactions only: the embedded reader also delivers DDL on captured tables (here the
    // CREATE TABLE of Debezium's signal table) as schema-change markers without rows, which
    // Debezium keeps in its schema history instead.
    if (!tx.snapshot && tx.schemaChanges === undefined) this.txIds.add(tx.id);
  };
  snapshotEvents = () => this.events.filter((e) => e.metadata.snapshot).length;
}

/**
 * The sink failing on some streamed transactions (a publish the broker refused): the source
 * must read what the sink did not take again, so the transactions still arrive, once each.
 */
function failingSometimes(sink: (tx: SourceTransaction) => Promise<void>, failAt: ReadonlySet<number>) {
  let streamed = 0;
  return async (tx: SourceTransaction) => {
    if (!tx.snapshot && failAt.has(++streamed)) throw new Error(`sink failure on streamed call ${streamed}`);
    await sink(tx);
  };
}

describe.skipIf(!connectUp)('source parity on MariaDB: embedded binlog reader vs Debezium → Kafka', () => {
  const suffix = uniqueSuffix();
  const database = `t_par_${suffix}`;
  const groupId = `t-par-${suffix}`;
  const kafka = testKafka(groupId);
  let pool: Pool;
  let connector: DeployedBankConnector | undefined;
  let embedded: MysqlBinlogSource | undefined;
  let viaKafka: KafkaDebeziumSource | undefined;

  beforeAll(async () => {
    await createBankDatabase(LEGACY, database, { dropExisting: true });
    pool = openPool(LEGACY, database);
    await generateBank(pool, { seed: 21, scale: 'tiny' });
  });

  afterAll(async () => {
    await embedded?.stop();
    await viaKafka?.stop();
    await connector?.remove();
    await dropKafkaState(kafka, connector ? [connector.topicPrefix] : [], [groupId]);
    await pool?.end();
    await dropDatabase(LEGACY, database);
  });

  it('one write workload yields the same domain events per aggregate on both paths', async () => {
    const errors: Error[] = [];
    const a = new Collector();
    const b = new Collector();
    embedded = new MysqlBinlogSource(
      {
        ...LEGACY,
        database,
        serverId: 300_000 + Math.floor(Math.random() * 100_000),
        snapshotChunkRows: 400,
      },
      { logger: silentLogger, onError: (e) => errors.push(e) },
    );
    await embedded.start(null, a.sink);
    connector = await deployBankConnector(pool, database, suffix);
    viaKafka = new KafkaDebeziumSource({
      kafka,
      topicPrefix: connector.topicPrefix,
      tables: BANK_TABLES.map((table) => ({ scope: database, table })),
      groupId,
      logger: silentLogger,
      onError: (e) => errors.push(e),
    });
    await viaKafka.start(null, failingSometimes(b.sink, new Set([3, 40, 41, 150])));

    const [counts] = await pool.query(
      BANK_TABLES.map((t) => `SELECT COUNT(*) AS n FROM \`${t}\``).join(' UNION ALL '),
    );
    const rows = (counts as Array<{ n: number }>).reduce((sum, r) => sum + Number(r.n), 0);
    // Both snapshots must be complete before the first write, so both read the same state.
    await waitFor('both snapshots', () => a.snapshotEvents() >= rows && b.snapshotEvents() >= rows, 120_000);

    const stats = await runWorkload(pool, { seed: 5, ratePerSec: 120, maxOps: 300, concurrency: 3 });
    expect(stats.errors).toBe(0);
    const marker = await markerTransaction(pool);
    await waitFor(
      'the marker transaction on both paths',
      () => a.txIds.has(marker) && b.txIds.has(marker),
      120_000,
    );
    expect(errors).toEqual([]);

    expect(a.deadLetters).toBe(0);
    expect(b.deadLetters).toBe(0);
    const streamed = a.events.filter((e) => !e.metadata.snapshot);
    expect(streamed.length).toBeGreaterThan(600);
    expect(new Set(streamed.map((e) => e.type)).size).toBeGreaterThan(5);
    expect(a.snapshotEvents()).toBe(rows);
    expect(perAggregate(b.events)).toEqual(perAggregate(a.events));
    // Same source transactions, in the same commit order.
    expect([...b.txIds]).toEqual([...a.txIds]);
  });
});
