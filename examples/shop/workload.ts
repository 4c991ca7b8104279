import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { z } from 'zod';
import {
  CARRIERS,
  firstName,
  lastName,
  PAYMENT_METHODS,
  productName,
  reviewTitle,
  streetLine,
} from './generate.js';
import { formatCents, formatMicros, parseCents, Random } from './values.js';

/**
 * A write load on the shop, each operation one transaction as the monolith would run it:
 * placing an order (order + lines + payment), paying, shipping, delivering, cancelling (lines
 * deleted, payment refunded), the catalog's many-to-many changes, and the fan-out cases —
 * renaming a product, a customer or a category, editing an address — whose every dependent
 * document must change. Sequential on one connection of the pool, paced to `ratePerSec`.
 */

export const SHOP_OP_KINDS = [
  'place_order',
  'pay',
  'ship',
  'deliver',
  'cancel',
  'categorize',
  'uncategorize',
  'rename_product',
  'rename_customer',
  'rename_category',
  'edit_address',
  'reprice',
  'review',
  'delete_review',
] as const;
export type ShopOpKind = (typeof SHOP_OP_KINDS)[number];

/** Relative weights of the default mix. */
const DEFAULT_MIX: Record<ShopOpKind, number> = {
  place_order: 6,
  pay: 4,
  ship: 3,
  deliver: 2,
  cancel: 1,
  categorize: 2,
  uncategorize: 2,
  rename_product: 1,
  rename_customer: 1,
  rename_category: 0.5,
  edit_address: 1,
  reprice: 2,
  review: 3,
  delete_review: 1,
};

export const shopWorkloadOptionsSchema = z.object({
  seed: z.union([z.number().int(), z.string().min(1)]),
  ratePerSec: z.number().positive(),
  durationMs: z.number().int().nonnegative(),
  /** Stop after this many attempted operations (tests), whatever the duration. */
  maxOps: z.number().int().positive().optional(),
  /** Relative weights; kinds left out keep the default weight. */
  mix: z.partialRecord(z.enum(SHOP_OP_KINDS), z.number().min(0)).optional(),
  signal: z.instanceof(AbortSignal).optional(),
});
export type ShopWorkloadOptions = z.input<typeof shopWorkloadOptionsSchema>;

export interface ShopWorkloadStats {
  /** Operations committed (one that found nothing to do is skipped, not counted). */
  ops: number;
  /** Rows inserted, updated or deleted: the row changes logical decoding carries. */
  rowChanges: number;
  /** Operations that failed and were rolled back. */
  errors: number;
  skipped: number;
  byKind: Record<ShopOpKind, number>;
  /** The first few error messages, for a report. */
  errorSamples: string[];
}

class Skip extends Error {}

interface Ctx {
  c: pg.PoolClient;
  rng: Random;
  rowChanges: number;
  now: () => string;
}

const int = z.union([z.number().int(), z.string().regex(/^\d+$/).transform(Number)]);

async function write(ctx: Ctx, sql: string, params: unknown[]): Promise<number> {
  const result = await ctx.c.query(sql, params);
  ctx.rowChanges += result.rowCount ?? 0;
  return result.rowCount ?? 0;
}

async function one<S extends z.ZodType>(
  ctx: Ctx,
  schema: S,
  sql: string,
  params: unknown[],
): Promise<z.output<S>> {
  const result = await ctx.c.query(sql, params);
  if (result.rows.length === 0) throw new Skip();
  return schema.parse(result.rows[0]);
}

/**
 * A random id of `table` whose row matches `where` ($2… are `params`): the first at or after a
 * random start, wrapping around; Skip when none matches.
 */
async function pick(ctx: Ctx, table: string, where = 'TRUE', params: unknown[] = []): Promise<number> {
  const { max } = await one(
    ctx,
    z.object({ max: int.nullable() }),
    `SELECT max(id) AS max FROM ${table}`,
    [],
  );
  if (max === null) throw new Skip();
  const start = ctx.rng.int(1, max);
  for (const from of [start, 0]) {
    const result = await ctx.c.query(
      `SELECT id FROM ${table} WHERE id >= $1 AND (${where}) ORDER BY id LIMIT 1`,
      [from, ...params],
    );
    const row = result.rows[0] as { id: unknown } | undefined;
    if (row !== undefined) return int.parse(row.id);
  }
  throw new Skip();
}

