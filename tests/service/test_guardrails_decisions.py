"""Guardrails end to end on SQLite and PostgreSQL: real identities, a real delegation, real
decisions recorded by the decision point; a dry run over those recorded decisions predicts
exactly what the same decisions answer once the candidate rules are put."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from keyplane import FixedClock, Keyplane, Settings
from keyplane.policy.records import ScopeGrant
from keyplane.service.decisions import decide
from keyplane.service.delegations import create_delegation
from keyplane.service.guardrails import dry_run_guardrails, put_guardrails
from keyplane.service.identities import create_identity, update_identity

MODEL = """\
model
  schema 1.1
type human
type agent
type document
  relations
    define viewer: [human, agent]
    define deleter: [human, agent]
type customer_pii
  relations
    define viewer: [human, agent]
"""

NO_AGENT_DELETE_IN_PROD = {
    "id": "no-agent-delete-in-production",
    "description": "agents may not delete in production",
    "effect": "forbid",
    "expression": 'action == "deleter" && actors.exists(a, a.kind == "agent") && '
    'has(resource.attributes.env) && resource.attributes.env == "production"',
}
PII_PURPOSE = {
    "id": "pii-needs-purpose",
    "description": "purpose required for customer PII",
    "effect": "require_approval",
    "expression": 'resource.type == "customer_pii" && purpose == ""',
}
TRUSTED_ONLY = {
    "id": "untrusted-agents",
    "description": "agents acting must be marked trusted",
    "effect": "forbid",
    "expression": 'actors.exists(a, a.kind == "agent" && a.attributes.trusted != true)',
}


@pytest.fixture
def kp(storage_url: str, store_id: str) -> Iterator[Keyplane]:
    clock = FixedClock(1_800_000_000.0)
    settings = Settings(database_url=storage_url, poll_interval=0.0, default_store=store_id)
    k = Keyplane.open(settings=settings, clock=clock)
    try:
        k.write_model(MODEL)
        k.write_tuples(
            [
                "document:plan#viewer@human:alice",
                "document:plan#deleter@human:alice",
                "document:plan#viewer@agent:bot",
                "document:plan#deleter@agent:bot",
                "customer_pii:c1#viewer@human:alice",
                "customer_pii:c1#viewer@agent:bot",
            ]
        )
        yield k
    finally:
        k.close()


def _requests() -> list[dict[str, Any]]:
    prod = {"env": "production"}
    return [
        {"subject": "human:alice", "action": "viewer", "resource": "document:plan"},
        {"subject": "human:alice", "action": "deleter", "resource": "document:plan",
         "resource_properties": prod},
        {"subject": "human:alice", "actors": ["agent:bot"], "action": "viewer",
         "resource": "document:plan", "resource_properties": prod},
        {"subject": "human:alice", "actors": ["agent:bot"], "action": "deleter",
         "resource": "document:plan", "resource_properties": prod},
        {"subject": "human:alice", "actors": ["agent:bot"], "action": "deleter",
         "resource": "document:plan", "resource_properties": {"env": "staging"}},
        {"subject": "human:alice", "actors": ["agent:bot"], "action": "viewer",
         "resource": "customer_pii:c1"},
        {"subject": "human:alice", "actors": ["agent:bot"], "action": "viewer",
         "resource": "customer_pii:c1", "purpose": "support"},
        # denied by the graph: no guardrail can change it
        {"subject": "human:bob", "action": "deleter", "resource": "document:plan",
         "resource_properties": prod},
    ]  # fmt: skip


def _decide_all(kp: Keyplane, store_id: str) -> list[Any]:
    svc, caller = kp.services, kp.caller
    out = []
    for r in _requests():
        args = dict(r)
        out.append(
            decide(svc, caller, store_id, args.pop("subject"), args.pop("action"),
                   args.pop("resource"), **args)
        )  # fmt: skip
        svc.clock.advance(1)  # type: ignore[attr-defined]
    return out


def test_a_dry_run_predicts_the_decisions_of_the_rules_it_tried(
    kp: Keyplane, store_id: str
) -> None:
    svc, caller = kp.services, kp.caller
    create_identity(svc, caller, store_id, "human", "alice")
    create_identity(svc, caller, store_id, "agent", "bot", owners=["human:alice"],
                    attributes={"trusted": True})  # fmt: skip
    now = svc.clock.now()
    create_delegation(
        svc, caller, store_id, delegator="human:alice", delegate="agent:bot",
        scope=[ScopeGrant(("viewer", "deleter"), "document:*"),
               ScopeGrant(("viewer",), "customer_pii:*")],
        expires_at=now + 3600,
    )  # fmt: skip
    v1 = put_guardrails(svc, caller, store_id, [PII_PURPOSE])
    before = _decide_all(kp, store_id)
    assert [d.code for d in before] == [
        "allowed", "allowed", "allowed", "allowed", "allowed", "approval_required", "allowed",
        "subject_lacks_permission",
    ]  # fmt: skip
    assert {d.guardrail_version for d in before} == {v1.version}

    candidate = [NO_AGENT_DELETE_IN_PROD, TRUSTED_ONLY]
    # the agent's attributes changed after the decisions: the dry run uses those recorded
    update_identity(svc, caller, store_id, "agent:bot", attributes={"trusted": False})
    run = dry_run_guardrails(svc, caller, store_id, candidate, last=len(before))
    assert run.considered == len(before) and run.skipped == {}
    assert run.evaluated == len(before) and run.denied_before_guardrails == 1
    predicted = {f.decision_id: f for f in run.flips}
    # item 3 (agent deletes in production) is forbidden; item 5 (PII without purpose) no
    # longer needs approval; nothing else changes (the agent was trusted when recorded)
    assert set(predicted) == {before[3].decision_id, before[5].decision_id}
    assert predicted[before[3].decision_id].new_code == "guardrail_forbid"
    assert predicted[before[3].decision_id].rule_ids == ("no-agent-delete-in-production",)
    assert predicted[before[5].decision_id].new_code == "allowed"

    # put the candidate with the agent trusted again (as recorded), and decide again: the
    # real decisions are what the dry run said
    update_identity(svc, caller, store_id, "agent:bot", attributes={"trusted": True})
    v2 = put_guardrails(svc, caller, store_id, candidate)
    after = _decide_all(kp, store_id)
    for old, new in zip(before, after, strict=True):
        flip = predicted.get(old.decision_id)
        assert new.code == (flip.new_code if flip else old.code), (old, new)
        assert new.guardrail_version == v2.version
    # and a dry run of the rules in force over the new decisions changes nothing
    again = dry_run_guardrails(svc, caller, store_id, candidate, last=len(after))
    assert again.changed == 0 and again.current_version == v2.version


def test_a_failing_rule_denies_and_says_why(kp: Keyplane, store_id: str) -> None:
    svc, caller = kp.services, kp.caller
    put_guardrails(
        svc, caller, store_id,
        [{"id": "region", "effect": "forbid", "expression": 'context.region == "eu"'}],
    )  # fmt: skip
    d = decide(svc, caller, store_id, "human:alice", "viewer", "document:plan")
    assert (d.allowed, d.code) == (False, "guardrail_forbid")
    assert d.reason["rule"] == "region" and "region" in d.reason["error"]
    assert "could not be evaluated" in d.reason_user
    ok = decide(svc, caller, store_id, "human:alice", "viewer", "document:plan",
                context={"region": "us"})  # fmt: skip
    assert ok.allowed
