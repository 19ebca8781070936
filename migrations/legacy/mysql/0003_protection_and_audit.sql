-- Failed-login counters, one row per account. `account_key` is a SHA-256
-- of the account (a user id, or the name or address typed when no account
-- matched), so attempted names are never stored and every key is the same
-- size. Rows are swept once they no longer matter.
CREATE TABLE login_attempts (
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
CREATE TABLE audit_events (
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
