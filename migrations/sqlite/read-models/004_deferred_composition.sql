-- position stays "documents complete up to here" (what readers, freshness and caches use);
-- applied_position is how far rows (and projection documents) were applied, ahead of it while
-- a catch-up defers view composition. Only the runner resumes from it.
ALTER TABLE projector_checkpoints ADD COLUMN applied_position INTEGER;
ALTER TABLE projector_checkpoints ADD COLUMN applied_source_tx_id TEXT;
-- View documents marked by applied rows and not composed yet, per projection (read-model version).
CREATE TABLE rm_dirty (
  projection TEXT NOT NULL, view TEXT NOT NULL, key TEXT NOT NULL,
  PRIMARY KEY (projection, view, key)
) WITHOUT ROWID;
