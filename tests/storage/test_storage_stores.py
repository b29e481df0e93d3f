"""Stores: create/get/list/delete, caller-given ids, isolation, and URL handling."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from keyplane.clock import FixedClock
from keyplane.errors import (
    InvalidContinuationToken,
    StoreExistsError,
    StoreNotFoundError,
    ValidationError,
)
from keyplane.graph.tuples import Tuple
from keyplane.storage import Storage, open_storage
from keyplane.storage.ids import ULID_RE, UlidGenerator, encode
from keyplane.storage.sqlite import SQLiteStorage


def test_create_get_store(storage: Storage) -> None:
    info = storage.create_store("acme")
    assert ULID_RE.match(info.id)
    assert info.name == "acme"
    assert info.created_at == info.updated_at > 0
    assert storage.get_store(info.id) == info
    assert storage.current_revision(info.id) == 0


def test_caller_given_id_and_clash(storage: Storage) -> None:
    storage.create_store("default store", store_id="default")
    assert storage.get_store("default").name == "default store"
    with pytest.raises(StoreExistsError):
        storage.create_store("again", store_id="default")


@pytest.mark.parametrize("bad", ["", "has space", "a/b", "x" * 65, "-lead"])
def test_invalid_store_id(storage: Storage, bad: str) -> None:
    with pytest.raises(ValidationError):
        storage.create_store("n", store_id=bad)


def test_empty_name_rejected(storage: Storage) -> None:
    with pytest.raises(ValidationError):
        storage.create_store("  ")


def test_unknown_store_everywhere(storage: Storage) -> None:
    t = Tuple("doc:1", "viewer", "user:a")
    calls = [
        lambda: storage.get_store("nope"),
        lambda: storage.delete_store("nope"),
        lambda: storage.current_revision("nope"),
        lambda: storage.write("nope", writes=[t]),
        lambda: storage.bulk_load("nope", [t]),
        lambda: storage.read_tuples("nope"),
        lambda: storage.read_changes("nope"),
        lambda: storage.snapshot("nope"),
        lambda: storage.snapshot_rows("nope"),
        lambda: storage.gc_expired("nope", now=0),
        lambda: storage.write_model("nope", {}),
        lambda: storage.latest_model("nope"),
        lambda: storage.list_models("nope"),
    ]
    for call in calls:
        with pytest.raises(StoreNotFoundError):
            call()


def test_list_stores_paginates_in_id_order(storage: Storage) -> None:
    ids = sorted(storage.create_store(f"s{i}").id for i in range(7))
    seen: list[str] = []
    token = None
    while True:
        page = storage.list_stores(page_size=3, continuation_token=token)
        assert len(page.items) <= 3
        seen += [s.id for s in page.items]
        token = page.continuation_token
        if token is None:
            break
    assert seen == ids


def test_list_stores_bad_token(storage: Storage) -> None:
    for bad in ["garbage!", "eyJ4IjoxfQ"]:
        with pytest.raises(InvalidContinuationToken):
            storage.list_stores(continuation_token=bad)


def test_delete_store_removes_everything_and_frees_the_id(storage: Storage) -> None:
    storage.create_store("a", store_id="gone")
    storage.write("gone", writes=[Tuple("doc:1", "viewer", "user:a")])
    storage.write_model("gone", {"schema_version": "1.1"})
    storage.delete_store("gone")
    with pytest.raises(StoreNotFoundError):
        storage.get_store("gone")
    assert [s.id for s in storage.list_stores().items] == []
    # re-created under the same id: nothing of the old store is visible
    storage.create_store("b", store_id="gone")
    assert storage.current_revision("gone") == 0
    assert storage.read_tuples("gone").items == []
    assert storage.read_changes("gone").changes == []
    assert storage.latest_model("gone") is None


def test_stores_are_isolated(storage: Storage) -> None:
    a = storage.create_store("a").id
    b = storage.create_store("b").id
    storage.write(a, writes=[Tuple("doc:1", "viewer", "user:x")])
    storage.write_model(a, {"m": "a"})
    assert storage.read_tuples(b).items == []
    assert storage.read_changes(b).changes == []
    assert storage.current_revision(b) == 0
    assert storage.latest_model(b) is None
    assert list(storage.snapshot(b)[1]) == []
    # the same key may exist in both stores
    storage.write(b, writes=[Tuple("doc:1", "viewer", "user:x")])
    storage.delete_store(a)
    assert len(storage.read_tuples(b).items) == 1


def test_timestamps_come_from_the_clock(storage_url: str) -> None:
    clock = FixedClock(1_900_000_000.0)
    st = open_storage(storage_url, clock=clock)
    try:
        info = st.create_store("c")
        assert info.created_at == 1_900_000_000.0
        assert st.get_store(info.id).created_at == 1_900_000_000.0
        assert st.write_model(info.id, {}).created_at == 1_900_000_000.0
    finally:
        st.close()


def test_ulids_are_monotonic_under_a_frozen_clock() -> None:
    gen = UlidGenerator(FixedClock())
    ids = [gen.new() for _ in range(1000)]
    assert ids == sorted(ids) and len(set(ids)) == 1000
    assert all(len(i) == 26 and ULID_RE.match(i) for i in ids)
    later = UlidGenerator(FixedClock(1_800_000_001.0)).new()
    assert later > ids[-1]


def test_ulid_text_is_crockford_base32_five_bits_at_a_time() -> None:
    """The table-driven encoder against the definition (26 characters, 5 bits each)."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    rng = random.Random(4)
    for n in [0, 1, 2**127, 2**128 - 1, *(rng.getrandbits(128) for _ in range(2000))]:
        want = "".join(alphabet[(n >> shift) & 31] for shift in range(125, -1, -5))
        assert encode(n) == want


def test_open_storage_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for url, path in [
        (None, "keyplane.db"),
        ("sqlite://", "keyplane.db"),
        ("sqlite:///rel.db", "rel.db"),
        (f"sqlite:///{tmp_path}/abs.db", f"{tmp_path}/abs.db"),
        (str(tmp_path / "bare.db"), str(tmp_path / "bare.db")),
    ]:
        st = open_storage(url)
        try:
            assert isinstance(st, SQLiteStorage)
            assert st.path == path
            assert Path(path).exists()
        finally:
            st.close()
    for bad in ["mysql://x/y", "sqlite:relative"]:
        with pytest.raises(ValueError):
            open_storage(bad)
