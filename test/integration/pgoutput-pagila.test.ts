import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeEvent, SourceTransaction } from '../../connectors/change-event.js';
import { openLegacyDb } from '../../connectors/legacy/index.js';
import { pgoutputSourceConfigSchema } from '../../connectors/pgoutput/config.js';
import { PgoutputSource } from '../../connectors/pgoutput/source.js';
import { pgoutputPreflight } from '../../connectors/source-factory.js';
import { SourceError } from '../../lib/errors.js';
import { silentLogger } from '../../lib/logger.js';
import { uniqueSuffix, waitFor } from './support/debezium-bank.js';
import { dropPgState, LEGACY_PG, pgQuery, pgReachable } from './support/postgres.js';

/**
 * What Pagila (the PostgreSQL sample database) exercises in the embedded reader: a partitioned
 * table (payment, one partition per month), DOMAIN columns (film.release_year is a DOMAIN over
 * integer), replica identities, and a role that may not create the publication.
 */

const pgUp = await pgReachable();
if (!pgUp)
  console.warn(
    'pgoutput-pagila: PostgreSQL with wal_level=logical is not reachable; `bash scripts/legacy-pg.sh up`',
  );

const SCHEMA = [
  'CREATE DOMAIN year AS integer CHECK (VALUE >= 1901 AND VALUE <= 2155)',
  'CREATE DOMAIN later_year AS year',
  'CREATE DOMAIN price AS numeric(5,2)',
  `CREATE TABLE film (film_id integer PRIMARY KEY, title text NOT NULL, release_year year,
     rerelease_year later_year, rental_rate price NOT NULL, replacement_cost numeric(5,2))`,
  `CREATE TABLE payment (payment_id integer NOT NULL, customer_id integer NOT NULL, amount numeric(5,2) NOT NULL,
     payment_date timestamptz NOT NULL, PRIMARY KEY (payment_date, payment_id)) PARTITION BY RANGE (payment_date)`,
  "CREATE TABLE payment_p2022_01 PARTITION OF payment FOR VALUES FROM ('2022-01-01 00:00:00+00') TO ('2022-02-01 00:00:00+00')",
  "CREATE TABLE payment_p2022_02 PARTITION OF payment FOR VALUES FROM ('2022-02-01 00:00:00+00') TO ('2022-03-01 00:00:00+00')",
  'CREATE TABLE staff (staff_id integer PRIMARY KEY, name text)',
  'ALTER TABLE film REPLICA IDENTITY FULL',
  'ALTER TABLE payment REPLICA IDENTITY FULL',
  'ALTER TABLE payment_p2022_01 REPLICA IDENTITY FULL',
  'ALTER TABLE payment_p2022_02 REPLICA IDENTITY FULL',
  "INSERT INTO film VALUES (1, 'ACADEMY DINOSAUR', 2006, 2012, 0.99, 20.99), (2, 'ACE GOLDFINGER', NULL, NULL, 4.9, 12.9)",
  `INSERT INTO payment VALUES (16050, 269, 1.99, '2022-01-28 21:44:14.998+00'),
     (16051, 269, 0.99, '2022-02-01 03:12:00+00')`,
];

const streamedOf = (txs: SourceTransaction[]): ChangeEvent[] =>
  txs.filter((t) => !t.snapshot).flatMap((t) => t.events);
const readsOf = (txs: SourceTransaction[]): ChangeEvent[] =>
  txs.filter((t) => t.snapshot).flatMap((t) => t.events);

