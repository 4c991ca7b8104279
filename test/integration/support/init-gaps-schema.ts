/**
 * A Sakila-shaped schema for what change-data-capture does not carry: a generated column (and on
 * MariaDB a VIRTUAL one), and foreign keys whose ON DELETE / ON UPDATE actions change the
 * referencing rows (CASCADE, SET NULL) next to ones that only refuse (the default).
 * Used by init-catalog.test.ts (catalog and render) and init-cdc-gaps.test.ts (what CDC delivers).
 */

const TAIL = [
  `CREATE TABLE category (category_id INT PRIMARY KEY, name VARCHAR(25) NOT NULL)`,
  `CREATE TABLE film_category (
     film_id INT NOT NULL,
     category_id INT NOT NULL,
     PRIMARY KEY (film_id, category_id),
     CONSTRAINT fk_fc_category FOREIGN KEY (category_id) REFERENCES category (category_id) ON UPDATE CASCADE,
     CONSTRAINT fk_fc_film FOREIGN KEY (film_id) REFERENCES film (film_id) ON DELETE CASCADE ON UPDATE CASCADE)`,
  `CREATE TABLE rental (
     rental_id INT PRIMARY KEY,
     film_id INT NOT NULL,
     CONSTRAINT fk_rental_film FOREIGN KEY (film_id) REFERENCES film (film_id))`,
  `CREATE TABLE payment (
     payment_id INT PRIMARY KEY,
     rental_id INT NULL,
     amount DECIMAL(5,2) NOT NULL,
     CONSTRAINT fk_payment_rental FOREIGN KEY (rental_id) REFERENCES rental (rental_id) ON DELETE SET NULL)`,
  `INSERT INTO film (film_id, title, length) VALUES (1, 'Academy Dinosaur', 86), (2, 'Ace Goldfinger', 48)`,
  `INSERT INTO category VALUES (1, 'Action'), (2, 'Comedy')`,
  `INSERT INTO film_category VALUES (1, 1), (2, 1), (2, 2)`,
  `INSERT INTO rental VALUES (1, 1), (2, 1)`,
  `INSERT INTO payment VALUES (1, 1, 2.99), (2, 2, 0.99)`,
];

export const GAPS_MYSQL_SCHEMA = [
  `CREATE TABLE film (
     film_id INT PRIMARY KEY,
     title VARCHAR(100) NOT NULL,
     length INT NULL,
     length_hours DECIMAL(6,2) AS (length / 60) STORED,
     title_upper VARCHAR(100) AS (UPPER(title)) VIRTUAL)`,
  ...TAIL,
];

export const GAPS_PG_SCHEMA = [
  `CREATE TABLE film (
     film_id INT PRIMARY KEY,
     title VARCHAR(100) NOT NULL,
     length INT NULL,
     length_hours NUMERIC(6,2) GENERATED ALWAYS AS (length / 60.0) STORED)`,
  ...TAIL,
];

/** What `init` must report on MariaDB/MySQL for this schema (PostgreSQL: none). */
export const GAPS_MYSQL_CASCADES = [
  'film_category.category_id → category(category_id): ON UPDATE CASCADE',
  'film_category.film_id → film(film_id): ON DELETE CASCADE, ON UPDATE CASCADE',
  'payment.rental_id → rental(rental_id): ON DELETE SET NULL',
];
