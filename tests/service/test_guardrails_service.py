"""Guardrail operations (service/guardrails.py) on SQLite and PostgreSQL: versions, the
ledger event, permissions, the policy state following a put, and the dry run over recorded
``decision.evaluate`` events (shaped as service/decisions.py records them)."""

from __future__ import annotations

from typing import Any

import pytest

from keyplane import FixedClock, Keyplane
from keyplane.errors import (
    GuardrailInvalidError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from keyplane.ledger.events import EventFilter, LedgerEvent, new_event_id
from keyplane.ledger.redact import HMAC_PREFIX
from keyplane.policy.records import Guardrail
from keyplane.service import audit
from keyplane.service.guardrails import (
    dry_run_guardrails,
    get_guardrails,
    list_guardrail_versions,
    put_guardrails,
)
from keyplane.service.keys import authenticate, create_key

NO_AGENT_DELETE_IN_PROD = {
    "id": "no-agent-delete-in-production",
    "description": "agents may not delete in production",
    "effect": "forbid",
    "expression": 'action == "delete" && actors.exists(a, a.kind == "agent") && '
    '"env" in resource.attributes && resource.attributes.env == "production"',
}
MAX_CHAIN_2 = {
    "id": "max-chain-2",
    "description": "no delegation chain longer than 2",
    "effect": "forbid",
    "expression": "chain_length > 2",
}
PII_PURPOSE = {
    "id": "pii-needs-purpose",
    "description": "purpose required for customer PII",
    "effect": "require_approval",
    "expression": 'resource.type == "customer_pii" && purpose == ""',
}


def _events(kp: Keyplane, store_id: str, type: str) -> list[LedgerEvent]:
    return kp.services.storage.read_events(store_id, limit=1000, filters=EventFilter(types=(type,)))


def test_put_get_list_versions(kp: Keyplane, store_id: str, clock: FixedClock) -> None:
    svc, caller = kp.services, kp.caller
    none = get_guardrails(svc, caller, store_id)
    assert (none.version, none.rules) == (0, ())
    rev0 = svc.storage.current_revision(store_id)
    one = put_guardrails(svc, caller, store_id, [MAX_CHAIN_2])
    assert one.version == 1 and one.revision == rev0 + 1
    assert one.rules == (
        Guardrail("max-chain-2", MAX_CHAIN_2["description"], "forbid", "chain_length > 2"),
    )
    assert one.created_by == caller.principal and one.created_at == clock.now()
    two = put_guardrails(svc, caller, store_id, [MAX_CHAIN_2, {**PII_PURPOSE, "enabled": False}])
    assert two.version == 2
    assert get_guardrails(svc, caller, store_id) == two
    assert get_guardrails(svc, caller, store_id, version=1) == one
    with pytest.raises(NotFoundError):
        get_guardrails(svc, caller, store_id, version=3)
    for bad in (0, -1, True, "1"):
        with pytest.raises(ValidationError):
            get_guardrails(svc, caller, store_id, version=bad)  # type: ignore[arg-type]
    page = list_guardrail_versions(svc, caller, store_id, page_size=1)
    assert [g.version for g in page.items] == [2] and page.continuation_token
    rest = list_guardrail_versions(
        svc, caller, store_id, page_size=1, continuation_token=page.continuation_token
    )
    assert rest.items == [one] and rest.continuation_token is None
    # each put is one guardrails.updated event with the version and the whole rule set,
    # at the revision of the change
    evs = [e for e in _events(kp, store_id, "guardrails.updated") if e.outcome == "ok"]
    assert [e.details["version"] for e in evs] == [1, 2]
    assert [e.revision for e in evs] == [one.revision, two.revision]
    assert evs[1].details["rules"][1] == {**PII_PURPOSE, "enabled": False}
    assert evs[1].caller == caller.principal


def test_invalid_rules_store_nothing_and_are_recorded(kp: Keyplane, store_id: str) -> None:
    svc, caller = kp.services, kp.caller
    with pytest.raises(GuardrailInvalidError) as info:
        put_guardrails(
            svc,
            caller,
            store_id,
            [MAX_CHAIN_2, {"id": "typo", "effect": "forbid", "expression": "chain_lenght > 1"}],
        )
    assert info.value.details["rule"] == "typo" and info.value.details["unknown"] == [
        "chain_lenght"
    ]
    assert get_guardrails(svc, caller, store_id).version == 0
    [ev] = _events(kp, store_id, "guardrails.updated")
    assert ev.outcome == "error" and ev.reasons == ("invalid_guardrail",)


def test_a_put_reaches_the_policy_state(kp: Keyplane, store_id: str) -> None:
    svc, caller = kp.services, kp.caller
    put_guardrails(svc, caller, store_id, [MAX_CHAIN_2])
    state = svc.graphs.policy(store_id)
    assert state.guardrails is not None and state.guardrails.version == 1
    put_guardrails(svc, caller, store_id, [])
    state = svc.graphs.policy(store_id)
    assert state.guardrails is not None and (state.guardrails.version, state.guardrails.rules) == (
        2,
        (),
    )


def test_permissions(kp: Keyplane, store_id: str) -> None:
    svc = kp.services
    callers = {}
    for role in ("admin", f"writer:{store_id}", f"reader:{store_id}", "auditor"):
        _, secret = create_key(svc, kp.caller, owner=role, roles=[role])
        callers[role.split(":")[0]] = authenticate(svc, secret)
    put_guardrails(svc, callers["admin"], store_id, [MAX_CHAIN_2])
    for who in ("writer", "reader", "auditor"):
        with pytest.raises(PermissionDeniedError):
            put_guardrails(svc, callers[who], store_id, [])
        assert get_guardrails(svc, callers[who], store_id).version == 1
        assert list_guardrail_versions(svc, callers[who], store_id).items
    # the dry run reads the ledger: admins, auditors and writers, not readers
    for who in ("admin", "writer", "auditor"):
        assert dry_run_guardrails(svc, callers[who], store_id, [MAX_CHAIN_2]).considered == 0
    with pytest.raises(PermissionDeniedError):
        dry_run_guardrails(svc, callers["reader"], store_id, [MAX_CHAIN_2])
    # a refused put is recorded as a denial
    denied = [e for e in _events(kp, store_id, "guardrails.updated") if e.outcome == "deny"]
    assert len(denied) == 3


# ------------------------------------------------------------------------------ dry run


def _decision(
    kp: Keyplane,
    store_id: str,
    *,
    subject: str = "human:alice",
    actors: tuple[str, ...] = (),
    action: str = "read",
    resource: str = "document:d",
    purpose: str | None = None,
    code: str = "allowed",
    before: str | None = "allow",
    fired: list[list[str]] | None = None,
    resource_properties: dict[str, Any] | None = None,
    identities: dict[str, Any] | None = None,
    outcome: str | None = None,
    details: dict[str, Any] | None = None,
) -> LedgerEvent:
    """Record a decision.evaluate event as service/decisions.py does; returns it."""
    clock = kp.services.clock
    eid = new_event_id()
    if details is None:
        details = {
            "input": {
                "subject": subject,
                "actors": list(actors),
                "action": action,
                "resource": resource,
                "purpose": purpose,
                "context": {},
                "tool": None,
                "delegation_id": None,
                "time": clock.now(),
                "resource_properties": resource_properties or {},
                "subject_properties": {},
            },
            "relation": "viewer" if action == "read" else action,
            "identities": identities
            if identities is not None
            else {a: {"kind": "agent", "attributes": {}, "status": "active"} for a in actors},
            "delegation_ids": [],
            "guardrail_version": 1,
            "fired": fired or [],
            "requestable": code == "approval_required",
            "reason_user": "",
            "reason": {},
        }
        if before is not None:
            details["before_guardrails"] = before
    ev = LedgerEvent(
        id=eid,
        time=clock.now(),
        store=store_id,
        type="decision.evaluate",
        caller="system",
        subject=subject,
        actor_chain=actors,
        purpose=purpose,
        action=action,
        resource=resource,
        outcome=outcome or ("allow" if code == "allowed" else "deny"),
        reasons=(code,),
        policy_version="guardrails:1",
        revision=1,
        decision_id=eid,
        details=details,
    )
    audit.record(kp.services, [ev])
    if isinstance(clock, FixedClock):
        clock.advance(1)
    return ev


def test_dry_run_reports_the_decisions_that_would_change(kp: Keyplane, store_id: str) -> None:
    svc, caller = kp.services, kp.caller
    put_guardrails(svc, caller, store_id, [PII_PURPOSE])
    prod = {"env": "production"}
    # allowed then; the candidate forbids it
    delete = _decision(
        kp, store_id, actors=("agent:bot",), action="delete", resource_properties=prod
    )
    # allowed then by a person; the candidate's rule is about agents: unchanged
    _decision(kp, store_id, action="delete", resource_properties=prod)
    # denied before the guardrails (graph or delegation): stays denied
    _decision(
        kp,
        store_id,
        actors=("agent:bot",),
        action="delete",
        resource_properties=prod,
        code="subject_lacks_permission",
        before="deny",
    )
    # needed approval under v1 (PII without purpose); the candidate drops that rule
    pii = _decision(
        kp,
        store_id,
        resource="customer_pii:c1",
        code="approval_required",
        fired=[["pii-needs-purpose", "require_approval"]],
    )
    # a chain of three: the candidate forbids it
    chain = _decision(kp, store_id, actors=("agent:a", "agent:b", "agent:c"))
    # events that cannot be re-evaluated
    _decision(kp, store_id, code="validation_error", outcome="error", details={"message": "x"})
    _decision(kp, store_id, before=None)  # recorded without before_guardrails
    # an agent reading: no candidate rule is about it
    _decision(kp, store_id, actors=("agent:bot",))

    candidate = [NO_AGENT_DELETE_IN_PROD, MAX_CHAIN_2]
    run = dry_run_guardrails(svc, caller, store_id, candidate)
    assert run.current_version == 1
    assert run.considered == 8
    assert run.skipped == {"error": 1, "not_recorded": 1}
    assert run.evaluated == 6 and run.denied_before_guardrails == 1
    assert run.changed == 3 and run.outcome_changed == 3 and run.rule_errors == 0
    by_id = {f.event_id: f for f in run.flips}
    assert [f.event_id for f in run.flips] == [chain.id, pii.id, delete.id]  # newest first
    f = by_id[delete.id]
    assert (f.old_outcome, f.new_outcome, f.old_code, f.new_code) == (
        "allow",
        "deny",
        "allowed",
        "guardrail_forbid",
    )
    assert f.rule_ids == ("no-agent-delete-in-production",) and f.decision_id == delete.id
    assert (f.subject, f.actors, f.action, f.resource) == (
        "human:alice",
        ("agent:bot",),
        "delete",
        "document:d",
    )
    f = by_id[pii.id]
    assert (f.old_outcome, f.new_outcome, f.new_code, f.rule_ids) == (
        "deny",
        "allow",
        "allowed",
        (),
    )
    assert f.old_rule_ids == ("pii-needs-purpose",)
    assert by_id[chain.id].rule_ids == ("max-chain-2",)
    # only the last N decisions: the newest 4 are the agent reading, the two skipped ones
    # and the chain of three
    small = dry_run_guardrails(svc, caller, store_id, candidate, last=4)
    assert small.considered == 4 and [f.event_id for f in small.flips] == [chain.id]
    # the dry run changed nothing
    assert get_guardrails(svc, caller, store_id).version == 1


def test_dry_run_identities_as_recorded_and_failing_rules(kp: Keyplane, store_id: str) -> None:
    svc, caller = kp.services, kp.caller
    # the actor was a registered workload then: kind and attributes come from the event
    wl = _decision(
        kp,
        store_id,
        actors=("workload:etl",),
        identities={
            "workload:etl": {"kind": "workload", "attributes": {"tier": "gold"}, "status": "active"}
        },
    )
    rules = [
        {
            "id": "gold-workloads",
            "effect": "require_approval",
            "expression": 'actors.exists(a, a.kind == "workload" && a.attributes.tier == "gold")',
        },
        {"id": "needs-region", "effect": "forbid", "expression": 'context.region == "eu"'},
    ]
    run = dry_run_guardrails(svc, caller, store_id, rules)
    [flip] = run.flips
    assert flip.event_id == wl.id and flip.new_code == "guardrail_forbid"
    assert flip.rule_ids == ("gold-workloads", "needs-region")
    assert flip.errors == {"needs-region": "no such key: 'region'"}
    assert run.rule_errors == 1


def test_dry_run_skips_redacted_inputs(kp: Keyplane, store_id: str) -> None:
    ev = _decision(kp, store_id)
    details = dict(ev.details)
    details["input"] = f"{HMAC_PREFIX}{'0' * 64}"
    _decision(kp, store_id, details={**details, "before_guardrails": "allow"})
    run = dry_run_guardrails(kp.services, kp.caller, store_id, [MAX_CHAIN_2])
    assert run.skipped == {"redacted": 1} and run.evaluated == 1 and run.changed == 0


def test_dry_run_rejects_bad_input(kp: Keyplane, store_id: str) -> None:
    svc, caller = kp.services, kp.caller
    with pytest.raises(GuardrailInvalidError):
        dry_run_guardrails(
            svc, caller, store_id, [{"id": "x", "effect": "forbid", "expression": "("}]
        )
    for last in (0, 10_001, True):
        with pytest.raises(ValidationError):
            dry_run_guardrails(svc, caller, store_id, [MAX_CHAIN_2], last=last)
