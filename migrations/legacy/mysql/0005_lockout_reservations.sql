-- Password checks are counted before they run: each one admitted and not
-- yet settled holds a row here, so a burst of guesses cannot outrun the
-- lockout. Each row lapses at its own `expires_at`, so the checks of a
-- process that died mid-check stop counting on their own, however busy the
-- account stays.
CREATE TABLE password_checks (
    account_key CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    id          CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    expires_at  BIGINT   NOT NULL,
    PRIMARY KEY (account_key, id),
    KEY password_checks_expiry (expires_at)
) ENGINE = InnoDB;

-- Counters are now keyed by an HMAC under a server secret instead of a bare
-- SHA-256 of the typed name; the old keys would never match again.
DELETE FROM login_attempts;
