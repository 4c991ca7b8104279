import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Catalog } from '../../connectors/catalog/catalog.js';
import { readCatalog } from '../../connectors/catalog/index.js';
import type { Row } from '../../connectors/change-event.js';
import { openLegacyDb } from '../../connectors/legacy/index.js';
import { initDefinition } from '../../definition/init/index.js';
import { renderDefinition, renderDefinitionWithSummary } from '../../definition/init/render.js';
import type { Migration } from '../../definition/migration.js';
import { AdapterError } from '../../lib/errors.js';
import {
  REPO_INDEX,
  removeTempDirs,
  tempDir,
  typecheckDefinitions,
  uncommentStarters,
} from '../support/typecheck.js';
import { GAPS_MYSQL_CASCADES, GAPS_MYSQL_SCHEMA, GAPS_PG_SCHEMA } from './support/init-gaps-schema.js';

/**
 * `init` against the real engines: a small shop schema (compound-key join table, foreign keys
 * incl. a compound one, enums, DECIMAL, DATETIME(6), a keyless table, a view) in a fresh
 * database on the project's MariaDB and PostgreSQL; the catalog read back, the definition
 * rendered, type-checked, loaded, and its row schemas checked against the servers' own values
 * (the legacy read path normalises values as CDC does).
 */

const MYSQL = {
  host: '127.0.0.1',
  port: Number(process.env.CQRS_LEGACY_DB_PORT ?? 3307),
  user: 'cqrs',
  password: 'cqrs',
};
const PG = {
  host: process.env.CQRS_LEGACY_PG_HOST ?? '127.0.0.1',
  port: Number(process.env.CQRS_LEGACY_PG_PORT ?? 5433),
  user: process.env.CQRS_LEGACY_PG_USER ?? 'cqrs',
  password: process.env.CQRS_LEGACY_PG_PASSWORD ?? 'cqrs',
};
const DB = `init_cat_${process.pid}_${Date.now().toString(36)}`;
/** The Sakila-shaped schema with a generated column and cascading foreign keys. */
const GAPS_DB = `${DB}_gaps`;
const mysqlUrl = `mysql://${MYSQL.user}:${MYSQL.password}@${MYSQL.host}:${MYSQL.port}/${DB}`;
const pgUrl = `postgres://${PG.user}:${PG.password}@${PG.host}:${PG.port}/${DB}`;

const MYSQL_SCHEMA = [
  `CREATE TABLE customers (
     id INT AUTO_INCREMENT PRIMARY KEY,
     email VARCHAR(200) NOT NULL,
     tier ENUM('basic', 'gold', 'it''s vip') NOT NULL DEFAULT 'basic',
     active TINYINT(1) NOT NULL DEFAULT 1,
     \`first name\` VARCHAR(50) NULL,
     created_at DATETIME(6) NOT NULL)`,
  `CREATE TABLE products (
     sku VARCHAR(20) PRIMARY KEY,
     name VARCHAR(100) NOT NULL UNIQUE,
     price DECIMAL(12,2) NOT NULL,
     weight DOUBLE NULL)`,
  `CREATE TABLE orders (
     id BIGINT UNSIGNED PRIMARY KEY,
     customer_id INT NOT NULL,
     status ENUM('new', 'paid') NOT NULL,
     total DECIMAL(19,4) NOT NULL,
     placed_at DATETIME(6) NOT NULL,
     placed_on DATE NULL,
     note TEXT NULL,
     CONSTRAINT fk_order_customer FOREIGN KEY (customer_id) REFERENCES customers (id))`,
  `CREATE TABLE order_items (
     order_id BIGINT UNSIGNED NOT NULL,
     product_sku VARCHAR(20) NOT NULL,
     qty INT NOT NULL,
     PRIMARY KEY (order_id, product_sku),
     KEY ix_item_sku_order (product_sku, order_id),
     CONSTRAINT fk_item_order FOREIGN KEY (order_id) REFERENCES orders (id),
     CONSTRAINT fk_item_product FOREIGN KEY (product_sku) REFERENCES products (sku))`,
  `CREATE TABLE shipments (
     id INT PRIMARY KEY,
     sku VARCHAR(20) NOT NULL,
     oid BIGINT UNSIGNED NOT NULL,
     shipped_at DATETIME NULL,
     CONSTRAINT fk_ship_item FOREIGN KEY (sku, oid) REFERENCES order_items (product_sku, order_id))`,
  'CREATE TABLE audit_log (message VARCHAR(200) NOT NULL, at DATETIME(3) NOT NULL)',
  // No primary key, but a UNIQUE key over NOT NULL columns keys it (one over a nullable does not).
  `CREATE TABLE user_roles (user_id INT NOT NULL, role VARCHAR(20) NOT NULL, note VARCHAR(50) NULL,
     UNIQUE KEY uq_maybe (note), UNIQUE KEY uq_user_role (user_id, role))`,
  'CREATE VIEW big_orders AS SELECT id, total FROM orders WHERE total > 100',
  `INSERT INTO customers (id, email, tier, active, \`first name\`, created_at) VALUES
     (1, 'a@example.com', 'gold', 1, 'Ann', '2024-05-01 09:30:00.123456'),
     (2, 'b@example.com', 'it''s vip', 0, NULL, '2024-05-02 10:00:00.000000')`,
  "INSERT INTO products VALUES ('A-1', 'Apple', 1.50, 0.2), ('B-2', 'Bread', 3.00, NULL)",
  `INSERT INTO orders VALUES
     (10, 1, 'paid', 12.5, '2024-05-03 11:00:00.000001', '2024-05-03', 'leave at door'),
     (11, 2, 'new', 3, '2024-05-04 12:00:00.5', NULL, NULL)`,
  "INSERT INTO order_items VALUES (10, 'A-1', 3), (10, 'B-2', 1), (11, 'B-2', 1)",
  "INSERT INTO shipments VALUES (1, 'A-1', 10, '2024-05-05 08:00:00'), (2, 'B-2', 11, NULL)",
  "INSERT INTO audit_log VALUES ('created', '2024-05-01 00:00:00.000')",
  "INSERT INTO user_roles VALUES (1, 'admin', NULL), (1, 'viewer', 'x')",
];

