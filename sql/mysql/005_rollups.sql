-- Rollups: per (metric, minute) and per (metric, hour), the count, the exact sum, the minimum
-- and the maximum of the points in it — kept by the writer in the same transaction as the
-- points (app/db/rollups.py). total is the exact sum of the values' shortest decimals with
-- |v| >= 1e-13; residual the double sum of the tinier ones (as the raw query sums them).
CREATE TABLE IF NOT EXISTS metric_rollups_minute (
    metric_id INT UNSIGNED NOT NULL,
    bucket DATETIME NOT NULL,
    n BIGINT UNSIGNED NOT NULL,
    total DECIMAL(65,30) NOT NULL,
    residual DOUBLE NOT NULL,
    vmin DOUBLE NOT NULL,
    vmax DOUBLE NOT NULL,
    PRIMARY KEY (metric_id, bucket)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS metric_rollups_hour (
    metric_id INT UNSIGNED NOT NULL,
    bucket DATETIME NOT NULL,
    n BIGINT UNSIGNED NOT NULL,
    total DECIMAL(65,30) NOT NULL,
    residual DOUBLE NOT NULL,
    vmin DOUBLE NOT NULL,
    vmax DOUBLE NOT NULL,
    PRIMARY KEY (metric_id, bucket)
) ENGINE=InnoDB;

-- rollup_state: from when each tier is complete (every bucket at or after complete_from holds
-- all its points). A new install is complete from the start; an install that already has
-- points is complete nowhere until `flask rollups rebuild` has run (queries use raw points).
CREATE TABLE IF NOT EXISTS rollup_state (
    tier VARCHAR(16) CHARACTER SET ascii NOT NULL,
    complete_from DATETIME NULL,
    PRIMARY KEY (tier)
) ENGINE=InnoDB;

INSERT IGNORE INTO rollup_state (tier, complete_from)
SELECT tier, CASE WHEN EXISTS (SELECT 1 FROM metric_points) THEN NULL ELSE '1970-01-01' END
FROM (SELECT 'minute' AS tier UNION ALL SELECT 'hour') tiers;
