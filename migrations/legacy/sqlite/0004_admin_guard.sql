-- See the MySQL migration. SQLite's BEGIN IMMEDIATE already serialises
-- writers; the row is kept so both schemas match.
CREATE TABLE admin_guard (
    id INTEGER NOT NULL PRIMARY KEY
) STRICT;

INSERT INTO admin_guard (id) VALUES (1);
