import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { SourceTransaction } from '../../connectors/change-event.js';
import { KafkaDebeziumSource } from '../../connectors/kafka/debezium-source.js';
import { mapTransaction } from '../../connectors/mapping/mapper.js';
import { PgoutputSource } from '../../connectors/pgoutput/source.js';
import type { NewDomainEvent } from '../../eventstore/ports.js';
import { BANK_TABLES } from '../../examples/bank/generate.js';
import bank from '../../examples/bank/migration.js';
import { createPgBankDatabase, loadPgBank, pgClient } from '../../examples/bank/postgres/db.js';
import { runPgWorkload } from '../../examples/bank/postgres/workload.js';
import { silentLogger } from '../../lib/logger.js';
import { connectReachable, perAggregate, testKafka, uniqueSuffix, waitFor } from './support/debezium-bank.js';
import {
  type DeployedPgConnector,
  deployPgConnector,
  dropBothPaths,
  LEGACY_PG,
  pgQuery,
  pgReachable,
} from './support/postgres.js';

const connectUp = await connectReachable();
const pgUp = await pgReachable();
if (!connectUp || !pgUp)
  console.warn(
    'parity-postgres: needs Kafka Connect (`bash stack/stack.sh up`) and PostgreSQL (`bash scripts/legacy-pg.sh up`); skipping',
  );

class Collector {
  readonly events: NewDomainEvent[] = [];
  readonly txIds: string[] = [];
  deadLetters = 0;
  readonly sink = async (tx: SourceTransaction) => {
    const mapped = mapTransaction(tx, bank.rules);
    this.events.push(...mapped.events);
    this.deadLetters += mapped.deadLetters.length;
    if (!tx.snapshot) this.txIds.push(tx.id);
  };
  snapshotEvents = () => this.events.filter((e) => e.metadata.snapshot).length;
}

/** Commits one real change in its own transaction and returns its xid: a marker both paths must reach. */
async function markerTransaction(database: string): Promise<string> {
  const c = pgClient(LEGACY_PG, database);
  await c.connect();
  try {
    await c.query('BEGIN');
    await c.query(
      "UPDATE balances SET updated_at = updated_at + interval '1 microsecond' WHERE account_id = (SELECT min(account_id) FROM balances)",
    );
    const result = await c.query('SELECT txid_current()::text AS xid');
    await c.query('COMMIT');
    return z.object({ xid: z.string() }).parse(result.rows[0]).xid;
  } finally {
    await c.end();
  }
}

describe.skipIf(!connectUp || !pgUp)(
  'source parity on PostgreSQL: embedded pgoutput reader vs Debezium → Kafka',
  () => {
    const suffix = uniqueSuffix();
    const database = `t_ppar_${suffix}`;
    const embeddedSlot = `t_ppar_${suffix}`;
    const groupId = `t-ppar-${suffix}`;
    const kafka = testKafka(groupId);
    let connector: DeployedPgConnector | undefined;
    let embedded: PgoutputSource | undefined;
    let viaKafka: KafkaDebeziumSource | undefined;

    beforeAll(async () => {
      await createPgBankDatabase(LEGACY_PG, database);
      await loadPgBank(LEGACY_PG, database, { seed: 21, scale: 'tiny' });
    });

    afterAll(() =>
      dropBothPaths({ sources: [embedded, viaKafka], connector, kafka, groupId, database, embeddedSlot }),
    );

    it('one write workload yields the same domain events per aggregate on both paths', async () => {
      const errors: Error[] = [];
      const a = new Collector();
      const b = new Collector();
      embedded = new PgoutputSource(
        { ...LEGACY_PG, database, slotName: embeddedSlot, tables: [...BANK_TABLES], snapshotChunkRows: 400 },
        { logger: silentLogger, onError: (e) => errors.push(e) },
      );
      await embedded.start(null, a.sink);
      connector = await deployPgConnector(database, suffix, BANK_TABLES);
      viaKafka = new KafkaDebeziumSource({
        kafka,
        topicPrefix: connector.topicPrefix,
        tables: BANK_TABLES.map((table) => ({ scope: 'public', table })),
        groupId,
        logger: silentLogger,
        onError: (e) => errors.push(e),
      });
      await viaKafka.start(null, b.sink);

      const [count] = await pgQuery(
        database,
        `SELECT (${BANK_TABLES.map((t) => `(SELECT count(*) FROM ${t})`).join(' + ')})::int AS n`,
      );
      const rows = Number(count?.n);
      // Both snapshots must be complete before the first write, so both read the same state.
      await waitFor(
        'both snapshots',
        () => a.snapshotEvents() >= rows && b.snapshotEvents() >= rows,
        120_000,
      );

      const stats = await runPgWorkload(LEGACY_PG, database, { seed: 5, ops: 250 });
      const marker = await markerTransaction(database);
      await waitFor(
        'the marker transaction on both paths',
        () => a.txIds.includes(marker) && b.txIds.includes(marker),
        120_000,
      );
      expect(errors).toEqual([]);

      expect(a.deadLetters).toBe(0);
      expect(b.deadLetters).toBe(0);
      expect(a.snapshotEvents()).toBe(rows);
      const streamed = a.events.filter((e) => !e.metadata.snapshot);
      expect(streamed.length).toBeGreaterThanOrEqual(stats.rowChanges);
      expect(new Set(streamed.map((e) => e.type)).size).toBeGreaterThan(5);
      expect(perAggregate(b.events)).toEqual(perAggregate(a.events));
      // Same source transactions, in the same commit order.
      expect(b.txIds).toEqual(a.txIds);
      expect(a.txIds).toHaveLength(stats.ops + 1);
    });
  },
);
