-- Who changed the shadow API's flags, when, from what to what, and why. Append-only: the
-- triggers refuse UPDATE and DELETE, so an entry cannot be rewritten through SQL either.
CREATE TABLE audit (
  id      INTEGER PRIMARY KEY,
  at      TEXT NOT NULL,                              -- ISO-8601 UTC
  actor   TEXT NOT NULL,                              -- the admin token's name (and the x-cqrs-actor header)
  action  TEXT NOT NULL,                              -- e.g. flags.set, flags.patch
  target  TEXT NULL,                                  -- the flag key a patch changed
  before  TEXT NOT NULL CHECK (json_valid(before)),
  after   TEXT NOT NULL CHECK (json_valid(after)),
  reason  TEXT NULL
) STRICT;

CREATE INDEX ix_audit_at ON audit (at);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
  SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
  SELECT RAISE(ABORT, 'the audit log is append-only');
END;
