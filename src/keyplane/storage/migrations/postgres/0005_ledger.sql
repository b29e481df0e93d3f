-- The provenance ledger (see keyplane.ledger and docs/ledger.md). One hash chain per store:
-- ledger_events holds the chained events (body = the canonical JSON the hash covers; the
-- other columns are copies for querying), ledger_heads the head of each chain (appenders
-- lock it with SELECT ... FOR UPDATE, so processes sharing the database interleave into one
-- chain), ledger_checkpoints the signed heads, ledger_keys each store's Ed25519 keys (the
-- private key encrypted under the master key). These tables are keyed by store id but NOT
-- deleted with the store: the audit trail outlives it.

CREATE TABLE ledger_heads (
    store_id text COLLATE "C" NOT NULL PRIMARY KEY,
    seq      bigint           NOT NULL,
    hash     text             NOT NULL
);

CREATE TABLE ledger_events (
    store_id    text COLLATE "C" NOT NULL,
    seq         bigint           NOT NULL,
    id          text COLLATE "C" NOT NULL,
    time        double precision NOT NULL,
    type        text COLLATE "C" NOT NULL,
    caller      text COLLATE "C" NOT NULL,
    actors      text             NOT NULL DEFAULT '[]',
    subject     text COLLATE "C",
    action      text COLLATE "C",
    resource    text COLLATE "C",
    outcome     text COLLATE "C" NOT NULL,
    purpose     text,
    request_id  text COLLATE "C",
    decision_id text COLLATE "C",
    body        text             NOT NULL,
    prev_hash   text             NOT NULL,
    hash        text             NOT NULL,
    PRIMARY KEY (store_id, seq)
);

CREATE INDEX ledger_events_time ON ledger_events (store_id, time);
CREATE INDEX ledger_events_type ON ledger_events (store_id, type, seq);
CREATE INDEX ledger_events_subject ON ledger_events (store_id, subject, seq);
CREATE INDEX ledger_events_resource ON ledger_events (store_id, resource, seq);
CREATE INDEX ledger_events_decision ON ledger_events (decision_id) WHERE decision_id IS NOT NULL;
CREATE INDEX ledger_events_request ON ledger_events (request_id) WHERE request_id IS NOT NULL;

CREATE TABLE ledger_checkpoints (
    store_id  text COLLATE "C" NOT NULL,
    seq       bigint           NOT NULL,
    hash      text             NOT NULL,
    time      double precision NOT NULL,
    key_id    text             NOT NULL,
    signature bytea            NOT NULL,
    PRIMARY KEY (store_id, seq)
);

CREATE TABLE ledger_keys (
    store_id              text COLLATE "C" NOT NULL,
    key_id                text COLLATE "C" NOT NULL,
    public_key            bytea            NOT NULL,
    encrypted_private_key bytea            NOT NULL,
    created_at            double precision NOT NULL,
    PRIMARY KEY (store_id, key_id)
);