const PG_SCHEMA = [
  `CREATE TYPE tier AS ENUM ('basic', 'gold', 'it''s vip')`,
  `CREATE TYPE order_status AS ENUM ('new', 'paid')`,
  `CREATE TABLE customers (
     id SERIAL PRIMARY KEY,
     email VARCHAR(200) NOT NULL,
     tier tier NOT NULL DEFAULT 'basic',
     active BOOLEAN NOT NULL DEFAULT true,
     "first name" VARCHAR(50) NULL,
     created_at TIMESTAMP(6) NOT NULL)`,
  `CREATE TABLE products (
     sku VARCHAR(20) PRIMARY KEY,
     name VARCHAR(100) NOT NULL UNIQUE,
     price NUMERIC(12,2) NOT NULL,
     weight DOUBLE PRECISION NULL)`,
  `CREATE TABLE orders (
     id BIGINT PRIMARY KEY,
     customer_id INT NOT NULL REFERENCES customers (id),
     status order_status NOT NULL,
     total NUMERIC(19,4) NOT NULL,
     placed_at TIMESTAMP(6) NOT NULL,
     placed_on DATE NULL,
     note TEXT NULL)`,
  `CREATE TABLE order_items (
     order_id BIGINT NOT NULL REFERENCES orders (id),
     product_sku VARCHAR(20) NOT NULL REFERENCES products (sku),
     qty INT NOT NULL,
     PRIMARY KEY (order_id, product_sku),
     UNIQUE (product_sku, order_id))`,
  `CREATE TABLE shipments (
     id INT PRIMARY KEY,
     sku VARCHAR(20) NOT NULL,
     oid BIGINT NOT NULL,
     shipped_at TIMESTAMPTZ NULL,
     CONSTRAINT fk_ship_item FOREIGN KEY (sku, oid) REFERENCES order_items (product_sku, order_id))`,
  'CREATE TABLE audit_log (message VARCHAR(200) NOT NULL, at TIMESTAMP(3) NOT NULL)',
  // A unique index, not a constraint, keys it here.
  `CREATE TABLE user_roles (user_id INT NOT NULL, role VARCHAR(20) NOT NULL, note VARCHAR(50) NULL,
     CONSTRAINT uq_maybe UNIQUE (note))`,
  'CREATE UNIQUE INDEX uq_user_role ON user_roles (user_id, role)',
  'CREATE VIEW big_orders AS SELECT id, total FROM orders WHERE total > 100',
  `INSERT INTO customers (id, email, tier, active, "first name", created_at) VALUES
     (1, 'a@example.com', 'gold', true, 'Ann', '2024-05-01 09:30:00.123456'),
     (2, 'b@example.com', 'it''s vip', false, NULL, '2024-05-02 10:00:00')`,
  "INSERT INTO products VALUES ('A-1', 'Apple', 1.50, 0.2), ('B-2', 'Bread', 3.00, NULL)",
  `INSERT INTO orders VALUES
     (10, 1, 'paid', 12.5, '2024-05-03 11:00:00.000001', '2024-05-03', 'leave at door'),
     (11, 2, 'new', 3, '2024-05-04 12:00:00.5', NULL, NULL)`,
  "INSERT INTO order_items VALUES (10, 'A-1', 3), (10, 'B-2', 1), (11, 'B-2', 1)",
  "INSERT INTO shipments VALUES (1, 'A-1', 10, '2024-05-05 08:00:00+00'), (2, 'B-2', 11, NULL)",
  "INSERT INTO audit_log VALUES ('created', '2024-05-01 00:00:00')",
  "INSERT INTO user_roles VALUES (1, 'admin', NULL), (1, 'viewer', 'x')",
];

