import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeEvent, SourceTransaction } from '../../connectors/change-event.js';
import { KafkaDebeziumSource } from '../../connectors/kafka/debezium-source.js';
import { PgoutputSource } from '../../connectors/pgoutput/source.js';
import { silentLogger } from '../../lib/logger.js';
import {
  connectReachable,
  dropKafkaState,
  testKafka,
  uniqueSuffix,
  waitFor,
} from './support/debezium-bank.js';
import {
  type DeployedPgConnector,
  deployPgConnector,
  dropPgState,
  LEGACY_PG,
  pgQuery,
  pgReachable,
} from './support/postgres.js';

const connectUp = await connectReachable();
const pgUp = await pgReachable();
if (!connectUp || !pgUp)
  console.warn(
    'debezium-postgres-schema: needs Kafka Connect (`bash stack/stack.sh up`) and PostgreSQL (`bash scripts/legacy-pg.sh up`); skipping',
  );

/**
 * `?schema=<name>` on the distributed path: the connector `cqrs-migrate connector deploy` renders
 * for a schema other than public captures that schema's tables (not the same-named ones of
 * public) and the translator's source reads them from `<prefix>.<schema>.<table>`, with the
 * same events as the embedded pgoutput reader given the same schema.
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
      'CREATE SCHEMA clinic',
      'CREATE TABLE clinic.visits (id INT PRIMARY KEY, at TIMESTAMPTZ(3) NOT NULL, note TEXT)',
      'ALTER TABLE clinic.visits REPLICA IDENTITY FULL',
      // Same name in public: neither reader may deliver its rows.
      'CREATE TABLE public.visits (id INT PRIMARY KEY, junk TEXT)',
      "INSERT INTO public.visits VALUES (1, 'not this one')",
      "INSERT INTO clinic.visits VALUES (1, '2026-12-01 09:00:00.5+01', 'first'), (2, '2026-12-02 09:00Z', NULL)",
    );
  });

  afterAll(async () => {
    await embedded?.stop();
    await viaKafka?.stop();
    await connector?.remove();
    await dropKafkaState(kafka, connector ? [connector.topicPrefix] : [], [groupId]);
    await dropPgState(database, [embeddedSlot, ...(connector ? [connector.slotName] : [])]);
  });

  it('captures that schema on both paths, with the same events', async () => {
    const errors: Error[] = [];
    const collect = (into: SourceTransaction[]) => async (tx: SourceTransaction) => {
      into.push(tx);
    };
    const ours: SourceTransaction[] = [];
    const theirs: SourceTransaction[] = [];
    embedded = new PgoutputSource(
      { ...LEGACY_PG, database, schema: 'clinic', slotName: embeddedSlot, tables: ['visits'] },
      { logger: silentLogger, onError: (e) => errors.push(e) },
    );
    await embedded.start(null, collect(ours));
    connector = await deployPgConnector(database, suffix, ['visits'], 0, 'clinic');
    viaKafka = new KafkaDebeziumSource({
      kafka,
      topicPrefix: connector.topicPrefix,
      tables: [{ scope: 'clinic', table: 'visits' }],
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
      "INSERT INTO clinic.visits VALUES (3, '2026-12-05 10:00+02', 'new')",
      "UPDATE clinic.visits SET note = 'moved' WHERE id = 2",
      "UPDATE public.visits SET junk = 'still not this one'",
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
        table: 'visits',
        schema: 'clinic',
        after: { id: 1, at: '2026-12-01 08:00:00.500', note: 'first' },
      },
      {
        op: 'r',
        table: 'visits',
        schema: 'clinic',
        after: { id: 2, at: '2026-12-02 09:00:00.000', note: null },
      },
    ]);
    expect(rows(byId(events(theirs, true)))).toEqual(rows(byId(events(ours, true))));
    const streamed = [
      {
        op: 'c',
        table: 'visits',
        schema: 'clinic',
        after: { id: 3, at: '2026-12-05 08:00:00.000', note: 'new' },
      },
      {
        op: 'u',
        table: 'visits',
        schema: 'clinic',
        after: { id: 2, at: '2026-12-02 09:00:00.000', note: 'moved' },
      },
    ];
    expect(rows(events(ours, false))).toEqual(streamed);
    expect(rows(events(theirs, false))).toEqual(streamed);
    // public.visits' update was in the same transaction: no reader delivered it.
    expect([...ours, ...theirs].every((t) => t.events.every((e) => e.source.schema === 'clinic'))).toBe(true);
  });
});
