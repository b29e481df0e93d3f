"""Snapshots, bulk loads and expiry garbage collection."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyplane.errors import InvalidTupleError, TupleExistsError
from keyplane.graph.tuples import Tuple, parse_tuple
from keyplane.storage import Storage


def T(text: str) -> Tuple:
    return parse_tuple(text)


@pytest.fixture
def sid(storage: Storage) -> str:
    return storage.create_store("s").id


def test_snapshot_is_consistent_while_writers_go_on(storage: Storage, sid: str) -> None:
    # more rows than one fetch batch, so the iterator really streams
    storage.bulk_load(sid, (T(f"doc:{i}#viewer@user:u{i % 7}") for i in range(25_000)))
    storage.write(sid, writes=[Tuple("doc:c", "viewer", "user:c", "cond", {"a": 1}, 1.5)])
    rev, it = storage.snapshot(sid)
    rev_rows, rows = storage.snapshot_rows(sid)
    assert rev == rev_rows == 2
    # changes after the snapshot started are not seen by it
    storage.write(sid, writes=[T("doc:late#viewer@user:x")], deletes=[T("doc:0#viewer@user:u0")])
    got = list(it)
    assert len(got) == 25_001 and len(set(got)) == 25_001
    assert T("doc:0#viewer@user:u0") in set(got)
    assert T("doc:late#viewer@user:x") not in set(got)
    c = next(t for t in got if t.object == "doc:c")
    assert (c.condition, c.context, c.expires_at) == ("cond", {"a": 1}, 1.5)
    raw = list(rows)
    assert len(raw) == 25_001
    assert ("doc", "c", "viewer", "user", "c", "", "cond", '{"a":1}', 1.5) in raw
    assert ("doc", "5", "viewer", "user", "u5", "", None, None, None) in raw
    rev2, it2 = storage.snapshot(sid)
    assert rev2 == 3 and len(list(it2)) == 25_001


def test_snapshot_rows_userset_shape(storage: Storage, sid: str) -> None:
    storage.write(sid, writes=[T("doc:1#viewer@group:eng#member"), T("doc:1#viewer@user:*")])
    rev, rows = storage.snapshot_rows(sid)
    assert rev == 1
    assert sorted(rows) == [
        ("doc", "1", "viewer", "group", "eng", "member", None, None, None),
        ("doc", "1", "viewer", "user", "*", "", None, None, None),
    ]


def test_abandoned_snapshots_release_their_connection(storage: Storage, sid: str) -> None:
    storage.write(sid, writes=[T("doc:1#viewer@user:a")])
    for _ in range(30):  # more than any pool holds
        _, it = storage.snapshot(sid)
        next(it)
        del it
        _, rows = storage.snapshot_rows(sid)
        del rows
    assert storage.write(sid, writes=[T("doc:2#viewer@user:a")]) == 2
    assert len(list(storage.snapshot(sid)[1])) == 2


def test_bulk_load_is_one_revision_and_fully_logged(storage: Storage, sid: str) -> None:
    storage.write(sid, writes=[T("doc:0#viewer@user:a")])
    tuples = [T(f"doc:{i}#viewer@user:b") for i in range(500)]
    tuples.append(Tuple("doc:x", "viewer", "group:g#member", "c", {"k": "v"}, 2e9))
    assert storage.bulk_load(sid, iter(tuples)) == 2
    assert storage.current_revision(sid) == 2
    changes = storage.read_changes(sid, after_revision=1, page_size=10).changes
    assert len(changes) == 501  # one whole revision
    assert {c.tuple for c in changes} == set(tuples)
    assert {c.operation for c in changes} == {"write"} and {c.revision for c in changes} == {2}
    x = next(c.tuple for c in changes if c.tuple.object == "doc:x")
    assert (x.condition, x.context, x.expires_at) == ("c", {"k": "v"}, 2e9)
    assert len(storage.read_tuples(sid, page_size=1000).items) == 502


def test_bulk_load_conflicts_are_atomic(storage: Storage, sid: str) -> None:
    storage.write(sid, writes=[T("doc:0#viewer@user:a")])
    with pytest.raises(TupleExistsError):
        storage.bulk_load(sid, [T("doc:1#viewer@user:a"), T("doc:0#viewer@user:a")])
    with pytest.raises(TupleExistsError):
        storage.bulk_load(sid, [T("doc:1#viewer@user:a"), T("doc:1#viewer@user:a")])
    with pytest.raises(InvalidTupleError):
        storage.bulk_load(sid, [T("doc:1#viewer@user:a"), Tuple("doc", "viewer", "user:a")])
    assert storage.current_revision(sid) == 1
    assert len(storage.read_tuples(sid).items) == 1
    assert len(storage.read_changes(sid).changes) == 1


def test_gc_expired(storage: Storage, sid: str) -> None:
    storage.write(
        sid,
        writes=[
            Tuple("doc:1", "viewer", "user:a", expires_at=100.0),
            Tuple("doc:2", "viewer", "user:a", "c", {"x": 1}, expires_at=200.0),
            Tuple("doc:3", "viewer", "user:a"),
        ],
    )
    assert storage.gc_expired(sid, now=50.0) == 0
    assert storage.current_revision(sid) == 1  # nothing collected: no new revision
    assert storage.gc_expired(sid, now=200.0) == 2  # expires_at <= now
    assert storage.current_revision(sid) == 2
    assert [str(t) for t in storage.read_tuples(sid).items] == ["doc:3#viewer@user:a"]
    deletes = storage.read_changes(sid, after_revision=1).changes
    assert {(c.operation, c.revision, str(c.tuple)) for c in deletes} == {
        ("delete", 2, "doc:1#viewer@user:a"),
        ("delete", 2, "doc:2#viewer@user:a"),
    }
    d2 = next(c.tuple for c in deletes if c.tuple.object == "doc:2")
    assert (d2.condition, d2.context, d2.expires_at) == ("c", {"x": 1}, 200.0)
    assert storage.gc_expired(sid, now=1e12) == 0


def test_gc_expired_is_per_store(storage: Storage, sid: str) -> None:
    other = storage.create_store("o").id
    storage.write(other, writes=[Tuple("doc:1", "viewer", "user:a", expires_at=1.0)])
    assert storage.gc_expired(sid, now=10.0) == 0
    assert len(storage.read_tuples(other).items) == 1


def test_snapshot_parses_json_only_where_there_is_context(
    storage: Storage, sid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a call-count guard on the hot path, not a wall-clock one
    storage.bulk_load(sid, (T(f"doc:{i}#viewer@user:a") for i in range(2000)))
    storage.write(
        sid, writes=[Tuple(f"doc:c{i}", "viewer", "user:a", "c", {"i": i}) for i in range(3)]
    )
    calls = 0
    real_loads = json.loads

    def counting_loads(s: str | bytes, **kw: Any) -> Any:
        nonlocal calls
        calls += 1
        return real_loads(s, **kw)

    monkeypatch.setattr(json, "loads", counting_loads)
    _, it = storage.snapshot(sid)
    assert sum(1 for _ in it) == 2003
    assert calls == 3
    _, rows = storage.snapshot_rows(sid)
    assert sum(1 for _ in rows) == 2003
    assert calls == 3  # raw rows hand the JSON text over unparsed
