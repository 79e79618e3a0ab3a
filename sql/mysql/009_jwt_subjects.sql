-- jwt_subjects: each (tenant, sub) of a JWT bearer token that sent an Idempotency-Key, numbered
-- on first use so its receipts have a scope of their own: idempotency_keys.scope_id is
-- 2147483648 + id, above every API key's id (and queue batches' 0). subject_hash is the
-- SHA-256 hex of sub, unique per tenant (a CHAR of hex compares exactly, where a VARCHAR
-- would ignore trailing spaces); subject is there for people reading the table.
CREATE TABLE IF NOT EXISTS jwt_subjects (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT,
    tenant_id INT UNSIGNED NOT NULL,
    subject_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    subject VARCHAR(255) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_jwt_subjects_tenant_subject (tenant_id, subject_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
