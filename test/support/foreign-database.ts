import type { Connection } from 'mysql2/promise';

/** The table of a foreign database whose row a refused replacement must leave in place. */
export const FOREIGN_TABLE = 'precious';

/**
 * Creates `database` as a database of someone else's (not made by the code under test): one
 * table with one row, which the guards against dropping it must leave as it was.
 */
export async function createForeignDatabase(c: Connection, database: string): Promise<void> {
  await c.query(`CREATE DATABASE \`${database}\``);
  await c.query(`CREATE TABLE \`${database}\`.${FOREIGN_TABLE} (id INT PRIMARY KEY)`);
  await c.query(`INSERT INTO \`${database}\`.${FOREIGN_TABLE} VALUES (1)`);
}

/** The foreign database's rows now: `[{ id: 1 }]` while it is intact. */
export async function foreignRows(c: Connection, database: string): Promise<unknown> {
  const [rows] = await c.query(`SELECT id FROM \`${database}\`.${FOREIGN_TABLE} ORDER BY id`);
  return rows;
}
