-- Ledger administration (see keyplane.storage.ledger_admin and keyplane.ledger.webhooks).
-- ledger_webhooks: per-store subscriptions that stream the ledger to a URL, at least once.
-- The secret signs each delivery (HMAC-SHA256) and is stored ENCRYPTED under the master
-- key. acked_seq is the last seq the receiver acknowledged: delivery resumes after it.
-- failures / next_attempt_at keep the exponential backoff across restarts; lease_owner /
-- lease_until stop two processes delivering the same subscription at once.
-- ledger_retention: how long a store's ledger keeps events (pruning keeps a signed anchor).
-- Like every ledger table, rows are keyed by store id and survive the store's deletion.

CREATE TABLE ledger_webhooks (
    id               TEXT NOT NULL PRIMARY KEY,   -- ULID: sorts by creation time
    store_id         TEXT NOT NULL,
    url              TEXT NOT NULL,
    encrypted_secret BLOB NOT NULL,
    created_at       REAL NOT NULL,
    acked_seq        INTEGER NOT NULL DEFAULT 0,
    failures         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    last_attempt_at  REAL,
    next_attempt_at  REAL NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_until      REAL
) WITHOUT ROWID;

CREATE INDEX ledger_webhooks_store ON ledger_webhooks (store_id, id);

CREATE TABLE ledger_retention (
    store_id     TEXT NOT NULL PRIMARY KEY,
    max_age_days REAL,                            -- NULL: no limit by age
    max_events   INTEGER,                         -- NULL: no limit by count
    updated_at   REAL NOT NULL
) WITHOUT ROWID;
