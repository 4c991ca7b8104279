-- Sample legacy online shop on PostgreSQL: two domains in one database, the way a monolith
-- keeps them. orders: customers, addresses, orders, order_items, payments, shipments.
-- catalog: suppliers, categories, products, product_categories (many-to-many), reviews.
-- Types as a legacy schema has them: serial/bigserial ids, NUMERIC(12,2) money, TIMESTAMP(6)
-- times, an enum (order_status) and CHECK'd text statuses, booleans, a compound primary key.
-- REPLICA IDENTITY FULL on every table: updates and deletes carry the whole before image in
-- the WAL, which the mapping rules need to tell what changed.

CREATE TYPE order_status AS ENUM ('placed', 'paid', 'shipped', 'delivered', 'cancelled');

-- ---------------------------------------------------------------------------------- catalog

CREATE TABLE suppliers (
  id          SERIAL       PRIMARY KEY,
  name        VARCHAR(128) NOT NULL,
  country     CHAR(2)      NOT NULL,
  email       VARCHAR(190) NOT NULL,
  created_at  TIMESTAMP(6) NOT NULL
);

CREATE TABLE categories (
  id         SERIAL       PRIMARY KEY,
  slug       VARCHAR(64)  NOT NULL,
  name       VARCHAR(64)  NOT NULL,
  parent_id  INTEGER      NULL REFERENCES categories (id),
  CONSTRAINT uq_categories_slug UNIQUE (slug)
);
CREATE INDEX ix_categories_parent ON categories (parent_id);

CREATE TABLE products (
  id           SERIAL        PRIMARY KEY,
  sku          VARCHAR(32)   NOT NULL,
  name         VARCHAR(160)  NOT NULL,
  description  TEXT          NULL,
  price        NUMERIC(12,2) NOT NULL CHECK (price >= 0),
  supplier_id  INTEGER       NULL REFERENCES suppliers (id),
  active       BOOLEAN       NOT NULL DEFAULT TRUE,
  created_at   TIMESTAMP(6)  NOT NULL,
  updated_at   TIMESTAMP(6)  NOT NULL,
  CONSTRAINT uq_products_sku UNIQUE (sku)
);
CREATE INDEX ix_products_supplier ON products (supplier_id);

-- Many-to-many with a compound primary key; the reverse index serves "products of a category".
CREATE TABLE product_categories (
  product_id   INTEGER      NOT NULL REFERENCES products (id),
  category_id  INTEGER      NOT NULL REFERENCES categories (id),
  added_at     TIMESTAMP(6) NOT NULL,
  PRIMARY KEY (product_id, category_id)
);
CREATE INDEX ix_product_categories_category ON product_categories (category_id, product_id);

-- ----------------------------------------------------------------------------------- orders

CREATE TABLE customers (
  id               SERIAL       PRIMARY KEY,
  email            VARCHAR(190) NOT NULL,
  first_name       VARCHAR(64)  NOT NULL,
  last_name        VARCHAR(64)  NOT NULL,
  vip              BOOLEAN      NOT NULL DEFAULT FALSE,
  created_at       TIMESTAMP(6) NOT NULL,
  updated_at       TIMESTAMP(6) NOT NULL,
  CONSTRAINT uq_customers_email UNIQUE (email)
);
CREATE INDEX ix_customers_name ON customers (last_name, first_name);

CREATE TABLE addresses (
  id           SERIAL       PRIMARY KEY,
  customer_id  INTEGER      NOT NULL REFERENCES customers (id),
  line1        VARCHAR(128) NOT NULL,
  city         VARCHAR(64)  NOT NULL,
  postal_code  VARCHAR(16)  NOT NULL,
  country      CHAR(2)      NOT NULL,
  is_default   BOOLEAN      NOT NULL DEFAULT FALSE
);
CREATE INDEX ix_addresses_customer ON addresses (customer_id);

