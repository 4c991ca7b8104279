-- Differences an endpoint's compare rules ignored or tolerated: not part of diff_count or the
-- outcome, counted here so the report shows what the rules accepted.
ALTER TABLE comparisons ADD COLUMN ignored_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE comparisons ADD COLUMN tolerated_count INTEGER NOT NULL DEFAULT 0;
