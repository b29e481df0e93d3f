"""A request routed to approvers who could never approve it is refused when it is filed
(``not_requestable``, ``reason`` ``no_eligible_approver``) instead of waiting pending for
seven days: ``required`` larger than the eligible humans, the requester (or beneficiary)
as the only approver, approvers that are all non-human. Nothing is written, and the refusal
is on the record like every refused request call. A route that can be satisfied still
leaves the request pending. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from keyplane import FixedClock, Settings
from keyplane.errors import NotRequestableError
from keyplane.governance.records import AccessRequest
from keyplane.service import access_requests as AR
from keyplane.service import entitlements as E
from keyplane.service import identities as I
from keyplane.service import models, stores, tuples
from keyplane.service.auth import Caller
from keyplane.service.context import Services

S = "govunapp"
NOW = 1_800_000_000.0
ME = Caller.system_caller()
MODEL = """\
model
  schema 1.1
type role
  relations
    define assignee: [human, agent]
"""


def _route(approvers: list[str], required: int = 1) -> list[dict[str, Any]]:
    return [{"id": "r", "outcome": "route", "approvers": approvers, "required": required}]


@pytest.fixture
def svc(storage_url: str) -> Iterator[Services]:
    s = Services.open(
        Settings(database_url=storage_url, poll_interval=0.0, default_store=S),
        clock=FixedClock(NOW),
    )
    try:
        stores.create_store(s, ME, S, store_id=S)
        models.write_model(s, ME, S, MODEL)
        for h in ("alice", "bob", "carol", "dave", "erin"):
            I.create_identity(s, ME, S, "human", h)
        I.create_identity(s, ME, S, "agent", "bot", owners=["human:alice"])
        I.create_identity(s, ME, S, "agent", "helper", owners=["human:alice"])
        I.create_identity(s, ME, S, "agent", "shared", owners=["human:alice", "human:bob"])
        tuples.write_tuples(s, ME, S, writes=[
            "group:sec#member@human:bob",
            "group:sec#member@human:dave",
            "group:sec#member@group:leads#member",  # nested: erin through leads
            "group:leads#member@human:erin",
            "group:solo#member@human:alice",
        ])  # fmt: skip

        def ent(eid: str, approval: list[dict[str, Any]], owners: list[str] | None = None) -> None:
            E.create_entitlement(
                s, ME, S, eid, object=f"role:{eid}", relation="assignee",
                owners=owners or ["human:dave"], risk="high", agents_may_request=True,
                approval=approval,
            )  # fmt: skip

        ent("own-agent", _route(["beneficiary_owners"]))
        ent("two-owners", _route(["beneficiary_owners", "entitlement_owners"], 2))
        ent("sec-three", _route(["group:sec#member"], 3))
        ent("sec-four", _route(["group:sec#member"], 4))
        ent("solo", _route(["group:solo#member"]))
        ent("nobody", _route(["group:empty#member"]))
        ent("alice-only", [], owners=["human:alice"])  # no rule: the owners, one approval
        yield s
    finally:
        try:
            stores.delete_store(s, ME, S)
        finally:
            s.close()


def _req(svc: Services, eid: str, **kw: Any) -> AccessRequest:
    return AR.create_access_request(svc, ME, S, eid, duration_seconds=600, **kw)


def _refused(svc: Services, eid: str, **kw: Any) -> dict[str, Any]:
    with pytest.raises(NotRequestableError) as info:
        _req(svc, eid, **kw)
    assert info.value.code == "not_requestable"
    assert info.value.details["reason"] == "no_eligible_approver", info.value
    return dict(info.value.details)


def test_unapprovable_routes_are_refused(svc: Services) -> None:
    # alice asks for her own agent; she is its only owner and nobody approves their own
    d = _refused(svc, "own-agent", requester="human:alice", beneficiary="agent:bot")
    assert d == {"reason": "no_eligible_approver", "approvers": ["human:alice"],
                 "required": 1, "eligible": 0}  # fmt: skip
    # the agent asking for itself: its owner alice is eligible
    assert _req(svc, "own-agent", requester="agent:bot").state == "pending"
    # required larger than the humans in the group (bob, dave, erin through leads)
    d = _refused(svc, "sec-four", requester="human:carol")
    assert (d["approvers"], d["required"], d["eligible"]) == (["group:sec#member"], 4, 3)
    # a member asking: only two others are left for three approvals
    d = _refused(svc, "sec-three", requester="human:bob")
    assert (d["required"], d["eligible"]) == (3, 2)
    d = _refused(svc, "sec-three", requester="human:erin")  # nested membership counts too
    assert d["eligible"] == 2
    # the group's only member is the requester
    assert _refused(svc, "solo", requester="human:alice")["eligible"] == 0
    # approvers that are not humans: a group with no (human) members — groups hold only
    # humans and groups, owners are humans or groups; an agent node never counts
    assert _refused(svc, "nobody", requester="human:carol")["eligible"] == 0  # no members
    assert AR._eligible(svc, S, ("agent:helper", "workload:x"), 1, set()) == 0
    # the default route (no rule): the entitlement's owners, here only the requester
    d = _refused(svc, "alice-only", requester="human:alice")
    assert d["approvers"] == ["human:alice"] and d["eligible"] == 0
    # two approvals from the beneficiary's owners and the entitlement's owners: alice asking
    # for the agent she shares with bob leaves bob and dave
    r = _req(svc, "two-owners", requester="human:alice", beneficiary="agent:shared")
    assert r.route_approvers == ("human:alice", "human:bob", "human:dave")
    assert r.state == "pending" and r.required == 2
    # ... but for her own agent only dave is left
    d = _refused(svc, "two-owners", requester="human:alice", beneficiary="agent:bot")
    assert (d["approvers"], d["required"], d["eligible"]) == (["human:alice", "human:dave"], 2, 1)


def test_satisfiable_routes_stay_pending_and_approve(svc: Services) -> None:
    r = _req(svc, "sec-three", requester="human:carol")
    assert r.state == "pending" and r.required == 3
    for who in ("human:bob", "human:dave"):
        assert AR.approve_access_request(svc, ME, S, r.id, approver=who).state == "pending"
    done = AR.approve_access_request(svc, ME, S, r.id, approver="human:erin")
    assert done.state == "active"
    r = _req(svc, "alice-only", requester="human:bob")
    assert r.state == "pending" and r.route_approvers == ("human:alice",)


def test_refusal_writes_nothing_and_is_on_the_record(svc: Services) -> None:
    before = svc.storage.read_events(S, limit=10_000)
    _refused(svc, "own-agent", requester="human:alice", beneficiary="agent:bot")
    assert AR.list_access_requests(svc, ME, S).items == []
    svc.ledger.flush()
    new = svc.storage.read_events(S, limit=10_000)[len(before) :]
    assert [(e.type, e.outcome, e.reasons) for e in new] == [
        ("access_request.created", "error", ("not_requestable",))
    ]
    assert new[0].details["operation"] == "access_requests.create_access_request"
    assert "could approve" in new[0].details["message"]
