import Big from 'big.js';
import type pg from 'pg';
import { z } from 'zod';
import { AdapterError } from '../../../index.js';
import { formatDatetime6, formatMoney, Random, WeightedChoice } from '../random.js';
import { type PgConnOptions, pgClient } from './db.js';

/**
 * A small write load on the PostgreSQL bank, each operation one transaction that keeps the
 * books balanced like the MariaDB workload does (balances = signed sum of the ledger,
 * balance_after the running balance). Sequential on one connection: it exists to give CDC
 * tests every kind of change (multi-table inserts, updates that do and do not touch mapped
 * clauses, deletes), not to load the server.
 */

export const PG_OP_KINDS = [
  'transfer',
  'card_payment',
  'card_status',
  'profile_edit',
  'kyc_status',
  'account_status',
  'remove_declined_payment',
] as const;
export type PgOpKind = (typeof PG_OP_KINDS)[number];

export const pgWorkloadOptionsSchema = z.object({
  seed: z.union([z.number().int(), z.string().min(1)]),
  ops: z.number().int().positive(),
  /** Relative weights; kinds left out weigh 1. */
  mix: z.partialRecord(z.enum(PG_OP_KINDS), z.number().min(0)).optional(),
});
export type PgWorkloadOptions = z.input<typeof pgWorkloadOptionsSchema>;

export interface PgWorkloadStats {
  /** Operations committed (an operation that found nothing to do counts as skipped). */
  ops: number;
  skipped: number;
  byKind: Record<PgOpKind, number>;
  /** Rows inserted, updated or deleted: the row changes logical decoding will carry. */
  rowChanges: number;
}

const idRow = z.object({ id: z.coerce.number().int() });
const balanceRow = z.object({
  account_id: z.coerce.number().int(),
  available: z.string(),
  ledger: z.string(),
});
const accountRow = z.object({ id: z.coerce.number().int(), currency_code: z.string(), status: z.string() });
const cardRow = z.object({
  id: z.coerce.number().int(),
  account_id: z.coerce.number().int(),
  status: z.string(),
});

class Skip extends Error {}

interface Ctx {
  c: pg.Client;
  rng: Random;
  rowChanges: number;
  /** Strictly increasing µs clock, so every account's ledger stays ordered. */
  clock: () => string;
}

async function rows<S extends z.ZodType>(
  ctx: Ctx,
  schema: S,
  sql: string,
  params: unknown[],
): Promise<z.output<S>[]> {
  const result = await ctx.c.query(sql, params);
  return result.rows.map((r) => schema.parse(r));
}

async function write(ctx: Ctx, sql: string, params: unknown[]): Promise<number> {
  const result = await ctx.c.query(sql, params);
  ctx.rowChanges += result.rowCount ?? 0;
  return result.rowCount ?? 0;
}

/**
 * A random row id of `table` matching `where` (its parameters from $2): the first at or after
 * a random start, wrapping around.
 */
async function pick(ctx: Ctx, table: string, where: string, params: unknown[] = []): Promise<number> {
  const [max] = await rows(
    ctx,
    z.object({ max: z.coerce.number().nullable() }),
    `SELECT max(id) AS max FROM ${table}`,
    [],
  );
  const start = ctx.rng.int(1, Math.max(1, max?.max ?? 1));
  for (const from of [start, 0]) {
    const [row] = await rows(
      ctx,
      idRow,
      `SELECT id FROM ${table} WHERE id >= $1 AND ${where} ORDER BY id LIMIT 1`,
      [from, ...params],
    );
    if (row) return row.id;
  }
  throw new Skip();
}

