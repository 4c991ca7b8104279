-- Transaction history projection: denormalised postings with merchant and category names,
-- so a page is one indexed range scan.
CREATE TABLE hist_categories (category_id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE hist_merchants (merchant_id INTEGER PRIMARY KEY, name TEXT NOT NULL, category_id INTEGER NOT NULL);
CREATE INDEX ix_hist_merchants_category ON hist_merchants (category_id);
CREATE TABLE hist_postings (
  transaction_id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, posted_at TEXT NOT NULL,
  direction TEXT NOT NULL, amount TEXT NOT NULL, currency TEXT NOT NULL, balance_after TEXT NOT NULL,
  description TEXT NOT NULL, merchant_id INTEGER, merchant_name TEXT, category_name TEXT
);
CREATE INDEX ix_hist_postings_page ON hist_postings (account_id, posted_at DESC, transaction_id DESC);
CREATE INDEX ix_hist_postings_merchant ON hist_postings (merchant_id);
