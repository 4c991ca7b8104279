import { defineView, type ViewNode } from '../../index.js';
import {
  type CategoryRef,
  displayName,
  type OrderDetail,
  type OrderSummary,
  orderDetailSchema,
  orderSummarySchema,
  type ProductPage,
  productPageSchema,
} from './documents.js';
import type {
  AddressState,
  CategoryState,
  CustomerState,
  OrderItemState,
  OrderState,
  PaymentState,
  ProductState,
  ReviewState,
  ShipmentState,
  SupplierState,
} from './rows.js';

/**
 * The shop's read models, declared as views over the captured tables. The engine keeps the
 * rows and maintains each document, including the fan-out: renaming a product rewrites every
 * order document with a line of it, renaming a customer every order and every product page
 * showing one of their reviews, a category change every order line of its products.
 */

// Rows arrive as the capture rules' domain state (rows.ts); the casts name that contract.
const rowOf = <S>(node: ViewNode): S => node.row as S;
const one = (value: ViewNode | ViewNode[] | null | undefined): ViewNode | null =>
  value === undefined || Array.isArray(value) ? null : value;
const many = (value: ViewNode | ViewNode[] | null | undefined): ViewNode[] =>
  Array.isArray(value) ? value : [];

/** product_categories children, each with its category lookup → [{ categoryId, name }]. */
function categoriesOf(links: ViewNode[]): CategoryRef[] {
  return links.flatMap((link) => {
    const category = one(link.joins.category);
    if (category === null) return [];
    const c = rowOf<CategoryState>(category);
    return [{ categoryId: c.categoryId, name: c.name }];
  });
}

/** The product's categories through the many-to-many table, ordered by category id. */
const categoriesJoin = {
  table: 'product_categories',
  by: 'productId',
  orderBy: [{ field: 'categoryId' }],
  join: { category: { table: 'categories', on: 'categoryId' } },
} as const;

/** GET /orders/:orderId — one document per order. */
export const orderDetailView = defineView<OrderDetail>({
  name: 'order-detail',
  from: 'orders',
  join: {
    customer: { table: 'customers', on: 'customerId', required: true },
    shippingAddress: { table: 'addresses', on: 'shippingAddressId' },
    items: {
      table: 'order_items',
      by: 'orderId',
      orderBy: [{ field: 'lineNo' }],
      join: { product: { table: 'products', on: 'productId', join: { categories: categoriesJoin } } },
    },
    payments: {
      table: 'payments',
      by: 'orderId',
      orderBy: [{ field: 'paymentId', direction: 'desc' }],
      limit: 1,
    },
    shipments: {
      table: 'shipments',
      by: 'orderId',
      orderBy: [{ field: 'shipmentId', direction: 'desc' }],
      limit: 1,
    },
  },
  aggregate: {
    itemCount: { count: 'items' },
    itemsTotal: { sum: 'items', field: 'lineTotal', scale: 2 },
    paidTotal: { sum: 'payments', field: 'amount', where: { status: 'captured' }, scale: 2 },
  },
  select(root) {
    const o = rowOf<OrderState>(root);
    const customerNode = one(root.joins.customer);
    if (customerNode === null) return null;
    const customer = rowOf<CustomerState>(customerNode);
    const addressNode = one(root.joins.shippingAddress);
    const address = addressNode === null ? null : rowOf<AddressState>(addressNode);
    const paymentNode = many(root.joins.payments)[0];
    const payment = paymentNode === undefined ? null : rowOf<PaymentState>(paymentNode);
    const shipmentNode = many(root.joins.shipments)[0];
    const shipment = shipmentNode === undefined ? null : rowOf<ShipmentState>(shipmentNode);
    return {
      orderId: o.orderId,
      status: o.status,
      currency: o.currency,
      note: o.note,
      placedAt: o.placedAt,
      updatedAt: o.updatedAt,
      customer: {
        customerId: customer.customerId,
        name: displayName(customer.firstName, customer.lastName),
        email: customer.email,
        vip: customer.vip,
      },
      shippingAddress:
        address === null
          ? null
          : {
              addressId: address.addressId,
              line1: address.line1,
              city: address.city,
              postalCode: address.postalCode,
              country: address.country,
            },
      items: many(root.joins.items).map((itemNode) => {
        const item = rowOf<OrderItemState>(itemNode);
        const productNode = one(itemNode.joins.product);
        const product = productNode === null ? null : rowOf<ProductState>(productNode);
        return {
          lineNo: item.lineNo,
          productId: item.productId,
          sku: product?.sku ?? null,
          name: product?.name ?? null,
          quantity: item.quantity,
          unitPrice: item.unitPrice,
          lineTotal: item.lineTotal,
          categories: productNode === null ? [] : categoriesOf(many(productNode.joins.categories)),
        };
      }),
      payment:
        payment === null
          ? null
          : {
              paymentId: payment.paymentId,
              method: payment.method,
              amount: payment.amount,
              status: payment.status,
              createdAt: payment.createdAt,
            },
      shipment:
        shipment === null
          ? null
          : {
              shipmentId: shipment.shipmentId,
              carrier: shipment.carrier,
              trackingNo: shipment.trackingNo,
              shippedAt: shipment.shippedAt,
              deliveredAt: shipment.deliveredAt,
            },
      itemCount: root.aggregates.itemCount as number,
      itemsTotal: root.aggregates.itemsTotal as string,
      paidTotal: root.aggregates.paidTotal as string,
    };
  },
  schema: orderDetailSchema,
});

