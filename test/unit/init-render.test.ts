import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type {
  Catalog,
  CatalogColumn,
  CatalogForeignKey,
  CatalogTable,
} from '../../connectors/catalog/catalog.js';
import type { EndpointDefinition, EndpointParams } from '../../definition/endpoints.js';
import { renderDefinition, renderDefinitionWithSummary } from '../../definition/init/render.js';
import type { Migration } from '../../definition/migration.js';
import type { ReadModelHandle } from '../../definition/read-models.js';
import { AdapterError } from '../../lib/errors.js';
import {
  REPO_INDEX,
  removeTempDirs,
  typecheckDefinition,
  typecheckDefinitions,
  uncommentStarters,
} from '../support/typecheck.js';

const col = (
  name: string,
  type: CatalogColumn['type'],
  extra: Partial<CatalogColumn> = {},
): CatalogColumn => ({
  name,
  type,
  nullable: false,
  ...extra,
});

const fk = (
  columns: string[],
  refTable: string,
  refColumns: string[],
  extra: Partial<CatalogForeignKey> = {},
): CatalogForeignKey => ({
  columns,
  references: { table: refTable, columns: refColumns },
  name: `fk_${columns.join('_')}`,
  onDelete: 'NO ACTION',
  onUpdate: 'NO ACTION',
  ...extra,
});

const table = (
  name: string,
  columns: CatalogColumn[],
  primaryKey: string[],
  foreignKeys: CatalogTable['foreignKeys'] = [],
): CatalogTable => ({ name, columns, primaryKey, keyless: primaryKey.length === 0, foreignKeys });

/** A catalog with every case the generator must handle, in the name order readCatalog returns. */
function shop(dialect: Catalog['dialect']): Catalog {
  return {
    dialect,
    database: 'Shop_DB',
    tables: [
      // Odd names: starts with a digit, has a dash; its FK points outside the catalog.
      table(
        '2fa-codes',
        [col('code', 'string'), col('customer_id', 'int'), col('ghost_id', 'int', { nullable: true })],
        ['code'],
        [fk(['ghost_id'], 'ghosts', ['id'])],
      ),
      table('audit log', [col('message', 'string'), col('at', 'datetime', { precision: 6 })], []),
      table(
        'customers',
        [
          col('id', 'int'),
          col('email', 'string'),
          col('first name', 'string'),
          col('class', 'string', { nullable: true }),
          col('__proto__', 'string', { nullable: true }),
          col('kyc', 'enum', { enumValues: ['pending', "it's ok"], nullable: true }),
          col('vip', 'boolean'),
          col('balance', 'decimal', { precision: 19, scale: 4, sqlType: 'decimal(19,4)' }),
          col('created_at', 'datetime', { precision: 6, sqlType: 'datetime(6)' }),
          col('born_on', 'date', { nullable: true }),
          col('profile', 'json', { nullable: true }),
          col('avatar', 'bytes', { nullable: true }),
          col('location', 'other', { nullable: true }),
          col('flags', 'other', { sqlType: 'bit(1)' }),
          col('score', 'float'),
        ],
        ['id'],
      ),
      table(
        'order_items',
        [
          col('order_id', 'bigint'),
          col('product_sku', 'string'),
          col('qty', 'int'),
          col('note', 'string', { nullable: true }),
        ],
        ['order_id', 'product_sku'],
        [fk(['order_id'], 'orders', ['id']), fk(['product_sku'], 'products', ['sku'])],
      ),
      table(
        'orders',
        [
          col('id', 'bigint'),
          col('customer_id', 'int'),
          col('customerId', 'int', { nullable: true }),
          col('status', 'enum', { enumValues: ['new', 'paid'] }),
          col('total', 'decimal', { precision: 12, scale: 2 }),
        ],
        ['id'],
        [fk(['customer_id'], 'customers', ['id'])],
      ),
      table(
        'products',
        [col('sku', 'string'), col('name', 'string'), col('price', 'decimal', { scale: 2 })],
        ['sku'],
      ),
      table(
        'shipments',
        [col('id', 'int'), col('sku', 'string'), col('oid', 'bigint'), col('product_name', 'string')],
        ['id'],
        [
          // Compound, listed in the other order than order_items' key (order_id, product_sku).
          fk(['sku', 'oid'], 'order_items', ['product_sku', 'order_id']),
          fk(['product_name'], 'products', ['name']),
        ],
      ),
    ],
  };
}

