-- The provenance ledger (see keyplane.ledger and docs/ledger.md). One hash chain per store:
-- ledger_events holds the chained events (body = the canonical JSON the hash covers; the
-- other columns are copies for querying), ledger_heads the head of each chain (locked by
-- appenders), ledger_checkpoints the signed heads, ledger_keys each store's Ed25519 keys
-- (the private key encrypted under the master key). These tables are keyed by store id but
-- NOT deleted with the store: the audit trail outlives it.

CREATE TABLE ledger_heads (
    store_id TEXT    NOT NULL PRIMARY KEY,
    seq      INTEGER NOT NULL,
    hash     TEXT    NOT NULL
) WITHOUT ROWID;

CREATE TABLE ledger_events (
    store_id    TEXT    NOT NULL,
    seq         INTEGER NOT NULL,                 -- 1, 2, 3, ... per store, no gaps
    id          TEXT    NOT NULL,                 -- ULID
    time        REAL    NOT NULL,
    type        TEXT    NOT NULL,
    caller      TEXT    NOT NULL,
    actors      TEXT    NOT NULL DEFAULT '[]',    -- JSON array: the actor chain
    subject     TEXT,
    action      TEXT,
    resource    TEXT,
    outcome     TEXT    NOT NULL,
    purpose     TEXT,
    request_id  TEXT,
    decision_id TEXT,
    body        TEXT    NOT NULL,                 -- canonical JSON (every field but hash)
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL,
    PRIMARY KEY (store_id, seq)
) WITHOUT ROWID;

CREATE INDEX ledger_events_time ON ledger_events (store_id, time);
CREATE INDEX ledger_events_type ON ledger_events (store_id, type, seq);
CREATE INDEX ledger_events_subject ON ledger_events (store_id, subject, seq);
CREATE INDEX ledger_events_resource ON ledger_events (store_id, resource, seq);
CREATE INDEX ledger_events_decision ON ledger_events (decision_id) WHERE decision_id IS NOT NULL;
CREATE INDEX ledger_events_request ON ledger_events (request_id) WHERE request_id IS NOT NULL;

CREATE TABLE ledger_checkpoints (
    store_id  TEXT    NOT NULL,
    seq       INTEGER NOT NULL,
    hash      TEXT    NOT NULL,
    time      REAL    NOT NULL,
    key_id    TEXT    NOT NULL,
    signature BLOB    NOT NULL,                   -- Ed25519 over checkpoint_message()
    PRIMARY KEY (store_id, seq)
) WITHOUT ROWID;

CREATE TABLE ledger_keys (
    store_id              TEXT NOT NULL,
    key_id                TEXT NOT NULL,          -- lk_ + SHA-256(public key)[:16]
    public_key            BLOB NOT NULL,          -- raw Ed25519 (32 bytes)
    encrypted_private_key BLOB NOT NULL,          -- AES-GCM under the master key
    created_at            REAL NOT NULL,
    PRIMARY KEY (store_id, key_id)
) WITHOUT ROWID;
