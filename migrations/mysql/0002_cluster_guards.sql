-- On a multi-primary cluster (Galera) a row lock taken on one node does not
-- hold back a transaction on another: two transactions conflict only when
-- both wrote the same row, and then one fails at commit. So the admin guard
-- is taken by writing its row, counting the changes it let through.
ALTER TABLE gatehouse_admin_guard ADD COLUMN changes BIGINT NOT NULL DEFAULT 0;

-- For the same reason, admitting a password check writes the account's
-- counter row, counting admissions.
ALTER TABLE gatehouse_login_attempts ADD COLUMN admissions BIGINT NOT NULL DEFAULT 0;

-- A rotated key is published first and signs from `signs_from` on, the
-- same moment on every instance; 0 for keys that signed from the start.
-- `retired_at` is set when a rotation drops the older keys at once.
ALTER TABLE gatehouse_signing_keys
    ADD COLUMN signs_from BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN retired_at BIGINT NULL;
