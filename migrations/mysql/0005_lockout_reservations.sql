-- Password checks are counted before they run: `in_flight` holds the ones
-- admitted and not yet settled, so a burst of guesses cannot outrun the
-- lockout. `in_flight_expires_at` lets the reservations of a process that
-- died mid-check lapse instead of blocking the account.
ALTER TABLE login_attempts
    ADD COLUMN in_flight            INT    NOT NULL DEFAULT 0,
    ADD COLUMN in_flight_expires_at BIGINT NOT NULL DEFAULT 0;

-- Counters are now keyed by an HMAC under a server secret instead of a bare
-- SHA-256 of the typed name; the old keys would never match again.
DELETE FROM login_attempts;
