-- An account may be registered by email alone, without a username, and
-- keeps a first and a last name beside the display name (the FastAPI
-- backends' clients send those). One statement: it applies whole or not at
-- all, and a rerun after it applied is passed over.
ALTER TABLE gatehouse_users
    MODIFY username VARCHAR(32) NULL,
    MODIFY username_key VARBINARY(32) NULL,
    ADD COLUMN first_name VARCHAR(100) NULL,
    ADD COLUMN last_name VARCHAR(100) NULL,
    ADD CONSTRAINT users_username_or_email CHECK (username IS NOT NULL OR email IS NOT NULL);