async function mysqlUp(): Promise<boolean> {
  const c = await mysql.createConnection(MYSQL).catch(() => null);
  if (c === null) return false;
  await c.end();
  return true;
}

async function pgAdmin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ ...PG, database: 'postgres' });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

afterAll(removeTempDirs);

const pgUp = await pgAdmin(async () => true).catch(() => false);
const myUp = await mysqlUp();
if (!myUp)
  console.warn('init-catalog: MariaDB is not reachable; start it with `bash scripts/legacy-db.sh up`');
if (!pgUp)
  console.warn('init-catalog: PostgreSQL is not reachable; start it with `bash scripts/legacy-pg.sh up`');

/** What both engines must report for the shop schema (types aside, which differ per dialect). */
function expectShopCatalog(catalog: Catalog): void {
  expect(catalog.database).toBe(DB);
  // Base tables only (the view is left out), by name.
  expect(catalog.tables.map((t) => t.name)).toEqual([
    'audit_log',
    'customers',
    'order_items',
    'orders',
    'products',
    'shipments',
    'user_roles',
  ]);
  const t = (name: string) => {
    const found = catalog.tables.find((x) => x.name === name);
    if (found === undefined) throw new Error(`no table ${name}`);
    return found;
  };
  expect(t('audit_log')).toMatchObject({ primaryKey: [], keyless: true, foreignKeys: [] });
  expect(t('audit_log').uniqueKey).toBeUndefined();
  expect(t('user_roles')).toMatchObject({
    primaryKey: ['user_id', 'role'],
    uniqueKey: 'uq_user_role',
    keyless: false,
  });
  expect(t('order_items').primaryKey).toEqual(['order_id', 'product_sku']);
  // Declared without actions: MariaDB reports RESTRICT, PostgreSQL NO ACTION.
  const refuse = catalog.dialect === 'mysql' ? 'RESTRICT' : 'NO ACTION';
  expect(t('order_items').foreignKeys).toEqual(
    expect.arrayContaining([
      expect.objectContaining({
        columns: ['order_id'],
        references: { table: 'orders', columns: ['id'] },
        onDelete: refuse,
        onUpdate: refuse,
      }),
      expect.objectContaining({
        columns: ['product_sku'],
        references: { table: 'products', columns: ['sku'] },
      }),
    ]),
  );
  expect(t('shipments').foreignKeys).toEqual([
    {
      columns: ['sku', 'oid'],
      references: { table: 'order_items', columns: ['product_sku', 'order_id'] },
      name: 'fk_ship_item',
      onDelete: refuse,
      onUpdate: refuse,
    },
  ]);
  expect(catalog.tables.flatMap((x) => x.columns).filter((c) => c.generated !== undefined)).toEqual([]);
  const customers = t('customers').columns;
  expect(customers.map((c) => c.name)).toEqual(['id', 'email', 'tier', 'active', 'first name', 'created_at']);
  expect(customers[2]).toMatchObject({
    type: 'enum',
    enumValues: ['basic', 'gold', "it's vip"],
    nullable: false,
  });
  expect(customers[3]).toMatchObject({ type: 'boolean' });
  expect(customers[4]).toMatchObject({ type: 'string', nullable: true });
  expect(customers[5]).toMatchObject({ type: 'datetime', precision: 6 });
  const orders = t('orders').columns;
  expect(orders.find((c) => c.name === 'id')).toMatchObject({ type: 'bigint' });
  expect(orders.find((c) => c.name === 'total')).toMatchObject({ type: 'decimal', precision: 19, scale: 4 });
  expect(orders.find((c) => c.name === 'placed_on')).toMatchObject({ type: 'date', nullable: true });
  expect(orders.find((c) => c.name === 'status')).toMatchObject({
    type: 'enum',
    enumValues: ['new', 'paid'],
  });
  expect(t('products').columns.find((c) => c.name === 'weight')).toMatchObject({
    type: 'float',
    nullable: true,
  });
}

