-- Token signing keys (issue 6; see keyplane.tokens.keys and keyplane.storage.signing_keys_sql).
-- One row per key of a store. kid is the RFC 7638 JWK thumbprint of the public key;
-- public_jwk holds the public JWK (JSON text); encrypted_private_key the PKCS#8 private key
-- encrypted under the master key (AES-256-GCM, bound to store and kid). state is 'active'
-- (signs; at most one per store) or 'retiring' (published until publish_until, then
-- retired: derived from the clock, not stored). revision is the store revision of the
-- row's last change. Rows are removed with their store.
CREATE TABLE signing_keys (
    store_id              TEXT    NOT NULL,
    kid                   TEXT    NOT NULL,
    algorithm             TEXT    NOT NULL CHECK (algorithm IN ('EdDSA', 'ES256')),
    public_jwk            TEXT    NOT NULL,
    encrypted_private_key BLOB    NOT NULL,
    state                 TEXT    NOT NULL CHECK (state IN ('active', 'retiring')),
    created_at            REAL    NOT NULL,
    retiring_at           REAL,
    publish_until         REAL,
    revision              INTEGER NOT NULL,
    PRIMARY KEY (store_id, kid)
) WITHOUT ROWID;

-- at most one active key per store
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (store_id) WHERE state = 'active';
