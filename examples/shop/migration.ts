import {
  defineEndpoint,
  defineMigration,
  integerParam,
  type LegacyDb,
  type ReadModelHandle,
  type ReadModels,
  storedDocument,
  tableRuleBuilder,
  z,
} from '../../index.js';
import { guardExisting, markCreated } from '../sample-marker.js';
import { createShopDatabase, parseShopUrl, shopPool, withShopClient } from './db.js';
import {
  type CustomerOrdersPage,
  customerOrdersPage,
  decodeOrderCursor,
  orderSummarySchema,
} from './documents.js';
import { countRows, generateShop, loadShop, shopScaleNameSchema } from './generate.js';
import {
  customerOrdersBindings,
  legacyCustomerOrders,
  mapOrderDetail,
  mapProductPage,
  ORDER_DETAIL_SQL,
  PRODUCT_PAGE_SQL,
  RECONCILE_SQL,
} from './legacy.js';
import { customerOrdersView, orderDetailView, productPageView } from './read-models.js';
import {
  type AddressState,
  addressRow,
  type CategoryState,
  type CustomerState,
  categoryRow,
  customerRow,
  type OrderItemState,
  type OrderState,
  orderItemRow,
  orderRow,
  type PaymentState,
  type ProductCategoryState,
  type ProductState,
  paymentRow,
  productCategoryRow,
  productRow,
  type ReviewState,
  reviewRow,
  type ShipmentState,
  type SupplierState,
  shipmentRow,
  supplierRow,
} from './rows.js';
import { Random } from './values.js';
import { runShopWorkload } from './workload.js';

/**
 * The sample online shop as a migration definition: a user's own repository would hold this
 * file. Two domains (orders, catalog) of one legacy PostgreSQL database; every table captured;
 * three declarative views; three endpoints whose legacy JOIN answers and read-model answers are
 * the same JSON for the same data; and the sample hooks `demo` uses.
 *
 *   npm run demo -- --example shop          (the project's PostgreSQL, database `shop`)
 *   CQRS_LEGACY_URL=postgres://… cqrs-migrate demo --definition examples/shop/migration.ts
 */

// --------------------------------------------------------------------------- event catalog

/** Every event the capture rules emit, with the domain state it carries. */
export interface ShopEvents {
  SupplierUpserted: SupplierState;
  SupplierRemoved: SupplierState;
  CategoryUpserted: CategoryState;
  CategoryRenamed: CategoryState;
  CategoryRemoved: CategoryState;
  ProductListed: ProductState;
  ProductRenamed: ProductState;
  ProductRepriced: ProductState;
  ProductUpdated: ProductState;
  ProductDelisted: ProductState;
  ProductCategorized: ProductCategoryState;
  ProductCategoryUpdated: ProductCategoryState;
  ProductUncategorized: ProductCategoryState;
  CustomerRegistered: CustomerState;
  CustomerRenamed: CustomerState;
  CustomerUpdated: CustomerState;
  CustomerRemoved: CustomerState;
  AddressAdded: AddressState;
  AddressChanged: AddressState;
  AddressRemoved: AddressState;
  ReviewPosted: ReviewState;
  ReviewEdited: ReviewState;
  ReviewRemoved: ReviewState;
  OrderPlaced: OrderState;
  OrderStatusChanged: OrderState;
  OrderUpdated: OrderState;
  OrderRemoved: OrderState;
  OrderLineAdded: OrderItemState;
  OrderLineChanged: OrderItemState;
  OrderLineRemoved: OrderItemState;
  PaymentCreated: PaymentState;
  PaymentStatusChanged: PaymentState;
  PaymentUpdated: PaymentState;
  PaymentRemoved: PaymentState;
  ShipmentDispatched: ShipmentState;
  ShipmentDelivered: ShipmentState;
  ShipmentUpdated: ShipmentState;
  ShipmentRemoved: ShipmentState;
}

// A record, so the compiler insists on every catalog name and only those.
const catalog: Record<keyof ShopEvents, true> = {
  SupplierUpserted: true,
  SupplierRemoved: true,
  CategoryUpserted: true,
  CategoryRenamed: true,
  CategoryRemoved: true,
  ProductListed: true,
  ProductRenamed: true,
  ProductRepriced: true,
  ProductUpdated: true,
  ProductDelisted: true,
  ProductCategorized: true,
  ProductCategoryUpdated: true,
  ProductUncategorized: true,
  CustomerRegistered: true,
  CustomerRenamed: true,
  CustomerUpdated: true,
  CustomerRemoved: true,
  AddressAdded: true,
  AddressChanged: true,
  AddressRemoved: true,
  ReviewPosted: true,
  ReviewEdited: true,
  ReviewRemoved: true,
  OrderPlaced: true,
  OrderStatusChanged: true,
  OrderUpdated: true,
  OrderRemoved: true,
  OrderLineAdded: true,
  OrderLineChanged: true,
  OrderLineRemoved: true,
  PaymentCreated: true,
  PaymentStatusChanged: true,
  PaymentUpdated: true,
  PaymentRemoved: true,
  ShipmentDispatched: true,
  ShipmentDelivered: true,
  ShipmentUpdated: true,
  ShipmentRemoved: true,
};
export const shopEventNames: readonly string[] = Object.keys(catalog);