afterAll(removeTempDirs);

const render = (dialect: Catalog['dialect']) => renderDefinition(shop(dialect), { importFrom: REPO_INDEX });

/** The document keys an endpoint's read-model query asks `readModel` for, given `params`. */
async function keysAsked(
  endpoint: EndpointDefinition,
  readModel: string,
  params: EndpointParams,
): Promise<string[]> {
  const keys: string[] = [];
  const handle: ReadModelHandle = {
    get: async (key) => {
      keys.push(key);
      return null;
    },
    find: async () => [],
  };
  await endpoint.readModel({ params, readModels: { [readModel]: handle }, analytics: {} });
  return keys;
}

describe('renderDefinition', () => {
  it('writes raw row schemas transformed to camelCase domain fields', () => {
    const text = render('mysql');
    expect(text).toContain(
      `import {\n  captureTable,\n  defineEndpoint,\n  defineMigration,\n  defineView,\n  documentsInOrder,\n  type DomainState,\n  type ViewNode,\n  z,\n} from '${REPO_INDEX}';`,
    );
    expect(text).toContain('const customersRow = z');
    expect(text).toContain("    'first name': z.string(),");
    expect(text).toContain("    firstName: r['first name'],");
    expect(text).toContain('    class: z.string().nullable(),');
    expect(text).toContain("    ['__proto__']: z.string().nullable(),");
    expect(text).toContain("    proto: r['__proto__'],");
    expect(text).toContain(`    kyc: z.enum(['pending', "it's ok"]).nullable(),`);
    expect(text).toContain('    vip: z.number().int(), // boolean');
    expect(text).toContain('    balance: z.string(), // decimal(19,4): exact text with 4 decimals');
    expect(text).toContain("    created_at: z.string(), // datetime(6): 'YYYY-MM-DD HH:MM:SS.ffffff'");
    expect(text).toContain('    createdAt: r.created_at,');
    expect(text).toContain('    order_id: z.union([z.number().int(), z.string()]),');
    expect(text).toContain('    location: z.union([z.string(), z.number(), z.boolean()]).nullable(),');
    expect(text).toContain(
      '    flags: z.union([z.string(), z.number(), z.boolean()]), // bit(1): true or false',
    );
    expect(text).toContain('    score: z.number(),');
    // Two columns with the same camelCase name stay apart.
    expect(text).toContain('    customerId: r.customer_id,');
    expect(text).toContain('    customerId2: r.customerId,');
    expect(render('postgres')).toContain('    vip: z.boolean(), // boolean');
  });

  it('writes one capture rule per keyed table with its key, stream and distinct events', () => {
    const text = render('mysql');
    expect(text).toContain("  key: ['orderId', 'productSku'],");
    expect(text).toContain(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the generated code's template literal
      "  stream: { type: 'order_items', id: (s) => `order_items-${s.orderId}-${s.productSku}` },",
    );
    expect(text).toContain(
      "  onCreate: 'OrderItemsCreated',\n  otherwise: 'OrderItemsUpdated',\n  onDelete: 'OrderItemsDeleted',",
    );
    expect(text).toContain('const t2faCodesCapture = captureTable({');
    expect(text).toContain("  table: '2fa-codes',");
    expect(text).toContain(
      '    tables: [\n      t2faCodesCapture,\n      customersCapture,\n      orderItemsCapture,\n      ordersCapture,\n      productsCapture,\n      shipmentsCapture,\n    ],',
    );
  });

  it('comments out a table without a primary key, with the reason', () => {
    const text = render('mysql');
    expect(text).toContain(
      '// audit log has no primary key (nor a UNIQUE key over NOT NULL columns), so it is not captured: a read model cannot key its rows.',
    );
    expect(text).toContain('// const auditLogCapture = captureTable({');
    expect(text).not.toMatch(/^const auditLog/m);
    expect(renderDefinitionWithSummary(shop('mysql'), { importFrom: 'x' })).toMatchObject({
      tables: 6,
      views: 5,
      keyless: ['audit log'],
      activeTable: 'order_items',
    });
  });

  it('writes commented-out starter views with a lookup per usable foreign key', () => {
    const text = render('mysql');
    expect(text).toContain('// const ordersJoinedView = defineView({');
    expect(text).toContain(
      "//     customer: { table: 'customers', on: 'customerId' }, // customer_id → customers(id)",
    );
    // The compound lookup lists our fields in the referenced key's order.
    expect(text).toContain(
      "//     orderItems: { table: 'order_items', on: ['oid', 'sku'] }, // sku, oid → order_items(product_sku, order_id)",
    );
    expect(text).toContain(
      '// not joined: product_name → products(name): references a unique key, not the primary key of products',
    );
    expect(text).toContain(
      '// not joined: ghost_id → ghosts(id): ghosts is not in the catalog (see --tables)',
    );
    expect(text).toContain(
      '//   select: (r) => ({ ...r.row, order: lookedUp(r.joins.order), product: lookedUp(r.joins.product) }),',
    );
    expect(text).toContain('    // ordersJoinedView,');
  });

  it('writes one active view and endpoint on the table with the most foreign keys', () => {
    const mysql = render('mysql');
    expect(mysql).toContain(
      "const orderItemsView = defineView({\n  name: 'order_items',\n  from: 'order_items',",
    );
    expect(mysql).toContain("  route: '/order-items/:orderId/:productSku',");
    expect(mysql).toContain(
      "    sql: 'SELECT `order_id`, `product_sku`, `qty`, `note` FROM `order_items` WHERE `order_id` = :orderId AND `product_sku` = :productSku',",
    );
    expect(mysql).toContain('      return row === undefined ? null : orderItemsRow.parse(row);');
    expect(mysql).toContain('    return view.get(JSON.stringify([params.orderId, params.productSku]));');
    expect(mysql).toContain(
      "  reconcile: {\n    sql: 'SELECT `order_id` AS `orderId`, `product_sku` AS `productSku` FROM `order_items` ORDER BY `order_id`, `product_sku`',\n",
    );
    // The read model's keys are listed too, in key order, from an index on the key fields.
    expect(mysql).toContain(
      "      for await (const doc of documentsInOrder(view, ['orderId', 'productSku']))\n        sets.push({ orderId: doc.orderId, productSku: doc.productSku });",
    );
    expect(mysql).toContain("  indexes: [['orderId', 'productSku']],");
    expect(mysql).toContain('  params: z.object({ orderId: bigintKey, productSku: z.string() }),');
    expect(mysql).toContain('    orderItems: { endpoints: { get: orderItemsEndpoint } },');
    expect(mysql).toContain("  name: 'shop-db',");
    const pg = render('postgres');
    expect(pg).toContain(
      `    sql: 'SELECT "order_id", "product_sku", "qty", "note" FROM "order_items" WHERE "order_id" = :orderId AND "product_sku" = :productSku',`,
    );
  });

  it('keys a single-column endpoint with the key as text', () => {
    const catalog: Catalog = {
      dialect: 'postgres',
      database: 'one',
      tables: [table('Users', [col('UserID', 'int'), col('name', 'string')], ['UserID'])],
    };
    const text = renderDefinition(catalog, { importFrom: REPO_INDEX, name: 'users-only' });
    expect(text).toContain("  route: '/users/:userId',");
    expect(text).toContain('  params: z.object({ userId: integerParam() }),');
    expect(text).toContain('    return view.get(String(params.userId));');
    expect(text).toContain(`FROM "Users" WHERE "UserID" = :userId`);
    expect(text).not.toContain('lookedUp');
    expect(typecheckDefinition(text).errors).toEqual([]);
  });

  it('keys a UUID column with uuidParam: an upper-case id names the row the database prints in lower case', async () => {
    const catalog: Catalog = {
      dialect: 'postgres',
      database: 'devices',
      tables: [table('devices', [col('id', 'string', { sqlType: 'uuid' }), col('label', 'string')], ['id'])],
    };
    const text = renderDefinition(catalog, { importFrom: REPO_INDEX, name: 'devices' });
    expect(text).toContain('  params: z.object({ id: uuidParam() }),');
    const { file, errors } = typecheckDefinition(text);
    expect(errors).toEqual([]);
    const migration = ((await import(pathToFileURL(file).href)) as { default: Migration }).default;
    const id = '6f9619ff-8b86-d011-b42d-00c04fc964ff';
    expect(migration.endpoints[0]?.definition.params.parse({ id: id.toUpperCase() })).toEqual({ id });
  }, 60_000);

  it('says at a case-insensitive text key that other spellings are recorded as differences', () => {
    const keyedBy = (collation: string) =>
      renderDefinition(
        {
          dialect: 'mysql',
          database: 'codes',
          tables: [
            table('countries', [col('code', 'string', { collation }), col('name', 'string')], ['code']),
          ],
        },
        { importFrom: REPO_INDEX },
      );
    const text = keyedBy('utf8mb4_general_ci');
    expect(text).toContain("  // code is utf8mb4_general_ci: the legacy query finds 'ABC' for 'abc'");
    expect(text.split('\n').every((line) => line.length <= 100)).toBe(true);
    expect(keyedBy('utf8mb4_bin')).not.toContain('code is utf8mb4_bin');
    const citext = renderDefinition(
      {
        dialect: 'postgres',
        database: 'codes',
        tables: [table('users', [col('email', 'string', { sqlType: 'citext' })], ['email'])],
      },
      { importFrom: REPO_INDEX },
    );
    expect(citext).toContain("  // email is citext: the legacy query finds 'ABC' for 'abc'");
  });

  it('is stable: the same catalog gives the same text', () => {
    expect(render('mysql')).toBe(render('mysql'));
  });

  it('refuses a catalog without a keyed table, and an invalid name', () => {
    const keyless: Catalog = {
      dialect: 'mysql',
      database: 'x',
      tables: [table('log', [col('m', 'string')], [])],
    };
    expect(() => renderDefinition(keyless, { importFrom: 'x' })).toThrow(AdapterError);
    expect(() => renderDefinition(shop('mysql'), { importFrom: 'x', name: 'Bad Name' })).toThrow(/not valid/);
  });

  it('type-checks as written, and with the starter views uncommented, on both dialects', () => {
    const texts = (['mysql', 'postgres'] as const).flatMap((dialect) => {
      const text = render(dialect);
      const uncommented = uncommentStarters(text);
      expect(uncommented).toContain('\nconst ordersJoinedView = defineView({');
      expect(uncommented).toContain('\n    ordersJoinedView,');
      return [text, uncommented];
    });
    expect(typecheckDefinitions(texts).errors).toEqual([[], [], [], []]);
    // The check does catch a mistake: a key that is not a field of the row.
    const broken = render('mysql').replace("key: ['orderId', 'productSku']", "key: ['orderId', 'productId']");
    expect(typecheckDefinition(broken).errors.join('\n')).toContain("'productId'");
  }, 60_000);
});

