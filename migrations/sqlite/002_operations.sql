-- What operators act on: dead letters re-driven after a rule fix, and schema changes seen on
-- captured tables (which pause a table's capture when they break its rule).

-- One row per dead letter that was re-driven: its events were appended, or a later change of
-- the same aggregate had already superseded it. A dead letter without a row here is pending.
CREATE TABLE dead_letter_redrives (
  dead_letter_id INTEGER PRIMARY KEY REFERENCES dead_letters (id),
  outcome        TEXT    NOT NULL CHECK (outcome IN ('appended', 'superseded')),
  stream_id      TEXT    NOT NULL,
  first_position INTEGER,
  last_position  INTEGER,
  redriven_at    TEXT    NOT NULL
) STRICT;

CREATE INDEX ix_dead_letters_table ON dead_letters (table_name, id);

-- DDL on a captured table, as the change source saw it. `breaks` says why the table's capture
-- rule can no longer read the table (null: the rule still reads it); such a change pauses the
-- table's capture until `resolved_at` (its rows are kept as dead letters meanwhile).
CREATE TABLE schema_changes (
  id              INTEGER PRIMARY KEY,
  source_name     TEXT NOT NULL,
  table_name      TEXT NOT NULL,
  ddl             TEXT NOT NULL,
  source_position TEXT NOT NULL,
  columns         TEXT NOT NULL CHECK (json_valid(columns)),
  breaks          TEXT,
  detected_at     TEXT NOT NULL,
  resolved_at     TEXT
) STRICT;

CREATE INDEX ix_schema_changes_table ON schema_changes (table_name, id);
