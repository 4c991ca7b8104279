-- Fragments of source transactions too big to hold in memory (cdc.maxTransactionRows). Each
-- unfinished fragment's mapped output waits here, committed but invisible to readers, until
-- the transaction's last fragment publishes all of it into events, dead_letters and
-- schema_changes in one transaction and deletes it from here. Rows left by a crash are
-- cleared when the transaction is delivered again from its first fragment.
CREATE TABLE staged_items (
  id           INTEGER PRIMARY KEY,           -- staging order: the source's order
  source_name  TEXT    NOT NULL,
  source_tx_id TEXT    NOT NULL,
  fragment     INTEGER NOT NULL CHECK (fragment >= 0),
  kind         TEXT    NOT NULL CHECK (kind IN ('event', 'dead_letter', 'schema_change')),
  body         TEXT    NOT NULL CHECK (json_valid(body))
) STRICT;

CREATE INDEX ix_staged_items_tx ON staged_items (source_name, source_tx_id, id);
