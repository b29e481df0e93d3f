"""Identities, delegations and the store policy through the service layer, on SQLite and
PostgreSQL: validation, owners (rows and tuples), the kill switch, deprovisioning and
orphans, delegation containment and cascading revocation, ledger events, and the
in-memory policy state the decision reads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from keyplane import FixedClock, Keyplane, Settings
from keyplane.errors import (
    DelegationInvalidError,
    DelegationNotFoundError,
    DelegationWideningError,
    IdentityExistsError,
    IdentityNotFoundError,
    IdentityStateError,
    OwnerRequiredError,
    ValidationError,
)
from keyplane.service import delegations as D
from keyplane.service import identities as I
from keyplane.service import policies as P
from keyplane.service.auth import Caller
from keyplane.service.context import Services

S = "idops"
NOW = 1_800_000_000.0
MODEL = "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user]\n"
ALL_DOCS = [{"actions": ["viewer", "read"], "resource": "doc:*", "tools": ["search", "fetch"]}]


class Ops:
    """The service functions bound to one store and the system caller."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.me = Caller.system_caller()

    def __getattr__(self, name: str) -> Any:
        for mod in (I, D, P):
            fn = getattr(mod, name, None)
            if fn is not None:
                return lambda *a, **kw: fn(self.svc, self.me, S, *a, **kw)
        raise AttributeError(name)

    def events(self, type: str) -> list[Any]:
        return [e for e in self.svc.storage.read_events(S, limit=1000) if e.type == type]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def ops(storage_url: str, clock: FixedClock) -> Iterator[Ops]:
    settings = Settings(database_url=storage_url, poll_interval=0.0, default_store=S)
    kp = Keyplane.open(settings=settings, clock=clock)
    try:
        kp.write_model(MODEL)
        o = Ops(kp.services)
        o.create_identity("human", "alice")
        o.create_identity("human", "bob")
        o.create_identity("agent", "planner", owners=["human:alice"])
        o.create_identity("agent", "worker", owners=["human:alice", "group:eng#member"])
        yield o
    finally:
        try:
            kp.delete_store(S)
        finally:
            kp.close()


def _root(ops: Ops, **kw: Any) -> Any:
    args: dict[str, Any] = dict(
        delegator="human:alice", delegate="agent:planner", scope=ALL_DOCS,
        expires_at=NOW + 3600, purposes=["support", "billing"], max_depth=2,
    )  # fmt: skip
    args.update(kw)
    return ops.create_delegation(**args)


def _sub(ops: Ops, parent: Any, **kw: Any) -> Any:
    args: dict[str, Any] = dict(
        delegator="agent:planner", delegate="agent:worker", parent_id=parent.id,
        scope=[{"actions": ["viewer"], "resource": "doc:1", "tools": ["search"]}],
        expires_at=NOW + 1800, purposes=["support"], max_depth=1,
    )  # fmt: skip
    args.update(kw)
    return ops.create_delegation(**args)


# ------------------------------------------------------------------------------ identities


def test_create_identity_writes_row_owner_tuples_and_event(ops: Ops) -> None:
    bot = ops.create_identity(
        "workload", "etl", display_name="ETL", attributes={"env": "prod"},
        owners=["human:bob", "group:data#member"], source="import:aws",
    )  # fmt: skip
    assert (bot.node, bot.status, bot.orphaned, bot.source) == (
        "workload:etl", "active", False, "import:aws"
    )  # fmt: skip
    assert bot.owners == ("human:bob", "group:data#member") and bot.attributes == {"env": "prod"}
    assert bot.revision == ops.svc.storage.current_revision(S)
    tuples = {str(t) for t in ops.svc.storage.read_tuples(S, object="workload:etl").items}
    assert tuples == {"workload:etl#owner@human:bob", "workload:etl#owner@group:data#member"}
    [ev] = [e for e in ops.events("identity.created") if e.resource == "workload:etl"]
    assert ev.revision == bot.revision and ev.details["owners"] == list(bot.owners)
    assert ops.get_identity("workload:etl") == bot
    # this process's state has it at once
    assert ops.svc.graphs.policy(S).identity("workload:etl") == bot