/**
 * Loads the rendered definition and checks it against the live database: every captured row
 * parses through its rule (values read by the legacy path, normalised as CDC delivers them),
 * the endpoint's legacy answer equals that row's domain state, and reconciliation's key rows
 * parse as the endpoint's parameters.
 */
async function checkAgainstDatabase(text: string, url: string): Promise<void> {
  expect(typecheckDefinitions([text, uncommentStarters(text)]).errors).toEqual([[], []]);
  const dir = tempDir('cqrs-init-run-');
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  const file = join(dir, 'migration.ts');
  writeFileSync(file, uncommentStarters(text));
  const migration = ((await import(pathToFileURL(file).href)) as { default: Migration }).default;
  expect(migration.tables).toEqual([
    'customers',
    'order_items',
    'orders',
    'products',
    'shipments',
    'user_roles',
  ]);

  const db = openLegacyDb(url);
  try {
    for (const table of migration.tables) {
      const rule = migration.ruleOf(table);
      const quoted = db.dialect === 'mysql' ? `\`${table}\`` : `"${table}"`;
      const rows = await db.query(`SELECT * FROM ${quoted}`);
      expect(rows.length).toBeGreaterThan(0);
      for (const row of rows) {
        const parsed = rule?.parse(row as Row);
        expect(parsed, `${table} ${JSON.stringify(row)}`).toMatchObject({ ok: true });
      }
    }
    const entry = migration.endpoints[0];
    const endpoint = entry?.definition;
    if (
      endpoint === undefined ||
      typeof endpoint.legacy === 'function' ||
      typeof endpoint.reconcile !== 'object'
    ) {
      throw new Error('expected an SQL endpoint with reconcile SQL');
    }
    expect(entry?.key).toBe('orderItems.get');
    expect(endpoint.route).toBe('/order-items/:orderId/:productSku');
    const keyRows = await db.query(endpoint.reconcile.sql);
    expect(keyRows.map((r) => endpoint.params.parse(r))).toEqual([
      { orderId: 10, productSku: 'A-1' },
      { orderId: 10, productSku: 'B-2' },
      { orderId: 11, productSku: 'B-2' },
    ]);
    // As the shadow API gets them: route parameters are text.
    const params = endpoint.params.parse({ orderId: '10', productSku: 'A-1' });
    const answer = endpoint.legacy.map?.(await db.query(endpoint.legacy.sql, params), params);
    expect(answer).toEqual({ orderId: 10, productSku: 'A-1', qty: 3 });
    const missing = endpoint.params.parse({ orderId: '99', productSku: 'A-1' });
    expect(endpoint.legacy.map?.(await db.query(endpoint.legacy.sql, missing), missing)).toBeNull();

    const customers = await db.query('SELECT * FROM customers WHERE id = 1');
    const customer = migration.ruleOf('customers')?.parse(customers[0] as Row);
    expect(customer).toMatchObject({
      ok: true,
      state: {
        id: 1,
        tier: 'gold',
        active: db.dialect === 'mysql' ? 1 : true,
        firstName: 'Ann',
        createdAt: '2024-05-01 09:30:00.123456',
      },
    });
    const order = await db.query('SELECT * FROM orders WHERE id = 10');
    expect(migration.ruleOf('orders')?.parse(order[0] as Row)).toMatchObject({
      ok: true,
      state: {
        id: 10,
        customerId: 1,
        total: '12.5000',
        placedAt: '2024-05-03 11:00:00.000001',
        placedOn: '2024-05-03',
      },
    });
  } finally {
    await db.close();
  }
}

