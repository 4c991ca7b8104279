import { z } from 'zod';

/**
 * What a valid row of each legacy table looks like once normalised by CDC (see
 * connectors/change-event.ts), and the domain-shaped object it becomes. The mapping rules
 * (examples/bank/mapping.ts) parse every captured row with these schemas; a row that fails
 * goes to the dead-letter store with zod's message. Projections consume the parsed shapes.
 */
/** A DECIMAL at scale 4 as stored and sent: an optional sign, digits, a point and exactly four digits. */
export const SCALE_4 = /^-?\d+\.\d{4}$/;
export const money = z.string().regex(SCALE_4, 'expected a DECIMAL(19,4) string');
export const rate = z.string().regex(SCALE_4, 'expected a DECIMAL(7,4) string');
export const datetime6 = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$/, 'expected DATETIME(6) "YYYY-MM-DD HH:MM:SS.ffffff"');
export const date = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'expected DATE "YYYY-MM-DD"');
const id = z.number().int().positive();

export const currencyRow = z
  .object({ code: z.string().length(3), name: z.string().min(1), minor_units: z.number().int() })
  .transform((r) => ({ code: r.code, name: r.name, minorUnits: r.minor_units }));

export const branchRow = z
  .object({ id, code: z.string().min(1), name: z.string().min(1), city: z.string(), opened_on: date })
  .transform((r) => ({ branchId: r.id, code: r.code, name: r.name, city: r.city, openedOn: r.opened_on }));

export const customerRow = z
  .object({
    id,
    first_name: z.string().min(1),
    last_name: z.string().min(1),
    email: z.string().email(),
    phone: z.string().nullable(),
    birth_date: date,
    branch_id: id,
    kyc_status: z.enum(['pending', 'verified', 'rejected']),
    created_at: datetime6,
    updated_at: datetime6,
  })
  .transform((r) => ({
    customerId: r.id,
    firstName: r.first_name,
    lastName: r.last_name,
    email: r.email,
    phone: r.phone,
    birthDate: r.birth_date,
    branchId: r.branch_id,
    kycStatus: r.kyc_status,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }));

export const productRow = z
  .object({
    id,
    code: z.string().min(1),
    name: z.string().min(1),
    kind: z.enum(['checking', 'savings', 'credit']),
    interest_rate: rate,
    currency_code: z.string().length(3),
  })
  .transform((r) => ({
    productId: r.id,
    code: r.code,
    name: r.name,
    kind: r.kind,
    interestRate: r.interest_rate,
    currency: r.currency_code,
  }));

export const accountRow = z
  .object({
    id,
    account_number: z.string().min(1),
    customer_id: id,
    product_id: id,
    branch_id: id,
    currency_code: z.string().length(3),
    status: z.enum(['active', 'frozen', 'closed']),
    opened_at: datetime6,
    closed_at: datetime6.nullable(),
    updated_at: datetime6,
  })
  .transform((r) => ({
    accountId: r.id,
    accountNumber: r.account_number,
    customerId: r.customer_id,
    productId: r.product_id,
    branchId: r.branch_id,
    currency: r.currency_code,
    status: r.status,
    openedAt: r.opened_at,
    closedAt: r.closed_at,
    updatedAt: r.updated_at,
  }));

export const balanceRow = z
  .object({ account_id: id, available: money, ledger: money, updated_at: datetime6 })
  .transform((r) => ({
    accountId: r.account_id,
    available: r.available,
    ledger: r.ledger,
    updatedAt: r.updated_at,
  }));

export const categoryRow = z
  .object({ id, code: z.string().min(1), name: z.string().min(1), parent_id: id.nullable() })
  .transform((r) => ({ categoryId: r.id, code: r.code, name: r.name, parentId: r.parent_id }));

export const merchantRow = z
  .object({
    id,
    name: z.string().min(1),
    category_id: id,
    mcc: z.string().regex(/^\d{4}$/),
    city: z.string(),
    country: z.string().length(2),
  })
  .transform((r) => ({
    merchantId: r.id,
    name: r.name,
    categoryId: r.category_id,
    mcc: r.mcc,
    city: r.city,
    country: r.country,
  }));

