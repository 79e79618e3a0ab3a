-- Glowing Fiesta schema for MySQL 8.0 / MariaDB 10.11.

-- metrics: one row per metric name. Names are ASCII by contract (^[A-Za-z0-9._-]{1,255}$),
-- so ascii_bin keeps the unique key small and makes names case-sensitive.
CREATE TABLE IF NOT EXISTS metrics (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT,
    name VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    type ENUM('counter', 'value') NOT NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_metrics_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- metric_points: the raw points. The primary key is the clustered index, so one metric's
-- time range is one contiguous scan. id only breaks ties between equal timestamps; its own
-- non-unique key exists because InnoDB needs AUTO_INCREMENT to lead some index.
-- Partitioned by day on recorded_at (partitions are created by `make migrate` and the
-- maintenance job); partitioned InnoDB tables allow no foreign keys, so the application
-- deletes a metric's points with the metric.
CREATE TABLE IF NOT EXISTS metric_points (
    metric_id INT UNSIGNED NOT NULL,
    recorded_at DATETIME(6) NOT NULL,
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    value DOUBLE NOT NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (metric_id, recorded_at, id),
    KEY ix_metric_points_id (id)
) ENGINE=InnoDB
PARTITION BY RANGE COLUMNS (recorded_at) (
    PARTITION p_past VALUES LESS THAN ('1970-01-02 00:00:00'),
    PARTITION p_future VALUES LESS THAN (MAXVALUE)
);

-- api_keys: only the SHA-256 of a key is stored; prefix identifies it in logs and listings.
-- rate_limit NULL means "the default from METRICS_RATE_LIMIT_DEFAULT".
CREATE TABLE IF NOT EXISTS api_keys (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT,
    name VARCHAR(255) NOT NULL,
    key_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    prefix VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    rate_limit INT UNSIGNED NULL,
    created_at DATETIME(6) NOT NULL,
    last_used_at DATETIME(6) NULL,
    revoked_at DATETIME(6) NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_api_keys_hash (key_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
