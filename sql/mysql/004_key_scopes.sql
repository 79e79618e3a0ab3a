-- api_keys.scopes: what a key may do, "read", "write", "read,write" (the default, as keys
-- could before) or "admin" (both, and administration).
ALTER TABLE api_keys ADD COLUMN scopes VARCHAR(32) CHARACTER SET ascii NOT NULL DEFAULT 'read,write';