@pytest.mark.parametrize(
    ("args", "kw", "error"),
    [
        (("agent", "x"), {}, OwnerRequiredError),
        (("service_account", "x"), {"owners": []}, OwnerRequiredError),
        (("robot", "x"), {"owners": ["human:alice"]}, ValidationError),
        (("agent", "a b"), {"owners": ["human:alice"]}, ValidationError),
        (("agent", "a:b"), {"owners": ["human:alice"]}, ValidationError),
        (("agent", "x"), {"owners": ["agent:planner"]}, ValidationError),
        (("agent", "x"), {"owners": ["group:eng"]}, ValidationError),
        (("human", "carol"), {"owners": ["human:alice"]}, ValidationError),
        (("human", "alice"), {}, IdentityExistsError),
        (("agent", "x"), {"owners": ["human:alice"], "attributes": ["no"]}, ValidationError),
    ],
)
def test_create_identity_validation(ops: Ops, args: tuple[str, str], kw: Any, error: type) -> None:
    before = ops.svc.storage.current_revision(S)
    with pytest.raises(error):
        ops.create_identity(*args, **kw)
    assert ops.svc.storage.current_revision(S) == before


def test_owner_must_be_active_when_registered(ops: Ops) -> None:
    ops.suspend_identity("human:bob")
    with pytest.raises(IdentityStateError):
        ops.create_identity("agent", "x", owners=["human:bob"])
    # an unregistered human is a plain graph node: allowed
    assert ops.create_identity("agent", "y", owners=["human:nobody"]).owners == ("human:nobody",)


def test_update_and_list(ops: Ops) -> None:
    up = ops.update_identity("agent:planner", display_name="Planner", attributes={"tier": 1})
    assert (up.display_name, up.attributes) == ("Planner", {"tier": 1})
    assert len(ops.events("identity.updated")) == 1
    same = ops.update_identity("agent:planner", display_name="Planner")
    assert same.revision == up.revision and len(ops.events("identity.updated")) == 1
    assert [i.node for i in ops.list_identities(kind="agent").items] == [
        "agent:planner",
        "agent:worker",
    ]
    assert [i.node for i in ops.list_identities(owner="group:eng#member").items] == ["agent:worker"]
    with pytest.raises(ValidationError):
        ops.list_identities(status="gone")
    with pytest.raises(IdentityNotFoundError):
        ops.get_identity("agent:ghost")


def test_set_owners(ops: Ops) -> None:
    new = ops.set_identity_owners("agent:planner", add=["human:bob"], remove=["human:alice"])
    assert new.owners == ("human:bob",)
    tuples = {str(t) for t in ops.svc.storage.read_tuples(S, object="agent:planner").items}
    assert tuples == {"agent:planner#owner@human:bob"}
    [ev] = ops.events("identity.owners_changed")
    assert ev.details["added"] == ["human:bob"] and ev.details["removed"] == ["human:alice"]
    with pytest.raises(OwnerRequiredError):
        ops.set_identity_owners("agent:planner", remove=["human:bob"])
    with pytest.raises(ValidationError):
        ops.set_identity_owners("human:alice", add=["human:bob"])


# ------------------------------------------------------------------------------ kill switch


def test_suspension_revokes_everything_given_or_held_and_below(ops: Ops) -> None:
    ops.create_identity("agent", "helper", owners=["human:alice"])
    root = _root(ops)
    child = _sub(ops, root)
    grandchild = ops.create_delegation(
        delegator="agent:worker", delegate="agent:helper", parent_id=child.id,
        scope=[{"actions": ["viewer"], "resource": "doc:1", "tools": ["search"]}],
        expires_at=NOW + 600, purposes=["support"],
    )  # fmt: skip
    other = _root(ops, delegate="agent:worker", max_depth=0)
    suspended = ops.suspend_identity("agent:planner", reason="compromised")
    assert suspended.status == "suspended"
    state = ops.svc.graphs.policy(S)
    assert state.revision == suspended.revision
    for d in (root, child, grandchild):
        got = state.delegation(d.id)
        assert got is not None and got.status == "revoked" and got.revoked_at == NOW
    kept = state.delegation(other.id)
    assert kept is not None and kept.status == "active"
    who = state.identity("agent:planner")
    assert who is not None and who.status == "suspended"
    revoked = ops.events("delegation.revoked")
    assert sorted(e.details["delegation_id"] for e in revoked) == sorted(
        [root.id, child.id, grandchild.id]
    )
    assert {e.revision for e in revoked} == {suspended.revision}
    assert {e.details["cause"] for e in revoked} == {"identity_suspended", "parent_revoked"}
    # idempotent: nothing more happens
    assert ops.suspend_identity("agent:planner").revision == suspended.revision
    assert len(ops.events("identity.suspended")) == 1
    # a suspended identity takes part in no new delegation
    with pytest.raises(DelegationInvalidError):
        _root(ops)
    back = ops.reactivate_identity("agent:planner")
    assert back.status == "active"
    revoked_root = ops.get_delegation(root.id)
    assert revoked_root.status == "revoked"  # revoked delegations stay revoked


