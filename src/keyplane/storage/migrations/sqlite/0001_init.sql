-- Keyplane schema v1 for SQLite.
-- Every table is keyed by store_id, so stores are isolated. Times are REAL seconds since
-- the Unix epoch (UTC). Tuples are split into columns so reads by object or by user use an
-- index; user_relation is '' (not NULL) when the user is not a userset, so it can be part
-- of the primary key.

CREATE TABLE stores (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    created_at  REAL    NOT NULL,
    updated_at  REAL    NOT NULL,
    -- the latest committed revision; every tuple write bumps it by exactly 1
    revision    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE authorization_models (
    store_id    TEXT NOT NULL,
    id          TEXT NOT NULL,   -- ULID: sorts by creation time
    model       TEXT NOT NULL,   -- the model's JSON document
    created_at  REAL NOT NULL,
    PRIMARY KEY (store_id, id)
) WITHOUT ROWID;

-- WITHOUT ROWID: the table IS the key b-tree, one b-tree less to write on bulk loads.
CREATE TABLE tuples (
    store_id          TEXT    NOT NULL,
    object_type       TEXT    NOT NULL,
    object_id         TEXT    NOT NULL,
    relation          TEXT    NOT NULL,
    user_type         TEXT    NOT NULL,
    user_id           TEXT    NOT NULL,
    user_relation     TEXT    NOT NULL DEFAULT '',
    condition_name    TEXT,
    condition_context TEXT,   -- JSON object, NULL when empty
    expires_at        REAL,
    revision          INTEGER NOT NULL,  -- the revision that wrote this tuple
    PRIMARY KEY (store_id, object_type, object_id, relation, user_type, user_id, user_relation)
) WITHOUT ROWID;

CREATE INDEX tuples_by_user
    ON tuples (store_id, user_type, user_id, user_relation, relation, object_type);

CREATE INDEX tuples_by_expiry
    ON tuples (store_id, expires_at) WHERE expires_at IS NOT NULL;

-- Append-only: one row per tuple change, ordered by (revision, seq) within a store.
CREATE TABLE changelog (
    store_id          TEXT    NOT NULL,
    revision          INTEGER NOT NULL,
    seq               INTEGER NOT NULL,
    operation         TEXT    NOT NULL CHECK (operation IN ('write', 'delete')),
    object_type       TEXT    NOT NULL,
    object_id         TEXT    NOT NULL,
    relation          TEXT    NOT NULL,
    user_type         TEXT    NOT NULL,
    user_id           TEXT    NOT NULL,
    user_relation     TEXT    NOT NULL DEFAULT '',
    condition_name    TEXT,
    condition_context TEXT,
    expires_at        REAL,
    created_at        REAL    NOT NULL,
    PRIMARY KEY (store_id, revision, seq)
) WITHOUT ROWID;