/** GET /customers/:customerId/orders — a light row per order, found by customer, newest first. */
export const customerOrdersView = defineView<OrderSummary>({
  name: 'customer-orders',
  from: 'orders',
  join: { items: { table: 'order_items', by: 'orderId', limit: 0 } },
  aggregate: {
    itemCount: { count: 'items' },
    total: { sum: 'items', field: 'lineTotal', scale: 2 },
  },
  select(root) {
    const o = rowOf<OrderState>(root);
    return {
      orderId: o.orderId,
      status: o.status,
      placedAt: o.placedAt,
      itemCount: root.aggregates.itemCount as number,
      total: root.aggregates.total as string,
    };
  },
  schema: orderSummarySchema,
  indexes: [['customerId', 'placedAt', 'orderId']],
});

/** GET /products/:productId — supplier, categories, review count and rating sum, 5 newest reviews. */
export const productPageView = defineView<ProductPage>({
  name: 'product-page',
  from: 'products',
  join: {
    supplier: { table: 'suppliers', on: 'supplierId' },
    categories: categoriesJoin,
    reviews: { table: 'reviews', by: 'productId', limit: 0 },
    latestReviews: {
      table: 'reviews',
      by: 'productId',
      orderBy: [
        { field: 'createdAt', direction: 'desc' },
        { field: 'reviewId', direction: 'desc' },
      ],
      limit: 5,
      join: { author: { table: 'customers', on: 'customerId' } },
    },
  },
  aggregate: {
    reviewCount: { count: 'reviews' },
    ratingSum: { sum: 'reviews', field: 'rating' },
  },
  select(root) {
    const p = rowOf<ProductState>(root);
    const supplierNode = one(root.joins.supplier);
    const supplier = supplierNode === null ? null : rowOf<SupplierState>(supplierNode);
    return {
      productId: p.productId,
      sku: p.sku,
      name: p.name,
      description: p.description,
      price: p.price,
      active: p.active,
      supplier:
        supplier === null
          ? null
          : { supplierId: supplier.supplierId, name: supplier.name, country: supplier.country },
      categories: categoriesOf(many(root.joins.categories)),
      reviewCount: root.aggregates.reviewCount as number,
      ratingSum: root.aggregates.ratingSum as number,
      latestReviews: many(root.joins.latestReviews).map((node) => {
        const r = rowOf<ReviewState>(node);
        const authorNode = one(node.joins.author);
        const author = authorNode === null ? null : rowOf<CustomerState>(authorNode);
        return {
          reviewId: r.reviewId,
          rating: r.rating,
          title: r.title,
          body: r.body,
          createdAt: r.createdAt,
          author: author === null ? null : displayName(author.firstName, author.lastName),
        };
      }),
    };
  },
  schema: productPageSchema,
});

export const shopReadModels = [orderDetailView, customerOrdersView, productPageView] as const;
