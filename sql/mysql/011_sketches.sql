-- Percentile sketches: each rollup row of a value metric keeps the counts of its points per
-- logarithmic bucket (app/core/sketch.py's encoding: frames of at most 58,214 bytes). Writers
-- append their frames (CONCAT) and compact a row's frames into one now and then, so a row may
-- hold many frames for a while: MEDIUMBLOB (16 MB). Counter rows keep NULL.
ALTER TABLE metric_rollups_minute ADD COLUMN sketch MEDIUMBLOB NULL;
ALTER TABLE metric_rollups_hour ADD COLUMN sketch MEDIUMBLOB NULL;
ALTER TABLE series_rollups_minute ADD COLUMN sketch MEDIUMBLOB NULL;
ALTER TABLE series_rollups_hour ADD COLUMN sketch MEDIUMBLOB NULL;

-- From when each tier's sketches are complete: a new install (no rollup row yet) from the
-- start; one whose rollups were made before sketches existed nowhere until `flask rollups
-- rebuild` has run (percentiles are answered from raw points meanwhile).
ALTER TABLE rollup_state ADD COLUMN sketches_from DATETIME NULL;
UPDATE rollup_state SET sketches_from = CASE
    WHEN EXISTS (SELECT 1 FROM metric_rollups_minute) OR EXISTS (SELECT 1 FROM metric_rollups_hour)
    THEN NULL ELSE '1970-01-01' END;

-- The writer sets compacted sketches with an INSERT … ON DUPLICATE KEY UPDATE of rows that all
-- exist (one statement); strict mode wants every other column to have a default for that.
ALTER TABLE metric_rollups_minute ALTER COLUMN n SET DEFAULT 0, ALTER COLUMN total SET DEFAULT 0,
    ALTER COLUMN residual SET DEFAULT 0, ALTER COLUMN vmin SET DEFAULT 0, ALTER COLUMN vmax SET DEFAULT 0;
ALTER TABLE metric_rollups_hour ALTER COLUMN n SET DEFAULT 0, ALTER COLUMN total SET DEFAULT 0,
    ALTER COLUMN residual SET DEFAULT 0, ALTER COLUMN vmin SET DEFAULT 0, ALTER COLUMN vmax SET DEFAULT 0;
ALTER TABLE series_rollups_minute ALTER COLUMN n SET DEFAULT 0, ALTER COLUMN total SET DEFAULT 0,
    ALTER COLUMN residual SET DEFAULT 0, ALTER COLUMN vmin SET DEFAULT 0, ALTER COLUMN vmax SET DEFAULT 0;
ALTER TABLE series_rollups_hour ALTER COLUMN n SET DEFAULT 0, ALTER COLUMN total SET DEFAULT 0,
    ALTER COLUMN residual SET DEFAULT 0, ALTER COLUMN vmin SET DEFAULT 0, ALTER COLUMN vmax SET DEFAULT 0;
