-- idempotency_keys: see sql/mysql/002_idempotency.sql.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope_id INTEGER NOT NULL,
    idem_key VARCHAR(255) NOT NULL,
    request_hash CHAR(64) NOT NULL,
    claim CHAR(32) NULL,
    status INTEGER NULL,
    body TEXT NULL,
    created_at DATETIME NOT NULL,
    PRIMARY KEY (scope_id, idem_key)
);

CREATE INDEX IF NOT EXISTS ix_idempotency_keys_created ON idempotency_keys (created_at);