describe('the rendered definition at run time', () => {
  it('loads: defineMigration accepts it (starters too) and its rules and legacy map agree on a row', async () => {
    const { file } = typecheckDefinition(uncommentStarters(render('mysql')));
    const mod = (await import(pathToFileURL(file).href)) as { default: Migration };
    const migration = mod.default;
    expect(migration.kind).toBe('migration');
    expect(migration.tables).toEqual([
      '2fa-codes',
      'customers',
      'order_items',
      'orders',
      'products',
      'shipments',
    ]);
    expect(migration.readModels.map((m) => m.name)).toEqual([
      'order_items',
      't_2fa_codes_joined',
      'order_items_joined',
      'orders_joined',
      'shipments_joined',
    ]);
    const rule = migration.ruleOf('order_items');
    const raw = { order_id: 7, product_sku: 'A-1', qty: 2, note: null };
    const parsed = rule?.parse(raw);
    expect(parsed).toEqual({
      ok: true,
      state: { orderId: 7, productSku: 'A-1', qty: 2, note: null },
      streamId: 'order_items-7-A-1',
    });
    const endpoint = migration.endpoints[0]?.definition;
    if (endpoint === undefined || typeof endpoint.legacy === 'function')
      throw new Error('expected an SQL endpoint');
    const params = endpoint.params.parse({ orderId: '7', productSku: 'A-1' });
    expect(params).toEqual({ orderId: 7, productSku: 'A-1' });
    expect(endpoint.legacy.map?.([raw], params)).toEqual(parsed?.ok === true ? parsed.state : undefined);
    expect(endpoint.legacy.map?.([], params)).toBeNull();
    // The read-model key is the row key the view stores the document under.
    expect(await keysAsked(endpoint, 'order_items', params)).toEqual([
      rule?.rowKey({ orderId: 7, productSku: 'A-1' }),
    ]);
  }, 60_000);

  it('a date-time key: the shorter form of an instant finds the document its row is stored under', async () => {
    const catalog: Catalog = {
      dialect: 'mysql',
      database: 'clinic',
      tables: [
        table(
          'appointment',
          [
            col('patient_id', 'int'),
            col('slot', 'datetime', { precision: 6, sqlType: 'datetime(6)' }),
            col('status', 'string'),
          ],
          ['patient_id', 'slot'],
        ),
      ],
    };
    const text = renderDefinition(catalog, { importFrom: REPO_INDEX, name: 'clinic' });
    expect(text).toContain('  params: z.object({ patientId: integerParam(), slot: datetimeParam(6) }),');
    const { file, errors } = typecheckDefinition(text);
    expect(errors).toEqual([]);
    const migration = ((await import(pathToFileURL(file).href)) as { default: Migration }).default;
    const rule = migration.ruleOf('appointment');
    const row = rule?.parse({ patient_id: 1, slot: '2026-12-02 09:00:00.000000', status: 'done' });
    if (row?.ok !== true) throw new Error('expected the row to parse');
    const endpoint = migration.endpoints[0]?.definition;
    if (endpoint === undefined) throw new Error('expected an endpoint');
    // MariaDB answers '… 09:00:00' for a DATETIME(6) of '… 09:00:00.000000': so must the read model.
    const params = endpoint.params.parse({ patientId: '1', slot: '2026-12-02 09:00:00' });
    expect(await keysAsked(endpoint, 'appointment', params)).toEqual([rule?.rowKey(row.state)]);
    expect(endpoint.params.safeParse({ patientId: '1', slot: '2026-12-02 09:00:00.1234567' }).success).toBe(
      false,
    );
  }, 60_000);

  it('a TIMESTAMPTZ key: a client offset finds the document of the UTC instant CDC captured', async () => {
    const catalog: Catalog = {
      dialect: 'postgres',
      database: 'strangerpg',
      tables: [
        table(
          'readings',
          [
            col('sensor', 'string', { sqlType: 'text' }),
            col('taken_at', 'datetime', { precision: 3, sqlType: 'timestamp(3) with time zone' }),
            col('value', 'float'),
          ],
          ['sensor', 'taken_at'],
        ),
      ],
    };
    const text = renderDefinition(catalog, { importFrom: REPO_INDEX, name: 'strangerpg' });
    expect(text).toContain('takenAt: datetimeParam(3, { utc: true })');
    expect(text).toContain("timestamp(3) with time zone: 'YYYY-MM-DD HH:MM:SS.fff' in UTC");
    const { file, errors } = typecheckDefinition(text);
    expect(errors).toEqual([]);
    const migration = ((await import(pathToFileURL(file).href)) as { default: Migration }).default;
    const rule = migration.ruleOf('readings');
    const row = rule?.parse({ sensor: 's1', taken_at: '2026-12-02 09:00:00.000', value: 1.5 });
    if (row?.ok !== true) throw new Error('expected the row to parse');
    const endpoint = migration.endpoints[0]?.definition;
    if (endpoint === undefined) throw new Error('expected an endpoint');
    const params = endpoint.params.parse({ sensor: 's1', takenAt: '2026-12-02T10:00:00+01:00' });
    expect(await keysAsked(endpoint, 'readings', params)).toEqual([rule?.rowKey(row.state)]);
  }, 60_000);
});

