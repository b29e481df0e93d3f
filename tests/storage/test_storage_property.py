"""Random write/delete/gc sequences checked against an obviously-correct dict reference.

After every step the stored tuples, the revision and the changelog must agree with the
reference; at the end, replaying the changelog from revision 0 and taking a snapshot must
both give back exactly the reference state.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyplane.errors import InvalidTupleError, TupleExistsError, TupleMissingError
from keyplane.graph.tuples import Tuple
from keyplane.storage import Storage

Key = tuple[str, str, str]
Attrs = tuple[str | None, Any, float | None]

keys = st.tuples(
    st.sampled_from(["doc:0", "doc:1", "folder:x"]),
    st.sampled_from(["viewer", "editor"]),
    st.sampled_from(["user:a", "user:b", "user:*", "group:g#member"]),
)
attrs = st.one_of(
    st.just((None, None, None)),
    st.tuples(
        st.sampled_from(["c1", "c2"]),
        st.one_of(
            st.none(), st.dictionaries(st.sampled_from("xyz"), st.integers(0, 9), min_size=1)
        ),
        st.one_of(st.none(), st.sampled_from([10.0, 20.0, 30.5])),
    ),
)
write_op = st.tuples(
    st.just("write"),
    st.lists(st.tuples(keys, attrs), max_size=3),
    st.lists(keys, max_size=2),
    st.booleans(),
)
gc_op = st.tuples(st.just("gc"), st.sampled_from([5.0, 15.0, 25.0, 100.0]))


def mk(key: Key, a: Attrs) -> Tuple:
    return Tuple(*key, a[0], a[1], a[2])


def attrs_of(t: Tuple) -> Attrs:
    return (t.condition, t.context, t.expires_at)


def replay(storage: Storage, sid: str) -> dict[Key, Attrs]:
    state: dict[Key, Attrs] = {}
    after = 0
    while True:
        page = storage.read_changes(sid, after_revision=after, page_size=3)
        for c in page.changes:
            if c.operation == "write":
                state[c.tuple.key] = attrs_of(c.tuple)
            else:
                assert state.pop(c.tuple.key) == attrs_of(c.tuple)
        after = page.last_revision
        if not page.has_more:
            return state


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(st.one_of(write_op, gc_op), max_size=10))
def test_storage_matches_reference(storage: Storage, ops: list[tuple[Any, ...]]) -> None:
    sid = storage.create_store("prop").id
    state: dict[Key, Attrs] = {}
    rev = 0
    for op in ops:
        if op[0] == "gc":
            now = op[1]
            gone = [k for k, a in state.items() if a[2] is not None and a[2] <= now]
            assert storage.gc_expired(sid, now=now) == len(gone)
            for k in gone:
                del state[k]
            rev += 1 if gone else 0
        else:
            _, writes, deletes, idem = op
            all_keys = [k for k, _ in writes] + list(deletes)
            w = [mk(k, a) for k, a in writes]
            d = [Tuple(*k) for k in deletes]
            expected: type[Exception] | None = None
            if not all_keys or len(set(all_keys)) != len(all_keys):
                expected = InvalidTupleError
            elif not idem and any(k not in state for k in deletes):
                expected = TupleMissingError
            elif any(k in state and (not idem or state[k] != a) for k, a in writes):
                expected = TupleExistsError  # idempotent mode skips identical tuples only
            if expected is not None:
                try:
                    storage.write(sid, writes=w, deletes=d, idempotent=idem)
                except expected:
                    pass
                else:
                    raise AssertionError(f"expected {expected.__name__}")
            else:
                rev += 1
                assert storage.write(sid, writes=w, deletes=d, idempotent=idem) == rev
                for k in deletes:
                    state.pop(k, None)
                for k, a in writes:
                    state[k] = a
        assert storage.current_revision(sid) == rev
        got = storage.read_tuples(sid, page_size=2).items  # first page only: cheap
        assert all(state.get(t.key) == attrs_of(t) for t in got)
    stored = {t.key: attrs_of(t) for t in storage.read_tuples(sid, page_size=1000).items}
    assert stored == state
    assert replay(storage, sid) == state
    snap_rev, snap = storage.snapshot(sid)
    assert snap_rev == rev
    assert {t.key: attrs_of(t) for t in snap} == state