describe.skipIf(!myUp)('init on MariaDB', () => {
  beforeAll(async () => {
    const c = await mysql.createConnection({ ...MYSQL, multipleStatements: false });
    try {
      await c.query(`CREATE DATABASE \`${DB}\``);
      await c.query(`USE \`${DB}\``);
      for (const sql of MYSQL_SCHEMA) await c.query(sql);
    } finally {
      await c.end();
    }
  });
  afterAll(async () => {
    const c = await mysql.createConnection(MYSQL);
    await c.query(`DROP DATABASE IF EXISTS \`${DB}\``).finally(() => c.end());
  });

  it('reads the catalog: base tables, kinds, enums, precision, primary and foreign keys', async () => {
    const catalog = await readCatalog(mysqlUrl);
    expect(catalog.dialect).toBe('mysql');
    expectShopCatalog(catalog);
    const customers = catalog.tables.find((t) => t.name === 'customers');
    expect(customers?.columns[3]).toMatchObject({ type: 'boolean', sqlType: 'tinyint(1)' });
    // A text column's collation decides how the legacy lookup compares keys; a number has none.
    expect(customers?.columns[1]?.collation).toMatch(/_ci$/);
    expect(customers?.columns[0]?.collation).toBeUndefined();
  });

  it('reads only the tables asked for, and names an unknown one', async () => {
    const catalog = await readCatalog(mysqlUrl, { tables: ['orders', 'customers'] });
    expect(catalog.tables.map((t) => t.name)).toEqual(['customers', 'orders']);
    await expect(readCatalog(mysqlUrl, { tables: ['nope'] })).rejects.toMatchObject({
      code: 'CATALOG_TABLE_UNKNOWN',
    });
  });

  it('renders a definition that type-checks, loads and matches the live rows', async () => {
    const text = renderDefinition(await readCatalog(mysqlUrl), { importFrom: REPO_INDEX });
    expect(text).toContain('// audit_log has no primary key');
    expect(text).toContain('// user_roles: no primary key; keyed by unique key uq_user_role (user_id, role)');
    expect(text).toContain("key: ['userId', 'role'],");
    expect(text).toContain("//     order: { table: 'orders', on: 'orderId' }, // order_id → orders(id)");
    expect(text).toContain("//     orderItems: { table: 'order_items', on: ['oid', 'sku'] },");
    // The endpoint's text key compares case-insensitively in MariaDB (the default collation).
    expect(text).toMatch(/\/\/ product_sku is \w+_ci: the legacy query finds 'ABC' for 'abc'/);
    await checkAgainstDatabase(text, mysqlUrl);
  }, 180_000);

  it('initDefinition writes the file and refuses to overwrite it without force', async () => {
    const out = join(tempDir('cqrs-init-out-'), 'sub', 'migration.ts');
    const result = await initDefinition(mysqlUrl, { out, importFrom: REPO_INDEX });
    expect(result).toEqual({
      path: out,
      tables: 6,
      views: 4,
      keyless: ['audit_log'],
      cascades: [],
      omittedColumns: [],
    });
    const first = readFileSync(out, 'utf8');
    const again = initDefinition(mysqlUrl, { out, importFrom: REPO_INDEX });
    await expect(again).rejects.toBeInstanceOf(AdapterError);
    await expect(again).rejects.toMatchObject({
      code: 'INIT_FILE_EXISTS',
      hint: expect.stringContaining('--force'),
    });
    writeFileSync(out, '// edited');
    await initDefinition(mysqlUrl, { out, importFrom: REPO_INDEX, force: true });
    expect(readFileSync(out, 'utf8')).toBe(first);
  });

  it('names an unreachable server and a URL without a database', async () => {
    await expect(readCatalog('mysql://cqrs:cqrs@127.0.0.1:1/x')).rejects.toMatchObject({
      code: 'CATALOG_UNREACHABLE',
    });
    await expect(readCatalog('mysql://cqrs:cqrs@127.0.0.1:3307')).rejects.toMatchObject({
      code: 'CATALOG_URL_INVALID',
    });
    await expect(readCatalog('oracle://x@y/z')).rejects.toMatchObject({ code: 'CATALOG_URL_INVALID' });
  });
});

