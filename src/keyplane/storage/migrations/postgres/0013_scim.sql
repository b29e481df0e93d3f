-- SCIM 2.0 resources (issue 10; see keyplane.storage.scim_sql and keyplane.service.scim).
-- As in 0007, every row carries store_id and revision (the store revision of its last
-- change); JSON columns hold JSON text, as in the SQLite schema; identifier columns use the
-- "C" collation (see 0002); times are seconds since the Unix epoch. Rows are removed with
-- their store.

-- scim_resources: a resource an identity provider provisioned over SCIM 2.0. resource_type
-- 'User' | 'Group' | 'Agent'; id the SCIM id (a slug fixed at creation, never renamed);
-- node the graph node it is projected on ('human:<id>', 'group:<id>', 'agent:<id>');
-- data the resource as stored (JSON, without meta); version the SCIM version (meta.version
-- W/"<version>"), bumped by every write that changes the resource. unique_key: userName
-- lower-cased for a User, displayName for an Agent, NULL for a Group (NULLs never clash).
CREATE TABLE scim_resources (
    store_id      text COLLATE "C" NOT NULL,
    resource_type text COLLATE "C" NOT NULL CHECK (resource_type IN ('User', 'Group', 'Agent')),
    id            text COLLATE "C" NOT NULL,
    external_id   text,
    unique_key    text COLLATE "C",
    node          text COLLATE "C" NOT NULL,
    data          text             NOT NULL,
    version       bigint           NOT NULL,
    created_at    double precision NOT NULL,
    updated_at    double precision NOT NULL,
    revision      bigint           NOT NULL,
    PRIMARY KEY (store_id, resource_type, id),
    UNIQUE (store_id, resource_type, unique_key)
);

CREATE INDEX scim_resources_by_node ON scim_resources (store_id, node);
