import mysql from 'mysql2/promise';
import { afterAll, describe, expect, it } from 'vitest';
import { dropDatabase } from '../../examples/bank/db.js';
import bank from '../../examples/bank/migration.js';
import { createForeignDatabase, FOREIGN_TABLE, foreignRows } from '../support/foreign-database.js';

/**
 * `demo` and `npm run sample -- create` drop and re-create the database legacy.url names: on a
 * database the sample did not create they refuse unless --force, so a demo pointed at someone's
 * own database cannot delete it.
 */
const server = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const database = `t_guard_${process.pid}`;
const url = `mysql://cqrs:cqrs@127.0.0.1:3307/${database}`;
const create = (force: boolean) => {
  const sample = bank.sample;
  if (sample === undefined) throw new Error('the bank has sample hooks');
  return sample.create({ url, scale: 'tiny', seed: 3, force, progress: () => undefined });
};

afterAll(async () => {
  await dropDatabase(server, database);
});

describe('sample databases are only replaced when they are the sample’s own', () => {
  it('refuses a foreign database and leaves it intact; with --force replaces it; then replaces its own', async () => {
    const c = await mysql.createConnection(server);
    try {
      await createForeignDatabase(c, database);
      await expect(create(false)).rejects.toMatchObject({ code: 'SAMPLE_DB_FOREIGN' });
      expect(await foreignRows(c, database)).toEqual([{ id: 1 }]);

      expect((await create(true)).rows).toBeGreaterThan(1000);
      const [tables] = await c.query(
        'SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
        [database, FOREIGN_TABLE],
      );
      expect(tables).toEqual([]);
      // Its own database now: re-created without --force.
      expect((await create(false)).rows).toBeGreaterThan(1000);
    } finally {
      await c.end();
    }
  });
});
