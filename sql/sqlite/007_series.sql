-- See sql/mysql/007_series.sql.
CREATE TABLE IF NOT EXISTS series (
    metric_id INTEGER NOT NULL,
    series_id INTEGER NOT NULL,
    tags_hash INTEGER NOT NULL,
    tags TEXT NOT NULL,
    first_seen DATETIME NOT NULL,
    last_seen DATETIME NOT NULL,
    PRIMARY KEY (metric_id, series_id)
);

CREATE INDEX IF NOT EXISTS ix_series_hash ON series (metric_id, tags_hash);

CREATE TABLE IF NOT EXISTS series_tags (
    metric_id INTEGER NOT NULL,
    tag_key VARCHAR(64) NOT NULL,
    tag_value VARCHAR(255) NOT NULL,
    series_count INTEGER NOT NULL,
    PRIMARY KEY (metric_id, tag_key, tag_value)
);

CREATE TABLE IF NOT EXISTS series_rollups_minute (
    metric_id INTEGER NOT NULL,
    series_id INTEGER NOT NULL,
    bucket DATETIME NOT NULL,
    n INTEGER NOT NULL,
    total TEXT NOT NULL,
    residual DOUBLE NOT NULL,
    vmin DOUBLE NOT NULL,
    vmax DOUBLE NOT NULL,
    PRIMARY KEY (metric_id, series_id, bucket)
);

CREATE TABLE IF NOT EXISTS series_rollups_hour (
    metric_id INTEGER NOT NULL,
    series_id INTEGER NOT NULL,
    bucket DATETIME NOT NULL,
    n INTEGER NOT NULL,
    total TEXT NOT NULL,
    residual DOUBLE NOT NULL,
    vmin DOUBLE NOT NULL,
    vmax DOUBLE NOT NULL,
    PRIMARY KEY (metric_id, series_id, bucket)
);

ALTER TABLE metric_points ADD COLUMN series_id INTEGER NOT NULL DEFAULT 0;

ALTER TABLE metrics ADD COLUMN tagged INTEGER NOT NULL DEFAULT 0;

INSERT OR IGNORE INTO series (metric_id, series_id, tags_hash, tags, first_seen, last_seen)
SELECT id, 0, 0, '{}', created_at, updated_at FROM metrics WHERE deleted_at IS NULL;
