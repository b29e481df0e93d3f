"""Requestable entitlements in the in-memory PolicyState (issue 7): advanced from
PolicyChanges like identities (copy-on-write, never backwards, a tombstone removes), looked
up by (object, relation) with the exact object first and the type wildcard second, active
only; and across two Keyplanes sharing one database (SQLite, PostgreSQL), an entitlement
written through one reaches the other's state at catch-up, its change and deletion too."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from keyplane import Keyplane, Settings
from keyplane.governance.records import ENTITLEMENT_DELETED, Entitlement
from keyplane.policy.state import PolicyState
from keyplane.storage.base import PolicyChanges, PolicyWrite

S = "entstate"
V1 = "model\n  schema 1.1\ntype user\ntype document\n  relations\n    define viewer: [user]\n"


def _ent(eid: str, obj: str, relation: str = "viewer", **kw: object) -> Entitlement:
    base = Entitlement(
        store_id=S, id=eid, object=obj, relation=relation, description="", owners=("human:o",),
        risk="low", max_duration_seconds=3600, agents_may_request=False, approval=(),
        status="active", created_by="admin", created_at=1.0, updated_at=1.0, revision=1,
    )  # fmt: skip
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def _changes(revision: int, *ents: Entitlement) -> PolicyChanges:
    return PolicyChanges((), (), None, None, revision, entitlements=tuple(ents))


def test_exact_object_first_then_the_type_wildcard_active_only() -> None:
    state = PolicyState.empty(S).advanced(
        _changes(
            3,
            _ent("wild-b", "document:*"),
            _ent("exact", "document:roadmap"),
            _ent("wild-a", "document:*"),
            _ent("off", "document:roadmap", status="disabled"),
            _ent("edit", "document:roadmap", relation="editor"),
            _ent("folder", "folder:*"),
        )
    )
    ids = [e.id for e in state.entitlements_for("document:roadmap", "viewer")]
    assert ids == ["exact", "wild-a", "wild-b"]
    assert [e.id for e in state.entitlements_for("document:other", "viewer")] == [
        "wild-a",
        "wild-b",
    ]
    assert [e.id for e in state.entitlements_for("document:roadmap", "editor")] == ["edit"]
    assert state.entitlements_for("document:roadmap", "owner") == []
    assert state.entitlements_for("team:x", "viewer") == []
    # "document:*" itself is not an object a request can name
    assert state.entitlements_for("document:*", "viewer") == []
    # entitlements_on: exact object string, any status
    assert [e.id for e in state.entitlements_on("document:roadmap", "viewer")] == ["exact", "off"]
    assert [e.id for e in state.entitlements_on("document:*", "viewer")] == ["wild-a", "wild-b"]
    off = state.entitlement("off")
    assert off is not None and off.status == "disabled"
    assert state.entitlement("nope") is None
    assert sorted(e.id for e in state.entitlements()) == [
        "edit", "exact", "folder", "off", "wild-a", "wild-b",
    ]  # fmt: skip


def test_changes_apply_copy_on_write_and_never_backwards() -> None:
    s1 = PolicyState.empty(S).advanced(_changes(1, _ent("e", "document:a", revision=1)))
    # moved to another object and disabled
    s2 = s1.advanced(_changes(2, _ent("e", "document:b", revision=2)))
    assert [e.id for e in s2.entitlements_for("document:b", "viewer")] == ["e"]
    assert s2.entitlements_for("document:a", "viewer") == []
    assert s2.entitlements_on("document:a", "viewer") == ()
    # the old state is untouched
    assert [e.id for e in s1.entitlements_for("document:a", "viewer")] == ["e"]
    # an older row read again never moves it back
    s3 = s2.advanced(_changes(2, _ent("e", "document:a", revision=1)))
    got = s3.entitlement("e")
    assert got is not None and got.object == "document:b"
    # disabled: known, not offered
    s4 = s3.advanced(_changes(3, _ent("e", "document:b", status="disabled", revision=3)))
    assert s4.entitlements_for("document:b", "viewer") == []
    assert [e.status for e in s4.entitlements_on("document:b", "viewer")] == ["disabled"]
    # the tombstone removes it everywhere
    s5 = s4.advanced(_changes(4, _ent("e", "document:b", status=ENTITLEMENT_DELETED, revision=4)))
    assert s5.entitlement("e") is None and s5.entitlements_on("document:b", "viewer") == ()
    assert list(s5.entitlements()) == []
    assert s5.revision == 4
    # a new entitlement with the id is fine
    s6 = s5.advanced(_changes(5, _ent("e", "document:c", revision=5)))
    assert [e.id for e in s6.entitlements_for("document:c", "viewer")] == ["e"]
    # other parts of the state are shared, not copied, when no entitlement changed
    s7 = s6.advanced(PolicyChanges((), (), None, None, 6))
    assert s7.entitlement("e") is s6.entitlement("e") and s7.revision == 6


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


def _write(kp: Keyplane, change: PolicyWrite) -> int:
    return kp.services.storage.write_policy(S, lambda r: change).revision


def test_entitlements_reach_another_process(pair: tuple[Keyplane, Keyplane]) -> None:
    a, b = pair
    r1 = _write(a, PolicyWrite(new_entitlements=[_ent("wild", "document:*")]))
    # B loads its state now: it sees what is committed
    first = b.services.graphs.policy(S)
    assert [e.id for e in first.entitlements_for("document:x", "viewer")] == ["wild"]
    r2 = _write(
        a,
        PolicyWrite(
            new_entitlements=[_ent("exact", "document:x")],
            entitlements=[_ent("wild", "document:*", risk="high")],
        ),
    )
    assert r2 > r1
    # no tailer (poll_interval 0): B keeps its snapshot until asked for r2
    assert b.services.graphs.policy(S).revision == r1
    b.services.graphs.wait_for(S, r2, timeout=5)
    fresh = b.services.graphs.policy(S)
    found = fresh.entitlements_for("document:x", "viewer")
    assert [(e.id, e.risk, e.revision) for e in found] == [
        ("exact", "low", r2),
        ("wild", "high", r2),
    ]
    r3 = _write(a, PolicyWrite(deleted_entitlements=["wild"]))
    b.services.graphs.wait_for(S, r3, timeout=5)
    after = b.services.graphs.policy(S)
    assert [e.id for e in after.entitlements_for("document:x", "viewer")] == ["exact"]
    assert after.entitlement("wild") is None
    # and the writer's own state agrees
    a.services.graphs.wait_for(S, r3, timeout=5)
    mine = a.services.graphs.policy(S)
    assert [e.id for e in mine.entitlements_for("document:x", "viewer")] == ["exact"]