export const cardRow = z
  .object({
    id,
    account_id: id,
    masked_pan: z.string(),
    card_type: z.enum(['debit', 'credit', 'virtual']),
    status: z.enum(['active', 'blocked', 'expired', 'lost']),
    expires_on: date,
    issued_at: datetime6,
    updated_at: datetime6,
  })
  .transform((r) => ({
    cardId: r.id,
    accountId: r.account_id,
    maskedPan: r.masked_pan,
    cardType: r.card_type,
    status: r.status,
    expiresOn: r.expires_on,
    issuedAt: r.issued_at,
    updatedAt: r.updated_at,
  }));

export const loanRow = z
  .object({
    id,
    customer_id: id,
    account_id: id,
    principal: money,
    outstanding: money,
    interest_rate: rate,
    status: z.enum(['active', 'repaid', 'defaulted']),
    opened_at: datetime6,
    maturity_date: date,
    updated_at: datetime6,
  })
  .transform((r) => ({
    loanId: r.id,
    customerId: r.customer_id,
    accountId: r.account_id,
    principal: r.principal,
    outstanding: r.outstanding,
    interestRate: r.interest_rate,
    status: r.status,
    openedAt: r.opened_at,
    maturityDate: r.maturity_date,
    updatedAt: r.updated_at,
  }));

export const transferRow = z
  .object({
    id,
    from_account_id: id,
    to_account_id: id,
    amount: money,
    currency_code: z.string().length(3),
    status: z.enum(['pending', 'completed', 'failed']),
    reference: z.string(),
    created_at: datetime6,
    completed_at: datetime6.nullable(),
  })
  .transform((r) => ({
    transferId: r.id,
    fromAccountId: r.from_account_id,
    toAccountId: r.to_account_id,
    amount: r.amount,
    currency: r.currency_code,
    status: r.status,
    reference: r.reference,
    createdAt: r.created_at,
    completedAt: r.completed_at,
  }));

export const paymentRow = z
  .object({
    id,
    account_id: id,
    card_id: id.nullable(),
    merchant_id: id,
    amount: money,
    status: z.enum(['authorized', 'captured', 'declined', 'refunded']),
    created_at: datetime6,
  })
  .transform((r) => ({
    paymentId: r.id,
    accountId: r.account_id,
    cardId: r.card_id,
    merchantId: r.merchant_id,
    amount: r.amount,
    status: r.status,
    createdAt: r.created_at,
  }));

export const transactionRow = z
  .object({
    id,
    account_id: id,
    direction: z.enum(['debit', 'credit']),
    amount: money.refine((v) => !v.startsWith('-'), 'amount must not be negative'),
    currency_code: z.string().length(3),
    balance_after: money,
    description: z.string(),
    merchant_id: id.nullable(),
    transfer_id: id.nullable(),
    payment_id: id.nullable(),
    posted_at: datetime6,
  })
  .transform((r) => ({
    transactionId: r.id,
    accountId: r.account_id,
    direction: r.direction,
    amount: r.amount,
    currency: r.currency_code,
    balanceAfter: r.balance_after,
    description: r.description,
    merchantId: r.merchant_id,
    transferId: r.transfer_id,
    paymentId: r.payment_id,
    postedAt: r.posted_at,
  }));

export type Customer = z.output<typeof customerRow>;
export type Account = z.output<typeof accountRow>;
export type Balance = z.output<typeof balanceRow>;
export type Product = z.output<typeof productRow>;
export type Branch = z.output<typeof branchRow>;
export type Category = z.output<typeof categoryRow>;
export type Merchant = z.output<typeof merchantRow>;
export type Card = z.output<typeof cardRow>;
export type Loan = z.output<typeof loanRow>;
export type Transfer = z.output<typeof transferRow>;
export type Payment = z.output<typeof paymentRow>;
export type Transaction = z.output<typeof transactionRow>;
export type Currency = z.output<typeof currencyRow>;
