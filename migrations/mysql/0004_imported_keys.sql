-- The usernames and emails `gatehouse import-users` brought in, kept as
-- SHA-256 digests of their case-folded keys: a row imported once is not
-- imported again, even after its account was deleted or renamed.
CREATE TABLE gatehouse_imported_keys (
    digest      CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    imported_at BIGINT   NOT NULL,
    PRIMARY KEY (digest)
) ENGINE = InnoDB;
