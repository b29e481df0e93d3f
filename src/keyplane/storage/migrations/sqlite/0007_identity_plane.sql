-- The identity plane (issue 5; see keyplane.storage.policy_sql and keyplane.policy.records).
-- Every row carries store_id and revision: the store revision of its last change, taken
-- from the same counter tuple writes bump, so a replica finds what changed since it last
-- looked with `revision > applied` and at_least_as_fresh covers these changes too.
-- JSON columns hold JSON text (the same code reads both dialects). Rows are removed with
-- their store.

-- identities: humans and non-human identities (NHIs); (kind, id) is the graph node
-- "kind:id". owners is a JSON array of graph users ("human:alice", "group:eng#member");
-- the owner relation is also written as tuples, in the same transaction.
CREATE TABLE identities (
    store_id     TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    display_name TEXT    NOT NULL DEFAULT '',
    attributes   TEXT    NOT NULL DEFAULT '{}',
    status       TEXT    NOT NULL CHECK (status IN ('active', 'suspended', 'deprovisioned')),
    owners       TEXT    NOT NULL DEFAULT '[]',
    orphaned     INTEGER NOT NULL DEFAULT 0,
    source       TEXT    NOT NULL DEFAULT 'api',
    created_at   REAL    NOT NULL,
    updated_at   REAL    NOT NULL,
    last_seen    REAL,
    revision     INTEGER NOT NULL,
    PRIMARY KEY (store_id, kind, id)
) WITHOUT ROWID;

CREATE INDEX identities_by_revision ON identities (store_id, revision);

-- delegations: delegator -> delegate, derived from parent_id (NULL for a root). scope is a
-- JSON array of {"actions": [...], "resource": "type:id" | "type:*", "tools": [...]};
-- purposes a JSON array. A revoked delegation stays (status 'revoked').
CREATE TABLE delegations (
    store_id       TEXT    NOT NULL,
    id             TEXT    NOT NULL,   -- ULID
    delegator      TEXT    NOT NULL,
    delegate       TEXT    NOT NULL,
    parent_id      TEXT,
    scope          TEXT    NOT NULL,
    purposes       TEXT    NOT NULL DEFAULT '[]',
    not_before     REAL    NOT NULL,
    expires_at     REAL    NOT NULL,
    max_depth      INTEGER NOT NULL DEFAULT 0,
    condition      TEXT,
    status         TEXT    NOT NULL CHECK (status IN ('active', 'revoked')),
    revoked_at     REAL,
    revoked_reason TEXT,
    created_by     TEXT    NOT NULL,
    created_at     REAL    NOT NULL,
    revision       INTEGER NOT NULL,
    PRIMARY KEY (store_id, id)
) WITHOUT ROWID;

CREATE INDEX delegations_by_delegator ON delegations (store_id, delegator, delegate);
CREATE INDEX delegations_by_delegate ON delegations (store_id, delegate);
CREATE INDEX delegations_by_parent ON delegations (store_id, parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX delegations_by_revision ON delegations (store_id, revision);

-- guardrail_sets: every version of a store's guardrails (1, 2, ...); the latest applies.
-- rules is a JSON array of {"id", "description", "effect", "expression", "enabled"}.
CREATE TABLE guardrail_sets (
    store_id   TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    rules      TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created_at REAL    NOT NULL,
    revision   INTEGER NOT NULL,
    PRIMARY KEY (store_id, version)
) WITHOUT ROWID;

-- store_policies: one row per store once set (absent: the defaults of StorePolicy).
-- actions is a JSON object: action name -> relation.
CREATE TABLE store_policies (
    store_id               TEXT    NOT NULL PRIMARY KEY,
    max_delegation_seconds INTEGER NOT NULL,
    suspend_orphans        INTEGER NOT NULL DEFAULT 0,
    actions                TEXT    NOT NULL DEFAULT '{}',
    revision               INTEGER NOT NULL
) WITHOUT ROWID;
