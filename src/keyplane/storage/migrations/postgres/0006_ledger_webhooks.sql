-- Ledger administration (see keyplane.storage.ledger_admin and keyplane.ledger.webhooks).
-- ledger_webhooks: per-store subscriptions that stream the ledger to a URL, at least once.
-- The secret signs each delivery (HMAC-SHA256) and is stored ENCRYPTED under the master
-- key. acked_seq is the last seq the receiver acknowledged: delivery resumes after it.
-- failures / next_attempt_at keep the exponential backoff across restarts; lease_owner /
-- lease_until stop two processes delivering the same subscription at once.
-- ledger_retention: how long a store's ledger keeps events (pruning keeps a signed anchor).
-- Like every ledger table, rows are keyed by store id and survive the store's deletion.

CREATE TABLE ledger_webhooks (
    id               text COLLATE "C" NOT NULL PRIMARY KEY,   -- ULID
    store_id         text COLLATE "C" NOT NULL,
    url              text             NOT NULL,
    encrypted_secret bytea            NOT NULL,
    created_at       double precision NOT NULL,
    acked_seq        bigint           NOT NULL DEFAULT 0,
    failures         integer          NOT NULL DEFAULT 0,
    last_error       text,
    last_attempt_at  double precision,
    next_attempt_at  double precision NOT NULL DEFAULT 0,
    lease_owner      text,
    lease_until      double precision
);

CREATE INDEX ledger_webhooks_store ON ledger_webhooks (store_id, id);

CREATE TABLE ledger_retention (
    store_id     text COLLATE "C" NOT NULL PRIMARY KEY,
    max_age_days double precision,
    max_events   bigint,
    updated_at   double precision NOT NULL
);
