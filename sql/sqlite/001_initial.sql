-- Glowing Fiesta schema for the embedded SQLite backend: the MySQL schema without partitions.
-- Times are stored as 'YYYY-MM-DD HH:MM:SS.ffffff' UTC text, which sorts chronologically.

-- metrics: SQLite compares TEXT with BINARY collation, so names are case-sensitive.
CREATE TABLE IF NOT EXISTS metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name VARCHAR(255) NOT NULL UNIQUE,
    type VARCHAR(8) NOT NULL CHECK (type IN ('counter', 'value')),
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);

-- metric_points: a rowid table; the covering index below gives the contiguous per-metric
-- time-range scan that MySQL gets from its clustered primary key.
CREATE TABLE IF NOT EXISTS metric_points (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    metric_id INTEGER NOT NULL,
    recorded_at DATETIME NOT NULL,
    value DOUBLE NOT NULL,
    created_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

CREATE INDEX IF NOT EXISTS ix_metric_points_metric_time
    ON metric_points (metric_id, recorded_at, value);

CREATE TABLE IF NOT EXISTS api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name VARCHAR(255) NOT NULL,
    key_hash CHAR(64) NOT NULL UNIQUE,
    prefix VARCHAR(16) NOT NULL,
    rate_limit INTEGER NULL,
    created_at DATETIME NOT NULL,
    last_used_at DATETIME NULL,
    revoked_at DATETIME NULL
);
