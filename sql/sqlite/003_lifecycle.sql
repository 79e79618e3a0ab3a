-- See sql/mysql/003_lifecycle.sql.
ALTER TABLE metrics ADD COLUMN deleted_at DATETIME NULL;

CREATE TABLE IF NOT EXISTS maintenance_runs (
    job VARCHAR(64) NOT NULL PRIMARY KEY,
    last_started_at DATETIME NULL,
    last_success_at DATETIME NULL,
    last_result TEXT NULL,
    last_error TEXT NULL
);

-- named_locks: SQLite has no GET_LOCK; a lock is a row leased until expires_at.
CREATE TABLE IF NOT EXISTS named_locks (
    name VARCHAR(64) NOT NULL PRIMARY KEY,
    owner CHAR(32) NOT NULL,
    expires_at DATETIME NOT NULL
);
