-- Identity source imports (issue 10; see keyplane.importers and keyplane.storage.imports_sql).
-- One row per (source, scope) of a store: what the latest import of that AWS account,
-- Kubernetes cluster or GitHub organisation put in the graph, so the next import can
-- remove what disappeared at the source. identities is a JSON object node -> external id
-- of the identities the import created (and only those: identities resolved to other
-- sources are never recorded, so never deprovisioned by an import); tuples a JSON array of
-- [object, relation, user] keys the import wrote (owner tuples excluded: they follow their
-- identity); warnings a JSON array of strings; counts a JSON object {identities: {added,
-- changed, removed}, tuples: {added, changed, removed}} of that import; digest the SHA-256
-- of the export read. JSON columns hold JSON text, as in the SQLite schema; identifier
-- columns use the "C" collation (see 0002); the row carries the store revision of its last
-- change; times are seconds since the Unix epoch. Rows are removed with their store.
CREATE TABLE source_imports (
    store_id    text COLLATE "C" NOT NULL,
    source      text COLLATE "C" NOT NULL,
    scope       text COLLATE "C" NOT NULL,
    digest      text COLLATE "C" NOT NULL,
    identities  text             NOT NULL DEFAULT '{}',
    tuples      text             NOT NULL DEFAULT '[]',
    warnings    text             NOT NULL DEFAULT '[]',
    counts      text             NOT NULL DEFAULT '{}',
    imported_at double precision NOT NULL,
    imported_by text COLLATE "C",
    revision    bigint           NOT NULL,
    PRIMARY KEY (store_id, source, scope)
);
