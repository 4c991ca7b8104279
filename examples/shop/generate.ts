import type pg from 'pg';
import { z } from 'zod';
import { AdapterError } from '../../index.js';
import { formatCents, formatMicros, Random } from './values.js';

/**
 * Deterministic sample data for the shop: the same seed and scale give the same rows, value
 * for value, on every run and machine. Rows are generated in memory (the `small` scale is about
 * 90k rows) and loaded with one `INSERT … SELECT * FROM unnest(…)` per chunk of a table, all in
 * one transaction.
 */

/** The shop's tables in foreign-key order (parents first). */
export const SHOP_TABLES = [
  'suppliers',
  'categories',
  'products',
  'product_categories',
  'customers',
  'addresses',
  'reviews',
  'orders',
  'order_items',
  'payments',
  'shipments',
] as const;
export type ShopTable = (typeof SHOP_TABLES)[number];

/** Columns of each table with the PostgreSQL type their unnest array is cast to. */
export const SHOP_COLUMNS: Record<ShopTable, readonly (readonly [column: string, type: string])[]> = {
  suppliers: [
    ['id', 'integer'],
    ['name', 'text'],
    ['country', 'text'],
    ['email', 'text'],
    ['created_at', 'timestamp'],
  ],
  categories: [
    ['id', 'integer'],
    ['slug', 'text'],
    ['name', 'text'],
    ['parent_id', 'integer'],
  ],
  products: [
    ['id', 'integer'],
    ['sku', 'text'],
    ['name', 'text'],
    ['description', 'text'],
    ['price', 'numeric'],
    ['supplier_id', 'integer'],
    ['active', 'boolean'],
    ['created_at', 'timestamp'],
    ['updated_at', 'timestamp'],
  ],
  product_categories: [
    ['product_id', 'integer'],
    ['category_id', 'integer'],
    ['added_at', 'timestamp'],
  ],
  customers: [
    ['id', 'integer'],
    ['email', 'text'],
    ['first_name', 'text'],
    ['last_name', 'text'],
    ['vip', 'boolean'],
    ['created_at', 'timestamp'],
    ['updated_at', 'timestamp'],
  ],
  addresses: [
    ['id', 'integer'],
    ['customer_id', 'integer'],
    ['line1', 'text'],
    ['city', 'text'],
    ['postal_code', 'text'],
    ['country', 'text'],
    ['is_default', 'boolean'],
  ],
  reviews: [
    ['id', 'bigint'],
    ['product_id', 'integer'],
    ['customer_id', 'integer'],
    ['rating', 'smallint'],
    ['title', 'text'],
    ['body', 'text'],
    ['created_at', 'timestamp'],
  ],
  orders: [
    ['id', 'bigint'],
    ['customer_id', 'integer'],
    ['shipping_address_id', 'integer'],
    ['status', 'order_status'],
    ['currency', 'text'],
    ['note', 'text'],
    ['placed_at', 'timestamp'],
    ['updated_at', 'timestamp'],
  ],
  order_items: [
    ['order_id', 'bigint'],
    ['line_no', 'smallint'],
    ['product_id', 'integer'],
    ['quantity', 'integer'],
    ['unit_price', 'numeric'],
    ['line_total', 'numeric'],
  ],
  payments: [
    ['id', 'bigint'],
    ['order_id', 'bigint'],
    ['method', 'text'],
    ['amount', 'numeric'],
    ['status', 'text'],
    ['created_at', 'timestamp'],
  ],
  shipments: [
    ['id', 'bigint'],
    ['order_id', 'bigint'],
    ['carrier', 'text'],
    ['tracking_no', 'text'],
    ['shipped_at', 'timestamp'],
    ['delivered_at', 'timestamp'],
  ],
};

/** Tables with a serial id, moved past the loaded ids so later inserts fit. */
const SERIAL_TABLES: readonly ShopTable[] = [
  'suppliers',
  'categories',
  'products',
  'customers',
  'addresses',
  'reviews',
  'orders',
  'payments',
  'shipments',
];

export type ShopValue = string | number | boolean | null;
/** One row: its values in SHOP_COLUMNS order. */
export type ShopRow = ShopValue[];
export type ShopData = Record<ShopTable, ShopRow[]>;

export interface ShopScale {
  suppliers: number;
  categories: number;
  products: number;
  customers: number;
  orders: number;
  reviews: number;
}

