-- Account summary projection: helper tables fed by events, and one materialised JSON
-- document per account that the API returns with a primary-key lookup.
CREATE TABLE sum_customers (customer_id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL);
CREATE TABLE sum_products (product_id INTEGER PRIMARY KEY, code TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL);
CREATE TABLE sum_branches (branch_id INTEGER PRIMARY KEY, code TEXT NOT NULL, name TEXT NOT NULL);
CREATE TABLE sum_categories (category_id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE sum_merchants (merchant_id INTEGER PRIMARY KEY, name TEXT NOT NULL, category_id INTEGER NOT NULL);
CREATE INDEX ix_sum_merchants_category ON sum_merchants (category_id);
CREATE TABLE sum_accounts (
  account_id INTEGER PRIMARY KEY, account_number TEXT NOT NULL, customer_id INTEGER NOT NULL,
  product_id INTEGER NOT NULL, branch_id INTEGER NOT NULL, currency TEXT NOT NULL,
  status TEXT NOT NULL, opened_at TEXT NOT NULL
);
CREATE INDEX ix_sum_accounts_customer ON sum_accounts (customer_id);
CREATE INDEX ix_sum_accounts_product ON sum_accounts (product_id);
CREATE INDEX ix_sum_accounts_branch ON sum_accounts (branch_id);
CREATE TABLE sum_balances (account_id INTEGER PRIMARY KEY, available TEXT NOT NULL, ledger TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE sum_cards (card_id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, status TEXT NOT NULL);
CREATE INDEX ix_sum_cards_account ON sum_cards (account_id);
CREATE TABLE sum_loans (loan_id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, status TEXT NOT NULL, outstanding TEXT NOT NULL);
CREATE INDEX ix_sum_loans_account ON sum_loans (account_id);
CREATE TABLE sum_postings (
  transaction_id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, posted_at TEXT NOT NULL,
  direction TEXT NOT NULL, amount TEXT NOT NULL, currency TEXT NOT NULL, balance_after TEXT NOT NULL,
  description TEXT NOT NULL, merchant_id INTEGER
);
CREATE INDEX ix_sum_postings_recent ON sum_postings (account_id, posted_at DESC, transaction_id DESC);
CREATE INDEX ix_sum_postings_merchant ON sum_postings (merchant_id);
CREATE TABLE account_summaries (account_id INTEGER PRIMARY KEY, doc TEXT NOT NULL);