def test_deprovision_orphans_and_optionally_suspends(ops: Ops) -> None:
    ops.update_store_policy(suspend_orphans=True)
    held = _root(ops, delegator="human:bob", delegate="agent:worker", max_depth=0)
    gone = ops.deprovision_identity("human:alice", reason="left")
    assert gone.status == "deprovisioned"
    planner = ops.get_identity("agent:planner")  # owned only by alice: orphaned + suspended
    worker = ops.get_identity("agent:worker")  # also owned by a group: not orphaned
    assert (planner.orphaned, planner.status) == (True, "suspended")
    assert (worker.orphaned, worker.status) == (False, "active")
    assert [e.resource for e in ops.events("identity.orphaned")] == ["agent:planner"]
    assert [e.resource for e in ops.events("identity.suspended")] == ["agent:planner"]
    assert ops.get_delegation(held.id).status == "active"
    assert [i.node for i in ops.list_identities(orphaned=True).items] == ["agent:planner"]
    with pytest.raises(IdentityStateError):
        ops.reactivate_identity("human:alice")
    with pytest.raises(IdentityStateError):  # orphaned: give it an owner first
        ops.reactivate_identity("agent:planner")
    ops.set_identity_owners("agent:planner", add=["human:bob"])
    assert ops.get_identity("agent:planner").orphaned is False
    assert ops.reactivate_identity("agent:planner").status == "active"


def test_deprovision_without_suspend_orphans_only_flags(ops: Ops) -> None:
    ops.deprovision_identity("human:alice")
    planner = ops.get_identity("agent:planner")
    assert (planner.orphaned, planner.status) == (True, "active")
    assert ops.events("identity.suspended") == []


# ------------------------------------------------------------------------------ delegations


def test_root_delegation_rules(ops: Ops, clock: FixedClock) -> None:
    d = _root(ops)
    assert (d.status, d.not_before, d.created_by, d.parent_id) == ("active", NOW, "system", None)
    [ev] = ops.events("delegation.created")
    assert ev.resource == f"delegation:{d.id}" and ev.details["delegate"] == "agent:planner"
    bad: list[dict[str, Any]] = [
        {"expires_at": NOW - 1},
        {"expires_at": NOW + 86401},  # beyond the default 24 h cap
        {"delegate": "human:bob"},  # a delegate is non-human
        {"delegate": "agent:ghost"},  # not registered
        {"delegator": "human:ghost"},
        {"delegate": "human:alice"},  # itself
        {"scope": []},
        {"scope": [{"actions": [], "resource": "doc:1"}]},
        {"scope": [{"actions": ["viewer"], "resource": "doc"}]},
        {"scope": [{"actions": ["viewer"], "resource": "doc:a*"}]},
        {"max_depth": -1},
        {"condition": "this is not CEL ((("},
    ]
    for kw in bad:
        with pytest.raises((DelegationInvalidError, ValidationError)):
            _root(ops, **kw)
    ops.update_store_policy(max_delegation_seconds=60)
    with pytest.raises(DelegationInvalidError) as info:
        _root(ops, expires_at=NOW + 61)
    assert info.value.details["max_delegation_seconds"] == 60
    assert _root(ops, expires_at=NOW + 60, condition='purpose == "support"').condition


@pytest.mark.parametrize(
    ("kw", "widening"),
    [
        ({"scope": [{"actions": ["editor"], "resource": "doc:1", "tools": ["search"]}]}, "scope"),
        (
            {"scope": [{"actions": ["viewer"], "resource": "folder:1", "tools": ["search"]}]},
            "scope",
        ),
        ({"scope": [{"actions": ["viewer"], "resource": "doc:1"}]}, "tools"),
        ({"scope": [{"actions": ["viewer"], "resource": "doc:1", "tools": ["rm"]}]}, "tools"),
        ({"purposes": ["support", "sales"]}, "purposes"),
        ({"purposes": []}, "purposes"),
        ({"expires_at": NOW + 3601}, "expires_at"),
        ({"not_before": NOW - 10}, "not_before"),
        ({"max_depth": 2}, "depth"),
    ],
)
def test_sub_delegation_must_be_contained(ops: Ops, kw: dict[str, Any], widening: str) -> None:
    root = _root(ops)
    with pytest.raises(DelegationWideningError) as info:
        _sub(ops, root, **kw)
    assert info.value.code == "delegation_widening"
    assert info.value.details["widening"] == widening