describe.skipIf(!pgUp)('init on PostgreSQL', () => {
  beforeAll(async () => {
    await pgAdmin((c) => c.query(`CREATE DATABASE "${DB}"`));
    const c = new pg.Client({ ...PG, database: DB });
    await c.connect();
    try {
      for (const sql of PG_SCHEMA) await c.query(sql);
    } finally {
      await c.end();
    }
  });
  afterAll(async () => {
    await pgAdmin((c) => c.query(`DROP DATABASE IF EXISTS "${DB}" WITH (FORCE)`));
  });

  it('reads the catalog: base tables, kinds, enums, precision, primary and foreign keys', async () => {
    const catalog = await readCatalog(pgUrl);
    expect(catalog.dialect).toBe('postgres');
    expectShopCatalog(catalog);
    const shipments = catalog.tables.find((t) => t.name === 'shipments');
    expect(shipments?.columns.find((c) => c.name === 'shipped_at')).toMatchObject({
      type: 'datetime',
      precision: 6,
    });
  });

  it('renders a definition that type-checks, loads and matches the live rows', async () => {
    const text = renderDefinition(await readCatalog(pgUrl), { importFrom: REPO_INDEX });
    expect(text).toContain('    active: z.boolean(), // boolean');
    expect(text).toContain(`FROM "order_items" WHERE "order_id" = :orderId AND "product_sku" = :productSku`);
    await checkAgainstDatabase(text, pgUrl);
  }, 180_000);
});

/** The gaps schema's catalog as both engines must read it: generated columns and FK rules. */
function expectGapsCatalog(catalog: Catalog): void {
  const t = (name: string) => {
    const found = catalog.tables.find((x) => x.name === name);
    if (found === undefined) throw new Error(`no table ${name}`);
    return found;
  };
  const film = t('film').columns;
  expect(film.find((c) => c.name === 'title')?.generated).toBeUndefined();
  expect(film.find((c) => c.name === 'length_hours')).toMatchObject({
    type: 'decimal',
    generated: 'stored',
    generationExpression: expect.stringContaining('60'),
  });
  const refuse = catalog.dialect === 'mysql' ? 'RESTRICT' : 'NO ACTION';
  const rules = (table: string) =>
    t(table).foreignKeys.map((fk) => [fk.name, fk.columns.join(','), fk.onDelete, fk.onUpdate]);
  expect(rules('film_category')).toEqual([
    ['fk_fc_category', 'category_id', refuse, 'CASCADE'],
    ['fk_fc_film', 'film_id', 'CASCADE', 'CASCADE'],
  ]);
  expect(rules('payment')).toEqual([['fk_payment_rental', 'rental_id', 'SET NULL', refuse]]);
  expect(rules('rental')).toEqual([['fk_rental_film', 'film_id', refuse, refuse]]);
}

/** Every row of the gaps schema parses through the loaded definition's rules, and returns its film. */
async function loadGaps(text: string, url: string): Promise<{ migration: Migration; film: unknown }> {
  expect(typecheckDefinitions([text, uncommentStarters(text)]).errors).toEqual([[], []]);
  const dir = tempDir('cqrs-init-gaps-');
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  const file = join(dir, 'migration.ts');
  writeFileSync(file, text);
  const migration = ((await import(pathToFileURL(file).href)) as { default: Migration }).default;
  const db = openLegacyDb(url);
  try {
    for (const table of migration.tables) {
      const quoted = db.dialect === 'mysql' ? `\`${table}\`` : `"${table}"`;
      for (const row of await db.query(`SELECT * FROM ${quoted}`))
        expect(migration.ruleOf(table)?.parse(row as Row), table).toMatchObject({ ok: true });
    }
    const film = migration
      .ruleOf('film')
      ?.parse((await db.query('SELECT * FROM film WHERE film_id = 1'))[0] as Row);
    return { migration, film };
  } finally {
    await db.close();
  }
}

