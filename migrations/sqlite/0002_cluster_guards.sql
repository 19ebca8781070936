-- See the MySQL migration of the same number. SQLite serialises writers
-- anyway; the columns are kept so both schemas match.
ALTER TABLE gatehouse_admin_guard ADD COLUMN changes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE gatehouse_login_attempts ADD COLUMN admissions INTEGER NOT NULL DEFAULT 0;

ALTER TABLE gatehouse_signing_keys ADD COLUMN signs_from INTEGER NOT NULL DEFAULT 0;
ALTER TABLE gatehouse_signing_keys ADD COLUMN retired_at INTEGER;