def test_sub_delegation_parent_checks(ops: Ops, clock: FixedClock) -> None:
    root = _root(ops, max_depth=0)
    with pytest.raises(DelegationWideningError) as info:
        _sub(ops, root, max_depth=0)
    assert info.value.details["widening"] == "depth"
    root = _root(ops)
    with pytest.raises(DelegationInvalidError):  # delegator must be the parent's delegate
        _sub(ops, root, delegator="human:bob")
    with pytest.raises(DelegationNotFoundError):
        _sub(ops, root, parent_id="01NOPE")
    ok = _sub(ops, root, scope=[{"actions": ["viewer", "read"], "resource": "doc:*",
                                 "tools": ["fetch"]}])  # fmt: skip
    assert ok.parent_id == root.id
    ops.revoke_delegation(root.id)
    with pytest.raises(DelegationInvalidError):
        _sub(ops, root)
    live = _root(ops, expires_at=NOW + 100)
    clock.advance(101)
    with pytest.raises(DelegationInvalidError):
        _sub(ops, live, expires_at=NOW + 150)


def test_revocation_cascades_at_once(ops: Ops) -> None:
    ops.create_identity("agent", "helper", owners=["human:alice"])
    root = _root(ops)
    child = _sub(ops, root)
    grand = ops.create_delegation(
        delegator="agent:worker", delegate="agent:helper", parent_id=child.id,
        scope=[{"actions": ["viewer"], "resource": "doc:1", "tools": ["search"]}],
        expires_at=NOW + 60, purposes=["support"],
    )  # fmt: skip
    sibling = _root(ops, delegate="agent:worker", max_depth=0)
    out = ops.revoke_delegation(child.id, reason="done")
    assert [d.id for d in out] == [child.id, grand.id]
    assert {d.revision for d in out} == {out[0].revision}
    state = ops.svc.graphs.policy(S)
    assert [state.delegation(x.id).status for x in (root, child, grand, sibling)] == [  # type: ignore[union-attr]
        "active", "revoked", "revoked", "active"
    ]  # fmt: skip
    assert ops.revoke_delegation(child.id) == []
    assert [d.id for d in ops.list_delegations(parent_id=child.id).items] == [grand.id]
    assert [d.id for d in ops.list_delegations(status="active").items] == [root.id, sibling.id]
    with pytest.raises(DelegationNotFoundError):
        ops.revoke_delegation("nope")


# ------------------------------------------------------------------------------ store policy


def test_store_policy(ops: Ops) -> None:
    p0 = ops.get_store_policy()
    assert (p0.max_delegation_seconds, p0.suspend_orphans, p0.actions) == (86400, False, {})
    p1 = ops.update_store_policy(actions={"read": "viewer"}, max_delegation_seconds=600)
    assert (p1.max_delegation_seconds, p1.actions) == (600, {"read": "viewer"})
    assert ops.svc.graphs.policy(S).policy == p1
    assert ops.update_store_policy(max_delegation_seconds=600) == p1  # no change, no event
    assert len(ops.events("policy.updated")) == 1
    for bad in (
        {"max_delegation_seconds": 0},
        {"actions": {"read": "a b"}},
        {"suspend_orphans": 1},
    ):
        with pytest.raises(ValidationError):
            ops.update_store_policy(**bad)


def test_read_only_callers_cannot_change_anything(ops: Ops) -> None:
    from keyplane.errors import PermissionDeniedError

    nobody = Caller.system_caller().with_read_only()
    with pytest.raises(PermissionDeniedError):
        I.create_identity(ops.svc, nobody, S, "human", "zed")
    with pytest.raises(PermissionDeniedError):
        D.revoke_delegation(ops.svc, nobody, S, "x")
    with pytest.raises(PermissionDeniedError):
        P.update_store_policy(ops.svc, nobody, S, suspend_orphans=True)
    assert I.list_identities(ops.svc, nobody, S).items  # reads stay allowed
