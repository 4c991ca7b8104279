-- One row per shadow comparison of a read endpoint (legacy answer vs read-model answer).
CREATE TABLE IF NOT EXISTS comparisons (
  id             INTEGER PRIMARY KEY,
  recorded_at    TEXT    NOT NULL,            -- ISO-8601 UTC
  endpoint       TEXT    NOT NULL,            -- flag key, e.g. accounts.summary
  request_key    TEXT    NOT NULL,            -- canonical request, e.g. accountId=7&limit=50
  account_id     INTEGER NULL,
  mode           TEXT    NULL,                -- flag mode that triggered the comparison
  served_by      TEXT    NOT NULL CHECK (served_by IN ('legacy', 'readModel')),
  outcome        TEXT    NOT NULL CHECK (outcome IN ('match', 'mismatch', 'lag', 'missing', 'error')),
  attempts       INTEGER NOT NULL,
  diff_count     INTEGER NOT NULL,            -- all differences, even when diff_json is capped
  diff_json      TEXT    NOT NULL,            -- JSON array of at most the recorder's cap
  error          TEXT    NULL,
  legacy_ms      REAL    NULL,
  read_model_ms  REAL    NULL
);

CREATE INDEX IF NOT EXISTS ix_comparisons_endpoint_outcome ON comparisons (endpoint, outcome);
CREATE INDEX IF NOT EXISTS ix_comparisons_recorded_at ON comparisons (recorded_at);

-- Distinct generalised paths (indices as [*]) that differed in each comparison, so the report
-- can rank the fields that disagree most without parsing every diff_json.
CREATE TABLE IF NOT EXISTS comparison_paths (
  comparison_id  INTEGER NOT NULL REFERENCES comparisons (id) ON DELETE CASCADE,
  path           TEXT    NOT NULL,
  PRIMARY KEY (comparison_id, path)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS ix_comparison_paths_path ON comparison_paths (path);