async function post(
  ctx: Ctx,
  balance: z.infer<typeof balanceRow>,
  currency: string,
  direction: 'debit' | 'credit',
  amount: string,
  description: string,
  refs: { merchantId?: number; transferId?: number; paymentId?: number },
  at: string,
): Promise<void> {
  const signed = direction === 'credit' ? Big(amount) : Big(amount).neg();
  const ledger = Big(balance.ledger).plus(signed).toFixed(4);
  const available = Big(balance.available).plus(signed).toFixed(4);
  await write(
    ctx,
    `INSERT INTO transactions (account_id, direction, amount, currency_code, balance_after, description, merchant_id, transfer_id, payment_id, posted_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [
      balance.account_id,
      direction,
      amount,
      currency,
      ledger,
      description,
      refs.merchantId ?? null,
      refs.transferId ?? null,
      refs.paymentId ?? null,
      at,
    ],
  );
  await write(ctx, 'UPDATE balances SET available = $1, ledger = $2, updated_at = $3 WHERE account_id = $4', [
    available,
    ledger,
    at,
    balance.account_id,
  ]);
}

async function lockBalances(ctx: Ctx, ids: number[]): Promise<Map<number, z.infer<typeof balanceRow>>> {
  const locked = await rows(
    ctx,
    balanceRow,
    'SELECT account_id, available, ledger FROM balances WHERE account_id = ANY($1) ORDER BY account_id FOR UPDATE',
    [ids],
  );
  return new Map(locked.map((b) => [b.account_id, b]));
}

const OPS: Record<PgOpKind, (ctx: Ctx) => Promise<void>> = {
  async transfer(ctx) {
    const fromId = await pick(ctx, 'accounts', "status = 'active'");
    const [from] = await rows(
      ctx,
      accountRow,
      'SELECT id, currency_code, status FROM accounts WHERE id = $1',
      [fromId],
    );
    if (!from) throw new Skip();
    const toId = await pick(ctx, 'accounts', "status = 'active' AND currency_code = $2 AND id <> $3", [
      from.currency_code,
      fromId,
    ]);
    const balances = await lockBalances(ctx, [fromId, toId]);
    const src = balances.get(fromId);
    const dst = balances.get(toId);
    if (!src || !dst) throw new Skip();
    const amount = formatMoney(ctx.rng.int(10, 500) * 100);
    const at = ctx.clock();
    const enough = Big(src.available).gte(amount);
    const [transfer] = await rows(
      ctx,
      idRow,
      `INSERT INTO transfers (from_account_id, to_account_id, amount, currency_code, status, reference, created_at, completed_at)
       VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7) RETURNING id`,
      [fromId, toId, amount, from.currency_code, enough ? 'completed' : 'failed', at, enough ? at : null],
    );
    ctx.rowChanges++;
    if (!transfer) throw new Skip();
    // The reference is derived from the id, so it is set by an update: one more row change.
    await write(ctx, 'UPDATE transfers SET reference = $1 WHERE id = $2', [
      `TRF${String(transfer.id).padStart(10, '0')}`,
      transfer.id,
    ]);
    if (!enough) return;
    await post(
      ctx,
      src,
      from.currency_code,
      'debit',
      amount,
      `Transfer to account ${toId}`,
      { transferId: transfer.id },
      at,
    );
    await post(
      ctx,
      dst,
      from.currency_code,
      'credit',
      amount,
      `Transfer from account ${fromId}`,
      { transferId: transfer.id },
      at,
    );
  },
  async card_payment(ctx) {
    const cardId = await pick(ctx, 'cards', "status = 'active'");
    const [card] = await rows(ctx, cardRow, 'SELECT id, account_id, status FROM cards WHERE id = $1', [
      cardId,
    ]);
    if (!card) throw new Skip();
    const [account] = await rows(
      ctx,
      accountRow,
      'SELECT id, currency_code, status FROM accounts WHERE id = $1',
      [card.account_id],
    );
    const balance = (await lockBalances(ctx, [card.account_id])).get(card.account_id);
    if (!account || !balance) throw new Skip();
    const merchantId = await pick(ctx, 'merchants', 'TRUE');
    const amount = formatMoney(ctx.rng.int(150, 30_000));
    const declined = account.status !== 'active' || Big(balance.available).lt(amount);
    const at = ctx.clock();
    const [payment] = await rows(
      ctx,
      idRow,
      'INSERT INTO payments (account_id, card_id, merchant_id, amount, status, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id',
      [card.account_id, card.id, merchantId, amount, declined ? 'declined' : 'captured', at],
    );
    ctx.rowChanges++;
    if (declined || !payment) return;
    await post(
      ctx,
      balance,
      account.currency_code,
      'debit',
      amount,
      `POS merchant ${merchantId}`,
      { merchantId, paymentId: payment.id },
      at,
    );
  },
  async card_status(ctx) {
    const cardId = await pick(ctx, 'cards', "status IN ('active', 'blocked')");
    await write(
      ctx,
      "UPDATE cards SET status = CASE status WHEN 'active' THEN 'blocked' ELSE 'active' END, updated_at = $1 WHERE id = $2",
      [ctx.clock(), cardId],
    );
  },
  async profile_edit(ctx) {
    const id = await pick(ctx, 'customers', 'TRUE');
    // Phone only: an update no clause of the customers rule names (the generic CustomerUpdated).
    if (ctx.rng.chance(0.5)) {
      await write(ctx, 'UPDATE customers SET phone = $1, updated_at = $2 WHERE id = $3', [
        `+44 7${ctx.rng.int(100_000_000, 999_999_999)}`,
        ctx.clock(),
        id,
      ]);
      return;
    }
    await write(
      ctx,
      "UPDATE customers SET email = 'c' || id || '.' || $1 || '@example.org', updated_at = $2 WHERE id = $3",
      [ctx.rng.int(1, 1_000_000), ctx.clock(), id],
    );
  },
  async kyc_status(ctx) {
    const id = await pick(ctx, 'customers', "kyc_status <> 'verified'");
    await write(ctx, "UPDATE customers SET kyc_status = 'verified', updated_at = $1 WHERE id = $2", [
      ctx.clock(),
      id,
    ]);
  },
  async account_status(ctx) {
    const id = await pick(ctx, 'accounts', "status IN ('active', 'frozen')");
    await write(
      ctx,
      "UPDATE accounts SET status = CASE status WHEN 'active' THEN 'frozen' ELSE 'active' END, updated_at = $1 WHERE id = $2",
      [ctx.clock(), id],
    );
  },
  async remove_declined_payment(ctx) {
    const id = await pick(ctx, 'payments', "status = 'declined'");
    await write(ctx, 'DELETE FROM payments WHERE id = $1', [id]);
  },
};

/** Runs `ops` operations drawn from `mix` by a generator seeded with `seed`. */
export async function runPgWorkload(
  conn: PgConnOptions,
  database: string,
  options: PgWorkloadOptions,
): Promise<PgWorkloadStats> {
  const opts = pgWorkloadOptionsSchema.parse(options);
  const rng = new Random(opts.seed);
  const choice = new WeightedChoice(PG_OP_KINDS.map((k) => [k, opts.mix?.[k] ?? 1] as const));
  let last = Date.now() * 1000;
  const c = pgClient(conn, database);
  await c.connect();
  const ctx: Ctx = {
    c,
    rng,
    rowChanges: 0,
    clock: () => {
      last = Math.max(last + 1, Date.now() * 1000);
      return formatDatetime6(last);
    },
  };
  const stats: PgWorkloadStats = {
    ops: 0,
    skipped: 0,
    byKind: Object.fromEntries(PG_OP_KINDS.map((k) => [k, 0])) as Record<PgOpKind, number>,
    rowChanges: 0,
  };
  try {
    for (let i = 0; i < opts.ops; i++) {
      const kind = choice.pick(rng);
      const before = ctx.rowChanges;
      await c.query('BEGIN');
      try {
        await OPS[kind](ctx);
        await c.query('COMMIT');
        stats.ops++;
        stats.byKind[kind]++;
      } catch (err) {
        await c.query('ROLLBACK');
        ctx.rowChanges = before;
        if (!(err instanceof Skip))
          throw new AdapterError('WORKLOAD_FAILED', `operation ${kind} failed`, { cause: err });
        stats.skipped++;
      }
    }
  } finally {
    await c.end();
  }
  stats.rowChanges = ctx.rowChanges;
  return stats;
}
