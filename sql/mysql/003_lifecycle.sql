-- metrics.deleted_at: a deleted metric is renamed '~deleted~<id>' (no valid name can clash)
-- and stamped here at once; its points are then removed in chunks and the row last.
ALTER TABLE metrics ADD COLUMN deleted_at DATETIME(6) NULL;

-- maintenance_runs: the last start, success and result of each maintenance job, for /ready,
-- for /metrics and for the in-process timer (which runs a job only when it is due).
CREATE TABLE IF NOT EXISTS maintenance_runs (
    job VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    last_started_at DATETIME(6) NULL,
    last_success_at DATETIME(6) NULL,
    last_result TEXT NULL,
    last_error TEXT NULL,
    PRIMARY KEY (job)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
