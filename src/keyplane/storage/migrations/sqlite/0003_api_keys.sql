-- API keys (see keyplane.service.keys). Only hashes of secrets are stored: a key reads
-- "kp_<id>_<secret>" and secret_hash is the hex SHA-256 of a domain-separated encoding of
-- (id, secret). Roles are a JSON array of strings; what they allow is decided by the
-- system model over tuples in the reserved "_system" store, not by this table.
-- A rotation moves the old hash to previous_secret_hash, valid until previous_expires_at.

CREATE TABLE api_keys (
    id                   TEXT NOT NULL PRIMARY KEY,   -- ULID: sorts by creation time
    secret_hash          TEXT NOT NULL,
    previous_secret_hash TEXT,
    previous_expires_at  REAL,
    owner                TEXT NOT NULL,
    roles                TEXT NOT NULL,               -- JSON array, e.g. ["writer:acme"]
    description          TEXT NOT NULL DEFAULT '',
    created_at           REAL NOT NULL,
    expires_at           REAL,                        -- NULL: never
    last_used_at         REAL,                        -- throttled: about once a minute
    rotated_at           REAL,
    revoked_at           REAL                         -- set once; never cleared
) WITHOUT ROWID;
