-- See the MySQL migration of the same number. SQLite cannot make a column
-- nullable in place, so the table is rebuilt under the same name, indexes
-- and all. gatehouse runs SQLite migrations with foreign keys off (and
-- checks them afterwards), so dropping the old table does not cascade to
-- the sessions that refer to it by name.
CREATE TABLE gatehouse_users_rebuilt (
    id            TEXT    NOT NULL PRIMARY KEY,
    username      TEXT,
    username_key  TEXT,
    email         TEXT,
    email_key     TEXT,
    name          TEXT,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('user', 'admin')),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    last_login_at INTEGER,
    first_name    TEXT,
    last_name     TEXT,
    CHECK (username IS NOT NULL OR email IS NOT NULL)
) STRICT;

INSERT INTO gatehouse_users_rebuilt (id, username, username_key, email, email_key, name,
    password_hash, role, disabled, created_at, updated_at, last_login_at)
SELECT id, username, username_key, email, email_key, name,
    password_hash, role, disabled, created_at, updated_at, last_login_at
FROM gatehouse_users;

DROP TABLE gatehouse_users;

ALTER TABLE gatehouse_users_rebuilt RENAME TO gatehouse_users;

CREATE UNIQUE INDEX users_username_key ON gatehouse_users (username_key);
CREATE UNIQUE INDEX users_email_key ON gatehouse_users (email_key);
CREATE INDEX users_role_disabled ON gatehouse_users (role, disabled);
