-- Client credentials of non-human identities (issue 6): client secrets and registered
-- public keys (private_key_jwt, RFC 7523), the jti replay table of client assertions, and
-- the store-policy cap on a credential's lifetime.
--
-- client_credentials: client_id is the identity's graph node ("agent:planner"). Secrets
-- are never stored: secret_hash is SHA-256 over a domain tag, the credential id and the
-- secret (see keyplane.tokens.clients); after a rotation previous_secret_hash stays valid
-- until previous_expires_at. public_jwk is the registered public JWK (JSON), alg the one
-- JWS algorithm it verifies, thumbprint its RFC 7638 thumbprint.
CREATE TABLE client_credentials (
    store_id             text COLLATE "C" NOT NULL,
    id                   text COLLATE "C" NOT NULL,
    client_id            text COLLATE "C" NOT NULL,
    type                 TEXT    NOT NULL CHECK (type IN ('client_secret', 'private_key_jwt')),
    status               TEXT    NOT NULL CHECK (status IN ('active', 'revoked')),
    secret_hash          TEXT,
    previous_secret_hash TEXT,
    previous_expires_at  double precision,
    public_jwk           TEXT,
    alg                  TEXT,
    thumbprint           TEXT,
    expires_at           double precision    NOT NULL,
    last_used_at         double precision,
    rotated_at           double precision,
    revoked_at           double precision,
    revoked_reason       TEXT,
    created_by           text COLLATE "C" NOT NULL,
    created_at           double precision    NOT NULL,
    revision             bigint NOT NULL,
    PRIMARY KEY (store_id, id)
);

CREATE INDEX client_credentials_by_client ON client_credentials (store_id, client_id, id);

-- client_assertion_jtis: jti values of accepted client assertions, kept until the
-- assertion expires (a replay inside that time is refused; older rows are pruned).
CREATE TABLE client_assertion_jtis (
    store_id   text COLLATE "C" NOT NULL,
    client_id  text COLLATE "C" NOT NULL,
    jti        text COLLATE "C" NOT NULL,
    expires_at double precision NOT NULL,
    PRIMARY KEY (store_id, client_id, jti)
);

CREATE INDEX client_assertion_jtis_by_expiry ON client_assertion_jtis (expires_at);

-- the longest lifetime a new credential may have (default 90 days)
ALTER TABLE store_policies ADD COLUMN max_credential_seconds bigint NOT NULL DEFAULT 7776000;
