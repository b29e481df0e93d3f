-- The MCP gateway (issue 9; see keyplane.gateway.records and keyplane.storage.gateway_sql).
-- As in 0007, every row carries store_id and revision (the store revision of its last
-- change, from the counter tuple writes bump); JSON columns hold JSON text, as in the
-- SQLite schema; identifier columns use the "C" collation (see 0002); times are seconds
-- since the Unix epoch. Rows are removed with their store.

-- gateway_servers: a downstream MCP server. transport 'http' (url) or 'stdio' (command, a
-- JSON array of argv strings; env a JSON object of non-secret variables). credential is
-- DownstreamCredential.to_json() (never the secret); encrypted_secret the secret sealed
-- under the master key (AES-GCM, bound to store and server), NULL without one. status
-- 'disabled' is the server's kill switch.
CREATE TABLE gateway_servers (
    store_id                   text COLLATE "C" NOT NULL,
    name                       text COLLATE "C" NOT NULL,
    transport                  text             NOT NULL CHECK (transport IN ('http', 'stdio')),
    url                        text,
    command                    text             NOT NULL DEFAULT '[]',
    env                        text             NOT NULL DEFAULT '{}',
    description                text,
    credential                 text             NOT NULL DEFAULT '{"kind":"none"}',
    encrypted_secret           bytea,
    status                     text             NOT NULL CHECK (status IN ('enabled', 'disabled')),
    status_reason              text,
    discovery_interval_seconds integer          NOT NULL,
    last_discovered_at         double precision,
    last_discovery_error       text,
    created_at                 double precision NOT NULL,
    created_by                 text COLLATE "C",
    updated_at                 double precision NOT NULL,
    revision                   bigint           NOT NULL,
    PRIMARY KEY (store_id, name)
);

-- gateway_tools: a tool of a server as discovered (title, description, input_schema and
-- annotations as the server announced them; digest their SHA-256) and its governance:
-- status pending | enabled | disabled | removed, the enforced classification kind / risk,
-- the approved digest. A server's tools are removed with it.
CREATE TABLE gateway_tools (
    store_id        text COLLATE "C" NOT NULL,
    server          text COLLATE "C" NOT NULL,
    name            text COLLATE "C" NOT NULL,
    title           text,
    description     text,
    input_schema    text             NOT NULL DEFAULT '{}',
    annotations     text             NOT NULL DEFAULT '{}',
    digest          text COLLATE "C" NOT NULL,
    status          text             NOT NULL CHECK (status IN ('pending', 'enabled', 'disabled', 'removed')),
    status_reason   text,
    kind            text             NOT NULL CHECK (kind IN ('read', 'write', 'delete')),
    risk            text             NOT NULL CHECK (risk IN ('normal', 'sensitive', 'dangerous')),
    approved_digest text COLLATE "C",
    approved_by     text COLLATE "C",
    approved_at     double precision,
    first_seen_at   double precision NOT NULL,
    last_seen_at    double precision NOT NULL,
    removed_at      double precision,
    updated_at      double precision NOT NULL,
    revision        bigint           NOT NULL,
    PRIMARY KEY (store_id, server, name)
);

-- gateway_settings: at most one row per store (none: the defaults). enabled false is the
-- store kill switch; blocked_agents a JSON object node -> reason (the agent kill switch);
-- record_arguments keeps a call's arguments in its ledger event (else their digest only).
CREATE TABLE gateway_settings (
    store_id         text COLLATE "C" NOT NULL PRIMARY KEY,
    enabled          boolean          NOT NULL DEFAULT true,
    disabled_reason  text,
    record_arguments boolean          NOT NULL DEFAULT false,
    blocked_agents   text             NOT NULL DEFAULT '{}',
    updated_at       double precision NOT NULL,
    updated_by       text COLLATE "C",
    revision         bigint           NOT NULL
);
