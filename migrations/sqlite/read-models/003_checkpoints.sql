CREATE TABLE projector_checkpoints (
  name TEXT PRIMARY KEY, position INTEGER NOT NULL, source_tx_id TEXT, updated_at TEXT NOT NULL
);
