-- Access requests, approvals and reviews (issue 7; see keyplane.storage.governance_sql,
-- keyplane.storage.reviews_sql and keyplane.governance.records). As in 0007, every row
-- carries store_id and revision (the store revision of its last change, from the counter
-- tuple writes bump); JSON columns hold JSON text, as in the SQLite schema; identifier
-- columns use the "C" collation (see 0002). Rows are removed with their store.

-- entitlements: a requestable relation on an object ("document:roadmap") or on every
-- object of a type ("document:*"). owners a JSON array of graph users; approval a JSON
-- array of {"id", "when", "outcome", "approvers", "required"}. A deleted entitlement stays
-- as a tombstone (status 'deleted', never read back) so every process's PolicyState sees
-- the deletion with `revision > applied`; creating the id again replaces it.
CREATE TABLE entitlements (
    store_id             text COLLATE "C" NOT NULL,
    id                   text COLLATE "C" NOT NULL,
    object               text COLLATE "C" NOT NULL,
    relation             text COLLATE "C" NOT NULL,
    description          TEXT    NOT NULL DEFAULT '',
    owners               TEXT    NOT NULL DEFAULT '[]',
    risk                 TEXT    NOT NULL CHECK (risk IN ('low', 'medium', 'high', 'critical')),
    max_duration_seconds INTEGER NOT NULL,
    agents_may_request   boolean          NOT NULL DEFAULT false,
    approval             TEXT    NOT NULL DEFAULT '[]',
    status               TEXT    NOT NULL CHECK (status IN ('active', 'disabled', 'deleted')),
    created_by           text COLLATE "C" NOT NULL,
    created_at           double precision    NOT NULL,
    updated_at           double precision    NOT NULL,
    revision             bigint  NOT NULL,
    PRIMARY KEY (store_id, id)
);

CREATE INDEX entitlements_by_revision ON entitlements (store_id, revision);
CREATE INDEX entitlements_by_object ON entitlements (store_id, object, relation);

-- access_requests: one row per request; approvals a JSON array of {"approver",
-- "decision", "comment", "at", "caller"}; route_approvers a JSON array of resolved
-- approver specs. state is the stored state; pending past pending_until and active past
-- grant_expires_at read as expired (AccessRequest.state_at) before the sweep stores it.
-- The grant is the tuple <object>#<relation>@<beneficiary> with expires_at =
-- grant_expires_at, written in the transaction that activates the request.
CREATE TABLE access_requests (
    store_id         text COLLATE "C" NOT NULL,
    id               text COLLATE "C" NOT NULL,   -- ULID
    entitlement_id   text COLLATE "C" NOT NULL,
    object           text COLLATE "C" NOT NULL,
    relation         text COLLATE "C" NOT NULL,
    beneficiary      text COLLATE "C" NOT NULL,
    requester        text COLLATE "C" NOT NULL,
    caller           text COLLATE "C" NOT NULL,
    duration_seconds INTEGER NOT NULL,
    purpose          TEXT    NOT NULL DEFAULT '',
    justification    TEXT    NOT NULL DEFAULT '',
    state            TEXT    NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'cancelled', 'expired', 'active', 'revoked')),
    created_at       double precision    NOT NULL,
    pending_until    double precision    NOT NULL,
    route_approvers  TEXT    NOT NULL DEFAULT '[]',
    required         INTEGER NOT NULL DEFAULT 1,
    rule_id          TEXT,
    approvals        TEXT    NOT NULL DEFAULT '[]',
    decided_at       double precision,
    grant_starts_at  double precision,
    grant_expires_at double precision,
    ended_at         double precision,
    ended_by         TEXT,
    end_reason       TEXT,
    revision         bigint  NOT NULL,
    PRIMARY KEY (store_id, id)
);

CREATE INDEX access_requests_by_state ON access_requests (store_id, state, id);
CREATE INDEX access_requests_by_beneficiary ON access_requests (store_id, beneficiary, id);
CREATE INDEX access_requests_by_requester ON access_requests (store_id, requester, id);
CREATE INDEX access_requests_by_entitlement ON access_requests (store_id, entitlement_id, id);
CREATE INDEX access_requests_by_grant ON access_requests (store_id, object, relation, beneficiary);
CREATE INDEX access_requests_pending_due ON access_requests (store_id, pending_until) WHERE state = 'pending';
CREATE INDEX access_requests_grant_due ON access_requests (store_id, grant_expires_at) WHERE state IN ('approved', 'active');

-- review_campaigns: filter is a JSON object {"object_type", "relation", "user_kind",
-- "source", "unused_days"}; reviewer the rule ("beneficiary_owners" |
-- "entitlement_owners" | a human node | a group).
CREATE TABLE review_campaigns (
    store_id         text COLLATE "C" NOT NULL,
    id               text COLLATE "C" NOT NULL,   -- ULID
    name             TEXT    NOT NULL,
    filter           TEXT    NOT NULL DEFAULT '{}',
    reviewer         text COLLATE "C" NOT NULL,
    default_decision TEXT    NOT NULL CHECK (default_decision IN ('certify', 'revoke')),
    apply            TEXT    NOT NULL CHECK (apply IN ('on_close', 'immediately')),
    state            TEXT    NOT NULL CHECK (state IN ('open', 'closed')),
    created_by       text COLLATE "C" NOT NULL,
    created_at       double precision    NOT NULL,
    due_at           double precision,
    closed_at        double precision,
    revision         bigint  NOT NULL,
    PRIMARY KEY (store_id, id)
);

CREATE INDEX review_campaigns_by_state ON review_campaigns (store_id, state, id);

-- review_items: the items a campaign selected at creation, numbered 1.. in it.
-- subject is the graph user holding the access (ReviewItem.user; "user" is reserved in
-- PostgreSQL); reviewers a JSON array of resolved reviewers.
CREATE TABLE review_items (
    store_id     text COLLATE "C" NOT NULL,
    campaign_id  text COLLATE "C" NOT NULL,
    id           INTEGER NOT NULL,
    subject      text COLLATE "C" NOT NULL,
    relation     text COLLATE "C" NOT NULL,
    object       text COLLATE "C" NOT NULL,
    request_id   text COLLATE "C",
    reviewers    TEXT    NOT NULL DEFAULT '[]',
    last_used_at double precision,
    decision     TEXT    CHECK (decision IN ('certify', 'revoke')),
    decided_by   TEXT,
    decided_at   double precision,
    comment      TEXT,
    outcome      TEXT    CHECK (outcome IN ('certified', 'revoked', 'defaulted_certify', 'defaulted_revoke')),
    applied_at   double precision,
    revision     bigint  NOT NULL,
    PRIMARY KEY (store_id, campaign_id, id)
);

CREATE INDEX review_items_by_request ON review_items (store_id, request_id) WHERE request_id IS NOT NULL;

-- ledger webhooks (engineer N): the event types a webhook is sent (a JSON array of exact
-- types or prefixes ending in "*", e.g. ["access_request.*"]; [] = every event)
ALTER TABLE ledger_webhooks ADD COLUMN event_types text NOT NULL DEFAULT '[]';
