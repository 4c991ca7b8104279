import { z } from 'zod';
import type { LegacyDb } from '../../index.js';
import {
  type CategoryRef,
  type CustomerOrdersPage,
  customerOrdersPage,
  decodeOrderCursor,
  type OrderDetail,
  type OrderSummary,
  orderDetailSchema,
  orderSummarySchema,
  type ProductPage,
  productPageSchema,
} from './documents.js';
import { timestamp6 } from './values.js';

/**
 * The legacy monolith's reads, as it runs them on PostgreSQL: one JOIN query per endpoint
 * (`:named` parameters) and the code that shapes its rows into the answer. Values are
 * normalised to the forms change-data-capture delivers, so for the same data the legacy
 * answer is the read model's, byte for byte:
 * - TIMESTAMP(6): PostgreSQL prints "10:00:00.5" or "10:00:00"; padded to 6 digits here
 *   (timestamp6), as CDC pads them;
 * - NUMERIC(12,2): the server's text keeps the scale; sums are CAST to NUMERIC(14,2), so an
 *   empty sum is "0.00";
 * - BIGINT (ids, count(*)) as a number whether the driver gives a number or its text.
 *
 * The SQL holds no `::` casts and no colon inside a string literal, so any `:name` binder
 * reads it right.
 */

/** A legacy integer: a number, or the text a driver gives for BIGINT. */
const int = z.union([
  z.number().int(),
  z
    .string()
    .regex(/^-?\d+$/)
    .transform(Number),
]);
/** A legacy boolean: node-postgres parses it; raw text output is 't'/'f'. */
const bool = z.union([z.boolean(), z.enum(['t', 'f']).transform((v) => v === 't')]);
const ts = z.string().transform(timestamp6);
const text = z.string();
const money = z.string().regex(/^-?\d+\.\d{2}$/);
const opt = <T extends z.ZodType>(schema: T) =>
  schema
    .nullable()
    .optional()
    .transform((v) => v ?? null);

// --------------------------------------------------------------------------- orders.detail

export const ORDER_DETAIL_SQL = `
SELECT o.id AS order_id, o.status, o.currency, o.note, o.placed_at, o.updated_at,
       c.id AS customer_id, c.first_name || ' ' || c.last_name AS customer_name,
       c.email AS customer_email, c.vip AS customer_vip,
       a.id AS address_id, a.line1, a.city, a.postal_code, a.country,
       pay.id AS payment_id, pay.method AS payment_method, pay.amount AS payment_amount,
       pay.status AS payment_status, pay.created_at AS payment_created_at,
       sh.id AS shipment_id, sh.carrier, sh.tracking_no, sh.shipped_at, sh.delivered_at,
       agg.item_count, agg.items_total, paid.paid_total,
       oi.line_no, oi.product_id, oi.quantity, oi.unit_price, oi.line_total,
       p.sku, p.name AS product_name, cat.id AS category_id, cat.name AS category_name
  FROM orders o
  JOIN customers c ON c.id = o.customer_id
  LEFT JOIN addresses a ON a.id = o.shipping_address_id
  LEFT JOIN LATERAL (SELECT * FROM payments WHERE order_id = o.id ORDER BY id DESC LIMIT 1) pay ON TRUE
  LEFT JOIN LATERAL (SELECT * FROM shipments WHERE order_id = o.id ORDER BY id DESC LIMIT 1) sh ON TRUE
  CROSS JOIN LATERAL (
    SELECT count(*) AS item_count, CAST(COALESCE(SUM(line_total), 0) AS NUMERIC(14,2)) AS items_total
      FROM order_items WHERE order_id = o.id) agg
  CROSS JOIN LATERAL (
    SELECT CAST(COALESCE(SUM(amount), 0) AS NUMERIC(14,2)) AS paid_total
      FROM payments WHERE order_id = o.id AND status = 'captured') paid
  LEFT JOIN order_items oi ON oi.order_id = o.id
  LEFT JOIN products p ON p.id = oi.product_id
  LEFT JOIN (product_categories pc JOIN categories cat ON cat.id = pc.category_id)
         ON pc.product_id = oi.product_id
 WHERE o.id = :orderId
 ORDER BY oi.line_no, cat.id`;

const orderDetailRow = z.object({
  order_id: int,
  status: text,
  currency: text,
  note: opt(text),
  placed_at: ts,
  updated_at: ts,
  customer_id: int,
  customer_name: text,
  customer_email: text,
  customer_vip: bool,
  address_id: opt(int),
  line1: opt(text),
  city: opt(text),
  postal_code: opt(text),
  country: opt(text),
  payment_id: opt(int),
  payment_method: opt(text),
  payment_amount: opt(money),
  payment_status: opt(text),
  payment_created_at: opt(ts),
  shipment_id: opt(int),
  carrier: opt(text),
  tracking_no: opt(text),
  shipped_at: opt(ts),
  delivered_at: opt(ts),
  item_count: int,
  items_total: money,
  paid_total: money,
  line_no: opt(int),
  product_id: opt(int),
  quantity: opt(int),
  unit_price: opt(money),
  line_total: opt(money),
  sku: opt(text),
  product_name: opt(text),
  category_id: opt(int),
  category_name: opt(text),
});

