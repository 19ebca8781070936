-- One row per login; see the MySQL migration for what each column is for.
CREATE TABLE sessions (
    id            TEXT    NOT NULL PRIMARY KEY,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    refresh_hash  TEXT    NOT NULL UNIQUE,
    previous_hash TEXT,
    rotated_at    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    user_agent    TEXT,
    ip            TEXT
) STRICT;

CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE INDEX sessions_last_used ON sessions (last_used_at);

CREATE TABLE spent_refresh_tokens (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    session_id TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    spent_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX spent_refresh_tokens_session ON spent_refresh_tokens (session_id);

CREATE TABLE server_secrets (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
