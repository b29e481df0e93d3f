"""The identity plane through the Python SDK: the same scenario, with the same results, on
the embedded :class:`Keyplane`, the HTTP :class:`Client` and :class:`AsyncClient`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from idp_helpers import Live

from keyplane import AsyncClient, Keyplane
from keyplane.errors import (
    DelegationNotFoundError,
    DelegationWideningError,
    IdentityExistsError,
    IdentityNotFoundError,
    OwnerRequiredError,
    PermissionDeniedError,
)
from keyplane.policy.records import Delegation, Identity, ScopeGrant, StorePolicy


class SyncOverAsync:
    """A real :class:`AsyncClient` driven from synchronous scenario code."""

    def __init__(self, url: str, key: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.ac = AsyncClient(url, key)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        fn = getattr(self.ac, name)
        return lambda *a, **kw: self.loop.run_until_complete(fn(*a, **kw))

    def close(self) -> None:
        self.loop.run_until_complete(self.ac.aclose())
        self.loop.close()


@pytest.fixture(params=["embedded", "client", "async_client"])
def kp(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Any]:
    if request.param == "embedded":
        yield request.getfixturevalue("embedded")
        return
    live: Live = request.getfixturevalue("live")
    if request.param == "client":
        with live.client() as c:
            yield c
        return
    a = SyncOverAsync(live.url, live.keys["admin"])
    try:
        yield a
    finally:
        a.close()


def test_identity_plane_scenario(kp: Any) -> None:
    alice = kp.create_identity("human", "alice", display_name="Alice", attributes={"team": "g"})
    assert isinstance(alice, Identity)
    assert (alice.node, alice.display_name, alice.status) == ("human:alice", "Alice", "active")
    assert alice.attributes == {"team": "g"} and alice.owners == ()
    planner = kp.create_identity("agent", "planner", owners=["human:alice"])
    kp.create_identity("agent", "researcher", owners=["human:alice"], source="import:test")
    assert planner.owners == ("human:alice",) and not planner.orphaned
    assert kp.get_identity("agent:planner", store="default") == planner
    page = kp.list_identities(kind="agent", page_size=1)
    assert len(page.items) == 1 and page.continuation_token
    rest = kp.list_identities(kind="agent", continuation_token=page.continuation_token)
    assert {i.node for i in page.items + rest.items} == {"agent:planner", "agent:researcher"}
    assert [i.node for i in kp.list_identities(owner="human:alice").items] == [
        "agent:planner",
        "agent:researcher",
    ] or {i.node for i in kp.list_identities(owner="human:alice").items} == {
        "agent:planner",
        "agent:researcher",
    }
    upd = kp.update_identity("agent:planner", attributes={"model": "large"})
    assert upd.attributes == {"model": "large"} and upd.revision > planner.revision
    kp.create_identity("human", "bob")
    both = kp.set_identity_owners("agent:planner", add=["human:bob"])
    assert set(both.owners) == {"human:alice", "human:bob"}

    with pytest.raises(IdentityNotFoundError):
        kp.get_identity("agent:ghost")
    with pytest.raises(OwnerRequiredError):
        kp.create_identity("workload", "etl")
    with pytest.raises(IdentityExistsError):
        kp.create_identity("human", "alice")

    # delegations: alice → planner → researcher
    root = kp.create_delegation(
        delegator="human:alice",
        delegate="agent:planner",
        scope=[ScopeGrant(("viewer",), "document:*")],
        expires_at=time.time() + 3600,
        purposes=["planning"],
        max_depth=1,
    )
    assert isinstance(root, Delegation) and root.status == "active"
    assert root.scope == (ScopeGrant(("viewer",), "document:*"),)
    child = kp.create_delegation(
        delegator="agent:planner",
        delegate="agent:researcher",
        scope=[{"actions": ["viewer"], "resource": "document:roadmap"}],
        expires_at=time.time() + 1800,
        purposes=["planning"],
        parent_id=root.id,
    )
    assert child.parent_id == root.id
    assert kp.get_delegation(child.id) == child
    assert [d.id for d in kp.list_delegations(delegate="agent:researcher").items] == [child.id]
    with pytest.raises(DelegationWideningError) as wide:
        kp.create_delegation(
            delegator="agent:planner",
            delegate="agent:researcher",
            scope=[ScopeGrant(("editor",), "document:roadmap")],
            expires_at=time.time() + 1800,
            purposes=["planning"],
            parent_id=root.id,
        )
    assert wide.value.details["widening"] == "scope"
    with pytest.raises(DelegationNotFoundError):
        kp.get_delegation("01JD7Q2W8V0M6X4J3N5P9R1T2Y")

    # the kill switch, and revocation below it
    sus = kp.suspend_identity("agent:planner", reason="test")
    assert sus.status == "suspended"
    assert kp.get_delegation(child.id).status == "revoked"
    assert kp.reactivate_identity("agent:planner").status == "active"
    gone = kp.deprovision_identity("human:bob", reason="left")
    assert gone.status == "deprovisioned"
    # suspending the planner revoked what it held; revoking again changes nothing
    assert kp.revoke_delegation(root.id, reason="again") == []
    fresh = kp.create_delegation(
        delegator="human:alice",
        delegate="agent:planner",
        scope=[ScopeGrant(("viewer",), "document:roadmap")],
        expires_at=time.time() + 600,
        max_depth=1,
    )
    below = kp.create_delegation(
        delegator="agent:planner",
        delegate="agent:researcher",
        scope=[ScopeGrant(("viewer",), "document:roadmap")],
        expires_at=fresh.expires_at - 60,
        parent_id=fresh.id,
    )
    revoked = kp.revoke_delegation(fresh.id, reason="done")
    assert {r.id for r in revoked} == {fresh.id, below.id}
    assert all(r.status == "revoked" and r.revoked_reason == "done" for r in revoked)

    # store policy
    p = kp.get_store_policy()
    assert isinstance(p, StorePolicy) and p.max_delegation_seconds == 86400
    p2 = kp.update_store_policy(actions={"read": "viewer"}, max_delegation_seconds=1200)
    assert p2.actions == {"read": "viewer"} and p2.max_delegation_seconds == 1200
    assert kp.get_store_policy() == p2


def test_errors_carry_the_permission(live: Live) -> None:
    with live.client("reader") as r:
        with pytest.raises(PermissionDeniedError):
            r.create_identity("human", "eve")
        with pytest.raises(PermissionDeniedError):
            r.update_store_policy(suspend_orphans=True)
        assert r.list_identities().items == []


def test_embedded_and_client_agree(live: Live, embedded: Keyplane) -> None:
    with live.client() as c:
        for kp in (embedded, c):
            kp.create_identity("human", "alice")
            kp.create_identity("agent", "planner", owners=["human:alice"], attributes={"x": 1})
        a = embedded.get_identity("agent:planner")
        b = c.get_identity("agent:planner")
        same = (
            "kind",
            "id",
            "display_name",
            "attributes",
            "status",
            "owners",
            "orphaned",
            "source",
        )
        assert [getattr(a, f) for f in same] == [getattr(b, f) for f in same]
