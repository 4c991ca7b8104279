import Big from 'big.js';
import type { Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { type Logger, pino } from 'pino';
import { z } from 'zod';
import { AdapterError, ConfigError, errorMessage } from '../../index.js';

const silentLogger: Logger = pino({ level: 'silent' });

import { queryRows } from './db.js';
import { formatDatetime6, formatMoney, parseDatetime6, Random, WeightedChoice } from './random.js';

/**
 * Write load on the legacy bank, the way its CRUD application would produce it: every
 * operation is one database transaction that keeps the books balanced —
 * balances.available = balances.ledger = signed sum of the account's ledger rows, with
 * balance_after the running balance in (posted_at, id) order, and never below zero.
 *
 * Balances are locked with SELECT … FOR UPDATE in ascending account id, before any other
 * lock of the transaction, so two operations never wait on each other in a cycle; the few
 * deadlocks InnoDB still reports (gap locks on inserts) are retried.
 */

export const OP_KINDS = [
  'transfer',
  'card_payment',
  'deposit',
  'card_status',
  'profile_edit',
  'loan_repayment',
  'open_loan',
  'account_status',
  'open_account',
  'issue_card',
] as const;
export type OpKind = (typeof OP_KINDS)[number];

/**
 * Deposits and new loans bring money in as payments and repayments take it out, so a long
 * run settles into a steady state instead of draining every account.
 */
export const DEFAULT_MIX: Record<OpKind, number> = {
  transfer: 30,
  card_payment: 33,
  deposit: 6,
  card_status: 5,
  profile_edit: 8,
  loan_repayment: 6,
  open_loan: 2,
  account_status: 4,
  open_account: 3,
  issue_card: 3,
};

export const workloadOptionsSchema = z
  .object({
    seed: z.union([z.number().int(), z.string().min(1)]),
    /** Operations started per second, on a steady schedule (op k is due at k / rate). */
    ratePerSec: z.number().positive().max(100_000),
    durationMs: z.number().int().positive().optional(),
    maxOps: z.number().int().positive().optional(),
    /** Relative weights; kinds left out keep their DEFAULT_MIX weight, 0 disables a kind. */
    mix: z.partialRecord(z.enum(OP_KINDS), z.number().min(0)).optional(),
    /** Operations in flight at once, each on its own pooled connection. */
    concurrency: z.number().int().min(1).max(64).default(4),
    /** Attempts of one operation after a deadlock or lock-wait timeout. */
    maxRetries: z.number().int().min(0).max(50).default(5),
  })
  .strict();
export type WorkloadOptions = z.input<typeof workloadOptionsSchema> & { logger?: Logger };

export interface WorkloadStats {
  /** Operations committed. */
  ops: number;
  byKind: Record<OpKind, number>;
  /** Operations that found nothing to do (e.g. a frozen account) and rolled back. */
  skipped: Record<OpKind, number>;
  /** Transfers recorded as failed for insufficient funds, payments declined. */
  failedTransfers: number;
  declinedPayments: number;
  /** Operations given up on after an error. */
  errors: number;
  /** Deadlock / lock-timeout retries. */
  retries: number;
  /** Rows inserted or actually changed: what a binlog reader sees as row events. */
  rowChanges: number;
  elapsedMs: number;
}

// ---------------------------------------------------------------------------------------

/** Thrown inside an operation to roll it back without counting an error. */
class Skip extends Error {}

/** Tables whose rows an operation draws (findFrom). */
type DrawnTable = 'accounts' | 'cards' | 'loans';

/** What an operation may touch, sampled once at the start and grown as it opens rows. */
interface Universe {
  maxAccountId: number;
  maxCustomerId: number;
  maxCardId: number;
  maxMerchantId: number;
  products: { id: number; currency: string }[];
  /** Every id of the tables operations draw rows of, so a draw lands on a row, not in a gap. */
  ids: Record<DrawnTable, number[]>;
}

interface OpContext {
  conn: PoolConnection;
  rng: Random;
  universe: Universe;
  rowChanges: number;
  outcome: 'done' | 'failed_transfer' | 'declined_payment';
}

const balanceLockRow = z.object({
  account_id: z.number(),
  available: z.string(),
  ledger: z.string(),
  updated_at: z.string(),
});
type LockedBalance = z.infer<typeof balanceLockRow>;
const accountStateRow = z.object({
  id: z.number(),
  customer_id: z.number(),
  account_number: z.string(),
  status: z.string(),
  currency_code: z.string(),
});
type AccountState = z.infer<typeof accountStateRow>;

/** Runs a write and counts the rows a binlog reader will see (unchanged UPDATE rows are not logged). */
async function write(ctx: OpContext, sql: string, params: unknown[]): Promise<ResultSetHeader> {
  const [result] = await ctx.conn.query<ResultSetHeader>(sql, params);
  ctx.rowChanges += sql.startsWith('UPDATE') ? result.changedRows : result.affectedRows;
  return result;
}

/**
 * A row of `table` matching `where`, drawn uniformly: the first match at or after a drawn id
 * (wrapping around to the lowest), null when none. The id is drawn among the table's ids, not
 * between 1 and its highest: ids have gaps (rolled-back inserts), and the row after a gap took
 * every draw that fell in it. An account after a 1,042-id gap got 8.6% of every operation on
 * accounts, and the bench's CDC runs grew its cards and one day's postings without bound.
 */
async function findFrom(
  ctx: OpContext,
  table: DrawnTable,
  where: string,
  params: unknown[],
): Promise<number | null> {
  const ids = ctx.universe.ids[table];
  if (ids.length === 0) return null;
  const start = ids[ctx.rng.int(0, ids.length - 1)] as number;
  const idRow = z.object({ id: z.number() });
  for (const from of [start, 0]) {
    const rows = await queryRows(
      ctx.conn,
      idRow,
      `SELECT id FROM ${table} WHERE id >= ? AND ${where} ORDER BY id LIMIT 1`,
      [from, ...params],
    );
    if (rows[0]) return rows[0].id;
  }
  return null;
}

/** Locks the balances of `ids` in ascending id order; returns them by account id. */
async function lockBalances(ctx: OpContext, ids: number[]): Promise<Map<number, LockedBalance>> {
  const sorted = [...new Set(ids)].sort((a, b) => a - b);
  const rows = await queryRows(
    ctx.conn,
    balanceLockRow,
    `SELECT account_id, available, ledger, updated_at FROM balances WHERE account_id IN (${sorted.map(() => '?').join(',')}) ORDER BY account_id FOR UPDATE`,
    sorted,
  );
  return new Map(rows.map((r) => [r.account_id, r]));
}

async function accountStates(ctx: OpContext, ids: number[]): Promise<Map<number, AccountState>> {
  const rows = await queryRows(
    ctx.conn,
    accountStateRow,
    `SELECT id, customer_id, account_number, status, currency_code FROM accounts WHERE id IN (${ids.map(() => '?').join(',')}) LOCK IN SHARE MODE`,
    ids,
  );
  return new Map(rows.map((r) => [r.id, r]));
}

/**
 * The posting time: the database's UTC clock, but strictly after the last posting of every
 * locked account, so each account's ledger stays ordered even if the clock steps back.
 */
async function postingTime(ctx: OpContext, locked: LockedBalance[]): Promise<string> {
  const [rows] = await ctx.conn.query<RowDataPacket[]>('SELECT UTC_TIMESTAMP(6) AS now');
  let at = parseDatetime6(z.string().parse(rows[0]?.now));
  for (const b of locked) at = Math.max(at, parseDatetime6(b.updated_at) + 1);
  return formatDatetime6(at);
}

async function post(
  ctx: OpContext,
  balance: LockedBalance,
  currency: string,
  direction: 'debit' | 'credit',
  amount: string,
  description: string,
  refs: { merchantId?: number; transferId?: number; paymentId?: number },
  at: string,
): Promise<void> {
  const after = (
    direction === 'credit' ? Big(balance.ledger).plus(amount) : Big(balance.ledger).minus(amount)
  ).toFixed(4);
  const available = (
    direction === 'credit' ? Big(balance.available).plus(amount) : Big(balance.available).minus(amount)
  ).toFixed(4);
  await write(
    ctx,
    'INSERT INTO transactions (account_id, direction, amount, currency_code, balance_after, description, merchant_id, transfer_id, payment_id, posted_at) VALUES (?,?,?,?,?,?,?,?,?,?)',
    [
      balance.account_id,
      direction,
      amount,
      currency,
      after,
      description,
      refs.merchantId ?? null,
      refs.transferId ?? null,
      refs.paymentId ?? null,
      at,
    ],
  );
  await write(ctx, 'UPDATE balances SET available = ?, ledger = ?, updated_at = ? WHERE account_id = ?', [
    available,
    after,
    at,
    balance.account_id,
  ]);
  balance.available = available;
  balance.ledger = after;
  balance.updated_at = at;
}

// --- operations ------------------------------------------------------------------------

async function transfer(ctx: OpContext): Promise<void> {
  const { rng } = ctx;
  const from = await findFrom(ctx, 'accounts', "status = 'active'", []);
  if (from === null) throw new Skip();
  const to = await findFrom(
    ctx,
    'accounts',
    "id <> ? AND status = 'active' AND currency_code = (SELECT currency_code FROM accounts WHERE id = ?)",
    [from, from],
  );
  if (to === null) throw new Skip();
  const amount = formatMoney(rng.int(1_000, 50_000));
  const reference = `WL${rng.int(0, 2 ** 31)}`;

  await ctx.conn.query('BEGIN');
  const balances = await lockBalances(ctx, [from, to]);
  const accounts = await accountStates(ctx, [from, to]);
  const a = accounts.get(from);
  const b = accounts.get(to);
  const fromBalance = balances.get(from);
  const toBalance = balances.get(to);
  if (!a || !b || !fromBalance || !toBalance) throw new Skip();
  if (a.status !== 'active' || b.status !== 'active' || a.currency_code !== b.currency_code) throw new Skip();

  const at = await postingTime(ctx, [fromBalance, toBalance]);
  const inserted = await write(
    ctx,
    "INSERT INTO transfers (from_account_id, to_account_id, amount, currency_code, status, reference, created_at) VALUES (?,?,?,?,'pending',?,?)",
    [from, to, amount, a.currency_code, reference, at],
  );
  const transferId = inserted.insertId;
  if (Big(fromBalance.available).lt(amount)) {
    await write(ctx, "UPDATE transfers SET status = 'failed' WHERE id = ?", [transferId]);
    ctx.outcome = 'failed_transfer';
    return;
  }
  await post(
    ctx,
    fromBalance,
    a.currency_code,
    'debit',
    amount,
    `Transfer to ${b.account_number}`,
    { transferId },
    at,
  );
  await post(
    ctx,
    toBalance,
    a.currency_code,
    'credit',
    amount,
    `Transfer from ${a.account_number}`,
    { transferId },
    at,
  );
  await write(ctx, "UPDATE transfers SET status = 'completed', completed_at = ? WHERE id = ?", [
    at,
    transferId,
  ]);
}

async function cardPayment(ctx: OpContext): Promise<void> {
  const { rng, universe } = ctx;
  const cardId = await findFrom(ctx, 'cards', "status = 'active'", []);
  if (cardId === null) throw new Skip();
  const merchantId = rng.int(1, universe.maxMerchantId);
  const r = rng.next();
  const amount = formatMoney(150 + Math.floor(r * r * 30_000));

  const cards = await queryRows(
    ctx.conn,
    z.object({ account_id: z.number() }),
    'SELECT account_id FROM cards WHERE id = ?',
    [cardId],
  );
  const merchants = await queryRows(
    ctx.conn,
    z.object({ name: z.string() }),
    'SELECT name FROM merchants WHERE id = ?',
    [merchantId],
  );
  const accountId = cards[0]?.account_id;
  const merchant = merchants[0]?.name;
  if (accountId === undefined || merchant === undefined) throw new Skip();

  await ctx.conn.query('BEGIN');
  const balance = (await lockBalances(ctx, [accountId])).get(accountId);
  const account = (await accountStates(ctx, [accountId])).get(accountId);
  if (!balance || !account) throw new Skip();
  const at = await postingTime(ctx, [balance]);
  const declined = account.status !== 'active' || Big(balance.available).lt(amount);
  const inserted = await write(
    ctx,
    'INSERT INTO payments (account_id, card_id, merchant_id, amount, status, created_at) VALUES (?,?,?,?,?,?)',
    [accountId, cardId, merchantId, amount, declined ? 'declined' : 'captured', at],
  );
  if (declined) {
    ctx.outcome = 'declined_payment';
    return;
  }
  await post(
    ctx,
    balance,
    account.currency_code,
    'debit',
    amount,
    `POS ${merchant}`,
    {
      merchantId,
      paymentId: inserted.insertId,
    },
    at,
  );
}

async function cardStatus(ctx: OpContext): Promise<void> {
  const { rng, universe } = ctx;
  const cardId = rng.int(1, universe.maxCardId);
  await ctx.conn.query('BEGIN');
  const rows = await queryRows(
    ctx.conn,
    z.object({ status: z.string() }),
    'SELECT status FROM cards WHERE id = ? FOR UPDATE',
    [cardId],
  );
  const current = rows[0]?.status;
  const next =
    current === 'active' ? (rng.chance(0.75) ? 'blocked' : 'lost') : current === 'blocked' ? 'active' : null;
  if (next === null) throw new Skip();
  await write(ctx, 'UPDATE cards SET status = ?, updated_at = UTC_TIMESTAMP(6) WHERE id = ?', [next, cardId]);
}

const NEW_LAST_NAMES = [
  'Andersen',
  'Berg',
  'Castillo',
  'Duarte',
  'Engel',
  'Forde',
  'Gallo',
  'Haas',
  'Iversen',
  'Jovanovic',
];
const NEW_FIRST_NAMES = ['Alex', 'Billie', 'Chris', 'Dani', 'Eli', 'Frankie', 'Gabi', 'Jo', 'Kim', 'Robin'];
const DOMAINS = ['example.com', 'example.org', 'example.net', 'mail.example'];

async function profileEdit(ctx: OpContext): Promise<void> {
  const { rng, universe } = ctx;
  const customerId = rng.int(1, universe.maxCustomerId);
  const change = rng.weighted([
    ['last_name', 4],
    ['email', 3],
    ['first_name_and_email', 3],
  ] as const);
  await ctx.conn.query('BEGIN');
  const rows = await queryRows(
    ctx.conn,
    z.object({ first_name: z.string(), last_name: z.string() }),
    'SELECT first_name, last_name FROM customers WHERE id = ? FOR UPDATE',
    [customerId],
  );
  const customer = rows[0];
  if (!customer) throw new Skip();
  let first = customer.first_name;
  let last = customer.last_name;
  if (change === 'last_name') last = rng.pick(NEW_LAST_NAMES);
  if (change === 'first_name_and_email') first = rng.pick(NEW_FIRST_NAMES);
  if (change === 'last_name') {
    await write(ctx, 'UPDATE customers SET last_name = ?, updated_at = UTC_TIMESTAMP(6) WHERE id = ?', [
      last,
      customerId,
    ]);
    return;
  }
  // Letters then the customer id end the local part, so no two customers can collide.
  const tag = String.fromCharCode(97 + rng.int(0, 25), 97 + rng.int(0, 25));
  const email = `${first}.${last}.${tag}${customerId}@${rng.pick(DOMAINS)}`.toLowerCase();
  await write(
    ctx,
    'UPDATE customers SET first_name = ?, email = ?, updated_at = UTC_TIMESTAMP(6) WHERE id = ?',
    [first, email, customerId],
  );
}

async function loanRepayment(ctx: OpContext): Promise<void> {
  const { rng } = ctx;
  const loanId = await findFrom(ctx, 'loans', "status = 'active'", []);
  if (loanId === null) throw new Skip();
  const installments = rng.int(3, 12);
  const loanRow = z.object({
    account_id: z.number(),
    principal: z.string(),
    outstanding: z.string(),
    status: z.string(),
  });
  const found = await queryRows(
    ctx.conn,
    loanRow,
    'SELECT account_id, principal, outstanding, status FROM loans WHERE id = ?',
    [loanId],
  );
  const accountId = found[0]?.account_id;
  if (accountId === undefined) throw new Skip();

  await ctx.conn.query('BEGIN');
  // Balance first, like every other operation, then the loan.
  const balance = (await lockBalances(ctx, [accountId])).get(accountId);
  const loan = (
    await queryRows(
      ctx.conn,
      loanRow,
      'SELECT account_id, principal, outstanding, status FROM loans WHERE id = ? FOR UPDATE',
      [loanId],
    )
  )[0];
  const account = (await accountStates(ctx, [accountId])).get(accountId);
  if (!balance || !loan || !account || loan.status !== 'active' || account.status !== 'active')
    throw new Skip();
  const outstanding = Big(loan.outstanding);
  if (outstanding.lte(0)) throw new Skip();
  // A short account pays what it can: the smallest of installment, debt and whole cents available.
  const available = Big(balance.available).round(2, Big.roundDown);
  const installment = Big(loan.principal).div(installments).round(2, Big.roundUp);
  const amount = [installment, outstanding, available].reduce((a, b) => (b.lt(a) ? b : a)).toFixed(4);
  if (Big(amount).lt(1)) throw new Skip();

  const at = await postingTime(ctx, [balance]);
  await post(ctx, balance, account.currency_code, 'debit', amount, `Loan repayment L${loanId}`, {}, at);
  const left = outstanding.minus(amount);
  await write(ctx, 'UPDATE loans SET outstanding = ?, status = ?, updated_at = ? WHERE id = ?', [
    left.toFixed(4),
    left.eq(0) ? 'repaid' : 'active',
    at,
    loanId,
  ]);
}

const EMPLOYERS = ['Acme Corp', 'Globex', 'Initech', 'Umbrella Ltd'];

async function deposit(ctx: OpContext): Promise<void> {
  const { rng } = ctx;
  const accountId = await findFrom(ctx, 'accounts', "status = 'active'", []);
  if (accountId === null) throw new Skip();
  const salary = rng.chance(0.5);
  const amount = formatMoney(salary ? rng.int(1_500, 6_000) * 100 : rng.int(2_000, 100_000));
  const description = salary ? `Salary ${rng.pick(EMPLOYERS)}` : 'Cash deposit';
  await ctx.conn.query('BEGIN');
  const balance = (await lockBalances(ctx, [accountId])).get(accountId);
  const account = (await accountStates(ctx, [accountId])).get(accountId);
  if (!balance || account?.status !== 'active') throw new Skip();
  const at = await postingTime(ctx, [balance]);
  await post(ctx, balance, account.currency_code, 'credit', amount, description, {}, at);
}

async function openLoan(ctx: OpContext): Promise<void> {
  const { rng, universe } = ctx;
  const accountId = await findFrom(ctx, 'accounts', "status = 'active'", []);
  if (accountId === null) throw new Skip();
  const principal = formatMoney(rng.int(10, 200) * 10_000);
  const rate = `${rng.int(3, 12)}.${String(rng.int(0, 99)).padStart(2, '0')}00`;
  const months = rng.int(3, 24);
  await ctx.conn.query('BEGIN');
  const balance = (await lockBalances(ctx, [accountId])).get(accountId);
  const account = (await accountStates(ctx, [accountId])).get(accountId);
  if (!balance || account?.status !== 'active') throw new Skip();
  const at = await postingTime(ctx, [balance]);
  const inserted = await write(
    ctx,
    "INSERT INTO loans (customer_id, account_id, principal, outstanding, interest_rate, status, opened_at, maturity_date, updated_at) VALUES (?,?,?,?,?,'active',?,DATE_ADD(DATE(?), INTERVAL ? MONTH),?)",
    [account.customer_id, accountId, principal, principal, rate, at, at, months, at],
  );
  universe.ids.loans.push(inserted.insertId);
  await post(
    ctx,
    balance,
    account.currency_code,
    'credit',
    principal,
    `Loan disbursement L${inserted.insertId}`,
    {},
    at,
  );
}

async function accountStatus(ctx: OpContext): Promise<void> {
  const { rng, universe } = ctx;
  // Half the time thaw a frozen account, so freezes do not pile up over a long run.
  const accountId = rng.chance(0.5)
    ? await findFrom(ctx, 'accounts', "status = 'frozen'", [])
    : rng.int(1, universe.maxAccountId);
  if (accountId === null) throw new Skip();
  await ctx.conn.query('BEGIN');
  const rows = await queryRows(
    ctx.conn,
    z.object({ status: z.string() }),
    'SELECT status FROM accounts WHERE id = ? FOR UPDATE',
    [accountId],
  );
  const current = rows[0]?.status;
  const next = current === 'active' ? 'frozen' : current === 'frozen' ? 'active' : null;
  if (next === null) throw new Skip();
  await write(ctx, 'UPDATE accounts SET status = ?, updated_at = UTC_TIMESTAMP(6) WHERE id = ?', [
    next,
    accountId,
  ]);
}

async function openAccount(ctx: OpContext): Promise<void> {
  const { rng, universe } = ctx;
  const customerId = rng.int(1, universe.maxCustomerId);
  const product = rng.pick(universe.products);
  const opening = formatMoney(rng.int(1_000, 300_000));
  // The legacy app drew account numbers at random and retried on a clash.
  const number = `GB${rng.int(10, 99)}LGCW${String(rng.int(0, 99_999_999)).padStart(8, '0')}${String(rng.int(0, 999_999)).padStart(6, '0')}`;
  await ctx.conn.query('BEGIN');
  const customers = await queryRows(
    ctx.conn,
    z.object({ branch_id: z.number() }),
    'SELECT branch_id FROM customers WHERE id = ? LOCK IN SHARE MODE',
    [customerId],
  );
  const branchId = customers[0]?.branch_id;
  if (branchId === undefined) throw new Skip();
  const at = await postingTime(ctx, []);
  const inserted = await write(
    ctx,
    "INSERT INTO accounts (account_number, customer_id, product_id, branch_id, currency_code, status, opened_at, updated_at) VALUES (?,?,?,?,?,'active',?,?)",
    [number, customerId, product.id, branchId, product.currency, at, at],
  );
  const accountId = inserted.insertId;
  await write(ctx, 'INSERT INTO balances (account_id, available, ledger, updated_at) VALUES (?,?,?,?)', [
    accountId,
    '0.0000',
    '0.0000',
    at,
  ]);
  const balance: LockedBalance = {
    account_id: accountId,
    available: '0.0000',
    ledger: '0.0000',
    updated_at: at,
  };
  await post(ctx, balance, product.currency, 'credit', opening, 'Opening deposit', {}, at);
  universe.maxAccountId = Math.max(universe.maxAccountId, accountId);
  universe.ids.accounts.push(accountId);
}

async function issueCard(ctx: OpContext): Promise<void> {
  const { rng, universe } = ctx;
  const accountId = await findFrom(ctx, 'accounts', "status = 'active'", []);
  if (accountId === null) throw new Skip();
  const type = rng.weighted([
    ['debit', 6],
    ['virtual', 3],
    ['credit', 1],
  ] as const);
  const pan = `${type === 'credit' ? '5' : '4'}${rng.int(100, 999)} **** **** ${String(rng.int(0, 9999)).padStart(4, '0')}`;
  await ctx.conn.query('BEGIN');
  const account = (await accountStates(ctx, [accountId])).get(accountId);
  if (account?.status !== 'active') throw new Skip();
  const inserted = await write(
    ctx,
    "INSERT INTO cards (account_id, masked_pan, card_type, status, expires_on, issued_at, updated_at) VALUES (?,?,?,'active',DATE_ADD(UTC_DATE(), INTERVAL 4 YEAR),UTC_TIMESTAMP(6),UTC_TIMESTAMP(6))",
    [accountId, pan, type],
  );
  universe.maxCardId = Math.max(universe.maxCardId, inserted.insertId);
  universe.ids.cards.push(inserted.insertId);
}

const OPERATIONS: Record<OpKind, (ctx: OpContext) => Promise<void>> = {
  transfer,
  card_payment: cardPayment,
  deposit,
  card_status: cardStatus,
  profile_edit: profileEdit,
  loan_repayment: loanRepayment,
  open_loan: openLoan,
  account_status: accountStatus,
  open_account: openAccount,
  issue_card: issueCard,
};

// --- driver ----------------------------------------------------------------------------

async function loadUniverse(pool: Pool): Promise<Universe> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT (SELECT COALESCE(MAX(id), 0) FROM accounts) AS accounts,
            (SELECT COALESCE(MAX(id), 0) FROM customers) AS customers,
            (SELECT COALESCE(MAX(id), 0) FROM cards) AS cards,
            (SELECT COALESCE(MAX(id), 0) FROM merchants) AS merchants`,
  );
  // MAX over an unsigned column with a 0 fallback comes back as DECIMAL text.
  const max = z
    .object({
      accounts: z.coerce.number(),
      customers: z.coerce.number(),
      cards: z.coerce.number(),
      merchants: z.coerce.number(),
    })
    .parse(rows[0]);
  const [products] = await pool.query<RowDataPacket[]>('SELECT id, currency_code FROM products ORDER BY id');
  const ids = {} as Record<DrawnTable, number[]>;
  for (const table of ['accounts', 'cards', 'loans'] as const) {
    const [idRows] = await pool.query<RowDataPacket[]>({
      sql: `SELECT id FROM ${table} ORDER BY id`,
      rowsAsArray: true,
    });
    ids[table] = z
      .array(z.tuple([z.number()]))
      .parse(idRows)
      .map(([id]) => id);
  }
  const universe: Universe = {
    ids,
    maxAccountId: max.accounts,
    maxCustomerId: max.customers,
    maxCardId: max.cards,
    maxMerchantId: max.merchants,
    products: products
      .map((p) => z.object({ id: z.number(), currency_code: z.string() }).parse(p))
      .map((p) => ({
        id: p.id,
        currency: p.currency_code,
      })),
  };
  if (
    universe.maxAccountId === 0 ||
    universe.maxCustomerId === 0 ||
    universe.maxMerchantId === 0 ||
    universe.products.length === 0
  ) {
    throw new AdapterError(
      'BANK_EMPTY',
      'the bank has no accounts, customers, merchants or products to work on',
      {
        hint: 'generate data first (generateBank)',
      },
    );
  }
  return universe;
}

const RETRYABLE_ERRNO = new Set([
  1213 /* ER_LOCK_DEADLOCK */, 1205 /* ER_LOCK_WAIT_TIMEOUT */, 1062 /* ER_DUP_ENTRY */,
]);

function errnoOf(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'errno' in err && typeof err.errno === 'number'
    ? err.errno
    : undefined;
}

function sleepUntil(at: number, signal: AbortSignal | undefined): Promise<void> {
  const delay = at - performance.now();
  if (delay <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, delay);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Runs operations at `ratePerSec` until durationMs has passed, maxOps were started or
 * `signal` aborts (at least one of them is required), then waits for those in flight.
 * Op k draws its kind and choices from seed and k, so a run replays the same intentions;
 * what they find depends on the database state and on timing.
 */
export async function runWorkload(
  pool: Pool,
  options: WorkloadOptions,
  signal?: AbortSignal,
): Promise<WorkloadStats> {
  const { logger: parentLogger, ...rest } = options;
  const parsed = workloadOptionsSchema.safeParse(rest);
  if (!parsed.success)
    throw new ConfigError(`invalid workload options: ${parsed.error.message}`, { cause: parsed.error });
  const opts = parsed.data;
  if (opts.durationMs === undefined && opts.maxOps === undefined && signal === undefined) {
    throw new ConfigError('runWorkload needs durationMs, maxOps or an abort signal to know when to stop');
  }
  const log = (parentLogger ?? silentLogger).child({ component: 'bank-workload' });
  const mix = new WeightedChoice(OP_KINDS.map((k) => [k, opts.mix?.[k] ?? DEFAULT_MIX[k]] as const));
  const universe = await loadUniverse(pool);

  const stats: WorkloadStats = {
    ops: 0,
    byKind: Object.fromEntries(OP_KINDS.map((k) => [k, 0])) as Record<OpKind, number>,
    skipped: Object.fromEntries(OP_KINDS.map((k) => [k, 0])) as Record<OpKind, number>,
    failedTransfers: 0,
    declinedPayments: 0,
    errors: 0,
    retries: 0,
    rowChanges: 0,
    elapsedMs: 0,
  };
  const intervalMs = 1000 / opts.ratePerSec;
  const startedAt = performance.now();
  let nextOp = 0;

  let fatal: unknown = null;

  const runOne = async (k: number): Promise<void> => {
    const kind = mix.pick(new Random(`${opts.seed}:kind:${k}`));
    for (let attempt = 0; ; attempt++) {
      let conn: PoolConnection;
      try {
        conn = await pool.getConnection();
      } catch (cause) {
        // No connection at all: further operations would fail the same way.
        fatal ??= new AdapterError(
          'BANK_WORKLOAD_FAILED',
          `workload cannot get a connection: ${errorMessage(cause)}`,
          {
            cause,
          },
        );
        return;
      }
      const ctx: OpContext = {
        conn,
        // A retry draws afresh, so e.g. a clashing account number is not drawn again.
        rng: new Random(`${opts.seed}:op:${k}:${attempt}`),
        universe,
        rowChanges: 0,
        outcome: 'done',
      };
      try {
        await OPERATIONS[kind](ctx);
        await conn.query('COMMIT');
        stats.ops++;
        stats.byKind[kind]++;
        stats.rowChanges += ctx.rowChanges;
        if (ctx.outcome === 'failed_transfer') stats.failedTransfers++;
        if (ctx.outcome === 'declined_payment') stats.declinedPayments++;
        return;
      } catch (err) {
        await conn.query('ROLLBACK').catch(() => undefined);
        if (err instanceof Skip) {
          stats.skipped[kind]++;
          return;
        }
        const errno = errnoOf(err);
        if (errno !== undefined && RETRYABLE_ERRNO.has(errno) && attempt < opts.maxRetries) {
          stats.retries++;
          continue;
        }
        stats.errors++;
        log.warn({ err, kind, op: k, attempt }, `workload ${kind} failed: ${errorMessage(err)}`);
        return;
      } finally {
        conn.release();
      }
    }
  };

  const worker = async (): Promise<void> => {
    for (;;) {
      if (signal?.aborted || fatal !== null) return;
      const k = nextOp++;
      if (opts.maxOps !== undefined && k >= opts.maxOps) return;
      const dueMs = k * intervalMs;
      if (opts.durationMs !== undefined && dueMs >= opts.durationMs) return;
      await sleepUntil(startedAt + dueMs, signal);
      if (signal?.aborted) return;
      await runOne(k);
    }
  };

  log.info({ ratePerSec: opts.ratePerSec, concurrency: opts.concurrency }, 'workload started');
  await Promise.all(Array.from({ length: opts.concurrency }, () => worker()));
  stats.elapsedMs = Math.round(performance.now() - startedAt);
  if (fatal !== null) throw fatal;
  log.info({ ...stats }, 'workload finished');
  return stats;
}
