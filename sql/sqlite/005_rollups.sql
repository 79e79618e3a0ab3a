-- See sql/mysql/005_rollups.sql. total is the exact sum as decimal text (SQLite has no exact
-- decimal type); residual stays 0 here, the text holds every value exactly.
CREATE TABLE IF NOT EXISTS metric_rollups_minute (
    metric_id INTEGER NOT NULL,
    bucket DATETIME NOT NULL,
    n INTEGER NOT NULL,
    total TEXT NOT NULL,
    residual DOUBLE NOT NULL,
    vmin DOUBLE NOT NULL,
    vmax DOUBLE NOT NULL,
    PRIMARY KEY (metric_id, bucket)
);

CREATE TABLE IF NOT EXISTS metric_rollups_hour (
    metric_id INTEGER NOT NULL,
    bucket DATETIME NOT NULL,
    n INTEGER NOT NULL,
    total TEXT NOT NULL,
    residual DOUBLE NOT NULL,
    vmin DOUBLE NOT NULL,
    vmax DOUBLE NOT NULL,
    PRIMARY KEY (metric_id, bucket)
);

CREATE TABLE IF NOT EXISTS rollup_state (
    tier VARCHAR(16) NOT NULL PRIMARY KEY,
    complete_from DATETIME NULL
);

INSERT OR IGNORE INTO rollup_state (tier, complete_from)
SELECT tier, CASE WHEN EXISTS (SELECT 1 FROM metric_points) THEN NULL ELSE '1970-01-01 00:00:00.000000' END
FROM (SELECT 'minute' AS tier UNION ALL SELECT 'hour');
