-- See sql/mysql/008_tenants.sql.
CREATE TABLE IF NOT EXISTS tenants (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name VARCHAR(64) NOT NULL UNIQUE,
    max_metrics INTEGER NULL,
    max_series INTEGER NULL,
    points_per_minute INTEGER NULL,
    series_count INTEGER NOT NULL DEFAULT 0,
    created_at DATETIME NOT NULL
);

INSERT OR IGNORE INTO tenants (id, name, created_at) VALUES (1, 'default', datetime('now'));

ALTER TABLE api_keys ADD COLUMN tenant_id INTEGER NOT NULL DEFAULT 1;

ALTER TABLE stat_keys ADD COLUMN tenant_id INTEGER NOT NULL DEFAULT 1;

-- SQLite cannot drop a UNIQUE constraint: the table is rebuilt with (tenant_id, name) unique,
-- keeping every id and the AUTOINCREMENT high-water mark (ids of purged metrics stay unused).
CREATE TABLE metrics_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL DEFAULT 1,
    name VARCHAR(255) NOT NULL,
    type VARCHAR(8) NOT NULL CHECK (type IN ('counter', 'value')),
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL,
    deleted_at DATETIME NULL,
    tagged INTEGER NOT NULL DEFAULT 0,
    UNIQUE (tenant_id, name)
);

INSERT INTO metrics_new (id, name, type, created_at, updated_at, deleted_at, tagged)
SELECT id, name, type, created_at, updated_at, deleted_at, tagged FROM metrics;

INSERT INTO sqlite_sequence (name, seq)
SELECT 'metrics_new', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'metrics_new');

UPDATE sqlite_sequence
SET seq = MAX(seq, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'metrics'), 0))
WHERE name = 'metrics_new';

DROP TABLE metrics;

ALTER TABLE metrics_new RENAME TO metrics;

UPDATE tenants SET series_count = (
    SELECT COUNT(*) FROM series JOIN metrics ON metrics.id = series.metric_id
    WHERE metrics.deleted_at IS NULL
) WHERE id = 1;
