-- A store's generation: a fresh random id each time a store is created. Deleting a store
-- and creating one with the same id restarts its revisions at 0, so a replica that still
-- holds the old store's graph must notice it is a different store and reload instead of
-- skipping the new store's first revisions (see keyplane.service.graphs).
ALTER TABLE stores ADD COLUMN generation TEXT NOT NULL DEFAULT '';