const OPS: Record<ShopOpKind, (ctx: Ctx) => Promise<void>> = {
  async place_order(ctx) {
    const customerId = await pick(ctx, 'customers');
    const address = await ctx.c.query(
      'SELECT id FROM addresses WHERE customer_id = $1 ORDER BY is_default DESC, id LIMIT 1',
      [customerId],
    );
    const addressRow = address.rows[0] as { id: unknown } | undefined;
    const addressId = addressRow === undefined ? null : int.parse(addressRow.id);
    const wanted = ctx.rng.int(1, 4);
    const lines: { productId: number; price: number; quantity: number }[] = [];
    for (let i = 0; i < wanted; i++) {
      const productId = await pick(ctx, 'products', 'active');
      if (lines.some((l) => l.productId === productId)) continue;
      const { price } = await one(
        ctx,
        z.object({ price: z.string() }),
        'SELECT price FROM products WHERE id = $1',
        [productId],
      );
      lines.push({
        productId,
        price: parseCents(price),
        quantity: ctx.rng.chance(0.8) ? 1 : ctx.rng.int(2, 4),
      });
    }
    const at = ctx.now();
    const order = await one(
      ctx,
      z.object({ id: int }),
      `INSERT INTO orders (customer_id, shipping_address_id, status, currency, note, placed_at, updated_at)
       VALUES ($1, $2, 'placed', 'EUR', $3, $4, $4) RETURNING id`,
      [customerId, addressId, ctx.rng.chance(0.2) ? 'Leave at the door' : null, at],
    );
    ctx.rowChanges++;
    let total = 0;
    for (const [i, line] of lines.entries()) {
      total += line.price * line.quantity;
      await write(
        ctx,
        `INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price, line_total)
         VALUES ($1, $2, $3, $4, $5, $6)`,
        [
          order.id,
          i + 1,
          line.productId,
          line.quantity,
          formatCents(line.price),
          formatCents(line.price * line.quantity),
        ],
      );
    }
    await write(
      ctx,
      `INSERT INTO payments (order_id, method, amount, status, created_at) VALUES ($1, $2, $3, 'authorized', $4)`,
      [order.id, ctx.rng.pick(PAYMENT_METHODS), formatCents(total), at],
    );
  },

  async pay(ctx) {
    const orderId = await pick(ctx, 'orders', "status = 'placed'");
    const at = ctx.now();
    if (ctx.rng.chance(0.15)) {
      // The authorisation fails; a second attempt is captured: two payments, the latest shown.
      await write(
        ctx,
        "UPDATE payments SET status = 'failed' WHERE order_id = $1 AND status = 'authorized'",
        [orderId],
      );
      await write(
        ctx,
        `INSERT INTO payments (order_id, method, amount, status, created_at)
         SELECT $1, 'card', CAST(COALESCE(SUM(line_total), 0) AS NUMERIC(12,2)), 'captured', $2
           FROM order_items WHERE order_id = $1`,
        [orderId, at],
      );
    } else {
      await write(
        ctx,
        "UPDATE payments SET status = 'captured' WHERE order_id = $1 AND status = 'authorized'",
        [orderId],
      );
    }
    await write(ctx, "UPDATE orders SET status = 'paid', updated_at = $2 WHERE id = $1", [orderId, at]);
  },

  async ship(ctx) {
    const orderId = await pick(ctx, 'orders', "status = 'paid'");
    const at = ctx.now();
    await write(
      ctx,
      'INSERT INTO shipments (order_id, carrier, tracking_no, shipped_at) VALUES ($1, $2, $3, $4)',
      [orderId, ctx.rng.pick(CARRIERS), `TRK${String(orderId).padStart(9, '0')}${ctx.rng.int(0, 9)}`, at],
    );
    await write(ctx, "UPDATE orders SET status = 'shipped', updated_at = $2 WHERE id = $1", [orderId, at]);
  },

  async deliver(ctx) {
    const shipmentId = await pick(ctx, 'shipments', 'delivered_at IS NULL');
    const at = ctx.now();
    const { order_id } = await one(
      ctx,
      z.object({ order_id: int }),
      'UPDATE shipments SET delivered_at = $2 WHERE id = $1 RETURNING order_id',
      [shipmentId, at],
    );
    ctx.rowChanges++;
    await write(
      ctx,
      "UPDATE orders SET status = 'delivered', updated_at = $2 WHERE id = $1 AND status = 'shipped'",
      [order_id, at],
    );
  },

  async cancel(ctx) {
    const orderId = await pick(ctx, 'orders', "status IN ('placed', 'paid')");
    const at = ctx.now();
    await write(ctx, 'DELETE FROM order_items WHERE order_id = $1', [orderId]);
    await write(
      ctx,
      "UPDATE payments SET status = 'refunded' WHERE order_id = $1 AND status IN ('authorized', 'captured')",
      [orderId],
    );
    await write(ctx, "UPDATE orders SET status = 'cancelled', updated_at = $2 WHERE id = $1", [orderId, at]);
  },

  async categorize(ctx) {
    const productId = await pick(ctx, 'products');
    const categoryId = await pick(
      ctx,
      'categories',
      'NOT EXISTS (SELECT 1 FROM product_categories pc WHERE pc.category_id = categories.id AND pc.product_id = $2)',
      [productId],
    );
    await write(
      ctx,
      'INSERT INTO product_categories (product_id, category_id, added_at) VALUES ($1, $2, $3)',
      [productId, categoryId, ctx.now()],
    );
  },

  async uncategorize(ctx) {
    const productId = await pick(
      ctx,
      'products',
      'EXISTS (SELECT 1 FROM product_categories pc WHERE pc.product_id = products.id)',
    );
    const linked = await ctx.c.query(
      'SELECT category_id FROM product_categories WHERE product_id = $1 ORDER BY category_id',
      [productId],
    );
    const ids = linked.rows.map((r: { category_id: unknown }) => int.parse(r.category_id));
    if (ids.length === 0) throw new Skip();
    const category_id = ctx.rng.pick(ids);
    await write(ctx, 'DELETE FROM product_categories WHERE product_id = $1 AND category_id = $2', [
      productId,
      category_id,
    ]);
  },

  async rename_product(ctx) {
    // Prefer a product that is on orders: the rename then fans out to their documents.
    const productId = await pick(
      ctx,
      'products',
      'EXISTS (SELECT 1 FROM order_items oi WHERE oi.product_id = products.id)',
    );
    await write(ctx, 'UPDATE products SET name = $2, updated_at = $3 WHERE id = $1', [
      productId,
      `${productName(ctx.rng)} Mk ${ctx.rng.int(2, 99)}`,
      ctx.now(),
    ]);
  },

  async rename_customer(ctx) {
    const customerId = await pick(
      ctx,
      'customers',
      'EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = customers.id)',
    );
    await write(ctx, 'UPDATE customers SET first_name = $2, last_name = $3, updated_at = $4 WHERE id = $1', [
      customerId,
      firstName(ctx.rng),
      `${lastName(ctx.rng)}-${lastName(ctx.rng)}`,
      ctx.now(),
    ]);
  },

  async rename_category(ctx) {
    const categoryId = await pick(ctx, 'categories');
    await write(ctx, "UPDATE categories SET name = split_part(name, ' #', 1) || ' #' || $2 WHERE id = $1", [
      categoryId,
      String(ctx.rng.int(1, 999)),
    ]);
  },

  async edit_address(ctx) {
    const addressId = await pick(ctx, 'addresses');
    await write(ctx, 'UPDATE addresses SET line1 = $2 WHERE id = $1', [addressId, streetLine(ctx.rng)]);
  },

  async reprice(ctx) {
    const productId = await pick(ctx, 'products');
    await write(ctx, 'UPDATE products SET price = $2, updated_at = $3 WHERE id = $1', [
      productId,
      formatCents(ctx.rng.int(199, 49_999)),
      ctx.now(),
    ]);
  },

  async review(ctx) {
    const productId = await pick(ctx, 'products');
    const customerId = await pick(ctx, 'customers');
    await write(
      ctx,
      'INSERT INTO reviews (product_id, customer_id, rating, title, body, created_at) VALUES ($1, $2, $3, $4, $5, $6)',
      [
        productId,
        customerId,
        ctx.rng.int(1, 5),
        reviewTitle(ctx.rng),
        ctx.rng.chance(0.5) ? null : `Written during the migration, take ${ctx.rng.int(1, 99)}.`,
        ctx.now(),
      ],
    );
  },

  async delete_review(ctx) {
    const reviewId = await pick(ctx, 'reviews');
    await write(ctx, 'DELETE FROM reviews WHERE id = $1', [reviewId]);
  },
};

