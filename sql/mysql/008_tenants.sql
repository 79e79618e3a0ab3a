-- Tenants: every key belongs to one, and names, metrics (with their series, points and
-- rollups), stat keys and listings are per tenant. Everything that exists goes to tenant 1,
-- `default`: an upgrade changes nothing a user sees.

-- tenants: the limits are NULL for the settings' defaults (METRICS_MAX_METRICS,
-- TENANT_MAX_SERIES, TENANT_POINTS_PER_MINUTE). series_count is the tenant's series of live
-- metrics, kept under the tenant row's lock as series are made and metrics deleted, so the
-- series limit costs no count.
CREATE TABLE IF NOT EXISTS tenants (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT,
    name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    max_metrics INT UNSIGNED NULL,
    max_series INT UNSIGNED NULL,
    points_per_minute INT UNSIGNED NULL,
    series_count BIGINT UNSIGNED NOT NULL DEFAULT 0,
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_tenants_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT IGNORE INTO tenants (id, name, created_at) VALUES (1, 'default', UTC_TIMESTAMP(6));

ALTER TABLE api_keys ADD COLUMN tenant_id INT UNSIGNED NOT NULL DEFAULT 1;

-- A name is unique within its tenant; (tenant_id, name) also serves the listing's range.
ALTER TABLE metrics ADD COLUMN tenant_id INT UNSIGNED NOT NULL DEFAULT 1,
    DROP INDEX uq_metrics_name,
    ADD UNIQUE KEY uq_metrics_tenant_name (tenant_id, name);

ALTER TABLE stat_keys ADD COLUMN tenant_id INT UNSIGNED NOT NULL DEFAULT 1;

UPDATE tenants SET series_count = (
    SELECT COUNT(*) FROM series JOIN metrics ON metrics.id = series.metric_id
    WHERE metrics.deleted_at IS NULL
) WHERE id = 1;
