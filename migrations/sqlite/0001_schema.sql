-- The whole schema as of gatehouse's first releases, under table names of
-- gatehouse's own; see the MySQL migration of the same number. SQLite runs
-- each migration in one transaction: it applies whole or not at all.

CREATE TABLE gatehouse_users (
    id            TEXT    NOT NULL PRIMARY KEY,
    username      TEXT    NOT NULL,
    username_key  TEXT    NOT NULL,
    email         TEXT,
    email_key     TEXT,
    name          TEXT,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('user', 'admin')),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    last_login_at INTEGER
) STRICT;

CREATE UNIQUE INDEX users_username_key ON gatehouse_users (username_key);
CREATE UNIQUE INDEX users_email_key ON gatehouse_users (email_key);
CREATE INDEX users_role_disabled ON gatehouse_users (role, disabled);

CREATE TABLE gatehouse_signing_keys (
    kid         TEXT    NOT NULL PRIMARY KEY,
    algorithm   TEXT    NOT NULL,
    generation  INTEGER NOT NULL,
    private_key TEXT    NOT NULL,
    public_key  TEXT,
    created_at  INTEGER NOT NULL,
    UNIQUE (algorithm, generation)
) STRICT;

CREATE TABLE gatehouse_sessions (
    id            TEXT    NOT NULL PRIMARY KEY,
    user_id       TEXT    NOT NULL REFERENCES gatehouse_users (id) ON DELETE CASCADE,
    refresh_hash  TEXT    NOT NULL UNIQUE,
    previous_hash TEXT,
    rotated_at    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    user_agent    TEXT,
    ip            TEXT
) STRICT;

CREATE INDEX sessions_user ON gatehouse_sessions (user_id);
CREATE INDEX sessions_expiry ON gatehouse_sessions (expires_at);
CREATE INDEX sessions_last_used ON gatehouse_sessions (last_used_at);

CREATE TABLE gatehouse_spent_refresh_tokens (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    session_id TEXT    NOT NULL REFERENCES gatehouse_sessions (id) ON DELETE CASCADE,
    spent_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX spent_refresh_tokens_session ON gatehouse_spent_refresh_tokens (session_id);

CREATE TABLE gatehouse_server_secrets (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE gatehouse_login_attempts (
    account_key       TEXT    NOT NULL PRIMARY KEY,
    failures          INTEGER NOT NULL DEFAULT 0,
    window_started_at INTEGER NOT NULL,
    locked_until      INTEGER NOT NULL DEFAULT 0,
    lockouts          INTEGER NOT NULL DEFAULT 0,
    updated_at        INTEGER NOT NULL
) STRICT;

CREATE INDEX login_attempts_updated ON gatehouse_login_attempts (updated_at);

CREATE TABLE gatehouse_audit_events (
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

CREATE INDEX audit_events_user ON gatehouse_audit_events (user_id, id);
CREATE INDEX audit_events_kind ON gatehouse_audit_events (kind, id);
CREATE INDEX audit_events_at ON gatehouse_audit_events (at);

-- SQLite's BEGIN IMMEDIATE already serialises writers; the row is kept so
-- both schemas match.
CREATE TABLE gatehouse_admin_guard (
    id INTEGER NOT NULL PRIMARY KEY
) STRICT;

INSERT INTO gatehouse_admin_guard (id) VALUES (1);

CREATE TABLE gatehouse_password_checks (
    account_key TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (account_key, id)
) STRICT;

CREATE INDEX password_checks_expiry ON gatehouse_password_checks (expires_at);

CREATE TABLE gatehouse_session_changes (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT    NOT NULL,
    at      INTEGER NOT NULL
) STRICT;

CREATE INDEX session_changes_at ON gatehouse_session_changes (at);