export const SHOP_SCALES = {
  /** About 1.6k rows: for tests, loads in well under a second. */
  tiny: { suppliers: 4, categories: 8, products: 40, customers: 50, orders: 250, reviews: 120 },
  /** About 90k rows: a demo with some weight, loads in seconds. */
  small: { suppliers: 40, categories: 30, products: 1500, customers: 3000, orders: 14000, reviews: 6000 },
} as const satisfies Record<string, ShopScale>;
export type ShopScaleName = keyof typeof SHOP_SCALES;
export const shopScaleNameSchema = z.enum(['tiny', 'small']);

const FIRST = [
  'Ada',
  'Björn',
  'Chloé',
  'Dmitri',
  'Elif',
  'Farah',
  'Giulia',
  'Hugo',
  'Inès',
  'Jonas',
  'Kenji',
  'Lena',
  'Mateo',
  'Nora',
  'Oskar',
  'Priya',
  'Quentin',
  'Rosa',
  'Sven',
  'Tariq',
  'Uma',
  'Vera',
  'Wim',
  'Yara',
  'Zoë',
];
const LAST = [
  'Andersen',
  "O'Brien",
  'Bianchi',
  'Dubois',
  'Eriksson',
  'García',
  'Horvat',
  'Ivanova',
  'Jansen',
  'Kowalski',
  'Lindqvist',
  'Müller',
  'Novak',
  'Okafor',
  'Peeters',
  'Rossi',
  'Schmidt',
  'Tanaka',
  'Van Dijk',
  'Weber',
];
const ADJECTIVES = [
  'Classic',
  'Compact',
  'Deluxe',
  'Eco',
  'Ergonomic',
  'Handmade',
  'Lightweight',
  'Organic',
  'Portable',
  'Rustic',
  'Smart',
  'Vintage',
  'Crème',
  'Nordic',
  'Urban',
];
const NOUNS = [
  'Backpack',
  'Blender',
  'Candle',
  'Chair',
  'Desk Lamp',
  'Espresso Cups',
  'Headphones',
  'Kettle',
  'Notebook',
  'Pillow',
  'Rain Jacket',
  'Running Shoes',
  'Teapot',
  'Umbrella',
  'Water Bottle',
  'Wool Scarf',
];
const CATEGORY_NAMES = [
  'Home',
  'Kitchen',
  'Outdoor',
  'Fashion',
  'Electronics',
  'Office',
  'Sports',
  'Garden',
  'Toys',
  'Books',
  'Beauty',
  'Health',
];
const SUPPLIER_WORDS = ['Acme', 'Borealis', 'Cobalt', 'Delta', 'Evergreen', 'Fjord', 'Granite', 'Helix'];
const SUPPLIER_SUFFIX = ['Trading', 'GmbH', 'S.A.', 'B.V.', 'Ltd', '& Sons'];
const COUNTRIES = ['DE', 'FR', 'NL', 'IT', 'ES', 'SE', 'PL', 'BE'];
const CITIES = ['Berlin', 'Lyon', 'Utrecht', 'Milano', 'Sevilla', 'Göteborg', 'Kraków', 'Gent'];
const STREETS = ['Main Street', 'Rue de la Paix', 'Kerkstraat', 'Via Roma', 'Calle Mayor', 'Storgatan'];
const REVIEW_TITLES = [
  'Great value',
  'Does the job',
  'Not as pictured',
  'Love it!',
  'Broke after a week',
  'Five stars',
  'Meh',
  '"Perfect" gift',
];
export const PAYMENT_METHODS = ['card', 'paypal', 'bank_transfer'] as const;
export const CARRIERS = ['dhl', 'ups', 'postnl', 'colissimo'] as const;

export const productName = (rng: Random) => `${rng.pick(ADJECTIVES)} ${rng.pick(NOUNS)}`;
export const firstName = (rng: Random) => rng.pick(FIRST);
export const lastName = (rng: Random) => rng.pick(LAST);
export const reviewTitle = (rng: Random) => rng.pick(REVIEW_TITLES);
export const streetLine = (rng: Random) => `${rng.int(1, 240)} ${rng.pick(STREETS)}`;

/** The window the generated history spans: 2023-01-01 … 2024-12-31 (UTC). */
const START_MICROS = Date.UTC(2023, 0, 1) * 1000;
const SPAN_MICROS = (Date.UTC(2025, 0, 1) - Date.UTC(2023, 0, 1)) * 1000;
const HOUR = 3_600_000_000;

/** A time in the window; one in ten on a whole second, so PostgreSQL prints it without a fraction. */
function randomMicros(rng: Random, from = START_MICROS, to = START_MICROS + SPAN_MICROS): number {
  const t = from + Math.floor(rng.next() * (to - from));
  return rng.chance(0.1) ? t - (t % 1_000_000) : t;
}

