-- Time travel (GET …?_asOf=<time>) looks up the last position committed at or before a time:
-- the source commit time lives in each event's metadata, indexed here so the lookup reads
-- the index instead of parsing every event's JSON. The expression must stay exactly the one
-- SqliteEventStore.positionAtSync queries, or SQLite will not use the index.
CREATE INDEX ix_events_commit_time ON events (json_extract(metadata, '$.sourceTsMs'));
