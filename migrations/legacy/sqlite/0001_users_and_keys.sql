-- Users. Display spellings are kept as given; the *_key columns hold the
-- canonical form (NFKC, lower-cased) that uniqueness is decided on. SQLite
-- compares TEXT byte-for-byte (BINARY collation), so the keys need no more.
-- STRICT tables refuse values of the wrong type instead of storing them.
CREATE TABLE users (
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

CREATE UNIQUE INDEX users_username_key ON users (username_key);
CREATE UNIQUE INDEX users_email_key ON users (email_key);
CREATE INDEX users_role_disabled ON users (role, disabled);

-- Token signing keys; see the MySQL migration for why `generation` is unique.
CREATE TABLE signing_keys (
    kid         TEXT    NOT NULL PRIMARY KEY,
    algorithm   TEXT    NOT NULL,
    generation  INTEGER NOT NULL,
    private_key TEXT    NOT NULL,
    public_key  TEXT,
    created_at  INTEGER NOT NULL,
    UNIQUE (algorithm, generation)
) STRICT;