/** Rows of ORDER_DETAIL_SQL (one per item × category) → the order document, or null (404). */
export function mapOrderDetail(rows: readonly unknown[]): OrderDetail | null {
  const parsed = rows.map((r) => orderDetailRow.parse(r));
  const head = parsed[0];
  if (head === undefined) return null;
  const items: OrderDetail['items'] = [];
  for (const r of parsed) {
    if (r.line_no === null) continue;
    let item = items[items.length - 1];
    if (item?.lineNo !== r.line_no) {
      item = {
        lineNo: r.line_no,
        productId: r.product_id as number,
        sku: r.sku,
        name: r.product_name,
        quantity: r.quantity as number,
        unitPrice: r.unit_price as string,
        lineTotal: r.line_total as string,
        categories: [],
      };
      items.push(item);
    }
    if (r.category_id !== null)
      item.categories.push({ categoryId: r.category_id, name: r.category_name ?? '' });
  }
  return orderDetailSchema.parse({
    orderId: head.order_id,
    status: head.status,
    currency: head.currency,
    note: head.note,
    placedAt: head.placed_at,
    updatedAt: head.updated_at,
    customer: {
      customerId: head.customer_id,
      name: head.customer_name,
      email: head.customer_email,
      vip: head.customer_vip,
    },
    shippingAddress:
      head.address_id === null
        ? null
        : {
            addressId: head.address_id,
            line1: head.line1,
            city: head.city,
            postalCode: head.postal_code,
            country: head.country,
          },
    items,
    payment:
      head.payment_id === null
        ? null
        : {
            paymentId: head.payment_id,
            method: head.payment_method,
            amount: head.payment_amount,
            status: head.payment_status,
            createdAt: head.payment_created_at,
          },
    shipment:
      head.shipment_id === null
        ? null
        : {
            shipmentId: head.shipment_id,
            carrier: head.carrier,
            trackingNo: head.tracking_no,
            shippedAt: head.shipped_at,
            deliveredAt: head.delivered_at,
          },
    itemCount: head.item_count,
    itemsTotal: head.items_total,
    paidTotal: head.paid_total,
  });
}

// ------------------------------------------------------------------------ orders.byCustomer

/**
 * One page of a customer's orders, newest first, by keyset: the rows strictly after
 * (:afterPlacedAt, :afterOrderId) in (placed_at DESC, id DESC), served by
 * ix_orders_customer_placed. :fetch is the page size + 1 (the extra row says "more").
 */
export const CUSTOMER_ORDERS_SQL = `
SELECT o.id AS order_id, o.status, o.placed_at, agg.item_count, agg.total
  FROM orders o
  CROSS JOIN LATERAL (
    SELECT count(*) AS item_count, CAST(COALESCE(SUM(line_total), 0) AS NUMERIC(14,2)) AS total
      FROM order_items WHERE order_id = o.id) agg
 WHERE o.customer_id = :customerId
   AND (CAST(:afterPlacedAt AS TIMESTAMP(6)) IS NULL
        OR (o.placed_at, o.id) < (CAST(:afterPlacedAt AS TIMESTAMP(6)), CAST(:afterOrderId AS BIGINT)))
 ORDER BY o.placed_at DESC, o.id DESC
 LIMIT CAST(:fetch AS INTEGER)`;

const customerOrderRow = z.object({
  order_id: int,
  status: text,
  placed_at: ts,
  item_count: int,
  total: money,
});

export function mapCustomerOrders(rows: readonly unknown[]): OrderSummary[] {
  return rows.map((row) => {
    const r = customerOrderRow.parse(row);
    return orderSummarySchema.parse({
      orderId: r.order_id,
      status: r.status,
      placedAt: r.placed_at,
      itemCount: r.item_count,
      total: r.total,
    });
  });
}

/** The endpoint's parameters, as its params schema parses them. */
export interface CustomerOrdersParams {
  customerId: number;
  limit?: number | undefined;
  cursor?: string | undefined;
}
export const DEFAULT_PAGE_SIZE = 20;

/** The bound parameters of CUSTOMER_ORDERS_SQL for a request. */
export function customerOrdersBindings(params: CustomerOrdersParams) {
  const limit = params.limit ?? DEFAULT_PAGE_SIZE;
  const after = params.cursor === undefined ? null : decodeOrderCursor(params.cursor);
  if (params.cursor !== undefined && after === null) throw new Error('invalid cursor');
  return {
    customerId: params.customerId,
    afterPlacedAt: after?.placedAt ?? null,
    afterOrderId: after?.orderId ?? null,
    fetch: limit + 1,
    limit,
    after,
  };
}

