import { z } from 'zod';
import { datetimeParam } from '../../index.js';

/**
 * The answers of the shop's endpoints, the same from the legacy database and from the read
 * models: the views' document schemas and the zod schemas tests parse the answers with.
 * Money is NUMERIC(12,2) text ("12.50"), times are TIMESTAMP(6) text in UTC
 * ("2024-03-01 10:00:00.000000"), exactly as change-data-capture delivers them.
 */

export const moneyText = z.string().regex(/^-?\d+\.\d{2}$/, 'expected NUMERIC(12,2) text like "12.50"');
export const timestampText = z
  .string()
  .regex(
    /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$/,
    'expected TIMESTAMP(6) text "YYYY-MM-DD HH:MM:SS.ffffff"',
  );
const id = z.number().int().positive();

export const ORDER_STATUSES = ['placed', 'paid', 'shipped', 'delivered', 'cancelled'] as const;
export const orderStatusSchema = z.enum(ORDER_STATUSES);
export const PAYMENT_STATUSES = ['authorized', 'captured', 'failed', 'refunded'] as const;

export const categoryRefSchema = z.object({ categoryId: id, name: z.string() });
export type CategoryRef = z.infer<typeof categoryRefSchema>;

// ------------------------------------------------------------------------- GET /orders/:orderId

export const orderLineSchema = z.object({
  lineNo: z.number().int().positive(),
  productId: id,
  /** Null only if the product row is gone (the legacy LEFT JOIN's answer too). */
  sku: z.string().nullable(),
  name: z.string().nullable(),
  quantity: z.number().int().positive(),
  unitPrice: moneyText,
  lineTotal: moneyText,
  categories: z.array(categoryRefSchema),
});

export const orderDetailSchema = z.object({
  orderId: id,
  status: orderStatusSchema,
  currency: z.string().length(3),
  note: z.string().nullable(),
  placedAt: timestampText,
  updatedAt: timestampText,
  customer: z.object({ customerId: id, name: z.string(), email: z.string(), vip: z.boolean() }),
  shippingAddress: z
    .object({
      addressId: id,
      line1: z.string(),
      city: z.string(),
      postalCode: z.string(),
      country: z.string(),
    })
    .nullable(),
  items: z.array(orderLineSchema),
  /** The latest payment attempt. */
  payment: z
    .object({
      paymentId: id,
      method: z.enum(['card', 'paypal', 'bank_transfer']),
      amount: moneyText,
      status: z.enum(PAYMENT_STATUSES),
      createdAt: timestampText,
    })
    .nullable(),
  /** The latest shipment. */
  shipment: z
    .object({
      shipmentId: id,
      carrier: z.string(),
      trackingNo: z.string(),
      shippedAt: timestampText,
      deliveredAt: timestampText.nullable(),
    })
    .nullable(),
  itemCount: z.number().int().nonnegative(),
  itemsTotal: moneyText,
  /** Sum of the captured payments. */
  paidTotal: moneyText,
});
export type OrderDetail = z.infer<typeof orderDetailSchema>;

// ------------------------------------------------------ GET /customers/:customerId/orders?limit&cursor

export const orderSummarySchema = z.object({
  orderId: id,
  status: orderStatusSchema,
  placedAt: timestampText,
  itemCount: z.number().int().nonnegative(),
  total: moneyText,
});
export type OrderSummary = z.infer<typeof orderSummarySchema>;

export const customerOrdersPageSchema = z.object({
  customerId: id,
  orders: z.array(orderSummarySchema),
  /** Opaque keyset cursor of the next page, null on the last page. */
  nextCursor: z.string().nullable(),
});
export type CustomerOrdersPage = z.infer<typeof customerOrdersPageSchema>;

/** Where a page starts: just after the order with this (placedAt, orderId), newest first. */
// A cursor is client input: an impossible time ('2024-13-45 25:61:61.000000') would reach both
// databases (PostgreSQL refuses it: a 503 instead of a 400), so it must name a real instant.
export const orderCursorSchema = z.object({
  placedAt: datetimeParam(6),
  orderId: id.refine(Number.isSafeInteger, 'expected a whole number within 2^53'),
});
export type OrderCursor = z.infer<typeof orderCursorSchema>;

/** (placedAt, orderId) → base64url JSON: opaque to clients, the same on both sides. */
export function encodeOrderCursor(cursor: OrderCursor): string {
  return Buffer.from(JSON.stringify([cursor.placedAt, cursor.orderId]), 'utf8').toString('base64url');
}

/** The cursor's position, or null when it is not one encodeOrderCursor made. */
export function decodeOrderCursor(text: string): OrderCursor | null {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (!Array.isArray(parsed) || parsed.length !== 2) return null;
    const cursor = orderCursorSchema.safeParse({ placedAt: parsed[0], orderId: parsed[1] });
    return cursor.success ? cursor.data : null;
  } catch {
    return null;
  }
}

/**
 * The page both sides answer: `fetched` holds up to limit + 1 summaries, newest first; the
 * extra one only says that another page exists.
 */
export function customerOrdersPage(
  customerId: number,
  fetched: OrderSummary[],
  limit: number,
): CustomerOrdersPage {
  const orders = fetched.slice(0, limit);
  const last = orders[orders.length - 1];
  return {
    customerId,
    orders,
    nextCursor:
      fetched.length > limit && last !== undefined
        ? encodeOrderCursor({ placedAt: last.placedAt, orderId: last.orderId })
        : null,
  };
}

// --------------------------------------------------------------------- GET /products/:productId

export const reviewSummarySchema = z.object({
  reviewId: id,
  rating: z.number().int().min(1).max(5),
  title: z.string(),
  body: z.string().nullable(),
  createdAt: timestampText,
  /** The reviewer's name; null if the customer row is gone. */
  author: z.string().nullable(),
});

export const productPageSchema = z.object({
  productId: id,
  sku: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  price: moneyText,
  active: z.boolean(),
  supplier: z.object({ supplierId: id, name: z.string(), country: z.string() }).nullable(),
  categories: z.array(categoryRefSchema),
  reviewCount: z.number().int().nonnegative(),
  ratingSum: z.number().int().nonnegative(),
  /** The 5 newest reviews. */
  latestReviews: z.array(reviewSummarySchema).max(5),
});
export type ProductPage = z.infer<typeof productPageSchema>;

/** How a customer's name is shown everywhere (legacy SQL: first_name || ' ' || last_name). */
export const displayName = (first: string, last: string) => `${first} ${last}`;