-- A review belongs to the catalog but names its author (a customer): the product page shows
-- the reviewer's name, so renaming a customer changes product pages too.
CREATE TABLE reviews (
  id           BIGSERIAL    PRIMARY KEY,
  product_id   INTEGER      NOT NULL REFERENCES products (id),
  customer_id  INTEGER      NOT NULL REFERENCES customers (id),
  rating       SMALLINT     NOT NULL CHECK (rating BETWEEN 1 AND 5),
  title        VARCHAR(128) NOT NULL,
  body         TEXT         NULL,
  created_at   TIMESTAMP(6) NOT NULL
);
CREATE INDEX ix_reviews_product_latest ON reviews (product_id, created_at DESC, id DESC);
CREATE INDEX ix_reviews_customer ON reviews (customer_id);

CREATE TABLE orders (
  id                   BIGSERIAL    PRIMARY KEY,
  customer_id          INTEGER      NOT NULL REFERENCES customers (id),
  shipping_address_id  INTEGER      NULL REFERENCES addresses (id),
  status               order_status NOT NULL DEFAULT 'placed',
  currency             CHAR(3)      NOT NULL DEFAULT 'EUR',
  note                 TEXT         NULL,
  placed_at            TIMESTAMP(6) NOT NULL,
  updated_at           TIMESTAMP(6) NOT NULL
);
-- "My orders", newest first, paged by (placed_at, id).
CREATE INDEX ix_orders_customer_placed ON orders (customer_id, placed_at DESC, id DESC);
CREATE INDEX ix_orders_status ON orders (status, id);

CREATE TABLE order_items (
  order_id    BIGINT        NOT NULL REFERENCES orders (id),
  line_no     SMALLINT      NOT NULL,
  product_id  INTEGER       NOT NULL REFERENCES products (id),
  quantity    INTEGER       NOT NULL CHECK (quantity > 0),
  unit_price  NUMERIC(12,2) NOT NULL,
  line_total  NUMERIC(12,2) NOT NULL,
  PRIMARY KEY (order_id, line_no)
);
CREATE INDEX ix_order_items_product ON order_items (product_id);

CREATE TABLE payments (
  id          BIGSERIAL     PRIMARY KEY,
  order_id    BIGINT        NOT NULL REFERENCES orders (id),
  method      TEXT          NOT NULL CHECK (method IN ('card', 'paypal', 'bank_transfer')),
  amount      NUMERIC(12,2) NOT NULL,
  status      TEXT          NOT NULL CHECK (status IN ('authorized', 'captured', 'failed', 'refunded')),
  created_at  TIMESTAMP(6)  NOT NULL
);
CREATE INDEX ix_payments_order ON payments (order_id, id);

CREATE TABLE shipments (
  id            BIGSERIAL    PRIMARY KEY,
  order_id      BIGINT       NOT NULL REFERENCES orders (id),
  carrier       TEXT         NOT NULL CHECK (carrier IN ('dhl', 'ups', 'postnl', 'colissimo')),
  tracking_no   VARCHAR(32)  NOT NULL,
  shipped_at    TIMESTAMP(6) NOT NULL,
  delivered_at  TIMESTAMP(6) NULL
);
CREATE INDEX ix_shipments_order ON shipments (order_id, id);
CREATE INDEX ix_shipments_undelivered ON shipments (id) WHERE delivered_at IS NULL;

ALTER TABLE suppliers REPLICA IDENTITY FULL;
ALTER TABLE categories REPLICA IDENTITY FULL;
ALTER TABLE products REPLICA IDENTITY FULL;
ALTER TABLE product_categories REPLICA IDENTITY FULL;
ALTER TABLE customers REPLICA IDENTITY FULL;
ALTER TABLE addresses REPLICA IDENTITY FULL;
ALTER TABLE reviews REPLICA IDENTITY FULL;
ALTER TABLE orders REPLICA IDENTITY FULL;
ALTER TABLE order_items REPLICA IDENTITY FULL;
ALTER TABLE payments REPLICA IDENTITY FULL;
ALTER TABLE shipments REPLICA IDENTITY FULL;
