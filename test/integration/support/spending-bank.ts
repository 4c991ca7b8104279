import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { type OpenedLegacyDb, openLegacyDb } from '../../../connectors/legacy/index.js';
import { createBankDatabase, dropDatabase, openPool } from '../../../examples/bank/db.js';
import { generateBank } from '../../../examples/bank/generate.js';
import { nextDay } from '../../../examples/bank/overview.js';
import { type Config, loadConfig } from '../../../lib/config.js';

const conn = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };

/** A tiny generated bank on the test MariaDB with an adapter config over it, for the spending analytics tests. */
export interface SpendingBank {
  dataDir: string;
  config: Config;
  pool: Pool;
  legacyDb: OpenedLegacyDb;
  /** The day of the latest posting; asOf is the midnight after it. */
  latestDay: string;
  asOf: string;
  rows(sql: string, params?: unknown[]): Promise<RowDataPacket[]>;
  /** The customers who spent at merchants the most, most first. */
  topSpenders(count: number): Promise<number[]>;
  close(): Promise<void>;
}

export async function openSpendingBank(
  prefix: string,
  seed: number,
  flags: { defaultMode: 'legacy' | 'shadow' } = { defaultMode: 'legacy' },
): Promise<SpendingBank> {
  const database = `${prefix}_${Math.random().toString(36).slice(2, 8)}`;
  const dataDir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  await createBankDatabase(conn, database, { dropExisting: true });
  const pool = openPool(conn, database);
  await generateBank(pool, { seed, scale: 'tiny' });
  const config = loadConfig({
    env: {},
    overrides: {
      legacy: { url: `mysql://cqrs:cqrs@127.0.0.1:3307/${database}` },
      cdc: { serverId: 5000 + Math.floor(Math.random() * 1000) },
      dataDir,
      projector: { pollIntervalMs: 20 },
      api: { port: 0, admin: { port: 0 } },
      flags,
    },
  });
  const legacyDb = openLegacyDb(config.legacy.url);
  const rows = async (sql: string, params: unknown[] = []) => {
    const [result] = await pool.query<RowDataPacket[]>(sql, params);
    return result;
  };
  const [latest] = await rows('SELECT DATE_FORMAT(MAX(posted_at), "%Y-%m-%d") AS day FROM transactions');
  const latestDay = String(latest?.day);
  return {
    dataDir,
    config,
    pool,
    legacyDb,
    latestDay,
    asOf: `${nextDay(latestDay)} 00:00:00.000000`,
    rows,
    async topSpenders(count) {
      const found = await rows(
        `SELECT a.customer_id AS id, COUNT(*) AS n FROM transactions t JOIN accounts a ON a.id = t.account_id
          WHERE t.merchant_id IS NOT NULL AND t.direction = 'debit' GROUP BY a.customer_id ORDER BY n DESC, id LIMIT ?`,
        [count],
      );
      return found.map((r) => Number(r.id));
    },
    async close() {
      await legacyDb.close();
      await pool.end();
      await dropDatabase(conn, database);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
