-- See the MySQL migration for why.
CREATE TABLE password_checks (
    account_key TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (account_key, id)
) STRICT;

CREATE INDEX password_checks_expiry ON password_checks (expires_at);

DELETE FROM login_attempts;
