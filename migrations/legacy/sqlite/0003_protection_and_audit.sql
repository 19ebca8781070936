-- See the MySQL migration for what these tables hold.
CREATE TABLE login_attempts (
    account_key       TEXT    NOT NULL PRIMARY KEY,
    failures          INTEGER NOT NULL DEFAULT 0,
    window_started_at INTEGER NOT NULL,
    locked_until      INTEGER NOT NULL DEFAULT 0,
    lockouts          INTEGER NOT NULL DEFAULT 0,
    updated_at        INTEGER NOT NULL
) STRICT;

CREATE INDEX login_attempts_updated ON login_attempts (updated_at);

CREATE TABLE audit_events (
    id         TEXT    NOT NULL PRIMARY KEY,
    at         INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    user_id    TEXT,
    actor_id   TEXT,
    ip         TEXT,
    user_agent TEXT,
    request_id TEXT,
    detail     TEXT
) STRICT;

CREATE INDEX audit_events_user ON audit_events (user_id, id);
CREATE INDEX audit_events_kind ON audit_events (kind, id);
CREATE INDEX audit_events_at ON audit_events (at);