/** The rows of every table for `seed` at `scale`. Pure: the same arguments, the same rows. */
export function generateShop(seed: number | string, scale: ShopScaleName | ShopScale): ShopData {
  const s: ShopScale = typeof scale === 'string' ? SHOP_SCALES[scale] : scale;
  const root = new Random(seed);
  const data = Object.fromEntries(SHOP_TABLES.map((t) => [t, [] as ShopRow[]])) as ShopData;

  let rng = root.fork('suppliers');
  for (let id = 1; id <= s.suppliers; id++) {
    data.suppliers.push([
      id,
      `${rng.pick(SUPPLIER_WORDS)} ${rng.pick(SUPPLIER_SUFFIX)}`,
      rng.pick(COUNTRIES),
      `orders@supplier${id}.example`,
      formatMicros(randomMicros(rng, START_MICROS - 365 * 24 * HOUR, START_MICROS)),
    ]);
  }

  rng = root.fork('categories');
  const topLevel = Math.max(1, Math.ceil(s.categories / 3));
  for (let id = 1; id <= s.categories; id++) {
    const base = CATEGORY_NAMES[(id - 1) % CATEGORY_NAMES.length] as string;
    const name = id <= CATEGORY_NAMES.length ? base : `${base} ${Math.ceil(id / CATEGORY_NAMES.length)}`;
    data.categories.push([
      id,
      `${name.toLowerCase().replace(/\s+/g, '-')}-${id}`,
      name,
      id <= topLevel ? null : rng.int(1, topLevel),
    ]);
  }

  rng = root.fork('products');
  const prices: number[] = [0];
  for (let id = 1; id <= s.products; id++) {
    const cents = rng.int(199, 49_999);
    prices.push(cents);
    const created = randomMicros(rng, START_MICROS - 180 * 24 * HOUR, START_MICROS);
    data.products.push([
      id,
      `SKU-${String(id).padStart(6, '0')}`,
      productName(rng),
      rng.chance(0.3) ? null : `Made with care. Batch ${rng.int(1, 999)}.`,
      formatCents(cents),
      rng.chance(0.05) ? null : rng.int(1, s.suppliers),
      !rng.chance(0.1),
      formatMicros(created),
      formatMicros(created + rng.int(0, 90) * 24 * HOUR),
    ]);
    const wanted = rng.int(0, Math.min(3, s.categories));
    const chosen = new Set<number>();
    while (chosen.size < wanted) chosen.add(rng.int(1, s.categories));
    for (const categoryId of [...chosen].sort((a, b) => a - b)) {
      data.product_categories.push([id, categoryId, formatMicros(randomMicros(rng, created, START_MICROS))]);
    }
  }

  rng = root.fork('customers');
  const addressesOf: number[][] = [[]];
  let addressId = 0;
  for (let id = 1; id <= s.customers; id++) {
    const first = firstName(rng);
    const last = lastName(rng);
    const created = randomMicros(rng, START_MICROS - 365 * 24 * HOUR, START_MICROS);
    data.customers.push([
      id,
      `customer${id}@shop.example`,
      first,
      last,
      rng.chance(0.1),
      formatMicros(created),
      formatMicros(created + rng.int(0, 300) * HOUR),
    ]);
    const own: number[] = [];
    const count = rng.chance(0.1) ? 0 : rng.int(1, 2);
    for (let a = 0; a < count; a++) {
      addressId++;
      own.push(addressId);
      const country = rng.int(0, COUNTRIES.length - 1);
      data.addresses.push([
        addressId,
        id,
        streetLine(rng),
        CITIES[country] as string,
        String(rng.int(1000, 99999)),
        COUNTRIES[country] as string,
        a === 0,
      ]);
    }
    addressesOf.push(own);
  }

  rng = root.fork('reviews');
  for (let id = 1; id <= s.reviews; id++) {
    data.reviews.push([
      id,
      rng.int(1, s.products),
      rng.int(1, s.customers),
      rng.int(1, 5),
      reviewTitle(rng),
      rng.chance(0.4)
        ? null
        : `Review ${id}: ${rng.pick(['works well', 'would buy again', 'a bit small', 'arrived late'])}.`,
      formatMicros(randomMicros(rng)),
    ]);
  }

  rng = root.fork('orders');
  let paymentId = 0;
  let shipmentId = 0;
  const step = Math.floor(SPAN_MICROS / s.orders);
  for (let id = 1; id <= s.orders; id++) {
    const customerId = rng.int(1, s.customers);
    const own = addressesOf[customerId] ?? [];
    const shipTo = own.length === 0 || rng.chance(0.05) ? null : (own[0] as number);
    // Ids grow with time, as in a real shop; some orders share a placed_at second.
    const placed = START_MICROS + (id - 1) * step + rng.int(0, step - 1);
    const placedAt = rng.chance(0.1) ? placed - (placed % 1_000_000) : placed;
    const roll = rng.next();
    const status =
      roll < 0.1
        ? 'placed'
        : roll < 0.2
          ? 'paid'
          : roll < 0.35
            ? 'shipped'
            : roll < 0.9
              ? 'delivered'
              : 'cancelled';
    let total = 0;
    const lines = rng.int(1, 5);
    const products = new Set<number>();
    while (products.size < Math.min(lines, s.products)) products.add(rng.int(1, s.products));
    let lineNo = 0;
    for (const productId of products) {
      const quantity = rng.chance(0.8) ? 1 : rng.int(2, 6);
      const unit = prices[productId] as number;
      total += unit * quantity;
      lineNo++;
      // A cancelled order's lines are deleted, as the workload's cancel does.
      if (status !== 'cancelled') {
        data.order_items.push([
          id,
          lineNo,
          productId,
          quantity,
          formatCents(unit),
          formatCents(unit * quantity),
        ]);
      }
    }
    const method = rng.pick(PAYMENT_METHODS);
    const paidAt = placedAt + rng.int(1, 48) * HOUR;
    if (status !== 'placed' && status !== 'cancelled' && rng.chance(0.1)) {
      data.payments.push([
        ++paymentId,
        id,
        method,
        formatCents(total),
        'failed',
        formatMicros(placedAt + 1000),
      ]);
    }
    const paymentStatus =
      status === 'placed' ? 'authorized' : status === 'cancelled' ? 'refunded' : 'captured';
    data.payments.push([
      ++paymentId,
      id,
      method,
      formatCents(total),
      paymentStatus,
      formatMicros(placedAt + 2000),
    ]);
    let updatedAt = status === 'placed' ? placedAt : paidAt;
    if (status === 'shipped' || status === 'delivered') {
      const shippedAt = paidAt + rng.int(2, 72) * HOUR;
      const deliveredAt =
        status === 'delivered' ? shippedAt + rng.int(12, 120) * HOUR + rng.int(0, 999_999) : null;
      data.shipments.push([
        ++shipmentId,
        id,
        rng.pick(CARRIERS),
        `TRK${String(id).padStart(9, '0')}`,
        formatMicros(shippedAt),
        deliveredAt === null ? null : formatMicros(deliveredAt),
      ]);
      updatedAt = deliveredAt ?? shippedAt;
    }
    data.orders.push([
      id,
      customerId,
      shipTo,
      status,
      'EUR',
      rng.chance(0.8) ? null : rng.pick(['Leave at the door', 'Gift wrap, please', 'Call before delivery']),
      formatMicros(placedAt),
      formatMicros(updatedAt),
    ]);
  }
  return data;
}