describe.skipIf(!pgUp)('pgoutput on a Pagila-like schema', () => {
  const suffix = uniqueSuffix();
  const database = `t_pgpag_${suffix}`;
  const lockedDb = `t_pgpagx_${suffix}`;
  const slots = ['part', 'ident', 'pub', 'dom'].map((s) => `t_pgpag_${s}_${suffix}`);
  const [partSlot, identSlot, pubSlot, domSlot] = slots as [string, string, string, string];
  const sources: PgoutputSource[] = [];
  const url = `postgres://${LEGACY_PG.user}:${LEGACY_PG.password}@${LEGACY_PG.host}:${LEGACY_PG.port}/${database}`;

  async function started(slotName: string, tables: string[]) {
    const got: SourceTransaction[] = [];
    const errors: SourceError[] = [];
    const source = new PgoutputSource(
      { ...LEGACY_PG, database, slotName, tables, statusIntervalSec: 1 },
      { logger: silentLogger, onError: (e) => errors.push(e) },
    );
    sources.push(source);
    await source.start(null, async (tx) => {
      got.push(tx);
    });
    return { source, got, errors };
  }

  beforeAll(async () => {
    await pgQuery('postgres', `CREATE DATABASE "${database}"`);
    await pgQuery(database, ...SCHEMA);
  });

  afterAll(async () => {
    for (const s of sources) await s.stop();
    await dropPgState(database, slots);
    await dropPgState(lockedDb, []);
  });

  it('captures a partitioned table as its root: snapshot and streamed changes name the root table', async () => {
    const { source, got, errors } = await started(partSlot, ['payment']);
    const [pub] = await pgQuery(
      database,
      `SELECT pubviaroot::text AS via_root FROM pg_publication WHERE pubname = '${partSlot}_pub'`,
    );
    expect(pub?.via_root).toBe('true');

    const reads = readsOf(got);
    expect(reads.map((e) => [e.source.table, e.after?.payment_id])).toEqual([
      ['payment', 16050],
      ['payment', 16051],
    ]);

    await pgQuery(
      database,
      "INSERT INTO payment VALUES (16052, 270, 5.99, '2022-02-14 10:00:00+00')",
      'UPDATE payment SET amount = 2.99 WHERE payment_id = 16050',
      'DELETE FROM payment WHERE payment_id = 16051',
    );
    await waitFor('the streamed changes', () => streamedOf(got).length >= 3, 30_000);
    await source.stop();
    expect(errors).toEqual([]);
    const streamed = streamedOf(got);
    expect(streamed.map((e) => [e.op, e.source.schema, e.source.table])).toEqual([
      ['c', 'public', 'payment'],
      ['u', 'public', 'payment'],
      ['d', 'public', 'payment'],
    ]);
    expect(streamed[0]?.after).toEqual({
      payment_id: 16052,
      customer_id: 270,
      amount: '5.99',
      payment_date: '2022-02-14 10:00:00.000000',
    });
    // Full before images (REPLICA IDENTITY FULL on each partition), equal to the snapshot's rows.
    expect(streamed[1]?.before).toEqual(reads[0]?.after);
    expect(streamed[1]?.after).toEqual({ ...reads[0]?.after, amount: '2.99' });
    expect(streamed[2]?.before).toEqual(reads[1]?.after);
  });

  it('preflight refuses captured tables and partitions without REPLICA IDENTITY FULL, naming the fix', async () => {
    const settings = (tables: string[]) =>
      pgoutputSourceConfigSchema.parse({ ...LEGACY_PG, database, slotName: identSlot, tables });
    await expect(pgoutputPreflight(settings(['film', 'payment']))).resolves.toBeUndefined();

    // ALTER TABLE on the parent does not reach the partitions: one of them is left at DEFAULT.
    await pgQuery(database, 'ALTER TABLE payment_p2022_02 REPLICA IDENTITY DEFAULT');
    try {
      const refused = await pgoutputPreflight(settings(['film', 'payment'])).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(SourceError);
      expect((refused as SourceError).code).toBe('REPLICA_IDENTITY');
      expect((refused as SourceError).message).toContain('public.payment_p2022_02');
      expect((refused as SourceError).hint).toContain(
        'ALTER TABLE public.payment_p2022_02 REPLICA IDENTITY FULL;',
      );
      expect((refused as SourceError).hint).not.toContain('film');

      // No tables configured: every table of the schema is captured, staff (DEFAULT) included.
      const all = await pgoutputPreflight(settings([])).catch((e: unknown) => e);
      expect((all as SourceError).code).toBe('REPLICA_IDENTITY');
      const statements = ((all as SourceError).hint ?? '').split('\n').filter((l) => l.startsWith('ALTER'));
      expect(statements).toEqual([
        'ALTER TABLE public.payment_p2022_02 REPLICA IDENTITY FULL;',
        'ALTER TABLE public.staff REPLICA IDENTITY FULL;',
      ]);
      // A table that is not captured does not matter.
      await expect(pgoutputPreflight(settings(['film']))).resolves.toBeUndefined();
    } finally {
      await pgQuery(database, 'ALTER TABLE payment_p2022_02 REPLICA IDENTITY FULL');
    }
  });

  it('PUBLICATION_FAILED carries the server message and both fixes', async () => {
    await pgQuery('postgres', `CREATE DATABASE "${lockedDb}"`);
    // The owner gives up its own right to create in the database: CREATE PUBLICATION needs it.
    await pgQuery(
      lockedDb,
      'CREATE TABLE rental (rental_id integer PRIMARY KEY)',
      `REVOKE CREATE ON DATABASE "${lockedDb}" FROM PUBLIC, ${LEGACY_PG.user}`,
    );
    const source = new PgoutputSource(
      { ...LEGACY_PG, database: lockedDb, slotName: pubSlot, tables: ['rental'] },
      { logger: silentLogger },
    );
    sources.push(source);
    const failed = await source.start(null, async () => undefined).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(SourceError);
    const err = failed as SourceError;
    expect(err.code).toBe('PUBLICATION_FAILED');
    expect(err.message).toContain(`permission denied for database ${lockedDb}`);
    expect(err.hint).toContain(`GRANT CREATE ON DATABASE ${lockedDb} TO ${LEGACY_PG.user};`);
    expect(err.hint).toMatch(/own every captured table and each of its partitions/);
    expect(err.hint).toContain('WITH (publish_via_partition_root = true)');
  });

  it('types DOMAIN columns by their base type: snapshot, streamed and legacy values agree', async () => {
    const { source, got, errors } = await started(domSlot, ['film']);
    await pgQuery(
      database,
      "INSERT INTO film VALUES (3, 'ADAPTATION HOLES', 2006, 2010, 2, 18)",
      "UPDATE film SET title = 'ACADEMY DINOSAURS' WHERE film_id = 1",
    );
    await waitFor('the streamed changes', () => streamedOf(got).length >= 2, 30_000);
    await source.stop();
    expect(errors).toEqual([]);

    const db = openLegacyDb(url, { poolSize: 1 });
    let legacy: Record<string, unknown>[];
    try {
      legacy = await db.query('SELECT * FROM film ORDER BY film_id');
    } finally {
      await db.close();
    }
    const reads = readsOf(got);
    const [inserted, updated] = streamedOf(got);
    expect(reads.map((e) => e.after)).toEqual([
      {
        film_id: 1,
        title: 'ACADEMY DINOSAUR',
        release_year: 2006,
        rerelease_year: 2012,
        rental_rate: '0.99',
        replacement_cost: '20.99',
      },
      {
        film_id: 2,
        title: 'ACE GOLDFINGER',
        release_year: null,
        rerelease_year: null,
        rental_rate: '4.90',
        replacement_cost: '12.90',
      },
    ]);
    // The domain's own NUMERIC(5,2) scale pads the streamed value as the snapshot's and legacy's.
    expect(inserted?.after).toEqual({
      film_id: 3,
      title: 'ADAPTATION HOLES',
      release_year: 2006,
      rerelease_year: 2010,
      rental_rate: '2.00',
      replacement_cost: '18.00',
    });
    expect(updated?.before).toEqual(reads[0]?.after);
    expect(updated?.after).toEqual({ ...reads[0]?.after, title: 'ACADEMY DINOSAURS' });
    expect(legacy).toEqual([updated?.after, reads[1]?.after, inserted?.after]);
  });
});
