-- Points and their rollups in ClickHouse (POINTS_URL). Metrics, series, keys and receipts stay
-- in DATABASE_URL; ``metric_id`` and ``series_id`` are that database's ids (series 0: a point
-- without tags).
--
-- points: the raw points, one day a partition (retention drops whole days), sorted so one
-- metric's time range (of one series, or of all) is one scan. Times to the microsecond, values
-- as the doubles the client sent. ``batch`` is the write's token (its receipt's, or the drain
-- batch's): a retry whose receipt is still pending asks whether that token landed. Inserts
-- carry the same token as insert_deduplication_token, so a block sent twice lands once; every
-- insert is on disk before it returns (fsync).
CREATE TABLE IF NOT EXISTS points (
    metric_id UInt64,
    series_id UInt64,
    recorded_at DateTime64(6, 'UTC'),
    value Float64,
    batch String CODEC(ZSTD(1)),
    INDEX batch_tokens batch TYPE bloom_filter GRANULARITY 1
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(recorded_at)
ORDER BY (metric_id, series_id, recorded_at)
SETTINGS non_replicated_deduplication_window = 10000, fsync_after_insert = 1,
    fsync_part_directory = 1;

-- rollups_minute / rollups_hour: per (metric, series, minute or hour) the count, the exact
-- sum (each value's shortest decimal, as DATABASE_URL's rollups: values under 1e-13 go to the
-- double ``residual``), minimum, maximum and the percentile sketch (sketch key → count). Kept
-- by ClickHouse itself: the materialized views below add every inserted block, late points
-- too; merges add rows with the same key. The deduplication window here too, so a block sent
-- twice is not counted twice by the views.
CREATE TABLE IF NOT EXISTS rollups_minute (
    metric_id UInt64,
    series_id UInt64,
    bucket DateTime('UTC'),
    n SimpleAggregateFunction(sum, UInt64),
    total SimpleAggregateFunction(sum, Decimal256(30)),
    residual SimpleAggregateFunction(sum, Float64),
    vmin SimpleAggregateFunction(min, Float64),
    vmax SimpleAggregateFunction(max, Float64),
    sketch SimpleAggregateFunction(sumMap, Map(Int16, UInt64))
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMMDD(bucket)
ORDER BY (metric_id, series_id, bucket)
SETTINGS non_replicated_deduplication_window = 10000, fsync_after_insert = 1,
    fsync_part_directory = 1;

-- The same columns, a month a partition.
CREATE TABLE IF NOT EXISTS rollups_hour AS rollups_minute
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (metric_id, series_id, bucket)
SETTINGS non_replicated_deduplication_window = 10000, fsync_after_insert = 1,
    fsync_part_directory = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollups_minute_mv TO rollups_minute AS
SELECT
    metric_id,
    series_id,
    toStartOfMinute(recorded_at) AS bucket,
    count() AS n,
    sumIf(toDecimal256(toString(value), 30), abs(value) >= 1e-13) AS total,
    sumIf(value, abs(value) < 1e-13) AS residual,
    min(value) AS vmin,
    max(value) AS vmax,
    sumMap(map({sketch_key}, toUInt64(1))) AS sketch
FROM points
GROUP BY metric_id, series_id, bucket;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollups_hour_mv TO rollups_hour AS
SELECT
    metric_id,
    series_id,
    toStartOfHour(recorded_at) AS bucket,
    count() AS n,
    sumIf(toDecimal256(toString(value), 30), abs(value) >= 1e-13) AS total,
    sumIf(value, abs(value) < 1e-13) AS residual,
    min(value) AS vmin,
    max(value) AS vmax,
    sumMap(map({sketch_key}, toUInt64(1))) AS sketch
FROM points
GROUP BY metric_id, series_id, bucket;
