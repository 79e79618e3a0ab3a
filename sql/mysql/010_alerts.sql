-- Alerts (StatHat's three kinds: value, delta, data), per tenant. `comparison`, `repeat_minutes`
-- and `window_name` stand for the API's condition, repeat and window: CONDITION, REPEAT and
-- WINDOW are reserved words in MySQL 8.0.
CREATE TABLE IF NOT EXISTS alerts (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT,
    tenant_id INT UNSIGNED NOT NULL,
    metric VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    kind VARCHAR(8) NOT NULL,
    window_name VARCHAR(4) NOT NULL,
    operation VARCHAR(16) NULL,
    filters TEXT NOT NULL,
    notify TEXT NOT NULL,
    repeat_minutes INT UNSIGNED NOT NULL DEFAULT 0,
    comparison VARCHAR(1) NULL,
    threshold DOUBLE NULL,
    percent DOUBLE NULL,
    direction VARCHAR(8) NULL,
    compare_to VARCHAR(4) NULL,
    secret VARCHAR(64) NOT NULL,
    state VARCHAR(8) NOT NULL DEFAULT 'ok',
    last_value DOUBLE NULL,
    baseline DOUBLE NULL,
    evaluated_at DATETIME(6) NULL,
    changed_at DATETIME(6) NULL,
    notified_at DATETIME(6) NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    KEY ix_alerts_tenant (tenant_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- What happened to an alert: its transitions and each notice's outcome per channel.
CREATE TABLE IF NOT EXISTS alert_events (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    alert_id INT UNSIGNED NOT NULL,
    at DATETIME(6) NOT NULL,
    type VARCHAR(12) NOT NULL,
    state VARCHAR(8) NOT NULL,
    channel VARCHAR(8) NULL,
    outcome VARCHAR(10) NULL,
    notice_id VARCHAR(64) NULL,
    detail VARCHAR(255) NULL,
    PRIMARY KEY (id),
    KEY ix_alert_events_alert (alert_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The outbox: one row per notice and target, written with the transition that made it, sent
-- (and retried with back-off) after; `sent_at` is set once a target took it.
CREATE TABLE IF NOT EXISTS alert_notices (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    alert_id INT UNSIGNED NOT NULL,
    notice_id VARCHAR(64) NOT NULL,
    target VARCHAR(2048) NOT NULL,
    body TEXT NOT NULL,
    attempts INT UNSIGNED NOT NULL DEFAULT 0,
    next_attempt_at DATETIME(6) NOT NULL,
    sent_at DATETIME(6) NULL,
    failed_at DATETIME(6) NULL,
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    KEY ix_alert_notices_due (sent_at, failed_at, next_attempt_at),
    KEY ix_alert_notices_alert (alert_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