/** A µs clock from the wall time that never repeats or goes back, so rows keep their order. */
function monotonicClock(): () => string {
  let last = 0;
  return () => {
    last = Math.max(Date.now() * 1000, last + 1);
    return formatMicros(last);
  };
}

function chooser(rng: Random, mix: Partial<Record<ShopOpKind, number>> | undefined): () => ShopOpKind {
  const weights = SHOP_OP_KINDS.map((k) => mix?.[k] ?? DEFAULT_MIX[k]);
  const total = weights.reduce((a, b) => a + b, 0);
  if (total <= 0) throw new RangeError('the operation mix has no positive weight');
  return () => {
    let r = rng.next() * total;
    for (const [i, kind] of SHOP_OP_KINDS.entries()) {
      r -= weights[i] as number;
      if (r < 0) return kind;
    }
    return SHOP_OP_KINDS[SHOP_OP_KINDS.length - 1] as ShopOpKind;
  };
}

/**
 * Runs operations for `durationMs` at about `ratePerSec` (or until `maxOps` attempts, or the
 * signal), each in its own transaction; a failed operation is rolled back and counted.
 */
export async function runShopWorkload(
  pool: pg.Pool,
  options: ShopWorkloadOptions,
): Promise<ShopWorkloadStats> {
  const opts = shopWorkloadOptionsSchema.parse(options);
  const rng = new Random(`workload:${opts.seed}`);
  const next = chooser(rng.fork('mix'), opts.mix);
  const stats: ShopWorkloadStats = {
    ops: 0,
    rowChanges: 0,
    errors: 0,
    skipped: 0,
    byKind: Object.fromEntries(SHOP_OP_KINDS.map((k) => [k, 0])) as Record<ShopOpKind, number>,
    errorSamples: [],
  };
  const c = await pool.connect();
  const ctx: Ctx = { c, rng, rowChanges: 0, now: monotonicClock() };
  const started = Date.now();
  const intervalMs = 1000 / opts.ratePerSec;
  try {
    for (let attempt = 0; ; attempt++) {
      if (opts.signal?.aborted) break;
      if (opts.maxOps !== undefined && attempt >= opts.maxOps) break;
      const due = started + attempt * intervalMs;
      // durationMs 0 with maxOps: no time limit. Behind the rate, the wall clock still ends the run.
      const timed = opts.maxOps === undefined || opts.durationMs > 0;
      if (timed && (due - started >= opts.durationMs || Date.now() - started >= opts.durationMs)) break;
      const wait = due - Date.now();
      if (wait > 0) {
        try {
          await sleep(wait, undefined, opts.signal ? { signal: opts.signal } : undefined);
        } catch {
          break; // aborted
        }
      }
      if (timed && Date.now() - started >= opts.durationMs) break;
      const kind = next();
      ctx.rowChanges = 0;
      await c.query('BEGIN');
      try {
        await OPS[kind](ctx);
        await c.query('COMMIT');
        stats.ops++;
        stats.byKind[kind]++;
        stats.rowChanges += ctx.rowChanges;
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        if (err instanceof Skip) stats.skipped++;
        else {
          stats.errors++;
          if (stats.errorSamples.length < 5) {
            stats.errorSamples.push(`${kind}: ${err instanceof Error ? err.message : String(err)}`);
          }
        }
      }
    }
  } finally {
    c.release();
  }
  return stats;
}