/** Sakila's shape: a generated column, and foreign keys whose actions change the referencing rows. */
function sakila(dialect: Catalog['dialect']): Catalog {
  const hours = col('length_hours', 'decimal', {
    nullable: true,
    precision: 6,
    scale: 2,
    sqlType: dialect === 'mysql' ? 'decimal(6,2)' : 'numeric(6,2)',
    generated: 'stored',
    generationExpression: dialect === 'mysql' ? '`length` / 60' : '(length / 60.0)',
  });
  return {
    dialect,
    database: 'sakila',
    tables: [
      table('category', [col('category_id', 'int'), col('name', 'string')], ['category_id']),
      table(
        'film',
        [
          col('film_id', 'int'),
          col('title', 'string'),
          col('length', 'int', { nullable: true }),
          hours,
          col('rating_code', 'int', { nullable: true, generated: 'virtual' }),
        ],
        ['film_id'],
        [fk(['rating_code'], 'category', ['category_id'])],
      ),
      table(
        'film_category',
        [col('film_id', 'int'), col('category_id', 'int')],
        ['film_id', 'category_id'],
        [
          fk(['category_id'], 'category', ['category_id'], { onUpdate: 'CASCADE' }),
          fk(['film_id'], 'film', ['film_id'], { onDelete: 'CASCADE', onUpdate: 'CASCADE' }),
        ],
      ),
      table(
        'payment',
        [col('payment_id', 'int'), col('rental_id', 'int', { nullable: true }), col('amount', 'decimal')],
        ['payment_id'],
        [fk(['rental_id'], 'rental', ['rental_id'], { onDelete: 'SET NULL', onUpdate: 'RESTRICT' })],
      ),
      table('rental', [col('rental_id', 'int'), col('at', 'datetime')], ['rental_id']),
    ],
  };
}

