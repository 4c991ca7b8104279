-- Sample legacy bank: the normalized schema of a fintech monolith, with the indexes its
-- CRUD application grew over the years. Every table the read APIs touch is here; the
-- account summary joins eight of them and the transaction history four.

CREATE TABLE currencies (
  code        CHAR(3)      NOT NULL PRIMARY KEY,
  name        VARCHAR(64)  NOT NULL,
  minor_units TINYINT      NOT NULL DEFAULT 2
) ENGINE=InnoDB;

CREATE TABLE branches (
  id         INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  code       VARCHAR(16)  NOT NULL,
  name       VARCHAR(128) NOT NULL,
  city       VARCHAR(64)  NOT NULL,
  opened_on  DATE         NOT NULL,
  UNIQUE KEY uq_branches_code (code)
) ENGINE=InnoDB;

CREATE TABLE customers (
  id          INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  first_name  VARCHAR(64)  NOT NULL,
  last_name   VARCHAR(64)  NOT NULL,
  email       VARCHAR(190) NOT NULL,
  phone       VARCHAR(32)  NULL,
  birth_date  DATE         NOT NULL,
  branch_id   INT UNSIGNED NOT NULL,
  kyc_status  ENUM('pending','verified','rejected') NOT NULL DEFAULT 'pending',
  created_at  DATETIME(6)  NOT NULL,
  updated_at  DATETIME(6)  NOT NULL,
  UNIQUE KEY uq_customers_email (email),
  KEY ix_customers_branch (branch_id),
  KEY ix_customers_name (last_name, first_name),
  CONSTRAINT fk_customers_branch FOREIGN KEY (branch_id) REFERENCES branches (id)
) ENGINE=InnoDB;

CREATE TABLE products (
  id             INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  code           VARCHAR(32)  NOT NULL,
  name           VARCHAR(128) NOT NULL,
  kind           ENUM('checking','savings','credit') NOT NULL,
  interest_rate  DECIMAL(7,4) NOT NULL DEFAULT 0.0000,
  currency_code  CHAR(3)      NOT NULL,
  UNIQUE KEY uq_products_code (code),
  CONSTRAINT fk_products_currency FOREIGN KEY (currency_code) REFERENCES currencies (code)
) ENGINE=InnoDB;

CREATE TABLE accounts (
  id              INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  account_number  VARCHAR(34)  NOT NULL,
  customer_id     INT UNSIGNED NOT NULL,
  product_id      INT UNSIGNED NOT NULL,
  branch_id       INT UNSIGNED NOT NULL,
  currency_code   CHAR(3)      NOT NULL,
  status          ENUM('active','frozen','closed') NOT NULL DEFAULT 'active',
  opened_at       DATETIME(6)  NOT NULL,
  closed_at       DATETIME(6)  NULL,
  updated_at      DATETIME(6)  NOT NULL,
  UNIQUE KEY uq_accounts_number (account_number),
  KEY ix_accounts_customer (customer_id),
  KEY ix_accounts_product (product_id),
  KEY ix_accounts_branch (branch_id),
  CONSTRAINT fk_accounts_customer FOREIGN KEY (customer_id) REFERENCES customers (id),
  CONSTRAINT fk_accounts_product FOREIGN KEY (product_id) REFERENCES products (id),
  CONSTRAINT fk_accounts_branch FOREIGN KEY (branch_id) REFERENCES branches (id),
  CONSTRAINT fk_accounts_currency FOREIGN KEY (currency_code) REFERENCES currencies (code)
) ENGINE=InnoDB;

CREATE TABLE balances (
  account_id  INT UNSIGNED  NOT NULL PRIMARY KEY,
  available   DECIMAL(19,4) NOT NULL,
  ledger      DECIMAL(19,4) NOT NULL,
  updated_at  DATETIME(6)   NOT NULL,
  CONSTRAINT fk_balances_account FOREIGN KEY (account_id) REFERENCES accounts (id)
) ENGINE=InnoDB;

CREATE TABLE categories (
  id         INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  code       VARCHAR(32)  NOT NULL,
  name       VARCHAR(64)  NOT NULL,
  parent_id  INT UNSIGNED NULL,
  UNIQUE KEY uq_categories_code (code),
  KEY ix_categories_parent (parent_id)
) ENGINE=InnoDB;

CREATE TABLE merchants (
  id           INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name         VARCHAR(128) NOT NULL,
  category_id  INT UNSIGNED NOT NULL,
  mcc          CHAR(4)      NOT NULL,
  city         VARCHAR(64)  NOT NULL,
  country      CHAR(2)      NOT NULL,
  KEY ix_merchants_category (category_id),
  KEY ix_merchants_name (name),
  CONSTRAINT fk_merchants_category FOREIGN KEY (category_id) REFERENCES categories (id)
) ENGINE=InnoDB;