// ------------------------------------------------------------------------------ capture

const rule = tableRuleBuilder<ShopEvents>();

/** Streams per aggregate: an order holds its lines, payments and shipments; a product its categories and reviews. */
export const streamIds = {
  supplier: (id: number) => `supplier-${id}`,
  category: (id: number) => `category-${id}`,
  product: (id: number) => `product-${id}`,
  customer: (id: number) => `customer-${id}`,
  order: (id: number) => `order-${id}`,
} as const;

export const shopCaptureRules = [
  rule({
    table: 'suppliers',
    row: supplierRow,
    key: 'supplierId',
    stream: { type: 'supplier', id: (s) => streamIds.supplier(s.supplierId) },
    onCreate: 'SupplierUpserted',
    otherwise: 'SupplierUpserted',
    onDelete: 'SupplierRemoved',
  }),
  rule({
    table: 'categories',
    row: categoryRow,
    key: 'categoryId',
    stream: { type: 'category', id: (s) => streamIds.category(s.categoryId) },
    onCreate: 'CategoryUpserted',
    onUpdate: [{ when: ['name'], emit: 'CategoryRenamed' }],
    otherwise: 'CategoryUpserted',
    onDelete: 'CategoryRemoved',
  }),
  rule({
    table: 'products',
    row: productRow,
    key: 'productId',
    stream: { type: 'product', id: (s) => streamIds.product(s.productId) },
    onCreate: 'ProductListed',
    onUpdate: [
      { when: ['name'], emit: 'ProductRenamed' },
      { when: ['price'], emit: 'ProductRepriced' },
    ],
    otherwise: 'ProductUpdated',
    onDelete: 'ProductDelisted',
  }),
  rule({
    table: 'product_categories',
    row: productCategoryRow,
    key: ['productId', 'categoryId'],
    stream: { type: 'product', id: (s) => streamIds.product(s.productId) },
    onCreate: 'ProductCategorized',
    otherwise: 'ProductCategoryUpdated',
    onDelete: 'ProductUncategorized',
  }),
  rule({
    table: 'customers',
    row: customerRow,
    key: 'customerId',
    stream: { type: 'customer', id: (s) => streamIds.customer(s.customerId) },
    onCreate: 'CustomerRegistered',
    onUpdate: [{ when: ['firstName', 'lastName'], emit: 'CustomerRenamed' }],
    otherwise: 'CustomerUpdated',
    onDelete: 'CustomerRemoved',
  }),
  rule({
    table: 'addresses',
    row: addressRow,
    key: 'addressId',
    stream: { type: 'customer', id: (s) => streamIds.customer(s.customerId) },
    onCreate: 'AddressAdded',
    otherwise: 'AddressChanged',
    onDelete: 'AddressRemoved',
  }),
  rule({
    table: 'reviews',
    row: reviewRow,
    key: 'reviewId',
    stream: { type: 'product', id: (s) => streamIds.product(s.productId) },
    onCreate: 'ReviewPosted',
    otherwise: 'ReviewEdited',
    onDelete: 'ReviewRemoved',
  }),
  rule({
    table: 'orders',
    row: orderRow,
    key: 'orderId',
    stream: { type: 'order', id: (s) => streamIds.order(s.orderId) },
    onCreate: 'OrderPlaced',
    onUpdate: [{ when: ['status'], emit: 'OrderStatusChanged' }],
    otherwise: 'OrderUpdated',
    onDelete: 'OrderRemoved',
  }),
  rule({
    table: 'order_items',
    row: orderItemRow,
    key: ['orderId', 'lineNo'],
    stream: { type: 'order', id: (s) => streamIds.order(s.orderId) },
    onCreate: 'OrderLineAdded',
    otherwise: 'OrderLineChanged',
    onDelete: 'OrderLineRemoved',
  }),
  rule({
    table: 'payments',
    row: paymentRow,
    key: 'paymentId',
    stream: { type: 'order', id: (s) => streamIds.order(s.orderId) },
    onCreate: 'PaymentCreated',
    onUpdate: [{ when: ['status'], emit: 'PaymentStatusChanged' }],
    otherwise: 'PaymentUpdated',
    onDelete: 'PaymentRemoved',
  }),
  rule({
    table: 'shipments',
    row: shipmentRow,
    key: 'shipmentId',
    stream: { type: 'order', id: (s) => streamIds.order(s.orderId) },
    onCreate: 'ShipmentDispatched',
    onUpdate: [{ when: ['deliveredAt'], emit: 'ShipmentDelivered' }],
    otherwise: 'ShipmentUpdated',
    onDelete: 'ShipmentRemoved',
  }),
];

