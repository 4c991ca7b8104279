import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { Catalog, CatalogColumn, CatalogTable } from '../../connectors/catalog/catalog.js';
import { renderDefinition, renderDefinitionWithSummary } from '../../definition/init/render.js';
import type { Migration } from '../../definition/migration.js';
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
        [{ columns: ['ghost_id'], references: { table: 'ghosts', columns: ['id'] } }],
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
        [
          { columns: ['order_id'], references: { table: 'orders', columns: ['id'] } },
          { columns: ['product_sku'], references: { table: 'products', columns: ['sku'] } },
        ],
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
        [{ columns: ['customer_id'], references: { table: 'customers', columns: ['id'] } }],
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
          {
            columns: ['sku', 'oid'],
            references: { table: 'order_items', columns: ['product_sku', 'order_id'] },
          },
          { columns: ['product_name'], references: { table: 'products', columns: ['name'] } },
        ],
      ),
    ],
  };
}

afterAll(removeTempDirs);

const render = (dialect: Catalog['dialect']) => renderDefinition(shop(dialect), { importFrom: REPO_INDEX });

describe('renderDefinition', () => {
  it('writes raw row schemas transformed to camelCase domain fields', () => {
    const text = render('mysql');
    expect(text).toContain(
      `import {\n  captureTable,\n  defineEndpoint,\n  defineMigration,\n  defineView,\n  type DomainState,\n  type ViewNode,\n  z,\n} from '${REPO_INDEX}';`,
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
      '// audit log has no primary key, so it is not captured: a read model cannot key its rows.',
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
      "  reconcile: {\n    sql: 'SELECT `order_id` AS `orderId`, `product_sku` AS `productSku` FROM `order_items` ORDER BY `order_id`, `product_sku`',\n  },",
    );
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
    expect(text).toContain('  params: z.object({ userId: z.coerce.number().int() }),');
    expect(text).toContain('    return view.get(String(params.userId));');
    expect(text).toContain(`FROM "Users" WHERE "UserID" = :userId`);
    expect(text).not.toContain('lookedUp');
    expect(typecheckDefinition(text).errors).toEqual([]);
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
    const keys: string[] = [];
    await endpoint.readModel({
      params,
      readModels: {
        order_items: {
          get: async (key) => {
            keys.push(key);
            return null;
          },
          find: async () => [],
        },
      },
    });
    expect(keys).toEqual([rule?.rowKey({ orderId: 7, productSku: 'A-1' })]);
  }, 60_000);
});
