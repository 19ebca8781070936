-- The whole schema as of gatehouse's first releases, under table names of
-- gatehouse's own, so it can live in a database beside an older backend's
-- `users` or `user` table. A database made by those releases (tables
-- without the prefix, bookkept in `_sqlx_migrations`) is brought here by
-- renaming its tables instead (see src/store/migrate.rs); either way the
-- result is this schema, constraint names included.
--
-- Every statement here and in later migrations stands alone: MySQL commits
-- each DDL statement on its own, so a migration cut short is completed by
-- running it again, which skips what already took effect.

-- Users. Display spellings are kept as given; the *_key columns hold the
-- canonical form (NFKC, lower-cased) that uniqueness is decided on. They are
-- VARBINARY so comparison is byte-for-byte with no padding and no collation:
-- no accent, case or trailing-space rule of a collation can make two names
-- collide or let a duplicate slip through, on MySQL 8 and MariaDB alike.
CREATE TABLE gatehouse_users (
    id            CHAR(36)      CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    username      VARCHAR(32)   NOT NULL,
    username_key  VARBINARY(32) NOT NULL,
    email         VARCHAR(254)  NULL,
    email_key     VARBINARY(1016) NULL,
    name          VARCHAR(100)  NULL,
    password_hash VARCHAR(255)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    role          VARCHAR(16)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    disabled      BOOLEAN       NOT NULL DEFAULT FALSE,
    created_at    BIGINT        NOT NULL,
    updated_at    BIGINT        NOT NULL,
    last_login_at BIGINT        NULL,
    PRIMARY KEY (id),
    UNIQUE KEY users_username_key (username_key),
    UNIQUE KEY users_email_key (email_key),
    KEY users_role_disabled (role, disabled),
    CONSTRAINT users_role_valid CHECK (role IN ('user', 'admin'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Token signing keys. `generation` orders keys per algorithm; its unique
-- index lets several instances race to create or rotate a key and agree on
-- the winner.
CREATE TABLE gatehouse_signing_keys (
    kid         VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    algorithm   VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    generation  BIGINT      NOT NULL,
    private_key TEXT        CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    public_key  TEXT        CHARACTER SET ascii COLLATE ascii_bin NULL,
    created_at  BIGINT      NOT NULL,
    PRIMARY KEY (kid),
    UNIQUE KEY signing_keys_generation (algorithm, generation)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per login. `refresh_hash` is the keyed hash of the live refresh
-- token; `previous_hash` the one it replaced, kept for the short grace
-- window in which a concurrent refresh of the same token gets the same pair.
CREATE TABLE gatehouse_sessions (
    id            CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    user_id       CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    refresh_hash  CHAR(64)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    previous_hash CHAR(64)     CHARACTER SET ascii COLLATE ascii_bin NULL,
    rotated_at    BIGINT       NOT NULL,
    created_at    BIGINT       NOT NULL,
    last_used_at  BIGINT       NOT NULL,
    expires_at    BIGINT       NOT NULL,
    user_agent    VARCHAR(512) NULL,
    ip            VARCHAR(45)  CHARACTER SET ascii COLLATE ascii_bin NULL,
    PRIMARY KEY (id),
    UNIQUE KEY sessions_refresh_hash (refresh_hash),
    KEY sessions_user (user_id),
    KEY sessions_expiry (expires_at),
    KEY sessions_last_used (last_used_at),
    CONSTRAINT sessions_user_fk FOREIGN KEY (user_id) REFERENCES gatehouse_users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Every refresh token already exchanged, so that presenting one again is
-- recognised as theft and ends its session. Rows go with their session.
CREATE TABLE gatehouse_spent_refresh_tokens (
    token_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    session_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    spent_at   BIGINT   NOT NULL,
    PRIMARY KEY (token_hash),
    KEY spent_refresh_tokens_session (session_id),
    CONSTRAINT spent_refresh_tokens_session_fk FOREIGN KEY (session_id) REFERENCES gatehouse_sessions (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Server-wide secrets generated on first start and shared by every instance
-- on this database (the keys refresh tokens and lockout counters are hashed
-- with).
CREATE TABLE gatehouse_server_secrets (
    name  VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    value TEXT        CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    PRIMARY KEY (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Failed-login counters, one row per account. `account_key` is an HMAC of
-- the account (a user id, or the name or address typed when no account
-- matched) under a server secret, so attempted names are never stored and
-- every key is the same size. Rows are swept once they no longer matter.
CREATE TABLE gatehouse_login_attempts (
    account_key       CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    failures          INT      NOT NULL DEFAULT 0,
    window_started_at BIGINT   NOT NULL,
    locked_until      BIGINT   NOT NULL DEFAULT 0,
    lockouts          INT      NOT NULL DEFAULT 0,
    updated_at        BIGINT   NOT NULL,
    PRIMARY KEY (account_key),
    KEY login_attempts_updated (updated_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Security events, newest first by id (UUIDv7). No foreign keys: events
-- outlive the users they are about.
CREATE TABLE gatehouse_audit_events (
    id         CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    at         BIGINT       NOT NULL,
    kind       VARCHAR(32)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    user_id    CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NULL,
    actor_id   CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NULL,
    ip         VARCHAR(45)  CHARACTER SET ascii COLLATE ascii_bin NULL,
    user_agent VARCHAR(512) NULL,
    request_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NULL,
    detail     TEXT         NULL,
    PRIMARY KEY (id),
    KEY audit_events_user (user_id, id),
    KEY audit_events_kind (kind, id),
    KEY audit_events_at (at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row that every change able to remove the last enabled admin takes
-- first (see migration 2 for how).
CREATE TABLE gatehouse_admin_guard (
    id INT NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB;

INSERT IGNORE INTO gatehouse_admin_guard (id) VALUES (1);

-- Password checks are counted before they run: each one admitted and not
-- yet settled holds a row here, so a burst of guesses cannot outrun the
-- lockout. Each row lapses at its own `expires_at`, so the checks of a
-- process that died mid-check stop counting on their own.
CREATE TABLE gatehouse_password_checks (
    account_key CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    id          CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    expires_at  BIGINT   NOT NULL,
    PRIMARY KEY (account_key, id),
    KEY password_checks_expiry (expires_at)
) ENGINE = InnoDB;

-- Every change that can make a cached session answer wrong (a session
-- ended, a user's role, status or profile changed, a user deleted) adds a
-- row here in the same transaction. Each instance reads the rows after the
-- last it saw to drop what it holds in memory for those users. `seq` orders
-- the rows by when they were written, and readers look again behind gaps
-- (a transaction that took a number but commits late), so none is missed.
CREATE TABLE gatehouse_session_changes (
    seq     BIGINT   NOT NULL AUTO_INCREMENT,
    user_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    at      BIGINT   NOT NULL,
    PRIMARY KEY (seq),
    KEY session_changes_at (at)
) ENGINE = InnoDB;
