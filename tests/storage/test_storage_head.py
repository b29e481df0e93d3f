"""store_head: revision, generation and latest model in one read; model writes are revisions."""

from __future__ import annotations

import pytest

from keyplane.errors import StoreNotFoundError
from keyplane.graph.tuples import Tuple
from keyplane.storage import Storage

MODEL = {"schema_version": "1.1", "type_definitions": [{"type": "user"}]}


def test_head_tracks_revision_generation_and_latest_model(storage: Storage) -> None:
    storage.create_store("s", store_id="s")
    h0 = storage.store_head("s")
    assert (h0.revision, h0.latest_model_id) == (0, None) and h0.generation
    m1 = storage.write_model("s", MODEL)
    assert m1.revision == 1
    r = storage.write("s", writes=[Tuple("doc:1", "viewer", "user:a")], deletes=[])
    m2 = storage.write_model("s", MODEL)
    assert m2.revision == r + 1
    h1 = storage.store_head("s")
    assert (h1.revision, h1.latest_model_id, h1.generation) == (r + 1, m2.id, h0.generation)
    # a revision without tuple changes still moves a tailer forward
    page = storage.read_changes("s", after_revision=r)
    assert page.changes == [] and page.last_revision == r + 1
    storage.delete_store("s")
    with pytest.raises(StoreNotFoundError):
        storage.store_head("s")
    storage.create_store("s", store_id="s")
    assert storage.store_head("s").generation != h0.generation
    storage.delete_store("s")
