-- idempotency_keys: one row per applied Idempotency-Key (scope = the API key's id) and per
-- applied queue job (scope 0, key 'job:<id>'), written in the same transaction as the points,
-- so a retry after a lost answer is recognised exactly. Only a hash of the request is kept,
-- with the answer given (status and JSON body). claim marks the rows a transaction has just
-- inserted; it is cleared when the answer is stored. Rows older than a day are swept in
-- chunks by created_at.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope_id INT UNSIGNED NOT NULL,
    idem_key VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    request_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    claim CHAR(32) CHARACTER SET ascii COLLATE ascii_bin NULL,
    status SMALLINT UNSIGNED NULL,
    body MEDIUMTEXT NULL,
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (scope_id, idem_key),
    KEY ix_idempotency_keys_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
