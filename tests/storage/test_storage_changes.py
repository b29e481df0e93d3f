"""The changelog: content, ordering, pagination on revision boundaries, filters."""

from __future__ import annotations

import pytest

from keyplane.clock import FixedClock
from keyplane.graph.tuples import Tuple, TupleChange, parse_tuple
from keyplane.storage import Storage, open_storage


def T(text: str) -> Tuple:
    return parse_tuple(text)


@pytest.fixture
def sid(storage: Storage) -> str:
    return storage.create_store("s").id


def tail(storage: Storage, sid: str, page_size: int, **kw: str) -> list[TupleChange]:
    out: list[TupleChange] = []
    after = 0
    while True:
        page = storage.read_changes(sid, after_revision=after, page_size=page_size, **kw)
        if page.changes:
            revs = {c.revision for c in page.changes}
            assert max(revs) <= page.last_revision
            # a page never splits a revision
            full = storage.read_changes(sid, after_revision=max(revs) - 1, page_size=100_000)
            tail_rev = [c for c in full.changes if c.revision == max(revs)]
            if not kw:
                assert [c for c in page.changes if c.revision == max(revs)] == tail_rev
        out += page.changes
        assert page.last_revision >= after
        after = page.last_revision
        if not page.has_more:
            return out


def test_changes_carry_full_tuples(storage_url: str) -> None:
    st = open_storage(storage_url, clock=FixedClock(1_850_000_000.0))
    try:
        sid = st.create_store("s").id
        cond = Tuple("doc:1", "viewer", "user:a", "in_hours", {"tz": "UTC", "h": [9, 17]}, 1.9e9)
        st.write(sid, writes=[cond, T("doc:1#viewer@group:g#member")])
        # a delete records the tuple as it was stored, condition and expiry included
        st.write(sid, deletes=[Tuple("doc:1", "viewer", "user:a")])
        changes = st.read_changes(sid).changes
        assert [(c.operation, c.revision, str(c.tuple)) for c in changes] == [
            ("write", 1, "doc:1#viewer@user:a"),
            ("write", 1, "doc:1#viewer@group:g#member"),
            ("delete", 2, "doc:1#viewer@user:a"),
        ]
        for c in (changes[0], changes[2]):
            assert c.tuple.condition == "in_hours"
            assert c.tuple.context == {"tz": "UTC", "h": [9, 17]}
            assert c.tuple.expires_at == 1.9e9
        assert changes[1].tuple.condition is None and changes[1].tuple.context is None
        assert all(c.timestamp == 1_850_000_000.0 for c in changes)
    finally:
        st.close()


def test_after_revision_and_last_revision(storage: Storage, sid: str) -> None:
    for i in range(4):
        storage.write(sid, writes=[T(f"doc:{i}#viewer@user:a")])
    page = storage.read_changes(sid, after_revision=2)
    assert [c.revision for c in page.changes] == [3, 4]
    assert page.last_revision == 4 and not page.has_more
    empty = storage.read_changes(sid, after_revision=4)
    assert empty.changes == [] and empty.last_revision == 4


def test_pages_end_on_revision_boundaries(storage: Storage, sid: str) -> None:
    sizes = [3, 1, 2, 5, 1, 4, 2, 2]
    n = 0
    for size in sizes:
        storage.write(sid, writes=[T(f"doc:{n + i}#viewer@user:a") for i in range(size)])
        n += size
    everything = storage.read_changes(sid, page_size=1000).changes
    assert len(everything) == n
    assert [c.revision for c in everything] == sorted(c.revision for c in everything)
    for page_size in (1, 2, 3, 4, 7, 100):
        assert tail(storage, sid, page_size) == everything


def test_revision_bigger_than_page_is_returned_whole(storage: Storage, sid: str) -> None:
    storage.write(sid, writes=[T(f"doc:{i}#viewer@user:a") for i in range(10)])
    storage.write(sid, writes=[T("doc:x#viewer@user:a")])
    page = storage.read_changes(sid, page_size=3)
    assert len(page.changes) == 10 and page.last_revision == 1 and page.has_more
    page = storage.read_changes(sid, after_revision=1, page_size=3)
    assert len(page.changes) == 1 and page.last_revision == 2 and not page.has_more


def test_object_type_filter_still_advances(storage: Storage, sid: str) -> None:
    storage.write(sid, writes=[T("doc:1#viewer@user:a"), T("folder:1#viewer@user:a")])
    storage.write(sid, writes=[T("folder:2#viewer@user:a")])
    storage.write(sid, writes=[T("doc:2#viewer@user:a")])
    storage.write(sid, writes=[T("folder:3#viewer@user:a")])
    page = storage.read_changes(sid, object_type="doc")
    assert [str(c.tuple) for c in page.changes] == ["doc:1#viewer@user:a", "doc:2#viewer@user:a"]
    assert page.last_revision == 4
    assert [str(c.tuple) for c in tail(storage, sid, 1, object_type="doc")] == [
        "doc:1#viewer@user:a",
        "doc:2#viewer@user:a",
    ]


def test_revisions_are_monotonic_and_match_the_log(storage: Storage, sid: str) -> None:
    revs = []
    for i in range(10):
        revs.append(storage.write(sid, writes=[T(f"doc:{i}#viewer@user:a")]))
        if i % 3 == 2:
            revs.append(storage.write(sid, deletes=[T(f"doc:{i}#viewer@user:a")]))
    assert revs == list(range(1, len(revs) + 1))
    assert [c.revision for c in storage.read_changes(sid, page_size=1000).changes] == revs