describe.skipIf(!myUp)('init on MariaDB: generated columns and foreign-key actions', () => {
  const url = `mysql://${MYSQL.user}:${MYSQL.password}@${MYSQL.host}:${MYSQL.port}/${GAPS_DB}`;
  beforeAll(async () => {
    const c = await mysql.createConnection(MYSQL);
    try {
      await c.query(`CREATE DATABASE \`${GAPS_DB}\``);
      await c.query(`USE \`${GAPS_DB}\``);
      for (const sql of GAPS_MYSQL_SCHEMA) await c.query(sql);
    } finally {
      await c.end();
    }
  });
  afterAll(async () => {
    const c = await mysql.createConnection(MYSQL);
    await c.query(`DROP DATABASE IF EXISTS \`${GAPS_DB}\``).finally(() => c.end());
  });

  it('reads STORED/VIRTUAL generated columns and each foreign key ON DELETE / ON UPDATE rule', async () => {
    const catalog = await readCatalog(url);
    expectGapsCatalog(catalog);
    const film = catalog.tables.find((t) => t.name === 'film')?.columns;
    expect(film?.find((c) => c.name === 'title_upper')).toMatchObject({
      type: 'string',
      generated: 'virtual',
    });
  });

  it('keeps generated columns (the binlog carries them) and warns at the cascading foreign keys', async () => {
    const summary = renderDefinitionWithSummary(await readCatalog(url), { importFrom: REPO_INDEX });
    expect(summary.omittedColumns).toEqual([]);
    expect(summary.cascades).toEqual(GAPS_MYSQL_CASCADES);
    expect(summary.text).toContain(
      "    length_hours: z.string().nullable(), // decimal(6,2): exact text with 2 decimals; generated STORED as (`length` / 60): the binlog's row images carry its value",
    );
    expect(summary.text).toContain(
      '    title_upper: z.string().nullable(), // varchar(100); generated VIRTUAL',
    );
    expect(summary.text).toContain(
      '// WARNING: the database changes payment rows by itself, through foreign-key actions:\n//   payment.rental_id → rental(rental_id): ON DELETE SET NULL\n',
    );
    const { film } = await loadGaps(summary.text, url);
    expect(film).toMatchObject({
      ok: true,
      state: { filmId: 1, lengthHours: '1.43', titleUpper: 'ACADEMY DINOSAUR' },
    });
  }, 180_000);

  it('initDefinition returns the cascading foreign keys for the CLI to warn about', async () => {
    const out = join(tempDir('cqrs-init-out-'), 'migration.ts');
    const result = await initDefinition(url, { out, importFrom: REPO_INDEX });
    expect(result).toMatchObject({ cascades: GAPS_MYSQL_CASCADES, omittedColumns: [] });
  });
});

describe.skipIf(!pgUp)('init on PostgreSQL: generated columns and foreign-key actions', () => {
  const url = `postgres://${PG.user}:${PG.password}@${PG.host}:${PG.port}/${GAPS_DB}`;
  beforeAll(async () => {
    await pgAdmin((c) => c.query(`CREATE DATABASE "${GAPS_DB}"`));
    const c = new pg.Client({ ...PG, database: GAPS_DB });
    await c.connect();
    try {
      for (const sql of GAPS_PG_SCHEMA) await c.query(sql);
    } finally {
      await c.end();
    }
  });
  afterAll(async () => {
    await pgAdmin((c) => c.query(`DROP DATABASE IF EXISTS "${GAPS_DB}" WITH (FORCE)`));
  });

  it('reads generated columns (attgenerated) and each foreign key rule (confdeltype / confupdtype)', async () => {
    expectGapsCatalog(await readCatalog(url));
  });

  it('leaves the generated column out of the row schema, and writes no cascade warning', async () => {
    const summary = renderDefinitionWithSummary(await readCatalog(url), { importFrom: REPO_INDEX });
    expect(summary.omittedColumns).toEqual(['film.length_hours']);
    expect(summary.cascades).toEqual([]);
    expect(summary.text).not.toContain('WARNING');
    expect(summary.text).not.toMatch(/length_hours: z/);
    expect(summary.text).toContain(
      "    // length_hours: left out, numeric(6,2) generated STORED as ((length)::numeric / 60.0): PostgreSQL's logical replication does not send generated columns",
    );
    const { film } = await loadGaps(summary.text, url);
    // The legacy row has length_hours; the rule drops it, as streamed rows never have it.
    expect(film).toEqual({
      ok: true,
      state: { filmId: 1, title: 'Academy Dinosaur', length: 86 },
      streamId: 'film-1',
    });
  }, 180_000);
});
