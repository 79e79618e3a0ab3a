-- See sql/mysql/009_jwt_subjects.sql.
CREATE TABLE IF NOT EXISTS jwt_subjects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL,
    subject_hash CHAR(64) NOT NULL,
    subject VARCHAR(255) NOT NULL,
    created_at DATETIME NOT NULL,
    UNIQUE (tenant_id, subject_hash)
);
