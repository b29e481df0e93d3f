"""The in-memory policy state across processes sharing one database: a change made through
one Keyplane reaches the other's ``svc.graphs.policy(store)`` with ``at_least_as_fresh``
(wait_for), through its tailer within the poll interval, and at once in the writer; a
recreated store starts from an empty identity plane."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from keyplane import Keyplane, Settings
from keyplane.policy.records import Identity, StorePolicy
from keyplane.storage.base import PolicyWrite

V1 = "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user]\n"
S = "polrep"


def _human(id_: str, status: str = "active") -> Identity:
    return Identity(S, "human", id_, id_, {}, status, (), False, "api", 1.0, 1.0, None, 0)


def _write(kp: Keyplane, change: PolicyWrite) -> int:
    result = kp.services.storage.write_policy(S, lambda r: change)
    return result.revision


@pytest.fixture
def pair(storage_url: str) -> Iterator[tuple[Keyplane, Keyplane]]:
    settings = Settings(database_url=storage_url, poll_interval=0.0, default_store=S)
    a = Keyplane.open(settings=settings)
    b = Keyplane.open(settings=settings)
    try:
        a.write_model(V1)
        yield a, b
    finally:
        try:
            a.delete_store(S)
        finally:
            for kp in (a, b):
                kp.close()


def test_at_least_as_fresh_reaches_the_other_process(pair: tuple[Keyplane, Keyplane]) -> None:
    a, b = pair
    r1 = _write(a, PolicyWrite(new_identities=[_human("alice")]))
    # B loads its graph (and policy state) now: it sees what is committed
    alice = b.services.graphs.policy(S).identity("human:alice")
    assert alice is not None and alice.status == "active" and alice.revision == r1
    r2 = _write(a, PolicyWrite(identities=[_human("alice", "suspended")]))
    # no tailer (poll_interval 0): B still has its old snapshot ...
    stale = b.services.graphs.policy(S)
    assert stale.revision == r1
    # ... until a request asks for at least r2
    b.services.graphs.wait_for(S, r2, timeout=5)
    fresh = b.services.graphs.policy(S)
    who = fresh.identity("human:alice")
    assert fresh.revision >= r2 and who is not None and who.status == "suspended"
    stale_alice = stale.identity("human:alice")
    assert stale_alice is not None and stale_alice.status == "active"  # snapshots are immutable
    r3 = _write(a, PolicyWrite(store_policy=StorePolicy(S, suspend_orphans=True)))
    assert b.services.graphs.wait_for(S, r3, timeout=5) >= r3
    assert b.services.graphs.policy(S).policy.suspend_orphans


def test_tuple_only_revisions_do_not_stall_wait_for(pair: tuple[Keyplane, Keyplane]) -> None:
    a, b = pair
    _write(a, PolicyWrite(new_identities=[_human("alice")]))
    b.services.graphs.policy(S)
    r = a.write_tuples(["doc:1#viewer@user:x"]).revision
    assert b.services.graphs.wait_for(S, r, timeout=5) >= r
    assert b.services.graphs.policy(S).revision >= r
    assert b.check("user:x", "viewer", "doc:1", at_least_as_fresh=r).allowed


def test_the_tailer_brings_changes_within_the_poll_interval(storage_url: str) -> None:
    settings = Settings(database_url=storage_url, poll_interval=0.05, default_store=S)
    a = Keyplane.open(settings=settings)
    b = Keyplane.open(settings=settings)
    try:
        a.write_model(V1)
        _write(a, PolicyWrite(new_identities=[_human("alice")]))
        assert b.services.graphs.policy(S).identity("human:alice") is not None
        r = _write(a, PolicyWrite(identities=[_human("alice", "suspended")]))
        deadline = time.monotonic() + 10  # generous: only the absence of progress fails
        while b.services.graphs.policy(S).revision < r and time.monotonic() < deadline:
            time.sleep(0.01)
        who = b.services.graphs.policy(S).identity("human:alice")
        assert who is not None and who.status == "suspended"
    finally:
        try:
            a.delete_store(S)
        finally:
            a.close()
            b.close()


def test_recreated_store_starts_with_an_empty_identity_plane(
    pair: tuple[Keyplane, Keyplane],
) -> None:
    a, b = pair
    r = _write(a, PolicyWrite(new_identities=[_human("alice")]))
    b.services.graphs.wait_for(S, r, timeout=5)
    assert b.services.graphs.policy(S).identity("human:alice") is not None
    a.delete_store(S)
    a.create_store("again", store_id=S)
    a.write_model(V1)
    r2 = _write(a, PolicyWrite(new_identities=[_human("bob")]))
    b.services.graphs.catch_up(S)  # notices the new generation and reloads
    b.services.graphs.wait_for(S, r2, timeout=5)
    st = b.services.graphs.policy(S)
    assert st.identity("human:alice") is None and st.identity("human:bob") is not None


def test_last_seen_is_batched_and_throttled(pair: tuple[Keyplane, Keyplane]) -> None:
    a, _ = pair
    _write(a, PolicyWrite(new_identities=[_human("alice")]))
    g = a.services.graphs
    g.note_seen(S, "human:alice", 1000.0)
    g.note_seen(S, "human:alice", 1001.0)
    assert g.flush_seen() == 1
    got = a.services.storage.get_identity(S, "human", "alice")
    assert got is not None and got.last_seen == 1001.0
    g.note_seen(S, "human:alice", 1030.0)  # within 60 s of the last write: not written
    assert g.flush_seen() == 0
    g.note_seen(S, "human:alice", 1062.0)
    assert g.flush_seen() == 1
    got = a.services.storage.get_identity(S, "human", "alice")
    assert got is not None and got.last_seen == 1062.0
    assert a.services.storage.current_revision(S) == 2  # model + identity; touches are free
