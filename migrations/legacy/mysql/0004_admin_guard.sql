-- One row that every change able to remove the last enabled admin locks
-- first. Locking the admins' own rows instead depends on the query plan
-- (primary key or role index), and two plans in two transactions deadlock.
CREATE TABLE admin_guard (
    id INT NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB;

INSERT INTO admin_guard (id) VALUES (1);
