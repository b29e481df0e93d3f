-- API keys (see keyplane.service.keys). Only hashes of secrets are stored: a key reads
-- "kp_<id>_<secret>" and secret_hash is the hex SHA-256 of a domain-separated encoding of
-- (id, secret). Roles are a JSON array of strings (as text, like the SQLite backend); what
-- they allow is decided by the system model over tuples in the reserved "_system" store.
-- A rotation moves the old hash to previous_secret_hash, valid until previous_expires_at.

CREATE TABLE api_keys (
    id                   text COLLATE "C" NOT NULL PRIMARY KEY,   -- ULID
    secret_hash          text             NOT NULL,
    previous_secret_hash text,
    previous_expires_at  double precision,
    owner                text             NOT NULL,
    roles                text             NOT NULL,
    description          text             NOT NULL DEFAULT '',
    created_at           double precision NOT NULL,
    expires_at           double precision,
    last_used_at         double precision,
    rotated_at           double precision,
    revoked_at           double precision
);
