import type * as Rows from './rows.js';

/**
 * The bank's domain-event catalog: what the mapping rules emit and the projections consume.
 * Every event carries the full state of the row after the change (before it, for removals),
 * so a projection can apply any event idempotently, and, for updates, the fields that changed.
 */
export interface RowEventData<T> {
  state: T;
  /** Changed fields of an update (domain field names): { status: { from: 'active', to: 'frozen' } }. */
  changes: Record<string, { from: unknown; to: unknown }>;
}

/** Event type → the state its data carries. */
export interface BankEvents {
  CurrencyUpserted: Rows.Currency;
  CurrencyRemoved: Rows.Currency;
  BranchUpserted: Rows.Branch;
  BranchRemoved: Rows.Branch;
  CategoryUpserted: Rows.Category;
  CategoryRemoved: Rows.Category;
  MerchantUpserted: Rows.Merchant;
  MerchantRemoved: Rows.Merchant;
  ProductUpserted: Rows.Product;
  ProductRemoved: Rows.Product;
  CustomerRegistered: Rows.Customer;
  CustomerProfileChanged: Rows.Customer;
  CustomerKycStatusChanged: Rows.Customer;
  CustomerUpdated: Rows.Customer;
  CustomerRemoved: Rows.Customer;
  AccountOpened: Rows.Account;
  AccountStatusChanged: Rows.Account;
  AccountUpdated: Rows.Account;
  AccountRemoved: Rows.Account;
  BalanceInitialized: Rows.Balance;
  BalanceChanged: Rows.Balance;
  BalanceRemoved: Rows.Balance;
  CardIssued: Rows.Card;
  CardStatusChanged: Rows.Card;
  CardUpdated: Rows.Card;
  CardRemoved: Rows.Card;
  LoanOpened: Rows.Loan;
  LoanBalanceChanged: Rows.Loan;
  LoanStatusChanged: Rows.Loan;
  LoanUpdated: Rows.Loan;
  LoanRemoved: Rows.Loan;
  TransferInitiated: Rows.Transfer;
  TransferStatusChanged: Rows.Transfer;
  TransferUpdated: Rows.Transfer;
  TransferRemoved: Rows.Transfer;
  PaymentCreated: Rows.Payment;
  PaymentStatusChanged: Rows.Payment;
  PaymentUpdated: Rows.Payment;
  PaymentRemoved: Rows.Payment;
  TransactionPosted: Rows.Transaction;
  TransactionAmended: Rows.Transaction;
  TransactionRemoved: Rows.Transaction;
}

export type BankEventType = keyof BankEvents;

/**
 * Streams (aggregates) and their ids. Balances and ledger postings belong to the account
 * aggregate, so everything that changes what an account shows is ordered in one stream.
 */
export const streamIds = {
  currency: (code: string) => `currency-${code}`,
  branch: (id: number) => `branch-${id}`,
  category: (id: number) => `category-${id}`,
  merchant: (id: number) => `merchant-${id}`,
  product: (id: number) => `product-${id}`,
  customer: (id: number) => `customer-${id}`,
  account: (id: number) => `account-${id}`,
  card: (id: number) => `card-${id}`,
  loan: (id: number) => `loan-${id}`,
  transfer: (id: number) => `transfer-${id}`,
  payment: (id: number) => `payment-${id}`,
} as const;
