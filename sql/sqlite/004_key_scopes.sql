-- See sql/mysql/004_key_scopes.sql.
ALTER TABLE api_keys ADD COLUMN scopes VARCHAR(32) NOT NULL DEFAULT 'read,write';
