"""The decision point as a service operation (keyplane.service.decisions): decide and
decide_batch on real SQLite and PostgreSQL — the chain through real identities and
delegations, the action map, guardrails, freshness, the AuthZEN batch semantics, and the
``decision.evaluate`` event every answer records."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from keyplane import FixedClock, Settings
from keyplane.errors import PermissionDeniedError, ValidationError
from keyplane.ledger.events import EventFilter, LedgerEvent
from keyplane.service import (
    decisions,
    delegations,
    entitlements,
    guardrails,
    identities,
    keys,
    models,
    policies,
    stores,
    tuples,
)
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.service.decisions import DecideItem

S = "dp"
ALICE, BOB, PLANNER, SUB = "human:alice", "human:bob", "agent:planner", "agent:sub"
MODEL = """\
model
  schema 1.1
type human
type agent
type group
  relations
    define member: [human, agent]
type document
  relations
    define viewer: [human, agent, group#member]
    define deleter: [human, agent]
"""


@pytest.fixture
def svc(database_url: str, clock: FixedClock) -> Iterator[Services]:
    s = Services.open(Settings(database_url=database_url, poll_interval=0.0), clock=clock)
    system = Caller.system_caller()
    stores.create_store(s, system, "dp", store_id=S)
    models.write_model(s, system, S, MODEL)
    tuples.write_tuples(s, system, S, writes=[
        "group:eng#member@human:alice", "group:eng#member@agent:planner",
        "group:eng#member@agent:sub", "document:q3#viewer@group:eng#member",
        "document:q3#deleter@human:alice", "document:q3#deleter@agent:planner",
    ])  # fmt: skip
    identities.create_identity(s, system, S, "human", "alice")
    identities.create_identity(s, system, S, "human", "bob")
    identities.create_identity(s, system, S, "agent", "planner", owners=[ALICE],
                               attributes={"model": "m1"})  # fmt: skip
    identities.create_identity(s, system, S, "agent", "sub", owners=[ALICE])
    try:
        yield s
    finally:
        try:
            stores.delete_store(s, system, S)
        finally:
            s.close()


@pytest.fixture
def caller() -> Caller:
    return Caller.system_caller()


def chain(svc: Services, caller: Caller, clock: FixedClock, **kw: Any) -> tuple[str, str]:
    """alice → planner (one further hop) → sub, viewer and deleter on every document."""
    scope = [{"actions": ["viewer", "deleter"], "resource": "document:*"}]
    d1 = delegations.create_delegation(
        svc, caller, S, delegator=ALICE, delegate=PLANNER, scope=scope,
        expires_at=clock.now() + 3600, max_depth=1, **kw,
    )  # fmt: skip
    d2 = delegations.create_delegation(
        svc, caller, S, delegator=PLANNER, delegate=SUB, scope=scope,
        expires_at=clock.now() + 1800, parent_id=d1.id, **kw,
    )  # fmt: skip
    return d1.id, d2.id


def event(svc: Services, decision_id: str) -> LedgerEvent:
    svc.ledger.flush()
    ev = svc.storage.get_event_by_decision(decision_id)
    assert ev is not None
    return ev


def test_decide_records_the_whole_chain(svc: Services, caller: Caller, clock: FixedClock) -> None:
    d1, d2 = chain(svc, caller, clock)
    d = decisions.decide(
        svc, caller, S, ALICE, "viewer", "document:q3", actors=[PLANNER, SUB],
        purpose="support", context={"ticket": "T-1"}, resource_properties={"env": "prod"},
    )  # fmt: skip
    assert d.allowed and d.code == "allowed" and d.delegation_ids == (d1, d2)
    assert d.model_id and d.revision >= 1 and d.decision_id
    ev = event(svc, d.decision_id)
    assert ev.type == "decision.evaluate" and ev.decision_id == d.decision_id
    assert (ev.subject, ev.actor_chain, ev.purpose) == (ALICE, (PLANNER, SUB), "support")
    assert (ev.action, ev.resource, ev.outcome, ev.reasons) == (
        "viewer", "document:q3", "allow", ("allowed",),
    )  # fmt: skip
    assert ev.policy_version == "guardrails:0" and ev.revision == d.revision
    det = ev.details
    assert det["input"]["context"] == {"ticket": "T-1"}
    assert det["input"]["resource_properties"] == {"env": "prod"}
    assert ev.time == clock.now() and "time" not in det["input"]  # not repeated
    assert det["input"]["purpose"] == "support" and "tool" not in det["input"]
    assert det["delegation_ids"] == [d1, d2] and det["before_guardrails"] == "allow"
    assert "reason" not in det and "fired" not in det  # an allow carries no reason
    assert det["identities"][PLANNER] == {"kind": "agent", "attributes": {"model": "m1"},
                                          "status": "active"}  # fmt: skip
    assert set(det["identities"]) == {ALICE, PLANNER, SUB}


def test_decisions_mark_identities_seen(svc: Services, caller: Caller, clock: FixedClock) -> None:
    chain(svc, caller, clock)
    assert identities.get_identity(svc, caller, S, SUB).last_seen is None
    clock.advance(5)
    decisions.decide(svc, caller, S, ALICE, "viewer", "document:q3", actors=[PLANNER, SUB])
    svc.graphs.flush_seen()  # what the tailer does
    for node in (ALICE, PLANNER, SUB):
        assert identities.get_identity(svc, caller, S, node).last_seen == clock.now()
    assert identities.get_identity(svc, caller, S, BOB).last_seen is None


def test_events_keep_identities_as_they_were(
    svc: Services, caller: Caller, clock: FixedClock
) -> None:
    chain(svc, caller, clock)
    ask = lambda: decisions.decide(  # noqa: E731
        svc, caller, S, ALICE, "viewer", "document:q3", actors=[PLANNER, SUB]
    )
    first = event(svc, ask().decision_id).details["identities"][PLANNER]
    identities.update_identity(svc, caller, S, PLANNER, attributes={"model": "m2"})
    second = event(svc, ask().decision_id).details["identities"][PLANNER]
    identities.suspend_identity(svc, caller, S, PLANNER)
    third = event(svc, ask().decision_id).details["identities"][PLANNER]
    assert (first["attributes"], second["attributes"]) == ({"model": "m1"}, {"model": "m2"})
    assert (second["status"], third["status"]) == ("active", "suspended")


def test_denials_name_the_conjunct(svc: Services, caller: Caller, clock: FixedClock) -> None:
    d = decisions.decide(svc, caller, S, BOB, "viewer", "document:q3")
    assert not d and d.code == "subject_lacks_permission" and not d.requestable
    assert "human:bob does not have 'viewer' on document:q3" in d.reason_user
    d = decisions.decide(svc, caller, S, ALICE, "viewer", "document:q3", actors=[PLANNER])
    assert d.code == "delegation_missing" and d.reason["delegate"] == PLANNER
    ev = event(svc, d.decision_id)
    assert ev.outcome == "deny" and ev.reasons == ("delegation_missing",)
    assert ev.details["before_guardrails"] == "deny"
    assert ev.details["reason"] == dict(d.reason) and ev.details["reason_user"] == d.reason_user
    assert ev.details["requestable"] is False


def test_requestable_means_something_can_be_asked_for(
    svc: Services, caller: Caller, clock: FixedClock
) -> None:
    # a graph denial with no entitlement to request: not requestable, nothing to file
    d = decisions.decide(svc, caller, S, BOB, "viewer", "document:q3")
    assert d.code == "subject_lacks_permission" and not d.requestable
    assert "request" not in d.reason
    assert event(svc, d.decision_id).details["requestable"] is False
    # an active entitlement grants the missing relation: requestable, with what to file
    entitlements.create_entitlement(
        svc, caller, S, "docs", object="document:*", relation="viewer", owners=[ALICE]
    )
    d = decisions.decide(svc, caller, S, BOB, "viewer", "document:q3")
    assert d.code == "subject_lacks_permission" and d.requestable
    assert d.reason["request"]["entitlement"] == "docs"
    assert d.reason["request"]["beneficiary"] == BOB
    assert event(svc, d.decision_id).details["requestable"] is True
    # another relation, no entitlement: not requestable
    d = decisions.decide(svc, caller, S, BOB, "deleter", "document:q3")
    assert d.code == "subject_lacks_permission" and not d.requestable
    # a disabled entitlement offers nothing
    entitlements.update_entitlement(svc, caller, S, "docs", status="disabled")
    d = decisions.decide(svc, caller, S, BOB, "viewer", "document:q3")
    assert not d.requestable and "request" not in d.reason
    # a delegation denial is not requestable (access requests do not make delegations)
    d = decisions.decide(svc, caller, S, ALICE, "viewer", "document:q3", actors=[PLANNER])
    assert d.code == "delegation_missing" and not d.requestable
    # a require_approval guardrail: requestable, with no entitlement involved
    guardrails.put_guardrails(svc, caller, S, [
        {"id": "pii", "effect": "require_approval", "description": "PII needs approval",
         "expression": "has(resource.attributes.pii) && resource.attributes.pii"},
    ])  # fmt: skip
    d = decisions.decide(svc, caller, S, ALICE, "viewer", "document:q3",
                         resource_properties={"pii": True})  # fmt: skip
    assert d.code == "approval_required" and d.requestable and "request" not in d.reason


def test_kill_switch_and_revocation(svc: Services, caller: Caller, clock: FixedClock) -> None:
    d1, _ = chain(svc, caller, clock)
    ask = lambda: decisions.decide(  # noqa: E731
        svc, caller, S, ALICE, "viewer", "document:q3", actors=[PLANNER, SUB]
    )
    assert ask().allowed
    identities.suspend_identity(svc, caller, S, SUB, reason="incident")
    d = ask()
    assert d.code == "identity_suspended" and d.reason["identity"] == SUB
    identities.reactivate_identity(svc, caller, S, SUB)
    # the suspension revoked the delegation sub held; reactivation does not restore it
    assert ask().code == "delegation_revoked"
    chain(svc, caller, clock)
    assert ask().allowed
    delegations.revoke_delegation(svc, caller, S, d1)
    assert ask().allowed  # the second chain still holds
    clock.advance(3601)
    assert ask().code == "delegation_expired"


def test_confused_deputy(svc: Services, caller: Caller, clock: FixedClock) -> None:
    chain(svc, caller, clock)
    d = decisions.decide(svc, caller, S, ALICE, "deleter", "document:q3", actors=[PLANNER, SUB])
    assert d.code == "actor_lacks_permission" and d.reason["identity"] == SUB
    assert d.reason["position"] == 2


def test_action_map(svc: Services, caller: Caller) -> None:
    policies.update_store_policy(
        svc, caller, S, actions={"read": "viewer", "can_delete": "deleter"}
    )
    d = decisions.decide(svc, caller, S, ALICE, "read", "document:q3")
    assert d.allowed and d.evaluated["relation"] == "viewer"
    with pytest.raises(ValidationError) as info:
        decisions.decide(svc, caller, S, ALICE, "publish", "document:q3")
    assert info.value.details["reason"] == "relation_not_found"
    svc.ledger.flush()
    (ev,) = svc.storage.read_events(S, limit=1, filters=EventFilter(outcome="error"))
    assert (ev.type, ev.subject, ev.action, ev.resource) == (
        "decision.evaluate", ALICE, "publish", "document:q3",
    )  # fmt: skip


def test_guardrails_see_properties(svc: Services, caller: Caller, clock: FixedClock) -> None:
    chain(svc, caller, clock)
    guardrails.put_guardrails(svc, caller, S, [
        {"id": "no-agent-delete-prod", "effect": "forbid",
         "description": "agents may not delete in production",
         "expression": "chain_length > 0 && relation == 'deleter' && "
                       "has(resource.attributes.env) && resource.attributes.env == 'prod'"},
        {"id": "pii-purpose", "effect": "require_approval", "description": "PII needs a purpose",
         "expression": "has(resource.attributes.pii) && resource.attributes.pii && purpose == ''"},
    ])  # fmt: skip
    d = decisions.decide(svc, caller, S, ALICE, "deleter", "document:q3", actors=[PLANNER],
                         resource_properties={"env": "prod"})  # fmt: skip
    assert d.code == "guardrail_forbid" and d.guardrail_version == 1
    assert "agents may not delete in production" in d.reason_user
    ev = event(svc, d.decision_id)
    assert ev.policy_version == "guardrails:1"
    assert ev.details["before_guardrails"] == "allow"
    assert ev.details["fired"] == [["no-agent-delete-prod", "forbid"]]
    d = decisions.decide(svc, caller, S, ALICE, "viewer", "document:q3",
                         resource_properties={"pii": True})  # fmt: skip
    assert d.code == "approval_required" and d.requestable
    d = decisions.decide(svc, caller, S, ALICE, "viewer", "document:q3", purpose="audit",
                         resource_properties={"pii": True})  # fmt: skip
    assert d.allowed


def test_delegation_condition_sees_context(
    svc: Services, caller: Caller, clock: FixedClock
) -> None:
    delegations.create_delegation(
        svc, caller, S, delegator=ALICE, delegate=PLANNER,
        scope=[{"actions": ["viewer"], "resource": "document:q3"}],
        expires_at=clock.now() + 60, condition="has(context.ticket)",
    )  # fmt: skip
    ask = lambda **kw: decisions.decide(  # noqa: E731
        svc, caller, S, ALICE, "viewer", "document:q3", actors=[PLANNER], **kw
    )
    assert ask(context={"ticket": "T-9"}).allowed
    assert ask().code == "delegation_condition"


def test_batch_semantics(svc: Services, caller: Caller) -> None:
    yes = DecideItem(ALICE, "viewer", "document:q3", correlation_id="yes")
    no = DecideItem(BOB, "viewer", "document:q3", correlation_id="no")
    bad = DecideItem(ALICE, "nope", "document:q3", correlation_id="bad")

    def run(items: list[DecideItem], semantic: str) -> list[tuple[str | None, bool, str]]:
        svc.ledger.flush()
        before = svc.storage.ledger_head(S)[0]
        out = decisions.decide_batch(svc, caller, S, items, semantic=semantic)
        svc.ledger.flush()
        events = svc.storage.read_events(S, after_seq=before, limit=100)
        # one event per answered item, none for the items a short circuit skipped
        assert [e.decision_id for e in events] == [d.decision_id for d in out]
        assert [e.details["correlation_id"] for e in events] == [d.correlation_id for d in out]
        return [(d.correlation_id, d.allowed, d.code) for d in out]

    assert run([yes, no, bad, yes], "execute_all") == [
        ("yes", True, "allowed"),
        ("no", False, "subject_lacks_permission"),
        ("bad", False, "validation_error"),
        ("yes", True, "allowed"),
    ]
    assert run([yes, yes, no, yes], "deny_on_first_deny") == [
        ("yes", True, "allowed"), ("yes", True, "allowed"),
        ("no", False, "subject_lacks_permission"),
    ]  # fmt: skip
    assert run([yes, bad, no], "deny_on_first_deny") == [
        ("yes", True, "allowed"), ("bad", False, "validation_error"),
    ]  # fmt: skip
    assert run([no, bad, yes, no], "permit_on_first_permit") == [
        ("no", False, "subject_lacks_permission"), ("bad", False, "validation_error"),
        ("yes", True, "allowed"),
    ]  # fmt: skip
    assert run([yes, yes], "deny_on_first_deny") == [("yes", True, "allowed")] * 2
    out = decisions.decide_batch(svc, caller, S, [bad])
    assert isinstance(out[0].error, ValidationError) and out[0].reason["error"]["code"]
    with pytest.raises(ValidationError):
        decisions.decide_batch(svc, caller, S, [yes], semantic="first_wins")


def test_batch_answers_as_single_decisions_do(
    svc: Services, caller: Caller, clock: FixedClock
) -> None:
    """execute_all asks the graph for the whole batch at once; every answer is still the
    one ``decide`` gives for the item alone."""
    chain(svc, caller, clock)
    items = [
        DecideItem(ALICE, "viewer", "document:q3", actors=(PLANNER, SUB)),
        DecideItem(ALICE, "deleter", "document:q3", actors=(PLANNER, SUB)),  # sub lacks it
        DecideItem(BOB, "viewer", "document:q3"),
        DecideItem(ALICE, "viewer", "document:q3", actors=(SUB,)),  # no alice → sub link
        DecideItem(ALICE, "viewer", "document:q3", actors=(PLANNER,), context={"x": 1}),
        DecideItem(ALICE, "viewer", "document:other"),
        DecideItem("folder:f1", "viewer", "document:q3"),  # a type the model lacks
        DecideItem(ALICE, "viewer", "document:q3", actors=(PLANNER, SUB)),
    ]
    batch = decisions.decide_batch(svc, caller, S, items)
    for it, got in zip(items, batch, strict=True):
        try:
            alone = decisions.decide(
                svc, caller, S, it.subject, it.action, it.resource, actors=it.actors,
                context=it.context,
            )  # fmt: skip
        except ValidationError as exc:
            assert got.error is not None and got.code == exc.code and not got.allowed
            continue
        assert (got.allowed, got.code, got.reason, got.delegation_ids) == (
            alone.allowed, alone.code, alone.reason, alone.delegation_ids,
        )  # fmt: skip
    assert [d.code for d in batch] == [
        "allowed", "actor_lacks_permission", "subject_lacks_permission", "delegation_missing",
        "allowed", "subject_lacks_permission", "validation_error", "allowed",
    ]  # fmt: skip


def test_freshness(svc: Services, caller: Caller) -> None:
    w = tuples.write_tuples(svc, caller, S, writes=["document:new#viewer@human:bob"])
    d = decisions.decide(
        svc, caller, S, BOB, "viewer", "document:new", at_least_as_fresh=w.revision
    )
    assert d.allowed and d.revision >= w.revision


def test_kill_switch_reaches_another_process(
    svc: Services, caller: Caller, clock: FixedClock, database_url: str
) -> None:
    """A suspension on one replica denies on another at once when the request carries the
    suspension's revision (no tailer runs here: poll_interval 0)."""
    chain(svc, caller, clock)
    other = Services.open(Settings(database_url=database_url, poll_interval=0.0), clock=clock)
    try:
        ask = lambda **kw: decisions.decide(  # noqa: E731
            other, caller, S, ALICE, "viewer", "document:q3", actors=[PLANNER, SUB], **kw
        )
        assert ask().allowed
        suspended = identities.suspend_identity(svc, caller, S, PLANNER)
        assert ask().allowed  # this process has not caught up yet (nothing made it)
        d = ask(at_least_as_fresh=suspended.revision)
        assert d.code == "identity_suspended" and d.revision >= suspended.revision
    finally:
        other.close()


def test_input_validation(svc: Services, caller: Caller) -> None:
    for kw in (
        {"subject": "not a node"},
        {"resource": "q3"},
        {"resource": "folder:x"},  # type not in the model
        {"actors": "agent:planner"},  # a string, not a list
        {"actors": ["bad node"]},
        {"context": ["not", "a", "map"]},
        {"resource_properties": "x"},
        {"purpose": 3},
    ):
        args: dict[str, Any] = {"subject": ALICE, "action": "viewer", "resource": "document:q3"}
        args.update(kw)
        with pytest.raises(ValidationError):
            decisions.decide(svc, caller, S, **args)
    with pytest.raises(ValidationError):  # pins a link of a chain that has none
        decisions.decide(svc, caller, S, ALICE, "viewer", "document:q3", delegation_id="01X")


def test_needs_query_permission(svc: Services, caller: Caller) -> None:
    _, token = keys.create_key(svc, caller, owner="nobody", roles=[])
    nobody = keys.authenticate(svc, token)
    with pytest.raises(PermissionDeniedError):
        decisions.decide(svc, nobody, S, ALICE, "viewer", "document:q3")
    with pytest.raises(PermissionDeniedError):
        decisions.decide_batch(svc, nobody, S, [DecideItem(ALICE, "viewer", "document:q3")])
