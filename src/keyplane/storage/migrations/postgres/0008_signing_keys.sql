-- Token signing keys (issue 6; see keyplane.tokens.keys and keyplane.storage.signing_keys_sql).
-- One row per key of a store. kid is the RFC 7638 JWK thumbprint of the public key;
-- public_jwk holds the public JWK (JSON text); encrypted_private_key the PKCS#8 private key
-- encrypted under the master key (AES-256-GCM, bound to store and kid). state is 'active'
-- (signs; at most one per store) or 'retiring' (published until publish_until, then
-- retired: derived from the clock, not stored). revision is the store revision of the
-- row's last change. Rows are removed with their store.
CREATE TABLE signing_keys (
    store_id              text COLLATE "C" NOT NULL,
    kid                   text COLLATE "C" NOT NULL,
    algorithm             text             NOT NULL CHECK (algorithm IN ('EdDSA', 'ES256')),
    public_jwk            text             NOT NULL,
    encrypted_private_key bytea            NOT NULL,
    state                 text             NOT NULL CHECK (state IN ('active', 'retiring')),
    created_at            double precision NOT NULL,
    retiring_at           double precision,
    publish_until         double precision,
    revision              bigint           NOT NULL,
    PRIMARY KEY (store_id, kid)
);

-- at most one active key per store
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (store_id) WHERE state = 'active';
