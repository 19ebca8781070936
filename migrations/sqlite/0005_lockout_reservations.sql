-- See the MySQL migration for why.
ALTER TABLE login_attempts ADD COLUMN in_flight INTEGER NOT NULL DEFAULT 0;
ALTER TABLE login_attempts ADD COLUMN in_flight_expires_at INTEGER NOT NULL DEFAULT 0;

DELETE FROM login_attempts;
