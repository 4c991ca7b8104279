import { z } from 'zod';
import type { ChangeEvent } from '../../../connectors/change-event.js';
import { defineTableRule } from '../../../connectors/mapping/rules.js';
import { defineEndpoint } from '../../../definition/endpoints.js';
import { defineMigration, type Migration } from '../../../definition/migration.js';
import { defineView } from '../../../definition/read-models.js';
import { type Config, loadConfig } from '../../../lib/config.js';
import { LEGACY_PG, pgQuery } from './postgres.js';

/**
 * A one-table definition for operations tests: `items (id INT PRIMARY KEY, name VARCHAR, qty INT)`
 * mapped to item streams and an `item` view keyed by id. Its rule can be made strict (names
 * longer than `maxNameLength` are rejected) or read the name from another column (after a
 * RENAME COLUMN), so a test can break a rule and then fix it.
 */
export interface ItemsOptions {
  /** Column the rule reads the name from (default "name"). */
  nameColumn?: string;
  /** Longest name the rule accepts (default: any). */
  maxNameLength?: number;
}

export const ITEMS_DDL =
  'CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, qty INT NOT NULL)';

/**
 * A new PostgreSQL database holding `items` (REPLICA IDENTITY FULL) with `rows` (the VALUES
 * list), and the config of an embedded pipeline on it: its data under `dataDir`, its slot
 * `cqrs_<name>`.
 */
export async function pgItemsDatabase(
  database: string,
  rows: string,
  pipeline: { dataDir: string; name: string },
): Promise<Config> {
  await pgQuery('postgres', `CREATE DATABASE ${database}`);
  await pgQuery(
    database,
    'CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL)',
    'ALTER TABLE items REPLICA IDENTITY FULL',
    `INSERT INTO items VALUES ${rows}`,
  );
  return loadConfig({
    env: {
      CQRS_LEGACY_URL: `postgres://${LEGACY_PG.user}:${LEGACY_PG.password}@${LEGACY_PG.host}:${LEGACY_PG.port}/${database}`,
      CQRS_DATA_DIR: pipeline.dataDir,
      CQRS_CDC_NAME: pipeline.name,
    },
  });
}

export function itemsMigration(options: ItemsOptions = {}): Migration {
  const column = options.nameColumn ?? 'name';
  const max = options.maxNameLength ?? Number.POSITIVE_INFINITY;
  const row = z.looseObject({ id: z.number(), qty: z.number() }).transform((r, ctx) => {
    const name = r[column];
    if (typeof name !== 'string') {
      ctx.addIssue({ code: 'custom', path: [column], message: `expected text in column ${column}` });
      return z.NEVER;
    }
    if (name.length > max) {
      ctx.addIssue({ code: 'custom', path: [column], message: `longer than ${max} characters` });
      return z.NEVER;
    }
    return { itemId: r.id, name, qty: r.qty };
  });
  const items = defineTableRule({
    table: 'items',
    row,
    key: 'itemId',
    stream: { type: 'item', id: (s) => `item-${s.itemId}` },
    onCreate: 'ItemAdded',
    onSnapshot: 'ItemSnapshotted',
    otherwise: 'ItemChanged',
    onDelete: 'ItemRemoved',
  });
  return defineMigration({
    name: 'items',
    capture: { tables: [items] },
    readModels: [
      defineView({
        name: 'item',
        from: 'items',
        schema: z.object({ name: z.string(), qty: z.number() }),
        select: (root) => ({ name: String(root.row.name), qty: Number(root.row.qty) }),
      }),
    ],
    domains: {
      items: {
        endpoints: {
          get: defineEndpoint({
            route: '/items/:itemId',
            params: z.object({ itemId: z.coerce.number() }),
            legacy: {
              sql: `SELECT ${column === 'name' ? 'name' : `${column} AS name`}, qty FROM items WHERE id = :itemId`,
              map: (rows) => rows[0] ?? null,
            },
            readModel: ({ params, readModels }) =>
              readModels.item?.get(String(params.itemId)) ?? Promise.resolve(null),
            reconcile: { sql: 'SELECT id AS itemId FROM items ORDER BY id' },
          }),
        },
      },
    },
  });
}

let binlogPos = 1000;

/**
 * A streamed change of one item as the Debezium source parses it: created at qty 1, updated
 * after; each call gets a later binlog position.
 */
export function itemChange(id: number, qty: number, txId: string, order: number): ChangeEvent {
  binlogPos += 10;
  return {
    before: qty === 1 ? null : { id, name: `item ${id}`, qty: qty - 1 },
    after: { id, name: `item ${id}`, qty },
    op: qty === 1 ? 'c' : 'u',
    ts_ms: 1_700_000_000_500,
    transaction: { id: txId, total_order: order, data_collection_order: order },
    source: {
      version: 'test',
      connector: 'mariadb',
      name: 'items',
      ts_ms: 1_700_000_000_000,
      snapshot: 'false',
      db: 'items',
      table: 'items',
      file: 'binlog.000001',
      pos: binlogPos,
      row: 0,
      gtid: txId,
    },
  };
}