// ---------------------------------------------------------------------------- endpoints

function readModel<Doc>(readModels: ReadModels, name: string): ReadModelHandle<Doc> {
  const handle = readModels[name];
  if (handle === undefined) throw new Error(`read model ${name} is not served`);
  return handle as ReadModelHandle<Doc>;
}

const positiveId = integerParam({ min: 1 });

export const orderDetailParams = z.object({ orderId: positiveId });
export const customerOrdersParams = z.object({
  customerId: positiveId,
  limit: integerParam({ min: 1, max: 100 }).optional(),
  cursor: z
    .string()
    .refine((text) => decodeOrderCursor(text) !== null, 'not a cursor this API returned')
    .optional(),
});
export const productParams = z.object({ productId: positiveId });

export const orderDetailEndpoint = defineEndpoint({
  route: '/orders/:orderId',
  params: orderDetailParams,
  legacy: { sql: { postgres: ORDER_DETAIL_SQL }, map: (rows) => mapOrderDetail(rows) },
  // The stored document is the answer: sent as stored, without a parse (storedDocument).
  readModel: ({ params, readModels }) =>
    storedDocument(readModels, orderDetailView.name, String(params.orderId)),
  reconcile: { sql: { postgres: RECONCILE_SQL.orderDetail } },
  sensitive: [
    'customer.name',
    'customer.email',
    'shippingAddress.line1',
    'shippingAddress.postalCode',
    'note',
  ],
});

export const customerOrdersEndpoint = defineEndpoint({
  route: '/customers/:customerId/orders',
  params: customerOrdersParams,
  // A function, not SQL text: the keyset bindings are derived from the cursor.
  legacy: ({ params, db }) => legacyCustomerOrders(db, params),
  async readModel({ params, readModels }): Promise<CustomerOrdersPage> {
    const b = customerOrdersBindings(params);
    const docs = await readModel(readModels, customerOrdersView.name).find({
      where: { customerId: b.customerId },
      orderBy: [
        { field: 'placedAt', direction: 'desc' },
        { field: 'orderId', direction: 'desc' },
      ],
      ...(b.after === null ? {} : { after: [b.after.placedAt, b.after.orderId] }),
      limit: b.fetch,
    });
    return customerOrdersPage(
      b.customerId,
      docs.map((d) => orderSummarySchema.parse(d)),
      b.limit,
    );
  },
  reconcile: { sql: { postgres: RECONCILE_SQL.customerOrders } },
});

export const productEndpoint = defineEndpoint({
  route: '/products/:productId',
  params: productParams,
  legacy: { sql: { postgres: PRODUCT_PAGE_SQL }, map: (rows) => mapProductPage(rows) },
  readModel: ({ params, readModels }) =>
    storedDocument(readModels, productPageView.name, String(params.productId)),
  reconcile: { sql: { postgres: RECONCILE_SQL.product } },
  sensitive: ['latestReviews[*].author'],
});

// ---------------------------------------------------------------------------- checks

/** One request to compare: the endpoint's flag key and its parameters (as the route and query give them). */
export interface ShopCheck {
  key: 'orders.detail' | 'orders.byCustomer' | 'catalog.product';
  params: Record<string, unknown>;
  /** The request path with query, for a test going through the HTTP API. */
  path: string;
}

/**
 * Every request an end-to-end test should compare on the current legacy data: each order,
 * each product, each customer's first page (`pageSize`, default 3) and the following pages of the first
 * `pagedCustomers` customers (cursors from the legacy answers), and one missing key of each
 * endpoint (both sides must answer null / 404).
 */
