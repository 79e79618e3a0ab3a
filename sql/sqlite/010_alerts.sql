-- See sql/mysql/010_alerts.sql.
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL,
    metric VARCHAR(255) NOT NULL,
    kind VARCHAR(8) NOT NULL,
    window_name VARCHAR(4) NOT NULL,
    operation VARCHAR(16) NULL,
    filters TEXT NOT NULL,
    notify TEXT NOT NULL,
    repeat_minutes INTEGER NOT NULL DEFAULT 0,
    comparison VARCHAR(1) NULL,
    threshold DOUBLE NULL,
    percent DOUBLE NULL,
    direction VARCHAR(8) NULL,
    compare_to VARCHAR(4) NULL,
    secret VARCHAR(64) NOT NULL,
    state VARCHAR(8) NOT NULL DEFAULT 'ok',
    last_value DOUBLE NULL,
    baseline DOUBLE NULL,
    evaluated_at DATETIME NULL,
    changed_at DATETIME NULL,
    notified_at DATETIME NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);

CREATE INDEX IF NOT EXISTS ix_alerts_tenant ON alerts (tenant_id, id);

CREATE TABLE IF NOT EXISTS alert_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL,
    at DATETIME NOT NULL,
    type VARCHAR(12) NOT NULL,
    state VARCHAR(8) NOT NULL,
    channel VARCHAR(8) NULL,
    outcome VARCHAR(10) NULL,
    notice_id VARCHAR(64) NULL,
    detail VARCHAR(255) NULL
);

CREATE INDEX IF NOT EXISTS ix_alert_events_alert ON alert_events (alert_id, id);

CREATE TABLE IF NOT EXISTS alert_notices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL,
    notice_id VARCHAR(64) NOT NULL,
    target VARCHAR(2048) NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DATETIME NOT NULL,
    sent_at DATETIME NULL,
    failed_at DATETIME NULL,
    created_at DATETIME NOT NULL
);

CREATE INDEX IF NOT EXISTS ix_alert_notices_due ON alert_notices (sent_at, failed_at, next_attempt_at);

CREATE INDEX IF NOT EXISTS ix_alert_notices_alert ON alert_notices (alert_id)
