"""Authorization model versions: ULID ids, newest first, per-store."""

from __future__ import annotations

import pytest

from keyplane.errors import InvalidContinuationToken, ModelNotFoundError
from keyplane.storage import Storage
from keyplane.storage.ids import ULID_RE

MODEL = {
    "schema_version": "1.1",
    "type_definitions": [
        {"type": "user"},
        {"type": "doc", "relations": {"viewer": {"this": {}}}, "metadata": None},
    ],
}


def test_write_read_latest(storage: Storage) -> None:
    sid = storage.create_store("s").id
    assert storage.latest_model(sid) is None
    first = storage.write_model(sid, MODEL)
    assert ULID_RE.match(first.id) and first.store_id == sid
    assert first.model == MODEL
    second = storage.write_model(sid, {**MODEL, "conditions": {"c": {"name": "c"}}})
    assert second.id > first.id
    assert storage.read_model(sid, first.id) == first
    latest = storage.latest_model(sid)
    assert latest is not None and latest.id == second.id
    assert latest.model["conditions"] == {"c": {"name": "c"}}


def test_model_not_found_and_not_shared_across_stores(storage: Storage) -> None:
    a = storage.create_store("a").id
    b = storage.create_store("b").id
    rec = storage.write_model(a, MODEL)
    with pytest.raises(ModelNotFoundError):
        storage.read_model(b, rec.id)
    with pytest.raises(ModelNotFoundError):
        storage.read_model(a, "01ARZ3NDEKTSV4RRFFQ69G5FAV")


def test_list_models_newest_first_paginated(storage: Storage) -> None:
    sid = storage.create_store("s").id
    ids = [storage.write_model(sid, {"n": i}).id for i in range(5)]
    seen: list[str] = []
    token = None
    while True:
        page = storage.list_models(sid, page_size=2, continuation_token=token)
        seen += [m.id for m in page.items]
        token = page.continuation_token
        if token is None:
            break
    assert seen == ids[::-1]
    assert storage.list_models(sid, page_size=10).items[0].model == {"n": 4}


def test_list_models_token_bound_to_store(storage: Storage) -> None:
    a = storage.create_store("a").id
    b = storage.create_store("b").id
    for i in range(3):
        storage.write_model(a, {"n": i})
    token = storage.list_models(a, page_size=1).continuation_token
    assert token
    with pytest.raises(InvalidContinuationToken):
        storage.list_models(b, continuation_token=token)
