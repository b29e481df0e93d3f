-- The MCP gateway (issue 9; see keyplane.gateway.records and keyplane.storage.gateway_sql).
-- As in 0007, every row carries store_id and revision (the store revision of its last
-- change, from the counter tuple writes bump); JSON columns hold JSON text; times are
-- seconds since the Unix epoch. Rows are removed with their store.

-- gateway_servers: a downstream MCP server. transport 'http' (url) or 'stdio' (command, a
-- JSON array of argv strings; env a JSON object of non-secret variables). credential is
-- DownstreamCredential.to_json() (never the secret); encrypted_secret the secret sealed
-- under the master key (AES-GCM, bound to store and server), NULL without one. status
-- 'disabled' is the server's kill switch.
CREATE TABLE gateway_servers (
    store_id                   TEXT    NOT NULL,
    name                       TEXT    NOT NULL,
    transport                  TEXT    NOT NULL CHECK (transport IN ('http', 'stdio')),
    url                        TEXT,
    command                    TEXT    NOT NULL DEFAULT '[]',
    env                        TEXT    NOT NULL DEFAULT '{}',
    description                TEXT,
    credential                 TEXT    NOT NULL DEFAULT '{"kind":"none"}',
    encrypted_secret           BLOB,
    status                     TEXT    NOT NULL CHECK (status IN ('enabled', 'disabled')),
    status_reason              TEXT,
    discovery_interval_seconds INTEGER NOT NULL,
    last_discovered_at         REAL,
    last_discovery_error       TEXT,
    created_at                 REAL    NOT NULL,
    created_by                 TEXT,
    updated_at                 REAL    NOT NULL,
    revision                   INTEGER NOT NULL,
    PRIMARY KEY (store_id, name)
) WITHOUT ROWID;

-- gateway_tools: a tool of a server as discovered (title, description, input_schema and
-- annotations as the server announced them; digest their SHA-256) and its governance:
-- status pending | enabled | disabled | removed, the enforced classification kind / risk,
-- the approved digest. A server's tools are removed with it.
CREATE TABLE gateway_tools (
    store_id        TEXT    NOT NULL,
    server          TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    title           TEXT,
    description     TEXT,
    input_schema    TEXT    NOT NULL DEFAULT '{}',
    annotations     TEXT    NOT NULL DEFAULT '{}',
    digest          TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'enabled', 'disabled', 'removed')),
    status_reason   TEXT,
    kind            TEXT    NOT NULL CHECK (kind IN ('read', 'write', 'delete')),
    risk            TEXT    NOT NULL CHECK (risk IN ('normal', 'sensitive', 'dangerous')),
    approved_digest TEXT,
    approved_by     TEXT,
    approved_at     REAL,
    first_seen_at   REAL    NOT NULL,
    last_seen_at    REAL    NOT NULL,
    removed_at      REAL,
    updated_at      REAL    NOT NULL,
    revision        INTEGER NOT NULL,
    PRIMARY KEY (store_id, server, name)
) WITHOUT ROWID;

-- gateway_settings: at most one row per store (none: the defaults). enabled 0 is the
-- store kill switch; blocked_agents a JSON object node -> reason (the agent kill switch);
-- record_arguments keeps a call's arguments in its ledger event (else their digest only).
CREATE TABLE gateway_settings (
    store_id         TEXT    NOT NULL PRIMARY KEY,
    enabled          INTEGER NOT NULL DEFAULT 1,
    disabled_reason  TEXT,
    record_arguments INTEGER NOT NULL DEFAULT 0,
    blocked_agents   TEXT    NOT NULL DEFAULT '{}',
    updated_at       REAL    NOT NULL,
    updated_by       TEXT,
    revision         INTEGER NOT NULL
) WITHOUT ROWID;
