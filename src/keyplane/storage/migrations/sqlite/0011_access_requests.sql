-- Access requests, approvals and reviews (issue 7; see keyplane.storage.governance_sql,
-- keyplane.storage.reviews_sql and keyplane.governance.records). As in 0007, every row
-- carries store_id and revision (the store revision of its last change, from the counter
-- tuple writes bump); JSON columns hold JSON text. Rows are removed with their store.

-- entitlements: a requestable relation on an object ("document:roadmap") or on every
-- object of a type ("document:*"). owners a JSON array of graph users; approval a JSON
-- array of {"id", "when", "outcome", "approvers", "required"}. A deleted entitlement stays
-- as a tombstone (status 'deleted', never read back) so every process's PolicyState sees
-- the deletion with `revision > applied`; creating the id again replaces it.
CREATE TABLE entitlements (
    store_id             TEXT    NOT NULL,
    id                   TEXT    NOT NULL,
    object               TEXT    NOT NULL,
    relation             TEXT    NOT NULL,
    description          TEXT    NOT NULL DEFAULT '',
    owners               TEXT    NOT NULL DEFAULT '[]',
    risk                 TEXT    NOT NULL CHECK (risk IN ('low', 'medium', 'high', 'critical')),
    max_duration_seconds INTEGER NOT NULL,
    agents_may_request   INTEGER NOT NULL DEFAULT 0,
    approval             TEXT    NOT NULL DEFAULT '[]',
    status               TEXT    NOT NULL CHECK (status IN ('active', 'disabled', 'deleted')),
    created_by           TEXT    NOT NULL,
    created_at           REAL    NOT NULL,
    updated_at           REAL    NOT NULL,
    revision             INTEGER NOT NULL,
    PRIMARY KEY (store_id, id)
) WITHOUT ROWID;

CREATE INDEX entitlements_by_revision ON entitlements (store_id, revision);
CREATE INDEX entitlements_by_object ON entitlements (store_id, object, relation);

-- access_requests: one row per request; approvals a JSON array of {"approver",
-- "decision", "comment", "at", "caller"}; route_approvers a JSON array of resolved
-- approver specs. state is the stored state; pending past pending_until and active past
-- grant_expires_at read as expired (AccessRequest.state_at) before the sweep stores it.
-- The grant is the tuple <object>#<relation>@<beneficiary> with expires_at =
-- grant_expires_at, written in the transaction that activates the request.
CREATE TABLE access_requests (
    store_id         TEXT    NOT NULL,
    id               TEXT    NOT NULL,   -- ULID
    entitlement_id   TEXT    NOT NULL,
    object           TEXT    NOT NULL,
    relation         TEXT    NOT NULL,
    beneficiary      TEXT    NOT NULL,
    requester        TEXT    NOT NULL,
    caller           TEXT    NOT NULL,
    duration_seconds INTEGER NOT NULL,
    purpose          TEXT    NOT NULL DEFAULT '',
    justification    TEXT    NOT NULL DEFAULT '',
    state            TEXT    NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'cancelled', 'expired', 'active', 'revoked')),
    created_at       REAL    NOT NULL,
    pending_until    REAL    NOT NULL,
    route_approvers  TEXT    NOT NULL DEFAULT '[]',
    required         INTEGER NOT NULL DEFAULT 1,
    rule_id          TEXT,
    approvals        TEXT    NOT NULL DEFAULT '[]',
    decided_at       REAL,
    grant_starts_at  REAL,
    grant_expires_at REAL,
    ended_at         REAL,
    ended_by         TEXT,
    end_reason       TEXT,
    revision         INTEGER NOT NULL,
    PRIMARY KEY (store_id, id)
) WITHOUT ROWID;

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
    store_id         TEXT    NOT NULL,
    id               TEXT    NOT NULL,   -- ULID
    name             TEXT    NOT NULL,
    filter           TEXT    NOT NULL DEFAULT '{}',
    reviewer         TEXT    NOT NULL,
    default_decision TEXT    NOT NULL CHECK (default_decision IN ('certify', 'revoke')),
    apply            TEXT    NOT NULL CHECK (apply IN ('on_close', 'immediately')),
    state            TEXT    NOT NULL CHECK (state IN ('open', 'closed')),
    created_by       TEXT    NOT NULL,
    created_at       REAL    NOT NULL,
    due_at           REAL,
    closed_at        REAL,
    revision         INTEGER NOT NULL,
    PRIMARY KEY (store_id, id)
) WITHOUT ROWID;

CREATE INDEX review_campaigns_by_state ON review_campaigns (store_id, state, id);

-- review_items: the items a campaign selected at creation, numbered 1.. in it.
-- subject is the graph user holding the access (ReviewItem.user; "user" is reserved in
-- PostgreSQL); reviewers a JSON array of resolved reviewers.
CREATE TABLE review_items (
    store_id     TEXT    NOT NULL,
    campaign_id  TEXT    NOT NULL,
    id           INTEGER NOT NULL,
    subject      TEXT    NOT NULL,
    relation     TEXT    NOT NULL,
    object       TEXT    NOT NULL,
    request_id   TEXT,
    reviewers    TEXT    NOT NULL DEFAULT '[]',
    last_used_at REAL,
    decision     TEXT    CHECK (decision IN ('certify', 'revoke')),
    decided_by   TEXT,
    decided_at   REAL,
    comment      TEXT,
    outcome      TEXT    CHECK (outcome IN ('certified', 'revoked', 'defaulted_certify', 'defaulted_revoke')),
    applied_at   REAL,
    revision     INTEGER NOT NULL,
    PRIMARY KEY (store_id, campaign_id, id)
) WITHOUT ROWID;

CREATE INDEX review_items_by_request ON review_items (store_id, request_id) WHERE request_id IS NOT NULL;

-- ledger webhooks (engineer N): the event types a webhook is sent (a JSON array of exact
-- types or prefixes ending in "*", e.g. ["access_request.*"]; [] = every event)
ALTER TABLE ledger_webhooks ADD COLUMN event_types TEXT NOT NULL DEFAULT '[]';
