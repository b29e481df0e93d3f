"""Tuple writes (atomic, idempotent mode, revisions) and filtered, paginated reads."""

from __future__ import annotations

import pytest

from keyplane.errors import (
    InvalidContinuationToken,
    InvalidTupleError,
    TupleExistsError,
    TupleMissingError,
)
from keyplane.graph.tuples import Tuple, parse_tuple
from keyplane.storage import Storage


def T(text: str) -> Tuple:
    return parse_tuple(text)


@pytest.fixture
def sid(storage: Storage) -> str:
    return storage.create_store("s").id


def all_tuples(storage: Storage, sid: str) -> set[Tuple]:
    return set(storage.read_tuples(sid, page_size=10_000).items)


def test_write_then_read_round_trips_every_attribute(storage: Storage, sid: str) -> None:
    t = Tuple("doc:1", "viewer", "user:a", "in_office", {"ip": "10.0.0.1", "n": [1, 2]}, 1.9e9)
    u = T("doc:1#viewer@group:eng#member")
    w = T("doc:1#viewer@user:*")
    assert storage.write(sid, writes=[t, u, w]) == 1
    items = storage.read_tuples(sid).items
    assert set(items) == {t, u, w}
    got = next(i for i in items if i == t)
    assert (got.condition, got.context, got.expires_at) == (t.condition, t.context, t.expires_at)
    plain = next(i for i in items if i == u)
    assert (plain.condition, plain.context, plain.expires_at) == (None, None, None)


def test_each_write_bumps_revision_by_one(storage: Storage, sid: str) -> None:
    revs = [storage.write(sid, writes=[T(f"doc:{i}#viewer@user:a")]) for i in range(5)]
    assert revs == [1, 2, 3, 4, 5]
    assert storage.write(sid, deletes=[T("doc:0#viewer@user:a")]) == 6
    assert storage.current_revision(sid) == 6


def test_write_existing_raises_and_writes_nothing(storage: Storage, sid: str) -> None:
    storage.write(sid, writes=[T("doc:1#viewer@user:a")])
    with pytest.raises(TupleExistsError) as err:
        storage.write(sid, writes=[T("doc:2#viewer@user:a"), T("doc:1#viewer@user:a")])
    assert "doc:1#viewer@user:a" in str(err.value)
    assert err.value.details["tuple"]["object"] == "doc:1"
    assert all_tuples(storage, sid) == {T("doc:1#viewer@user:a")}
    assert storage.current_revision(sid) == 1
    assert len(storage.read_changes(sid).changes) == 1


def test_delete_missing_raises_and_deletes_nothing(storage: Storage, sid: str) -> None:
    storage.write(sid, writes=[T("doc:1#viewer@user:a")])
    with pytest.raises(TupleMissingError) as err:
        storage.write(
            sid,
            deletes=[T("doc:1#viewer@user:a"), T("doc:9#viewer@user:a")],
            writes=[T("doc:3#viewer@user:a")],
        )
    assert "doc:9#viewer@user:a" in str(err.value)
    assert all_tuples(storage, sid) == {T("doc:1#viewer@user:a")}
    assert storage.current_revision(sid) == 1


def test_idempotent_skips_existing_and_missing(storage: Storage, sid: str) -> None:
    storage.write(sid, writes=[T("doc:1#viewer@user:a")])
    rev = storage.write(
        sid,
        writes=[T("doc:1#viewer@user:a"), T("doc:2#viewer@user:a")],
        deletes=[T("doc:9#viewer@user:a")],
        idempotent=True,
    )
    assert rev == 2
    assert all_tuples(storage, sid) == {T("doc:1#viewer@user:a"), T("doc:2#viewer@user:a")}
    changes = storage.read_changes(sid, after_revision=1).changes
    assert [(c.operation, str(c.tuple)) for c in changes] == [("write", "doc:2#viewer@user:a")]


def test_idempotent_write_of_a_different_tuple_still_conflicts(storage: Storage, sid: str) -> None:
    storage.write(sid, writes=[Tuple("doc:1", "viewer", "user:a", "c", {"x": 1, "y": 2}, 10.0)])
    # identical (context key order does not matter): a no-op
    same = Tuple("doc:1", "viewer", "user:a", "c", {"y": 2, "x": 1}, 10)
    assert storage.write(sid, writes=[same], idempotent=True) == 2
    for other in [
        Tuple("doc:1", "viewer", "user:a"),
        Tuple("doc:1", "viewer", "user:a", "d", {"x": 1, "y": 2}, 10.0),
        Tuple("doc:1", "viewer", "user:a", "c", {"x": 1}, 10.0),
        Tuple("doc:1", "viewer", "user:a", "c", {"x": 1, "y": 2}, 20.0),
        Tuple("doc:1", "viewer", "user:a", "c", {"x": 1, "y": 2}),
    ]:
        with pytest.raises(TupleExistsError, match="another condition or expiry"):
            storage.write(sid, writes=[other], idempotent=True)
    assert storage.current_revision(sid) == 2
    (got,) = storage.read_tuples(sid).items
    assert (got.condition, got.context, got.expires_at) == ("c", {"x": 1, "y": 2}, 10.0)


def test_delete_and_rewrite_with_new_condition_in_separate_writes(
    storage: Storage, sid: str
) -> None:
    storage.write(sid, writes=[T("doc:1#viewer@user:a")])
    storage.write(sid, deletes=[T("doc:1#viewer@user:a")])
    storage.write(sid, writes=[Tuple("doc:1", "viewer", "user:a", "cond", {"x": 1})])
    (got,) = storage.read_tuples(sid).items
    assert got.condition == "cond" and got.context == {"x": 1}


