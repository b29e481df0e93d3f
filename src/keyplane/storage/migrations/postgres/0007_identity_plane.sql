-- The identity plane (issue 5; see keyplane.storage.policy_sql and keyplane.policy.records).
-- Every row carries store_id and revision: the store revision of its last change, taken
-- from the same counter tuple writes bump, so a replica finds what changed since it last
-- looked with `revision > applied` and at_least_as_fresh covers these changes too.
-- JSON columns hold JSON text, as in the SQLite schema (the same code reads both; jsonb
-- would buy nothing: these documents are never queried inside). Identifier columns use the
-- "C" collation like every other table (see 0002). Rows are removed with their store.

-- identities: humans and non-human identities (NHIs); (kind, id) is the graph node
-- "kind:id". owners is a JSON array of graph users ("human:alice", "group:eng#member");
-- the owner relation is also written as tuples, in the same transaction.
CREATE TABLE identities (
    store_id     text COLLATE "C" NOT NULL,
    kind         text COLLATE "C" NOT NULL,
    id           text COLLATE "C" NOT NULL,
    display_name text             NOT NULL DEFAULT '',
    attributes   text             NOT NULL DEFAULT '{}',
    status       text             NOT NULL CHECK (status IN ('active', 'suspended', 'deprovisioned')),
    owners       text             NOT NULL DEFAULT '[]',
    orphaned     boolean          NOT NULL DEFAULT false,
    source       text             NOT NULL DEFAULT 'api',
    created_at   double precision NOT NULL,
    updated_at   double precision NOT NULL,
    last_seen    double precision,
    revision     bigint           NOT NULL,
    PRIMARY KEY (store_id, kind, id)
);

CREATE INDEX identities_by_revision ON identities (store_id, revision);

-- delegations: delegator -> delegate, derived from parent_id (NULL for a root). scope is a
-- JSON array of {"actions": [...], "resource": "type:id" | "type:*", "tools": [...]};
-- purposes a JSON array. A revoked delegation stays (status 'revoked').
CREATE TABLE delegations (
    store_id       text COLLATE "C" NOT NULL,
    id             text COLLATE "C" NOT NULL,   -- ULID
    delegator      text COLLATE "C" NOT NULL,
    delegate       text COLLATE "C" NOT NULL,
    parent_id      text COLLATE "C",
    scope          text             NOT NULL,
    purposes       text             NOT NULL DEFAULT '[]',
    not_before     double precision NOT NULL,
    expires_at     double precision NOT NULL,
    max_depth      integer          NOT NULL DEFAULT 0,
    condition      text,
    status         text             NOT NULL CHECK (status IN ('active', 'revoked')),
    revoked_at     double precision,
    revoked_reason text,
    created_by     text             NOT NULL,
    created_at     double precision NOT NULL,
    revision       bigint           NOT NULL,
    PRIMARY KEY (store_id, id)
);

CREATE INDEX delegations_by_delegator ON delegations (store_id, delegator, delegate);
CREATE INDEX delegations_by_delegate ON delegations (store_id, delegate);
CREATE INDEX delegations_by_parent ON delegations (store_id, parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX delegations_by_revision ON delegations (store_id, revision);

-- guardrail_sets: every version of a store's guardrails (1, 2, ...); the latest applies.
-- rules is a JSON array of {"id", "description", "effect", "expression", "enabled"}.
CREATE TABLE guardrail_sets (
    store_id   text COLLATE "C" NOT NULL,
    version    integer          NOT NULL,
    rules      text             NOT NULL,
    created_by text             NOT NULL,
    created_at double precision NOT NULL,
    revision   bigint           NOT NULL,
    PRIMARY KEY (store_id, version)
);

-- store_policies: one row per store once set (absent: the defaults of StorePolicy).
-- actions is a JSON object: action name -> relation.
CREATE TABLE store_policies (
    store_id               text COLLATE "C" NOT NULL PRIMARY KEY,
    max_delegation_seconds bigint           NOT NULL,
    suspend_orphans        boolean          NOT NULL DEFAULT false,
    actions                text             NOT NULL DEFAULT '{}',
    revision               bigint           NOT NULL
);