/** The legacy answer of GET /customers/:customerId/orders: one keyset query. */
export async function legacyCustomerOrders(
  db: Pick<LegacyDb, 'query'>,
  params: CustomerOrdersParams,
): Promise<CustomerOrdersPage> {
  const b = customerOrdersBindings(params);
  const rows = await db.query(
    { postgres: CUSTOMER_ORDERS_SQL },
    {
      customerId: b.customerId,
      afterPlacedAt: b.afterPlacedAt,
      afterOrderId: b.afterOrderId,
      fetch: b.fetch,
    },
  );
  return customerOrdersPage(params.customerId, mapCustomerOrders(rows), b.limit);
}

// --------------------------------------------------------------------------- catalog.product

export const PRODUCT_PAGE_SQL = `
SELECT p.id AS product_id, p.sku, p.name, p.description, p.price, p.active,
       s.id AS supplier_id, s.name AS supplier_name, s.country AS supplier_country,
       cat.id AS category_id, cat.name AS category_name,
       rc.review_count, rc.rating_sum,
       r.id AS review_id, r.rating, r.title, r.body, r.created_at AS review_created_at, r.author
  FROM products p
  LEFT JOIN suppliers s ON s.id = p.supplier_id
  LEFT JOIN (product_categories pc JOIN categories cat ON cat.id = pc.category_id) ON pc.product_id = p.id
  CROSS JOIN LATERAL (
    SELECT count(*) AS review_count, COALESCE(SUM(rating), 0) AS rating_sum
      FROM reviews WHERE product_id = p.id) rc
  LEFT JOIN LATERAL (
    SELECT rv.id, rv.rating, rv.title, rv.body, rv.created_at, cu.first_name || ' ' || cu.last_name AS author
      FROM reviews rv LEFT JOIN customers cu ON cu.id = rv.customer_id
     WHERE rv.product_id = p.id
     ORDER BY rv.created_at DESC, rv.id DESC
     LIMIT 5) r ON TRUE
 WHERE p.id = :productId
 ORDER BY cat.id, r.created_at DESC, r.id DESC`;

const productPageRow = z.object({
  product_id: int,
  sku: text,
  name: text,
  description: opt(text),
  price: money,
  active: bool,
  supplier_id: opt(int),
  supplier_name: opt(text),
  supplier_country: opt(text),
  category_id: opt(int),
  category_name: opt(text),
  review_count: int,
  rating_sum: int,
  review_id: opt(int),
  rating: opt(int),
  title: opt(text),
  body: opt(text),
  review_created_at: opt(ts),
  author: opt(text),
});

/** Rows of PRODUCT_PAGE_SQL (one per category × latest review) → the product page, or null. */
export function mapProductPage(rows: readonly unknown[]): ProductPage | null {
  const parsed = rows.map((r) => productPageRow.parse(r));
  const head = parsed[0];
  if (head === undefined) return null;
  const categories = new Map<number, CategoryRef>();
  const reviews = new Map<number, ProductPage['latestReviews'][number]>();
  for (const r of parsed) {
    if (r.category_id !== null && !categories.has(r.category_id)) {
      categories.set(r.category_id, { categoryId: r.category_id, name: r.category_name ?? '' });
    }
    if (r.review_id !== null && !reviews.has(r.review_id)) {
      reviews.set(r.review_id, {
        reviewId: r.review_id,
        rating: r.rating as number,
        title: r.title as string,
        body: r.body,
        createdAt: r.review_created_at as string,
        author: r.author,
      });
    }
  }
  const latestReviews = [...reviews.values()].sort((a, b) =>
    a.createdAt !== b.createdAt ? (a.createdAt < b.createdAt ? 1 : -1) : b.reviewId - a.reviewId,
  );
  return productPageSchema.parse({
    productId: head.product_id,
    sku: head.sku,
    name: head.name,
    description: head.description,
    price: head.price,
    active: head.active,
    supplier:
      head.supplier_id === null
        ? null
        : { supplierId: head.supplier_id, name: head.supplier_name, country: head.supplier_country },
    categories: [...categories.values()].sort((a, b) => a.categoryId - b.categoryId),
    reviewCount: head.review_count,
    ratingSum: head.rating_sum,
    latestReviews,
  });
}

// ------------------------------------------------------------------------------ reconcile

/** Every parameter set reconciliation checks, per endpoint (columns are parameter names). */
export const RECONCILE_SQL = {
  orderDetail: 'SELECT id AS "orderId" FROM orders ORDER BY id',
  customerOrders: 'SELECT id AS "customerId" FROM customers ORDER BY id',
  product: 'SELECT id AS "productId" FROM products ORDER BY id',
} as const;
