import type { RowEventPayload } from '../../connectors/mapping/mapper.js';
import { defineRuleSet } from '../../connectors/mapping/rule-set.js';
import { tableRuleBuilder } from '../../connectors/mapping/rules.js';
import { type BankEvents, type BankEventType, type RowEventData, streamIds } from './events.js';
import {
  accountRow,
  balanceRow,
  branchRow,
  cardRow,
  categoryRow,
  currencyRow,
  customerRow,
  loanRow,
  merchantRow,
  paymentRow,
  productRow,
  transactionRow,
  transferRow,
} from './rows.js';

/**
 * How each legacy bank table becomes domain events. Rules are typed against BankEvents: an
 * event name outside the catalog, or one whose state is another table's, does not compile.
 */
const rule = tableRuleBuilder<BankEvents>();

// A record (not an array) so the compiler insists on every catalog name, and only those.
const catalog: Record<BankEventType, true> = {
  CurrencyUpserted: true,
  CurrencyRemoved: true,
  BranchUpserted: true,
  BranchRemoved: true,
  CategoryUpserted: true,
  CategoryRemoved: true,
  MerchantUpserted: true,
  MerchantRemoved: true,
  ProductUpserted: true,
  ProductRemoved: true,
  CustomerRegistered: true,
  CustomerProfileChanged: true,
  CustomerKycStatusChanged: true,
  CustomerUpdated: true,
  CustomerRemoved: true,
  AccountOpened: true,
  AccountStatusChanged: true,
  AccountUpdated: true,
  AccountRemoved: true,
  BalanceInitialized: true,
  BalanceChanged: true,
  BalanceRemoved: true,
  CardIssued: true,
  CardStatusChanged: true,
  CardUpdated: true,
  CardRemoved: true,
  LoanOpened: true,
  LoanBalanceChanged: true,
  LoanStatusChanged: true,
  LoanUpdated: true,
  LoanRemoved: true,
  TransferInitiated: true,
  TransferStatusChanged: true,
  TransferUpdated: true,
  TransferRemoved: true,
  PaymentCreated: true,
  PaymentStatusChanged: true,
  PaymentUpdated: true,
  PaymentRemoved: true,
  TransactionPosted: true,
  TransactionAmended: true,
  TransactionRemoved: true,
};

/** Every event name of the bank catalog, for the rule set's startup check. */
export const bankEventNames: readonly string[] = Object.keys(catalog);

// The mapper's payload must stay what the catalog promises projections.
const payloadMatchesCatalog = (p: RowEventData<BankEvents[BankEventType]>): RowEventPayload => p;
void payloadMatchesCatalog;

export const bankRules = defineRuleSet(
  [
    rule({
      table: 'currencies',
      row: currencyRow,
      stream: { type: 'currency', id: (s) => streamIds.currency(s.code) },
      onCreate: 'CurrencyUpserted',
      otherwise: 'CurrencyUpserted',
      onDelete: 'CurrencyRemoved',
    }),
    rule({
      table: 'branches',
      row: branchRow,
      stream: { type: 'branch', id: (s) => streamIds.branch(s.branchId) },
      onCreate: 'BranchUpserted',
      otherwise: 'BranchUpserted',
      onDelete: 'BranchRemoved',
    }),
    rule({
      table: 'categories',
      row: categoryRow,
      stream: { type: 'category', id: (s) => streamIds.category(s.categoryId) },
      onCreate: 'CategoryUpserted',
      otherwise: 'CategoryUpserted',
      onDelete: 'CategoryRemoved',
    }),
    rule({
      table: 'merchants',
      row: merchantRow,
      stream: { type: 'merchant', id: (s) => streamIds.merchant(s.merchantId) },
      onCreate: 'MerchantUpserted',
      otherwise: 'MerchantUpserted',
      onDelete: 'MerchantRemoved',
    }),
    rule({
      table: 'products',
      row: productRow,
      stream: { type: 'product', id: (s) => streamIds.product(s.productId) },
      onCreate: 'ProductUpserted',
      otherwise: 'ProductUpserted',
      onDelete: 'ProductRemoved',
    }),
    rule({
      table: 'customers',
      row: customerRow,
      stream: { type: 'customer', id: (s) => streamIds.customer(s.customerId) },
      onCreate: 'CustomerRegistered',
      onUpdate: [
        { when: ['firstName', 'lastName', 'email'], emit: 'CustomerProfileChanged' },
        { when: ['kycStatus'], emit: 'CustomerKycStatusChanged' },
      ],
      otherwise: 'CustomerUpdated',
      onDelete: 'CustomerRemoved',
    }),
    rule({
      table: 'accounts',
      row: accountRow,
      stream: { type: 'account', id: (s) => streamIds.account(s.accountId) },
      onCreate: 'AccountOpened',
      onUpdate: [{ when: ['status'], emit: 'AccountStatusChanged' }],
      otherwise: 'AccountUpdated',
      onDelete: 'AccountRemoved',
    }),
    // Balances and ledger postings live in the account's stream, ordered with its other changes.
    rule({
      table: 'balances',
      row: balanceRow,
      stream: { type: 'account', id: (s) => streamIds.account(s.accountId) },
      onCreate: 'BalanceInitialized',
      otherwise: 'BalanceChanged',
      onDelete: 'BalanceRemoved',
    }),
    rule({
      table: 'cards',
      row: cardRow,
      stream: { type: 'card', id: (s) => streamIds.card(s.cardId) },
      onCreate: 'CardIssued',
      onUpdate: [{ when: ['status'], emit: 'CardStatusChanged' }],
      otherwise: 'CardUpdated',
      onDelete: 'CardRemoved',
    }),
    rule({
      table: 'loans',
      row: loanRow,
      stream: { type: 'loan', id: (s) => streamIds.loan(s.loanId) },
      onCreate: 'LoanOpened',
      onUpdate: [
        { when: ['outstanding'], emit: 'LoanBalanceChanged' },
        { when: ['status'], emit: 'LoanStatusChanged' },
      ],
      otherwise: 'LoanUpdated',
      onDelete: 'LoanRemoved',
    }),
    rule({
      table: 'transfers',
      row: transferRow,
      stream: { type: 'transfer', id: (s) => streamIds.transfer(s.transferId) },
      onCreate: 'TransferInitiated',
      onUpdate: [{ when: ['status'], emit: 'TransferStatusChanged' }],
      otherwise: 'TransferUpdated',
      onDelete: 'TransferRemoved',
    }),
    rule({
      table: 'payments',
      row: paymentRow,
      stream: { type: 'payment', id: (s) => streamIds.payment(s.paymentId) },
      onCreate: 'PaymentCreated',
      onUpdate: [{ when: ['status'], emit: 'PaymentStatusChanged' }],
      otherwise: 'PaymentUpdated',
      onDelete: 'PaymentRemoved',
    }),
    rule({
      table: 'transactions',
      row: transactionRow,
      stream: { type: 'account', id: (s) => streamIds.account(s.accountId) },
      onCreate: 'TransactionPosted',
      otherwise: 'TransactionAmended',
      onDelete: 'TransactionRemoved',
    }),
  ],
  { knownEvents: bankEventNames },
);