export function countRows(data: ShopData): number {
  return SHOP_TABLES.reduce((n, t) => n + data[t].length, 0);
}

export interface LoadOptions {
  /** Rows per INSERT statement. */
  chunkRows?: number;
  progress?(line: string): void;
}

/**
 * Inserts `data` into an empty shop database in one transaction, table by table in foreign-key
 * order, then moves every serial sequence past the loaded ids. Returns the row count.
 */
export async function loadShop(
  client: pg.Client | pg.PoolClient,
  data: ShopData,
  opts: LoadOptions = {},
): Promise<number> {
  const chunk = opts.chunkRows ?? 5_000;
  let total = 0;
  await client.query('BEGIN');
  try {
    for (const table of SHOP_TABLES) {
      const columns = SHOP_COLUMNS[table];
      const rows = data[table];
      const sql =
        `INSERT INTO ${table} (${columns.map(([c]) => c).join(', ')}) ` +
        `SELECT * FROM unnest(${columns.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ')})`;
      for (let from = 0; from < rows.length; from += chunk) {
        const slice = rows.slice(from, from + chunk);
        await client.query(
          sql,
          columns.map((_, i) => slice.map((row) => row[i] ?? null)),
        );
      }
      total += rows.length;
      opts.progress?.(`${table}: ${rows.length} rows`);
    }
    for (const table of SERIAL_TABLES) {
      await client.query(
        `SELECT setval(pg_get_serial_sequence('${table}', 'id'), GREATEST((SELECT max(id) FROM ${table}), 1))`,
      );
    }
    await client.query('COMMIT');
  } catch (cause) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw new AdapterError('SHOP_LOAD_FAILED', 'loading the shop sample data failed', { cause });
  }
  return total;
}