export async function shopChecks(
  db: LegacyDb,
  opts: { pagedCustomers?: number; pageSize?: number } = {},
): Promise<ShopCheck[]> {
  const limit = opts.pageSize ?? 3;
  const ids = async (sql: string, column: string) =>
    (await db.query({ postgres: sql })).map((r) => positiveId.parse(r[column]));
  const checks: ShopCheck[] = [];
  const orderIds = await ids(RECONCILE_SQL.orderDetail, 'orderId');
  for (const orderId of orderIds)
    checks.push({ key: 'orders.detail', params: { orderId }, path: `/orders/${orderId}` });
  const productIds = await ids(RECONCILE_SQL.product, 'productId');
  for (const productId of productIds) {
    checks.push({ key: 'catalog.product', params: { productId }, path: `/products/${productId}` });
  }
  const customerIds = await ids(RECONCILE_SQL.customerOrders, 'customerId');
  const paged = new Set(customerIds.slice(0, opts.pagedCustomers ?? 10));
  for (const customerId of customerIds) {
    let cursor: string | undefined;
    for (let page = 0; page < 50; page++) {
      const params = { customerId, limit, ...(cursor === undefined ? {} : { cursor }) };
      checks.push({
        key: 'orders.byCustomer',
        params,
        path: `/customers/${customerId}/orders?limit=${limit}${cursor === undefined ? '' : `&cursor=${cursor}`}`,
      });
      if (!paged.has(customerId)) break;
      const { nextCursor } = await legacyCustomerOrders(db, params);
      if (nextCursor === null) break;
      cursor = nextCursor;
    }
  }
  const missing = Math.max(0, ...orderIds, ...productIds) + 1_000_000;
  checks.push({ key: 'orders.detail', params: { orderId: missing }, path: `/orders/${missing}` });
  checks.push({ key: 'catalog.product', params: { productId: missing }, path: `/products/${missing}` });
  return checks;
}

// ------------------------------------------------------------------------------ sample

const DEFAULT_URL = 'postgres://cqrs:cqrs@127.0.0.1:5433/shop';

async function readPaths(url: string, count: number, seed: number): Promise<string[]> {
  const { conn, database } = parseShopUrl(url || DEFAULT_URL);
  const max = await withShopClient(conn, database, async (c) => {
    const result = await c.query(
      'SELECT (SELECT max(id) FROM orders) AS orders, (SELECT max(id) FROM customers) AS customers, (SELECT max(id) FROM products) AS products',
    );
    return z
      .object({ orders: z.coerce.number(), customers: z.coerce.number(), products: z.coerce.number() })
      .parse(result.rows[0]);
  });
  const rng = new Random(`paths:${seed}`);
  const paths: string[] = [];
  for (let i = 0; i < count; i++) {
    const roll = rng.next();
    if (roll < 0.5) paths.push(`/orders/${rng.int(1, Math.max(1, max.orders))}`);
    else if (roll < 0.75) {
      const limit = rng.pick([5, 10, 20]);
      paths.push(`/customers/${rng.int(1, Math.max(1, max.customers))}/orders?limit=${limit}`);
    } else paths.push(`/products/${rng.int(1, Math.max(1, max.products))}`);
  }
  return paths;
}

export default defineMigration({
  name: 'shop',
  capture: {
    tables: shopCaptureRules,
    knownEvents: shopEventNames,
    // Personal data: masked in stored dead-letter row images.
    sensitive: {
      customers: ['email', 'first_name', 'last_name'],
      addresses: ['line1', 'postal_code'],
      orders: ['note'],
    },
  },
  readModels: [orderDetailView, customerOrdersView, productPageView],
  domains: {
    orders: { endpoints: { detail: orderDetailEndpoint, byCustomer: customerOrdersEndpoint } },
    catalog: { endpoints: { product: productEndpoint } },
  },
  sample: {
    scales: ['tiny', 'small'],
    url: 'postgres://cqrs:cqrs@127.0.0.1:5433/shop',
    async create({ url, scale, seed, force, progress }) {
      const { conn, database } = parseShopUrl(url);
      const data = generateShop(seed, shopScaleNameSchema.parse(scale));
      progress(
        `creating the sample shop '${database}' (${scale}: ${countRows(data)} rows) on ${conn.host}:${conn.port}`,
      );
      await guardExisting(url, 'shop', force);
      await createShopDatabase(conn, database, { force: true });
      await markCreated(url, 'shop');
      const rows = await withShopClient(conn, database, (c) => loadShop(c, data, { progress }));
      return { rows };
    },
    async load({ url, ratePerSec, durationMs, seed, signal }) {
      const { conn, database } = parseShopUrl(url);
      const pool = shopPool(conn, database, 1);
      try {
        const stats = await runShopWorkload(pool, {
          seed,
          ratePerSec,
          durationMs,
          ...(signal ? { signal } : {}),
        });
        return { ops: stats.ops, rowChanges: stats.rowChanges, errors: stats.errors };
      } finally {
        await pool.end();
      }
    },
    readPaths: ({ url, count, seed }) => readPaths(url, count, seed),
  },
});
