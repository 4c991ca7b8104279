import type { Pool } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlBinlogSource } from '../../connectors/binlog/source.js';
import { mapTransaction } from '../../connectors/mapping/mapper.js';
import { PgoutputSource } from '../../connectors/pgoutput/source.js';
import type { ChangeSource } from '../../connectors/ports.js';
import type { NewDomainEvent } from '../../eventstore/ports.js';
import { createBankDatabase, dropDatabase, openPool } from '../../examples/bank/db.js';
import { generateBank } from '../../examples/bank/generate.js';
import bank from '../../examples/bank/migration.js';
import { createPgBankDatabase, loadPgBank } from '../../examples/bank/postgres/db.js';
import { silentLogger } from '../../lib/logger.js';
import { LEGACY, uniqueSuffix } from './support/debezium-bank.js';
import { dropPgState, LEGACY_PG, pgReachable } from './support/postgres.js';

const pgUp = await pgReachable();
if (!pgUp)
  console.warn('bank-postgres: PostgreSQL is not reachable; start it with `bash scripts/legacy-pg.sh up`');

/** Snapshot events of a source, mapped by the bank rules, keyed by aggregate and event. */
async function snapshotEvents(source: ChangeSource): Promise<{ events: string[]; deadLetters: number }> {
  const events: NewDomainEvent[] = [];
  let deadLetters = 0;
  await source.start(null, async (tx) => {
    if (!tx.snapshot) return;
    const mapped = mapTransaction(tx, bank.rules);
    events.push(...mapped.events);
    deadLetters += mapped.deadLetters.length;
  });
  await source.stop();
  const keyed = events.map((e) =>
    JSON.stringify({ streamId: e.streamId, type: e.type, data: e.data, table: e.metadata.table }),
  );
  return { events: keyed.sort(), deadLetters };
}

describe.skipIf(!pgUp)('the sample bank on PostgreSQL', () => {
  const suffix = uniqueSuffix();
  const database = `t_pgbank_${suffix}`;
  const slotName = `t_pgbank_${suffix}`;
  let pool: Pool;

  beforeAll(async () => {
    await createBankDatabase(LEGACY, database, { dropExisting: true });
    pool = openPool(LEGACY, database);
    await generateBank(pool, { seed: 17, scale: 'tiny' });
    await createPgBankDatabase(LEGACY_PG, database);
    await loadPgBank(LEGACY_PG, database, { seed: 17, scale: 'tiny' });
  });

  afterAll(async () => {
    await pool?.end();
    await dropDatabase(LEGACY, database);
    await dropPgState(database, [slotName]);
  });

  it('holds the rows the MariaDB bank holds for the same seed: both snapshots map to the same domain events', async () => {
    const fromMaria = await snapshotEvents(
      new MysqlBinlogSource(
        { ...LEGACY, database, serverId: 400_000 + Math.floor(Math.random() * 100_000) },
        { logger: silentLogger },
      ),
    );
    const fromPg = await snapshotEvents(
      new PgoutputSource({ ...LEGACY_PG, database, slotName }, { logger: silentLogger }),
    );
    expect(fromMaria.deadLetters).toBe(0);
    expect(fromPg.deadLetters).toBe(0);
    expect(fromMaria.events.length).toBeGreaterThan(3000);
    expect(fromPg.events).toEqual(fromMaria.events);
  });
});
