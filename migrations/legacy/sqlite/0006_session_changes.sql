-- See the MySQL migration. AUTOINCREMENT: a number is never used twice,
-- even after the newest row is deleted.
CREATE TABLE session_changes (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT    NOT NULL,
    at      INTEGER NOT NULL
) STRICT;

CREATE INDEX session_changes_at ON session_changes (at);