CREATE TABLE cards (
  id            INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  account_id    INT UNSIGNED NOT NULL,
  masked_pan    CHAR(19)     NOT NULL,
  card_type     ENUM('debit','credit','virtual') NOT NULL,
  status        ENUM('active','blocked','expired','lost') NOT NULL DEFAULT 'active',
  expires_on    DATE         NOT NULL,
  issued_at     DATETIME(6)  NOT NULL,
  updated_at    DATETIME(6)  NOT NULL,
  KEY ix_cards_account_status (account_id, status),
  CONSTRAINT fk_cards_account FOREIGN KEY (account_id) REFERENCES accounts (id)
) ENGINE=InnoDB;

CREATE TABLE loans (
  id             INT UNSIGNED  NOT NULL AUTO_INCREMENT PRIMARY KEY,
  customer_id    INT UNSIGNED  NOT NULL,
  account_id     INT UNSIGNED  NOT NULL,
  principal      DECIMAL(19,4) NOT NULL,
  outstanding    DECIMAL(19,4) NOT NULL,
  interest_rate  DECIMAL(7,4)  NOT NULL,
  status         ENUM('active','repaid','defaulted') NOT NULL DEFAULT 'active',
  opened_at      DATETIME(6)   NOT NULL,
  maturity_date  DATE          NOT NULL,
  updated_at     DATETIME(6)   NOT NULL,
  KEY ix_loans_account_status (account_id, status),
  KEY ix_loans_customer (customer_id),
  CONSTRAINT fk_loans_customer FOREIGN KEY (customer_id) REFERENCES customers (id),
  CONSTRAINT fk_loans_account FOREIGN KEY (account_id) REFERENCES accounts (id)
) ENGINE=InnoDB;

CREATE TABLE transfers (
  id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  from_account_id  INT UNSIGNED    NOT NULL,
  to_account_id    INT UNSIGNED    NOT NULL,
  amount           DECIMAL(19,4)   NOT NULL,
  currency_code    CHAR(3)         NOT NULL,
  status           ENUM('pending','completed','failed') NOT NULL DEFAULT 'pending',
  reference        VARCHAR(64)     NOT NULL,
  created_at       DATETIME(6)     NOT NULL,
  completed_at     DATETIME(6)     NULL,
  KEY ix_transfers_from (from_account_id, created_at),
  KEY ix_transfers_to (to_account_id, created_at),
  CONSTRAINT fk_transfers_from FOREIGN KEY (from_account_id) REFERENCES accounts (id),
  CONSTRAINT fk_transfers_to FOREIGN KEY (to_account_id) REFERENCES accounts (id)
) ENGINE=InnoDB;

CREATE TABLE payments (
  id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  account_id   INT UNSIGNED    NOT NULL,
  card_id      INT UNSIGNED    NULL,
  merchant_id  INT UNSIGNED    NOT NULL,
  amount       DECIMAL(19,4)   NOT NULL,
  status       ENUM('authorized','captured','declined','refunded') NOT NULL,
  created_at   DATETIME(6)     NOT NULL,
  KEY ix_payments_account (account_id, created_at),
  KEY ix_payments_merchant (merchant_id),
  CONSTRAINT fk_payments_account FOREIGN KEY (account_id) REFERENCES accounts (id),
  CONSTRAINT fk_payments_merchant FOREIGN KEY (merchant_id) REFERENCES merchants (id)
) ENGINE=InnoDB;

-- The ledger: one row per posting. transfers and payments each post here in the same
-- database transaction that moves the balances.
CREATE TABLE transactions (
  id             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  account_id     INT UNSIGNED    NOT NULL,
  direction      ENUM('debit','credit') NOT NULL,
  amount         DECIMAL(19,4)   NOT NULL,
  currency_code  CHAR(3)         NOT NULL,
  balance_after  DECIMAL(19,4)   NOT NULL,
  description    VARCHAR(255)    NOT NULL,
  merchant_id    INT UNSIGNED    NULL,
  transfer_id    BIGINT UNSIGNED NULL,
  payment_id     BIGINT UNSIGNED NULL,
  posted_at      DATETIME(6)     NOT NULL,
  KEY ix_transactions_account_posted (account_id, posted_at, id),
  KEY ix_transactions_merchant (merchant_id),
  KEY ix_transactions_transfer (transfer_id),
  CONSTRAINT fk_transactions_account FOREIGN KEY (account_id) REFERENCES accounts (id)
) ENGINE=InnoDB;