@pytest.mark.parametrize(
    ("writes", "deletes"),
    [
        (["doc:1#viewer@user:a", "doc:1#viewer@user:a"], []),
        ([], ["doc:1#viewer@user:a", "doc:1#viewer@user:a"]),
        (["doc:1#viewer@user:a"], ["doc:1#viewer@user:a"]),
    ],
)
def test_duplicates_in_one_request(
    storage: Storage, sid: str, writes: list[str], deletes: list[str]
) -> None:
    with pytest.raises(InvalidTupleError):
        storage.write(sid, writes=[T(w) for w in writes], deletes=[T(d) for d in deletes])
    assert storage.current_revision(sid) == 0


def test_duplicate_key_with_different_condition_is_still_a_duplicate(
    storage: Storage, sid: str
) -> None:
    with pytest.raises(InvalidTupleError):
        storage.write(
            sid, writes=[T("doc:1#viewer@user:a"), Tuple("doc:1", "viewer", "user:a", "c")]
        )


def test_empty_and_malformed_requests(storage: Storage, sid: str) -> None:
    with pytest.raises(InvalidTupleError):
        storage.write(sid)
    for bad in [
        Tuple("doc", "viewer", "user:a"),
        Tuple("doc:1", "viewer", "user"),
        Tuple("doc:1", "", "user:a"),
        Tuple("doc:*", "viewer", "user:a"),
    ]:
        with pytest.raises(InvalidTupleError):
            storage.write(sid, writes=[bad])
    assert storage.current_revision(sid) == 0


@pytest.fixture
def populated(storage: Storage, sid: str) -> str:
    texts = [
        "doc:1#viewer@user:a",
        "doc:1#viewer@user:b",
        "doc:1#editor@user:a",
        "doc:2#viewer@user:a",
        "doc:2#viewer@group:eng#member",
        "doc:2#viewer@user:*",
        "folder:1#viewer@user:a",
        "group:eng#member@user:b",
    ]
    storage.write(sid, writes=[T(t) for t in texts])
    return sid


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (
            {"object": "doc:1"},
            {"doc:1#viewer@user:a", "doc:1#viewer@user:b", "doc:1#editor@user:a"},
        ),
        ({"object": "doc:1", "relation": "viewer"}, {"doc:1#viewer@user:a", "doc:1#viewer@user:b"}),
        ({"object": "doc:1", "relation": "viewer", "user": "user:a"}, {"doc:1#viewer@user:a"}),
        (
            {"object": "doc:"},
            {
                "doc:1#viewer@user:a",
                "doc:1#viewer@user:b",
                "doc:1#editor@user:a",
                "doc:2#viewer@user:a",
                "doc:2#viewer@group:eng#member",
                "doc:2#viewer@user:*",
            },
        ),
        (
            {"object": "doc:", "relation": "viewer", "user": "user:a"},
            {"doc:1#viewer@user:a", "doc:2#viewer@user:a"},
        ),
        (
            {"user": "user:a"},
            {
                "doc:1#viewer@user:a",
                "doc:1#editor@user:a",
                "doc:2#viewer@user:a",
                "folder:1#viewer@user:a",
            },
        ),
        ({"user": "group:eng#member"}, {"doc:2#viewer@group:eng#member"}),
        ({"user": "group:eng"}, set()),
        ({"user": "user:*"}, {"doc:2#viewer@user:*"}),
        ({"user": "group:"}, {"doc:2#viewer@group:eng#member"}),
        ({"relation": "member"}, {"group:eng#member@user:b"}),
        ({"object": "nothing:"}, set()),
    ],
)
def test_read_filters(
    storage: Storage, populated: str, filters: dict[str, str], expected: set[str]
) -> None:
    got = storage.read_tuples(populated, **filters).items  # type: ignore[arg-type]
    assert {str(t) for t in got} == expected


def test_read_pagination_is_stable_and_complete(storage: Storage, populated: str) -> None:
    everything = storage.read_tuples(populated).items
    assert len(everything) == 8
    for size in (1, 3, 8):
        seen: list[Tuple] = []
        token = None
        while True:
            page = storage.read_tuples(populated, page_size=size, continuation_token=token)
            assert len(page.items) <= size
            seen += page.items
            token = page.continuation_token
            if token is None:
                break
        assert seen == everything
    # a full last page ends the listing exactly
    assert storage.read_tuples(populated, page_size=8).continuation_token is None


def test_read_pagination_with_filter(storage: Storage, populated: str) -> None:
    p1 = storage.read_tuples(populated, object="doc:", page_size=4)
    assert p1.continuation_token
    p2 = storage.read_tuples(
        populated, object="doc:", page_size=4, continuation_token=p1.continuation_token
    )
    assert len(p1.items) + len(p2.items) == 6 and p2.continuation_token is None
    assert not set(p1.items) & set(p2.items)


def test_bad_continuation_tokens(storage: Storage, populated: str) -> None:
    token = storage.read_tuples(populated, page_size=2).continuation_token
    assert token
    for bad in ["not-a-token", "%%%", token[:-3], "e30"]:
        with pytest.raises(InvalidContinuationToken):
            storage.read_tuples(populated, continuation_token=bad)
    with pytest.raises(InvalidContinuationToken):  # same token, other filters
        storage.read_tuples(populated, object="doc:", continuation_token=token)
    other = storage.create_store("o").id
    with pytest.raises(InvalidContinuationToken):  # same token, other store
        storage.read_tuples(other, continuation_token=token)


def test_bad_filters(storage: Storage, populated: str) -> None:
    for kw in [{"object": "doc"}, {"object": ":1"}, {"user": "user"}, {"user": "group:#member"}]:
        with pytest.raises(InvalidTupleError):
            storage.read_tuples(populated, **kw)  # type: ignore[arg-type]
