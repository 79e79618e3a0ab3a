-- Dimensions: a series is a metric plus its tag set. The untagged series of every metric is
-- series 0 (every point stored before tags existed is one of it); tagged ones are numbered
-- 1, 2, … within their metric, under the metric row's lock (which also keeps the series limit).

-- series: the catalogue. tags is the canonical JSON text of the set (sorted keys), tags_hash
-- its 64-bit hash (app/core/tags.py); (metric_id, tags_hash) finds a series, the text is
-- compared too. last_seen is refreshed at most hourly per series, never per point.
CREATE TABLE IF NOT EXISTS series (
    metric_id INT UNSIGNED NOT NULL,
    series_id INT UNSIGNED NOT NULL,
    tags_hash BIGINT NOT NULL,
    tags TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    first_seen DATETIME(6) NOT NULL,
    last_seen DATETIME(6) NOT NULL,
    PRIMARY KEY (metric_id, series_id),
    KEY ix_series_hash (metric_id, tags_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- series_tags: each (metric, tag key, value) and how many series carry it, kept as series are
-- made: the tag listings answer from here (an index range), never from points.
CREATE TABLE IF NOT EXISTS series_tags (
    metric_id INT UNSIGNED NOT NULL,
    tag_key VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    tag_value VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    series_count INT UNSIGNED NOT NULL,
    PRIMARY KEY (metric_id, tag_key, tag_value)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Per-series rollups, kept (beside the per-metric ones, which answer unfiltered queries) once
-- a metric has a tagged series; from then on every point of the metric is in both.
CREATE TABLE IF NOT EXISTS series_rollups_minute (
    metric_id INT UNSIGNED NOT NULL,
    series_id INT UNSIGNED NOT NULL,
    bucket DATETIME NOT NULL,
    n BIGINT UNSIGNED NOT NULL,
    total DECIMAL(65,30) NOT NULL,
    residual DOUBLE NOT NULL,
    vmin DOUBLE NOT NULL,
    vmax DOUBLE NOT NULL,
    PRIMARY KEY (metric_id, series_id, bucket)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS series_rollups_hour (
    metric_id INT UNSIGNED NOT NULL,
    series_id INT UNSIGNED NOT NULL,
    bucket DATETIME NOT NULL,
    n BIGINT UNSIGNED NOT NULL,
    total DECIMAL(65,30) NOT NULL,
    residual DOUBLE NOT NULL,
    vmin DOUBLE NOT NULL,
    vmax DOUBLE NOT NULL,
    PRIMARY KEY (metric_id, series_id, bucket)
) ENGINE=InnoDB;

-- Points carry their series (0: untagged); the clustered key stays (metric, time) so a whole
-- metric's range is still one scan. Appending a column with a default is instant on both
-- servers (no table copy).
ALTER TABLE metric_points ADD COLUMN series_id INT UNSIGNED NOT NULL DEFAULT 0;

-- metrics.tagged: 1 once the metric has a tagged series (its points then keep per-series
-- rollups too).
ALTER TABLE metrics ADD COLUMN tagged TINYINT NOT NULL DEFAULT 0;

-- Every existing metric has had untagged points: its series 0.
INSERT IGNORE INTO series (metric_id, series_id, tags_hash, tags, first_seen, last_seen)
SELECT id, 0, 0, '{}', created_at, updated_at FROM metrics WHERE deleted_at IS NULL;
