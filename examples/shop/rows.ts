import { z } from 'zod';
import { moneyText, ORDER_STATUSES, PAYMENT_STATUSES, timestampText } from './documents.js';

/**
 * Each captured table's raw row as change-data-capture delivers it (both the embedded pgoutput
 * reader and Debezium: integers and BIGINT ids as numbers, NUMERIC(12,2) as "12.50",
 * TIMESTAMP(6) as "YYYY-MM-DD HH:MM:SS.ffffff", booleans as booleans, the enum as its label)
 * and the camelCase domain state it becomes. A row that does not parse is a dead letter.
 */

const id = z.number().int().positive();

export const supplierRow = z
  .object({ id, name: z.string(), country: z.string(), email: z.string(), created_at: timestampText })
  .transform((r) => ({
    supplierId: r.id,
    name: r.name,
    country: r.country,
    email: r.email,
    createdAt: r.created_at,
  }));

export const categoryRow = z
  .object({ id, slug: z.string(), name: z.string(), parent_id: id.nullable() })
  .transform((r) => ({ categoryId: r.id, slug: r.slug, name: r.name, parentId: r.parent_id }));

export const productRow = z
  .object({
    id,
    sku: z.string(),
    name: z.string(),
    description: z.string().nullable(),
    price: moneyText,
    supplier_id: id.nullable(),
    active: z.boolean(),
    created_at: timestampText,
    updated_at: timestampText,
  })
  .transform((r) => ({
    productId: r.id,
    sku: r.sku,
    name: r.name,
    description: r.description,
    price: r.price,
    supplierId: r.supplier_id,
    active: r.active,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }));

export const productCategoryRow = z
  .object({ product_id: id, category_id: id, added_at: timestampText })
  .transform((r) => ({ productId: r.product_id, categoryId: r.category_id, addedAt: r.added_at }));

export const customerRow = z
  .object({
    id,
    email: z.string(),
    first_name: z.string(),
    last_name: z.string(),
    vip: z.boolean(),
    created_at: timestampText,
    updated_at: timestampText,
  })
  .transform((r) => ({
    customerId: r.id,
    email: r.email,
    firstName: r.first_name,
    lastName: r.last_name,
    vip: r.vip,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }));

export const addressRow = z
  .object({
    id,
    customer_id: id,
    line1: z.string(),
    city: z.string(),
    postal_code: z.string(),
    country: z.string(),
    is_default: z.boolean(),
  })
  .transform((r) => ({
    addressId: r.id,
    customerId: r.customer_id,
    line1: r.line1,
    city: r.city,
    postalCode: r.postal_code,
    country: r.country,
    isDefault: r.is_default,
  }));

export const reviewRow = z
  .object({
    id,
    product_id: id,
    customer_id: id,
    rating: z.number().int().min(1).max(5),
    title: z.string(),
    body: z.string().nullable(),
    created_at: timestampText,
  })
  .transform((r) => ({
    reviewId: r.id,
    productId: r.product_id,
    customerId: r.customer_id,
    rating: r.rating,
    title: r.title,
    body: r.body,
    createdAt: r.created_at,
  }));

export const orderRow = z
  .object({
    id,
    customer_id: id,
    shipping_address_id: id.nullable(),
    status: z.enum(ORDER_STATUSES),
    currency: z.string(),
    note: z.string().nullable(),
    placed_at: timestampText,
    updated_at: timestampText,
  })
  .transform((r) => ({
    orderId: r.id,
    customerId: r.customer_id,
    shippingAddressId: r.shipping_address_id,
    status: r.status,
    currency: r.currency,
    note: r.note,
    placedAt: r.placed_at,
    updatedAt: r.updated_at,
  }));

export const orderItemRow = z
  .object({
    order_id: id,
    line_no: z.number().int().positive(),
    product_id: id,
    quantity: z.number().int().positive(),
    unit_price: moneyText,
    line_total: moneyText,
  })
  .transform((r) => ({
    orderId: r.order_id,
    lineNo: r.line_no,
    productId: r.product_id,
    quantity: r.quantity,
    unitPrice: r.unit_price,
    lineTotal: r.line_total,
  }));

export const paymentRow = z
  .object({
    id,
    order_id: id,
    method: z.enum(['card', 'paypal', 'bank_transfer']),
    amount: moneyText,
    status: z.enum(PAYMENT_STATUSES),
    created_at: timestampText,
  })
  .transform((r) => ({
    paymentId: r.id,
    orderId: r.order_id,
    method: r.method,
    amount: r.amount,
    status: r.status,
    createdAt: r.created_at,
  }));

export const shipmentRow = z
  .object({
    id,
    order_id: id,
    carrier: z.string(),
    tracking_no: z.string(),
    shipped_at: timestampText,
    delivered_at: timestampText.nullable(),
  })
  .transform((r) => ({
    shipmentId: r.id,
    orderId: r.order_id,
    carrier: r.carrier,
    trackingNo: r.tracking_no,
    shippedAt: r.shipped_at,
    deliveredAt: r.delivered_at,
  }));

export type SupplierState = z.output<typeof supplierRow>;
export type CategoryState = z.output<typeof categoryRow>;
export type ProductState = z.output<typeof productRow>;
export type ProductCategoryState = z.output<typeof productCategoryRow>;
export type CustomerState = z.output<typeof customerRow>;
export type AddressState = z.output<typeof addressRow>;
export type ReviewState = z.output<typeof reviewRow>;
export type OrderState = z.output<typeof orderRow>;
export type OrderItemState = z.output<typeof orderItemRow>;
export type PaymentState = z.output<typeof paymentRow>;
export type ShipmentState = z.output<typeof shipmentRow>;
