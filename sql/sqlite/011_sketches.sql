-- Percentile sketches: each rollup row of a value metric keeps the counts of its points per
-- logarithmic bucket (app/core/sketch.py's encoding), merged by the writer. Counter rows keep
-- NULL.
ALTER TABLE metric_rollups_minute ADD COLUMN sketch BLOB NULL;
ALTER TABLE metric_rollups_hour ADD COLUMN sketch BLOB NULL;
ALTER TABLE series_rollups_minute ADD COLUMN sketch BLOB NULL;
ALTER TABLE series_rollups_hour ADD COLUMN sketch BLOB NULL;

-- From when each tier's sketches are complete: a new install from the start; one whose
-- rollups were made before sketches existed nowhere until `flask rollups rebuild` has run.
ALTER TABLE rollup_state ADD COLUMN sketches_from DATETIME NULL;
UPDATE rollup_state SET sketches_from = CASE
    WHEN EXISTS (SELECT 1 FROM metric_rollups_minute) OR EXISTS (SELECT 1 FROM metric_rollups_hour)
    THEN NULL ELSE '1970-01-01 00:00:00.000000' END;
