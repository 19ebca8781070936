-- Every change that can make a cached session answer wrong (a session
-- ended, a user's role, status or profile changed, a user deleted) adds a
-- row here in the same transaction. Each instance reads the rows after the
-- last it saw to drop what it holds in memory for those users. `seq` orders
-- the rows by when they were written, and readers look again behind gaps
-- (a transaction that took a number but commits late), so none is missed.
CREATE TABLE session_changes (
    seq     BIGINT   NOT NULL AUTO_INCREMENT,
    user_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    at      BIGINT   NOT NULL,
    PRIMARY KEY (seq),
    KEY session_changes_at (at)
) ENGINE = InnoDB;
