-- Users. Display spellings are kept as given; the *_key columns hold the
-- canonical form (NFKC, lower-cased) that uniqueness is decided on. They are
-- VARBINARY so comparison is byte-for-byte with no padding and no collation:
-- no accent, case or trailing-space rule of a collation can make two names
-- collide or let a duplicate slip through, on MySQL 8 and MariaDB alike
-- (the two ship no common no-pad binary utf8mb4 collation).
CREATE TABLE users (
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
CREATE TABLE signing_keys (
    kid         VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    algorithm   VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    generation  BIGINT      NOT NULL,
    private_key TEXT        CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    public_key  TEXT        CHARACTER SET ascii COLLATE ascii_bin NULL,
    created_at  BIGINT      NOT NULL,
    PRIMARY KEY (kid),
    UNIQUE KEY signing_keys_generation (algorithm, generation)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
