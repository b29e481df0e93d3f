"""Entitlements through the service layer, on SQLite and PostgreSQL: create, read, list,
update, delete, their ledger events, validation (the target against the model, owners,
risk, duration, and the approval rules compiled at write time with the guardrails' CEL
conventions), and the decision's requestable hint following them (added, disabled,
deleted, agents allowed or not, one object or a whole type)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from keyplane import FixedClock, Settings
from keyplane.errors import (
    EntitlementExistsError,
    EntitlementNotFoundError,
    InvalidEntitlementError,
    ValidationError,
)
from keyplane.governance.approval import (
    approval_env,
    compile_when,
    evaluate_approval,
    node_value,
    parse_approval,
)
from keyplane.governance.records import ApprovalRule
from keyplane.service import decisions as DEC
from keyplane.service import entitlements as E
from keyplane.service import identities as I
from keyplane.service import models, stores
from keyplane.service.auth import Caller
from keyplane.service.context import Services

S = "govent"
NOW = 1_800_000_000.0
ME = Caller.system_caller()
MODEL = """\
model
  schema 1.1
type document
  relations
    define viewer: [human, agent]
    define editor: [human]
type role
  relations
    define assignee: [human, agent]
"""


@pytest.fixture
def svc(storage_url: str) -> Iterator[Services]:
    s = Services.open(
        Settings(database_url=storage_url, poll_interval=0.0, default_store=S),
        clock=FixedClock(NOW),
    )
    try:
        stores.create_store(s, ME, S, store_id=S)
        models.write_model(s, ME, S, MODEL)
        I.create_identity(s, ME, S, "human", "bob")
        I.create_identity(s, ME, S, "human", "carol")
        I.create_identity(s, ME, S, "agent", "bot", owners=["human:bob"])
        yield s
    finally:
        try:
            stores.delete_store(s, ME, S)
        finally:
            s.close()


def _create(svc: Services, eid: str = "docs", **kw: Any) -> Any:
    args: dict[str, Any] = {"object": "document:*", "relation": "viewer",
                            "owners": ["human:bob"]}  # fmt: skip
    args.update(kw)
    return E.create_entitlement(svc, ME, S, eid, **args)


def _events(svc: Services, type_: str) -> list[Any]:
    svc.ledger.flush()
    return [e for e in svc.storage.read_events(S, limit=1000) if e.type == type_]


def test_create_read_list_update_delete(svc: Services) -> None:
    e = _create(svc, description="every document", risk="low", max_duration_seconds=600,
                agents_may_request=True,
                approval=[{"id": "auto", "when": "request.duration_seconds <= 300",
                           "outcome": "approve"}])  # fmt: skip
    assert (e.id, e.object, e.relation, e.owners, e.risk, e.status) == (
        "docs", "document:*", "viewer", ("human:bob",), "low", "active",
    )  # fmt: skip
    assert e.approval == (ApprovalRule("auto", "request.duration_seconds <= 300", "approve"),)
    assert e.created_by == "system" and e.created_at == NOW and e.revision > 0
    assert E.get_entitlement(svc, ME, S, "docs") == e
    _create(svc, "billing", object="role:billing-admin", relation="assignee",
            owners=["group:finance#member"])  # fmt: skip
    page = E.list_entitlements(svc, ME, S)
    assert [x.id for x in page.items] == ["billing", "docs"]
    up = E.update_entitlement(svc, ME, S, "docs", risk="high", owners=["human:carol"],
                              status="disabled")  # fmt: skip
    assert (up.risk, up.owners, up.status, up.description) == (
        "high", ("human:carol",), "disabled", "every document",
    )  # fmt: skip
    assert up.revision > e.revision
    assert [x.id for x in E.list_entitlements(svc, ME, S, status="active").items] == ["billing"]
    # an update that changes nothing records nothing
    same = E.update_entitlement(svc, ME, S, "docs", risk="high")
    assert same.revision == up.revision
    assert len(_events(svc, "entitlement.updated")) == 1
    gone = E.delete_entitlement(svc, ME, S, "docs")
    assert gone.id == "docs"
    with pytest.raises(EntitlementNotFoundError):
        E.get_entitlement(svc, ME, S, "docs")
    with pytest.raises(EntitlementNotFoundError):
        E.delete_entitlement(svc, ME, S, "docs")
    with pytest.raises(EntitlementNotFoundError):
        E.update_entitlement(svc, ME, S, "docs", risk="low")
    assert [x.id for x in E.list_entitlements(svc, ME, S).items] == ["billing"]
    # a deleted id can be used again
    assert _create(svc).status == "active"
    with pytest.raises(EntitlementExistsError):
        _create(svc)
    created = [ev for ev in _events(svc, "entitlement.created") if ev.outcome == "ok"]
    refused = [ev for ev in _events(svc, "entitlement.created") if ev.outcome != "ok"]
    assert [ev.reasons for ev in refused] == [("entitlement_exists",)]
    assert [ev.resource for ev in created] == [
        "entitlement:docs", "entitlement:billing", "entitlement:docs",
    ]  # fmt: skip
    assert created[0].details["approval"][0]["id"] == "auto"
    updated = _events(svc, "entitlement.updated")[0]
    assert sorted(updated.details["changed"]) == ["owners", "risk", "status"]
    assert _events(svc, "entitlement.deleted")[0].details["entitlement_id"] == "docs"


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"entitlement_id": "Bad Id"}, "id"),
        ({"object": "document"}, "object"),
        ({"object": "nosuch:*"}, "object"),
        ({"relation": "owner"}, "relation"),
        ({"owners": []}, "owners"),
        ({"owners": ["agent:bot"]}, "owners"),
        ({"owners": ["group:eng"]}, "owners"),
        ({"owners": ["human:nobody"]}, "owners"),
        ({"risk": "extreme"}, "risk"),
        ({"max_duration_seconds": 59}, "max_duration_seconds"),
        ({"max_duration_seconds": 7_776_001}, "max_duration_seconds"),
        ({"agents_may_request": "yes"}, "agents_may_request"),
        ({"approval": [{"id": "r", "when": "foo == 1", "outcome": "deny"}]}, "approval"),
        (
            {
                "approval": [
                    {"id": "r", "when": "request.duration_seconds + 'a' == 1", "outcome": "deny"}
                ]
            },
            "approval",
        ),
        ({"approval": [{"id": "r", "when": "1", "outcome": "deny"}]}, "approval"),
        ({"approval": [{"id": "r", "when": "request.x ==", "outcome": "deny"}]}, "approval"),
        ({"approval": [{"id": "r", "outcome": "maybe"}]}, "approval"),
        ({"approval": [{"id": "r", "outcome": "route", "approvers": ["agent:bot"]}]}, "approval"),
        ({"approval": [{"id": "r", "outcome": "route", "required": 0}]}, "approval"),
        (
            {"approval": [{"id": "r", "outcome": "approve", "approvers": ["human:bob"]}]},
            "approval",
        ),
        (
            {"approval": [{"id": "r", "outcome": "deny"}, {"id": "r", "outcome": "deny"}]},
            "approval",
        ),
        ({"approval": [{"id": "r", "outcome": "deny", "extra": 1}]}, "approval"),
        ({"approval": {"id": "r"}}, "approval"),
    ],
)
def test_invalid_entitlements(svc: Services, kw: dict[str, Any], field: str) -> None:
    kw = dict(kw)
    eid = kw.pop("entitlement_id", "docs")
    with pytest.raises(InvalidEntitlementError) as info:
        _create(svc, eid, **kw)
    assert info.value.code == "invalid_entitlement"
    assert info.value.details["field"] == field
    assert E.list_entitlements(svc, ME, S).items == []
    with pytest.raises(ValidationError):
        E.list_entitlements(svc, ME, S, status="deleted")


def test_rule_errors_name_the_rule_and_position(svc: Services) -> None:
    with pytest.raises(InvalidEntitlementError) as info:
        _create(svc, approval=[{"id": "ok", "outcome": "deny", "when": "false"},
                               {"id": "broken", "outcome": "deny", "when": "facts.("}])  # fmt: skip
    d = info.value.details
    assert d["rule"] == "broken" and d["index"] == 1 and d["line"] == 1 and "column" in d
    with pytest.raises(InvalidEntitlementError) as info:
        _create(svc, approval=[{"id": "x", "outcome": "deny", "when": "subject.kind == 'agent'"}])
    assert info.value.details["unknown"] == ["subject"]


def _env(**facts: bool) -> dict[str, Any]:
    from keyplane.governance.records import Entitlement

    ent = Entitlement(S, "docs", "document:*", "viewer", "", ("human:bob",), "low", 3600,
                      True, (), "active", "system", NOW, NOW, 1)  # fmt: skip
    base = dict.fromkeys(("owner_holds", "requester_holds", "beneficiary_holds",
                          "requester_is_owner", "requester_is_agent"), False)  # fmt: skip
    base.update(facts)
    return approval_env(
        entitlement=ent, object="document:q3", relation="viewer", duration_seconds=600,
        purpose="p", justification="j", requester=node_value("agent:bot", None),
        beneficiary=node_value("agent:bot", None), facts=base, now=NOW,
    )  # fmt: skip


def test_rules_evaluate_first_true_wins_and_fail_closed() -> None:
    rules = parse_approval([
        {"id": "auto", "outcome": "approve", "when": 'entitlement.risk == "low" && '
         "request.duration_seconds <= 3600 && facts.owner_holds"},
        {"id": "odd", "outcome": "deny", "when": 'requester.attributes.team == "x"'},
        {"id": "late", "outcome": "route", "approvers": ["group:sec#member"], "required": 2,
         "when": f"now >= timestamp('{datetime.fromtimestamp(NOW, UTC).isoformat()}')"},
    ])  # fmt: skip
    got = evaluate_approval(rules, _env(owner_holds=True))
    assert (got.rule_id, got.outcome) == ("auto", "approve")
    # the second rule fails (no such attribute): routed to the entitlement owners, never
    # approved nor denied by a rule that could not be evaluated
    got = evaluate_approval(rules, _env())
    assert (got.rule_id, got.outcome, got.approvers) == ("odd", "route", ("entitlement_owners",))
    assert got.error is not None and "team" in got.error
    got = evaluate_approval(rules[2:], _env())
    assert (got.outcome, got.approvers, got.required) == ("route", ("group:sec#member",), 2)
    assert evaluate_approval((), _env()).rule_id == "default"
    assert compile_when("true") is compile_when("true")


def test_the_decision_hint_follows_the_entitlements(svc: Services) -> None:
    def hint(subject: str, resource: str, relation: str = "viewer") -> Any:
        d = DEC.decide(svc, ME, S, subject, relation, resource)
        assert not d.allowed
        # requestable exactly when there is something to file
        assert d.requestable is ("request" in d.reason)
        return d.reason.get("request")

    assert hint("human:carol", "document:q3") is None
    _create(svc, max_duration_seconds=900)
    assert hint("human:carol", "document:q3") == {
        "entitlement": "docs", "object": "document:q3", "relation": "viewer",
        "beneficiary": "human:carol", "max_duration_seconds": 900,
    }  # fmt: skip
    # agents only where agents may request
    assert hint("agent:bot", "document:q3") is None
    E.update_entitlement(svc, ME, S, "docs", agents_may_request=True)
    assert hint("agent:bot", "document:q3")["beneficiary"] == "agent:bot"
    # the exact object comes before the type's wildcard
    _create(svc, "q3-only", object="document:q3", relation="viewer", max_duration_seconds=60)
    assert hint("human:carol", "document:q3")["entitlement"] == "q3-only"
    assert hint("human:carol", "document:q4")["entitlement"] == "docs"
    # another relation, a role
    assert hint("human:carol", "document:q3", "editor") is None
    _create(svc, "admins", object="role:admin", relation="assignee")
    assert hint("human:carol", "role:admin", "assignee")["entitlement"] == "admins"
    # disabled or deleted: nothing to file
    E.update_entitlement(svc, ME, S, "q3-only", status="disabled")
    assert hint("human:carol", "document:q3")["entitlement"] == "docs"
    E.delete_entitlement(svc, ME, S, "docs")
    assert hint("human:carol", "document:q3") is None
    # an actor lacking the permission gets the hint for itself
    E.update_entitlement(svc, ME, S, "q3-only", status="active", agents_may_request=True)
    from keyplane.service import delegations as D

    D.create_delegation(svc, ME, S, delegator="human:bob", delegate="agent:bot",
                        scope=[{"actions": ["viewer"], "resource": "document:*"}],
                        expires_at=NOW + 600)  # fmt: skip
    from keyplane.service import tuples

    tuples.write_tuples(svc, ME, S, writes=["document:q3#viewer@human:bob"])
    d = DEC.decide(svc, ME, S, "human:bob", "viewer", "document:q3", actors=["agent:bot"])
    assert d.code == "actor_lacks_permission" and d.requestable
    assert d.reason["request"]["beneficiary"] == "agent:bot"
    assert d.reason["request"]["entitlement"] == "q3-only"
