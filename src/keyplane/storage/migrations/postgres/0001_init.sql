-- Keyplane schema v1 for PostgreSQL.
-- Every table is keyed by store_id, so stores are isolated. Times are double precision
-- seconds since the Unix epoch (UTC), the same representation as the SQLite backend and
-- the Python API. Tuples are split into columns so reads by object or by user use an
-- index; user_relation is '' (not NULL) when the user is not a userset.

CREATE TABLE stores (
    id          text             NOT NULL PRIMARY KEY,
    name        text             NOT NULL,
    created_at  double precision NOT NULL,
    updated_at  double precision NOT NULL,
    -- the latest committed revision; writers bump it with UPDATE ... RETURNING, which
    -- takes the row lock and so serializes writers per store: revision order = commit order
    revision    bigint           NOT NULL DEFAULT 0
);

CREATE TABLE authorization_models (
    store_id    text             NOT NULL,
    id          text             NOT NULL,   -- ULID: sorts by creation time
    model       jsonb            NOT NULL,
    created_at  double precision NOT NULL,
    PRIMARY KEY (store_id, id)
);

CREATE TABLE tuples (
    store_id          text             NOT NULL,
    object_type       text             NOT NULL,
    object_id         text             NOT NULL,
    relation          text             NOT NULL,
    user_type         text             NOT NULL,
    user_id           text             NOT NULL,
    user_relation     text             NOT NULL DEFAULT '',
    condition_name    text,
    -- JSON text rather than jsonb: snapshots hand it over verbatim and parse it only when
    -- not NULL; jsonb would make the driver parse every value eagerly
    condition_context text,
    expires_at        double precision,
    revision          bigint           NOT NULL,  -- the revision that wrote this tuple
    PRIMARY KEY (store_id, object_type, object_id, relation, user_type, user_id, user_relation)
);

CREATE INDEX tuples_by_user
    ON tuples (store_id, user_type, user_id, user_relation, relation, object_type);

CREATE INDEX tuples_by_expiry
    ON tuples (store_id, expires_at) WHERE expires_at IS NOT NULL;

-- Append-only: one row per tuple change, ordered by (revision, seq) within a store.
CREATE TABLE changelog (
    store_id          text             NOT NULL,
    revision          bigint           NOT NULL,
    seq               integer          NOT NULL,
    operation         text             NOT NULL CHECK (operation IN ('write', 'delete')),
    object_type       text             NOT NULL,
    object_id         text             NOT NULL,
    relation          text             NOT NULL,
    user_type         text             NOT NULL,
    user_id           text             NOT NULL,
    user_relation     text             NOT NULL DEFAULT '',
    condition_name    text,
    condition_context text,
    expires_at        double precision,
    created_at        double precision NOT NULL,
    PRIMARY KEY (store_id, revision, seq)
);
