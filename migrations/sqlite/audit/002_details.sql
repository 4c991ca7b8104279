-- Structured facts of an entry beyond the flag documents: for rollout steps the stages moved
-- between and the gate figures the step was judged on (JSON; NULL for plain flag changes).
ALTER TABLE audit ADD COLUMN details TEXT NULL CHECK (details IS NULL OR json_valid(details));
