-- stat_keys: StatHat's classic per-stat keys (the `key` of /c and /v), each naming one
-- metric; stored only as SHA-256, like API keys.
CREATE TABLE IF NOT EXISTS stat_keys (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT,
    key_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    prefix VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    metric VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_stat_keys_hash (key_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