describe('generated columns', () => {
  it('PostgreSQL: leaves them out of the row schema (pgoutput never sends them), with the reason', async () => {
    const summary = renderDefinitionWithSummary(sakila('postgres'), { importFrom: REPO_INDEX });
    const text = summary.text;
    expect(summary.omittedColumns).toEqual(['film.length_hours', 'film.rating_code']);
    expect(summary.cascades).toEqual([]);
    expect(text).toContain(
      "    // length_hours: left out, numeric(6,2) generated STORED as (length / 60.0): PostgreSQL's logical replication does not send generated columns, so no streamed row has it.",
    );
    expect(text).not.toMatch(/length_hours: z/);
    expect(text).not.toContain('lengthHours');
    // A lookup on a column CDC does not carry cannot be joined.
    expect(text).toContain(
      '//     // not joined: rating_code → category(category_id): rating_code is a generated column CDC does not carry',
    );
    expect(typecheckDefinitions([text, uncommentStarters(text)]).errors).toEqual([[], []]);

    const { file } = typecheckDefinition(text);
    const migration = ((await import(pathToFileURL(file).href)) as { default: Migration }).default;
    const rule = migration.ruleOf('film');
    // As streamed (no generated column) and as snapshotted / read by the legacy side (with it): same state.
    const streamed = rule?.parse({ film_id: 1, title: 'A', length: 90 });
    expect(streamed).toEqual({
      ok: true,
      state: { filmId: 1, title: 'A', length: 90 },
      streamId: 'film-1',
    });
    expect(rule?.parse({ film_id: 1, title: 'A', length: 90, length_hours: '1.50', rating_code: 3 })).toEqual(
      streamed,
    );
  }, 60_000);

  it('PostgreSQL: keeps a generated primary-key column, saying streamed changes cannot be keyed', () => {
    const catalog: Catalog = {
      dialect: 'postgres',
      database: 'g',
      tables: [table('g', [col('a', 'int'), col('b', 'int', { generated: 'stored' })], ['b'])],
    };
    const summary = renderDefinitionWithSummary(catalog, { importFrom: REPO_INDEX });
    expect(summary.omittedColumns).toEqual([]);
    expect(summary.text).toContain(
      "    b: z.number().int(), // int; generated STORED, in the primary key: PostgreSQL's logical replication does not send it",
    );
  });

  it('MariaDB/MySQL: keeps them (the ROW binlog carries STORED and VIRTUAL values), noted', () => {
    const summary = renderDefinitionWithSummary(sakila('mysql'), { importFrom: REPO_INDEX });
    expect(summary.omittedColumns).toEqual([]);
    expect(summary.text).toContain(
      "    length_hours: z.string().nullable(), // decimal(6,2): exact text with 2 decimals; generated STORED as (`length` / 60): the binlog's row images carry its value",
    );
    expect(summary.text).toContain(
      "    rating_code: z.number().int().nullable(), // int; generated VIRTUAL: the binlog's row images carry its value",
    );
    expect(summary.text).toContain('    lengthHours: r.length_hours,');
  });
});

