-- One row per login. `refresh_hash` is the keyed hash of the live refresh
-- token; `previous_hash` the one it replaced, kept for the short grace
-- window in which a concurrent refresh of the same token gets the same pair.
CREATE TABLE sessions (
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
    CONSTRAINT sessions_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Every refresh token already exchanged, so that presenting one again is
-- recognised as theft and ends its session. Rows go with their session.
CREATE TABLE spent_refresh_tokens (
    token_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    session_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    spent_at   BIGINT   NOT NULL,
    PRIMARY KEY (token_hash),
    KEY spent_refresh_tokens_session (session_id),
    CONSTRAINT spent_refresh_tokens_session_fk FOREIGN KEY (session_id) REFERENCES sessions (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Server-wide secrets generated on first start and shared by every instance
-- on this database (the key refresh tokens are hashed with).
CREATE TABLE server_secrets (
    name  VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    value TEXT        CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    PRIMARY KEY (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
