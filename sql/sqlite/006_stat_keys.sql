-- See sql/mysql/006_stat_keys.sql.
CREATE TABLE IF NOT EXISTS stat_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key_hash CHAR(64) NOT NULL UNIQUE,
    prefix VARCHAR(16) NOT NULL,
    metric VARCHAR(255) NOT NULL,
    created_at DATETIME NOT NULL
);
