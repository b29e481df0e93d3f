-- Access tokens (issue 6): the revoked token ids and the store-policy settings of the
-- token endpoint.
--
-- revoked_tokens: one row per revoked access token (its jti), kept until the token would
-- have expired anyway (expires_at; older rows are pruned). revision is the store revision
-- of the revocation, so every process's PolicyState reads new revocations with the rest of
-- the identity plane (read_policy_changes).
CREATE TABLE revoked_tokens (
    store_id   TEXT    NOT NULL,
    jti        TEXT    NOT NULL,
    expires_at REAL    NOT NULL,
    revoked_at REAL    NOT NULL,
    revoked_by TEXT    NOT NULL,
    reason     TEXT,
    revision   INTEGER NOT NULL,
    PRIMARY KEY (store_id, jti)
) WITHOUT ROWID;

CREATE INDEX revoked_tokens_by_revision ON revoked_tokens (store_id, revision);
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);

-- the default lifetime of issued access tokens (seconds)
ALTER TABLE store_policies ADD COLUMN access_token_seconds INTEGER NOT NULL DEFAULT 300;
-- whether a token exchange without actor_token (impersonation) is allowed
ALTER TABLE store_policies ADD COLUMN allow_impersonation INTEGER NOT NULL DEFAULT 0;
-- JSON array of the audiences tokens may be issued for (empty: any)
ALTER TABLE store_policies ADD COLUMN token_audiences TEXT NOT NULL DEFAULT '[]';
-- JSON array of the external issuers whose tokens are accepted as subject_token
ALTER TABLE store_policies ADD COLUMN trusted_issuers TEXT NOT NULL DEFAULT '[]';
