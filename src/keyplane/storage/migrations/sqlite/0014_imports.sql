-- Identity source imports (issue 10; see keyplane.importers and keyplane.storage.imports_sql).
-- One row per (source, scope) of a store: what the latest import of that AWS account,
-- Kubernetes cluster or GitHub organisation put in the graph, so the next import can
-- remove what disappeared at the source. identities is a JSON object node -> external id
-- of the identities the import created (and only those: identities resolved to other
-- sources are never recorded, so never deprovisioned by an import); tuples a JSON array of
-- [object, relation, user] keys the import wrote (owner tuples excluded: they follow their
-- identity); warnings a JSON array of strings; counts a JSON object {identities: {added,
-- changed, removed}, tuples: {added, changed, removed}} of that import; digest the SHA-256
-- of the export read. As in 0007 the row carries the store revision of its last change;
-- times are seconds since the Unix epoch. Rows are removed with their store.
CREATE TABLE source_imports (
    store_id    TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    scope       TEXT    NOT NULL,
    digest      TEXT    NOT NULL,
    identities  TEXT    NOT NULL DEFAULT '{}',
    tuples      TEXT    NOT NULL DEFAULT '[]',
    warnings    TEXT    NOT NULL DEFAULT '[]',
    counts      TEXT    NOT NULL DEFAULT '{}',
    imported_at REAL    NOT NULL,
    imported_by TEXT,
    revision    INTEGER NOT NULL,
    PRIMARY KEY (store_id, source, scope)
) WITHOUT ROWID;