describe('foreign-key actions the binlog does not show', () => {
  it('MariaDB/MySQL: warns at each affected capture rule and lists them', () => {
    const summary = renderDefinitionWithSummary(sakila('mysql'), { importFrom: REPO_INDEX });
    expect(summary.cascades).toEqual([
      'film_category.category_id → category(category_id): ON UPDATE CASCADE',
      'film_category.film_id → film(film_id): ON DELETE CASCADE, ON UPDATE CASCADE',
      'payment.rental_id → rental(rental_id): ON DELETE SET NULL',
    ]);
    const text = summary.text;
    const warning = text.indexOf(
      '// WARNING: the database changes payment rows by itself, through foreign-key actions:\n//   payment.rental_id → rental(rental_id): ON DELETE SET NULL\n',
    );
    expect(warning).toBeGreaterThan(0);
    // Right before that table's row schema and capture rule.
    expect(text.indexOf('// payment: primary key (payment_id)', warning)).toBeGreaterThan(warning);
    expect(text.indexOf('const paymentCapture', warning)).toBeGreaterThan(warning);
    const block = text.slice(warning, text.indexOf('// payment: primary key', warning));
    expect(block).toContain('do not write the rows they change to the');
    expect(block).toContain('`cqrs-migrate reconcile`');
    expect(block).toContain('new snapshot');
    expect(block).toContain('RESTRICT');
    expect(text).toContain(
      '// WARNING: the database changes film_category rows by itself, through foreign-key actions:\n//   film_category.category_id → category(category_id): ON UPDATE CASCADE\n//   film_category.film_id → film(film_id): ON DELETE CASCADE, ON UPDATE CASCADE\n',
    );
    // Tables whose foreign keys only refuse (NO ACTION, RESTRICT) get no warning.
    expect(text.match(/\/\/ WARNING/g)).toHaveLength(2);
    expect(typecheckDefinitions([text]).errors).toEqual([[]]);
  }, 60_000);

  it('PostgreSQL: no warning (logical decoding carries the cascaded row changes)', () => {
    const summary = renderDefinitionWithSummary(sakila('postgres'), { importFrom: REPO_INDEX });
    expect(summary.cascades).toEqual([]);
    expect(summary.text).not.toContain('WARNING');
  });
});
