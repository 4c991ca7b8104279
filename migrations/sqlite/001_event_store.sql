-- The event store: append-only domain events with a global, gap-free position, the
-- per-source resume offsets stored in the same transaction as the events, rejected rows,
-- and the source transactions already applied (replay detection).

CREATE TABLE events (
  position        INTEGER PRIMARY KEY,            -- assigned as head + 1 inside the append transaction
  stream_id       TEXT    NOT NULL,
  stream_type     TEXT    NOT NULL,
  version         INTEGER NOT NULL CHECK (version >= 1),
  type            TEXT    NOT NULL,
  data            TEXT    NOT NULL CHECK (json_valid(data)),
  metadata        TEXT    NOT NULL CHECK (json_valid(metadata)),
  source_tx_id    TEXT    NOT NULL,
  source_position TEXT    NOT NULL,
  snapshot        INTEGER NOT NULL CHECK (snapshot IN (0, 1)),
  recorded_at     TEXT    NOT NULL,
  UNIQUE (stream_id, version)
) STRICT;

CREATE INDEX ix_events_source_tx ON events (source_tx_id);

-- Event-level idempotency key for streamed changes: one binlog row / LSN yields each event
-- type at most once. Snapshot reads are exempt: a redone snapshot legitimately re-emits
-- events for the same source position (see eventstore/sqlite.ts).
CREATE UNIQUE INDEX uq_events_source_row ON events (source_position, type) WHERE snapshot = 0;

CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
BEGIN
  SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
BEGIN
  SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TABLE source_offsets (
  source_name  TEXT PRIMARY KEY,
  "offset"     TEXT NOT NULL CHECK (json_valid("offset")),
  source_tx_id TEXT NOT NULL,
  updated_at   TEXT NOT NULL
) STRICT;

CREATE TABLE dead_letters (
  id              INTEGER PRIMARY KEY,
  source_name     TEXT NOT NULL,
  reason          TEXT NOT NULL,
  table_name      TEXT NOT NULL,
  op              TEXT NOT NULL CHECK (op IN ('c', 'u', 'd', 'r')),
  source_position TEXT NOT NULL,
  source_tx_id    TEXT NOT NULL,
  change          TEXT NOT NULL CHECK (json_valid(change)),
  recorded_at     TEXT NOT NULL
) STRICT;

CREATE INDEX ix_dead_letters_source_tx ON dead_letters (source_tx_id);

-- Streamed source transactions already appended; snapshot chunks are not recorded here.
CREATE TABLE source_transactions (
  source_name       TEXT    NOT NULL,
  source_tx_id      TEXT    NOT NULL,
  first_position    INTEGER,
  last_position     INTEGER,
  dead_letter_count INTEGER NOT NULL,
  recorded_at       TEXT    NOT NULL,
  PRIMARY KEY (source_name, source_tx_id)
) STRICT, WITHOUT ROWID;
