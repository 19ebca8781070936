-- The usernames and emails `gatehouse import-users` brought in, kept as
-- SHA-256 digests of their case-folded keys: a row imported once is not
-- imported again, even after its account was deleted or renamed.
CREATE TABLE gatehouse_imported_keys (
    digest      TEXT    NOT NULL PRIMARY KEY,
    imported_at INTEGER NOT NULL
);
