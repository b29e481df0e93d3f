"""The pure decision (keyplane.policy.decide): every conjunct, every failure code, every
path of the chain — over a real Engine on a real TupleIndex and real policy state."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from keyplane.errors import ValidationError
from keyplane.governance.records import Entitlement
from keyplane.graph.compiled import CompiledModel
from keyplane.graph.engine import Engine
from keyplane.graph.index import TupleIndex
from keyplane.graph.language import parse_dsl
from keyplane.graph.tuples import parse_tuple
from keyplane.policy import guardrails as gr
from keyplane.policy.decide import REQUESTABLE, DecisionInput, Verdict, decide
from keyplane.policy.records import (
    Delegation,
    Guardrail,
    GuardrailSet,
    Identity,
    ScopeGrant,
    StorePolicy,
)
from keyplane.policy.state import PolicyState
from keyplane.storage.base import PolicyChanges

NOW = 1_800_000_000.0
HOUR = 3600.0
STORE = "s1"

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
    define owner: [human, agent]
    define viewer: [human, agent, group#member] or owner
    define deleter: [human, agent]
type folder
  relations
    define viewer: [human, agent]
"""

TUPLES = [
    "document:q3#viewer@human:alice",
    "document:q3#deleter@human:alice",
    "document:q3#viewer@agent:planner",
    "document:q3#viewer@agent:sub",
    "document:q3#deleter@agent:planner",
    "document:other#viewer@human:alice",
    "document:other#viewer@agent:planner",
]


@pytest.fixture(scope="module")
def engine() -> Engine:
    index = TupleIndex()
    index.apply([parse_tuple(t) for t in TUPLES], ())
    return Engine(CompiledModel.compile(parse_dsl(MODEL)), index)


def ident(node: str, status: str = "active", **attributes: Any) -> Identity:
    kind, _, id_ = node.partition(":")
    return Identity(
        STORE, kind, id_, id_, dict(attributes), status, ("human:alice",) if kind != "human"
        else (), False, "api", NOW - 10 * HOUR, NOW - 10 * HOUR, None, 1,
    )  # fmt: skip


_seq = iter(range(10_000))


def deleg(
    delegator: str,
    delegate: str,
    *,
    id: str | None = None,
    actions: Sequence[str] = ("viewer",),
    resource: str = "document:q3",
    tools: Sequence[str] = (),
    scope: Sequence[ScopeGrant] | None = None,
    parent: Delegation | None = None,
    purposes: Sequence[str] = (),
    not_before: float = NOW - HOUR,
    expires_at: float = NOW + HOUR,
    max_depth: int = 0,
    condition: str | None = None,
    status: str = "active",
    revoked_reason: str | None = None,
    created_at: float | None = None,
) -> Delegation:
    n = next(_seq)
    return Delegation(
        STORE,
        id or f"01D{n:05d}",
        delegator,
        delegate,
        parent.id if parent else None,
        tuple(scope)
        if scope is not None
        else (ScopeGrant(tuple(actions), resource, tuple(tools)),),
        tuple(purposes),
        not_before,
        expires_at,
        max_depth,
        condition,
        status,
        NOW - 60 if status == "revoked" else None,
        revoked_reason,
        "key:test",
        created_at if created_at is not None else NOW - 2 * HOUR + n,
        1,
    )


ALICE, PLANNER, SUB, MALLORY = "human:alice", "agent:planner", "agent:sub", "human:mallory"
PEOPLE = [ALICE, PLANNER, SUB, MALLORY, "agent:outsider"]


def state(
    delegations: Iterable[Delegation] = (),
    *,
    identities: Iterable[Identity] | None = None,
    rules: Sequence[Guardrail] = (),
    actions: dict[str, str] | None = None,
    entitlements: Iterable[Entitlement] = (),
) -> PolicyState:
    ids = list(identities) if identities is not None else [ident(p) for p in PEOPLE]
    gset = GuardrailSet(STORE, 1, tuple(rules), "key:test", NOW, 1) if rules else None
    policy = StorePolicy(STORE, actions=actions or {})
    changes = PolicyChanges(
        tuple(ids), tuple(delegations), gset, policy, 1, entitlements=tuple(entitlements)
    )
    return PolicyState.empty(STORE).advanced(changes)


def run(
    engine: Engine,
    st: PolicyState,
    subject: str = ALICE,
    actors: Sequence[str] = (),
    action: str = "viewer",
    resource: str = "document:q3",
    **kw: Any,
) -> Verdict:
    inp = DecisionInput(subject, tuple(actors), action, resource, time=kw.pop("time", NOW), **kw)
    gset = st.guardrails
    compiled = gr.compile_guardrails(gset) if gset is not None and gset.rules else None
    return decide(
        inp, engine.check, st, compiled, env_for=gr.build_env, condition=gr.evaluate_condition
    )


def denied(v: Verdict, code: str) -> Verdict:
    assert not v.allowed, v
    assert v.code == code, (v.code, v.reason_user, v.reason)
    # requestable: an approval to ask for, or an entitlement to request (reason.request)
    assert v.requestable is (code == "approval_required" or "request" in v.reason)
    assert not v.requestable or code in REQUESTABLE
    assert v.reason_user and v.reason
    return v


# ------------------------------------------------------------------------------ graph only


def test_no_chain_allowed_and_subject_lacking(engine: Engine) -> None:
    v = run(engine, state())
    assert v.allowed and v.code == "allowed" and v.delegation_ids == ()
    assert v.reason_user == "human:alice has 'viewer' on document:q3"
    v = denied(run(engine, state(), subject=MALLORY), "subject_lacks_permission")
    assert v.reason["identity"] == MALLORY and v.reason["conjunct"] == "graph"
    # no entitlement matches: nothing to request
    assert not v.requestable and "request" not in v.reason


def entitlement(
    obj: str = "document:*", relation: str = "viewer", *, agents: bool = False
) -> Entitlement:
    return Entitlement(
        STORE, "docs", obj, relation, "", (ALICE,), "low", 600, agents, (), "active",
        "key:test", NOW, NOW, 1,
    )  # fmt: skip


def test_requestable_only_when_something_can_be_requested(engine: Engine) -> None:
    # no entitlement: a graph denial names nothing to file, and is not requestable
    v = denied(run(engine, state(), subject=MALLORY), "subject_lacks_permission")
    assert not v.requestable and "request" not in v.reason
    # an active entitlement grants the missing relation: requestable, with reason.request
    st = state(entitlements=[entitlement()])
    v = denied(run(engine, st, subject=MALLORY), "subject_lacks_permission")
    assert v.requestable and v.reason["request"] == {
        "entitlement": "docs", "object": "document:q3", "relation": "viewer",
        "beneficiary": MALLORY, "max_duration_seconds": 600,
    }  # fmt: skip
    # another relation, or an agent where agents may not request: not requestable
    assert not run(engine, st, subject=MALLORY, action="deleter").requestable
    assert not run(engine, st, subject="agent:outsider").requestable
    st = state(entitlements=[entitlement(agents=True)])
    v = denied(run(engine, st, subject="agent:outsider"), "subject_lacks_permission")
    assert v.requestable and v.reason["request"]["beneficiary"] == "agent:outsider"


def test_action_map_names_the_relation(engine: Engine) -> None:
    st = state(actions={"read": "viewer", "delete": "deleter"})
    v = run(engine, st, action="read")
    assert v.allowed and v.relation == "viewer"
    v = denied(run(engine, st, subject=MALLORY, action="delete"), "subject_lacks_permission")
    assert "'delete' (relation 'deleter')" in v.reason_user


# ------------------------------------------------------------------------------ identities


@pytest.mark.parametrize("who", [ALICE, PLANNER])
@pytest.mark.parametrize("status", ["suspended", "deprovisioned"])
def test_inactive_identity_denies_first(engine: Engine, who: str, status: str) -> None:
    # even with no delegation at all (a later conjunct), the inactive identity is reported
    ids = [ident(p, status if p == who else "active") for p in PEOPLE]
    v = denied(run(engine, state(identities=ids), actors=[PLANNER]), f"identity_{status}")
    assert v.reason["identity"] == who
    assert v.reason["role"] == ("subject" if who == ALICE else "actor")
    assert f"{who} ({v.reason['role']}) is {status}" in v.reason_user


def test_unregistered_nodes_are_not_identities(engine: Engine) -> None:
    assert run(engine, state(identities=[])).allowed


# ------------------------------------------------------------------------------ one hop


def test_one_hop(engine: Engine) -> None:
    d = deleg(ALICE, PLANNER)
    v = run(engine, state([d]), actors=[PLANNER])
    assert v.allowed and v.delegation_ids == (d.id,)
    assert v.reason_user.endswith(", acting through agent:planner")


def test_no_delegation(engine: Engine) -> None:
    v = denied(run(engine, state(), actors=[PLANNER]), "delegation_missing")
    assert v.reason == {
        "conjunct": "delegation",
        "link": 1,
        "delegator": ALICE,
        "delegate": PLANNER,
        "check": "exists",
    }
    # a delegation the other way round is not one
    v = run(engine, state([deleg(PLANNER, ALICE)]), actors=[PLANNER])
    denied(v, "delegation_missing")


def test_confused_deputy(engine: Engine) -> None:
    # alice may delete q3 and delegated it; the outsider agent holds no deleter itself
    d = deleg(ALICE, "agent:outsider", actions=["deleter"])
    v = denied(
        run(engine, state([d]), actors=["agent:outsider"], action="deleter"),
        "actor_lacks_permission",
    )
    assert v.reason["identity"] == "agent:outsider" and v.reason["position"] == 1
    assert v.delegation_ids == (d.id,)
    assert "does not itself have 'deleter' on document:q3" in v.reason_user


def test_subject_checked_before_actors(engine: Engine) -> None:
    d = deleg(MALLORY, PLANNER)
    v = denied(
        run(engine, state([d]), subject=MALLORY, actors=[PLANNER]), "subject_lacks_permission"
    )
    assert v.reason["identity"] == MALLORY


@pytest.mark.parametrize(
    ("kw", "code", "words"),
    [
        ({"expires_at": NOW - 1}, "delegation_expired", "expired at"),
        ({"expires_at": NOW}, "delegation_expired", "expired at"),  # expires_at is exclusive
        ({"not_before": NOW + 1}, "delegation_not_yet_valid", "not valid before"),
        ({"status": "revoked", "revoked_reason": "left"}, "delegation_revoked", "revoked"),
    ],
)
def test_link_validity(engine: Engine, kw: dict[str, Any], code: str, words: str) -> None:
    d = deleg(ALICE, PLANNER, **kw)
    v = denied(run(engine, state([d]), actors=[PLANNER]), code)
    assert v.reason["delegation_id"] == d.id
    assert f"agent:planner acts for human:alice through delegation {d.id}" in v.reason_user
    assert words in v.reason_user


def test_not_before_is_inclusive(engine: Engine) -> None:
    assert run(engine, state([deleg(ALICE, PLANNER, not_before=NOW)]), actors=[PLANNER]).allowed


def test_scope_object_and_type(engine: Engine) -> None:
    for resource in ("document:q3", "document:*"):
        assert run(engine, state([deleg(ALICE, PLANNER, resource=resource)]), actors=[PLANNER])
    for resource in ("document:other", "folder:*"):
        d = deleg(ALICE, PLANNER, resource=resource)
        v = denied(run(engine, state([d]), actors=[PLANNER]), "delegation_scope")
        assert v.reason["check"] == "scope"
        assert v.reason_user.endswith(
            f"through delegation {d.id}, which does not cover 'viewer' on document:q3"
        )


def test_scope_action_by_name_or_relation(engine: Engine) -> None:
    st_actions = {"read": "viewer", "delete": "deleter"}
    by_name = deleg(ALICE, PLANNER, actions=["read"])
    by_rel = deleg(ALICE, PLANNER, actions=["viewer"])
    for d in (by_name, by_rel):
        assert run(engine, state([d], actions=st_actions), actors=[PLANNER], action="read")
    d = deleg(ALICE, PLANNER, actions=["read"])
    v = denied(
        run(engine, state([d], actions=st_actions), actors=[PLANNER], action="delete"),
        "delegation_scope",
    )
    assert "does not cover 'delete' (relation 'deleter') on document:q3" in v.reason_user


def test_scope_several_grants(engine: Engine) -> None:
    d = deleg(
        ALICE,
        PLANNER,
        scope=[
            ScopeGrant(("viewer",), "document:other"),
            ScopeGrant(("deleter",), "document:q3"),
            ScopeGrant(("viewer",), "document:*"),
        ],
    )
    assert run(engine, state([d]), actors=[PLANNER])


def test_tools(engine: Engine) -> None:
    listed = deleg(ALICE, PLANNER, tools=["docs.read"])
    assert run(engine, state([listed]), actors=[PLANNER], tool="docs.read")
    assert run(engine, state([listed]), actors=[PLANNER])  # no tool named: nothing to match
    v = denied(run(engine, state([listed]), actors=[PLANNER], tool="shell"), "delegation_scope")
    assert v.reason["check"] == "tool" and v.reason["tool"] == "shell"
    assert "not through the tool 'shell'" in v.reason_user
    # a grant naming no tools does not restrict them
    assert run(engine, state([deleg(ALICE, PLANNER)]), actors=[PLANNER], tool="shell")


def test_purpose(engine: Engine) -> None:
    d = deleg(ALICE, PLANNER, purposes=["support", "billing"])
    assert run(engine, state([d]), actors=[PLANNER], purpose="support")
    v = denied(
        run(engine, state([d]), actors=[PLANNER], purpose="marketing"), "purpose_not_allowed"
    )
    assert v.reason["purposes"] == ["support", "billing"]
    assert "the request names the purpose 'marketing'" in v.reason_user
    v = denied(run(engine, state([d]), actors=[PLANNER]), "purpose_not_allowed")
    assert "names no purpose" in v.reason_user
    # no purposes on the delegation: any (or none)
    assert run(engine, state([deleg(ALICE, PLANNER)]), actors=[PLANNER], purpose="anything")


def test_condition(engine: Engine) -> None:
    d = deleg(ALICE, PLANNER, condition="context.ticket.startsWith('SUP-')")
    assert run(engine, state([d]), actors=[PLANNER], context={"ticket": "SUP-12"})
    v = denied(
        run(engine, state([d]), actors=[PLANNER], context={"ticket": "ENG-1"}),
        "delegation_condition",
    )
    assert v.reason["condition"] == d.condition and "error" not in v.reason
    # an expression that cannot be evaluated here (no 'ticket') fails closed, and says so
    v = denied(run(engine, state([d]), actors=[PLANNER]), "delegation_condition")
    assert v.reason["error"]
    assert "could not be evaluated" in v.reason_user


def test_condition_sees_identities_and_resource_properties(engine: Engine) -> None:
    d = deleg(
        ALICE,
        PLANNER,
        condition="resource.attributes.classification != 'secret' && actors[0].kind == 'agent'",
    )
    st = state([d])
    assert run(engine, st, actors=[PLANNER], resource_properties={"classification": "public"})
    denied(
        run(engine, st, actors=[PLANNER], resource_properties={"classification": "secret"}),
        "delegation_condition",
    )


# ------------------------------------------------------------------------------ two hops


def test_two_hops(engine: Engine) -> None:
    d1 = deleg(ALICE, PLANNER, max_depth=1)
    d2 = deleg(PLANNER, SUB, parent=d1)
    v = run(engine, state([d1, d2]), actors=[PLANNER, SUB])
    assert v.allowed and v.delegation_ids == (d1.id, d2.id)
    assert v.reason_user.endswith("acting through agent:planner → agent:sub")


def test_two_hops_second_actor_lacks(engine: Engine) -> None:
    d1 = deleg(ALICE, PLANNER, max_depth=1, actions=["deleter"])
    d2 = deleg(PLANNER, SUB, parent=d1, actions=["deleter"])
    v = denied(
        run(engine, state([d1, d2]), actors=[PLANNER, SUB], action="deleter"),
        "actor_lacks_permission",
    )
    assert v.reason["identity"] == SUB and v.reason["position"] == 2
    assert "agent:sub acts for agent:planner" in v.reason_user


def test_sub_delegation_parent_mismatch(engine: Engine) -> None:
    d1 = deleg(ALICE, PLANNER, max_depth=1)
    elsewhere = deleg(MALLORY, PLANNER, max_depth=1)
    d2 = deleg(PLANNER, SUB, parent=elsewhere)  # derived from mallory's, not alice's
    v = denied(run(engine, state([d1, elsewhere, d2]), actors=[PLANNER, SUB]), "delegation_missing")
    assert v.reason["check"] == "parent" and v.reason["link"] == 2
    assert v.reason["parent_id"] == d1.id
    assert f"is derived from delegation {d1.id}" in v.reason_user
    assert v.delegation_ids == (d1.id,)  # the links that held


def test_second_link_missing(engine: Engine) -> None:
    d1 = deleg(ALICE, PLANNER, max_depth=1)
    v = denied(run(engine, state([d1]), actors=[PLANNER, SUB]), "delegation_missing")
    assert v.reason["link"] == 2 and v.reason["delegator"] == PLANNER


def test_depth(engine: Engine) -> None:
    d1 = deleg(ALICE, PLANNER, max_depth=0)  # planner may not pass it on
    d2 = deleg(PLANNER, SUB, parent=d1)
    v = denied(run(engine, state([d1, d2]), actors=[PLANNER, SUB]), "delegation_scope")
    assert v.reason["check"] == "depth" and v.reason["link"] == 1


def test_first_link_failure_wins_and_later_links_are_its_own(engine: Engine) -> None:
    d1 = deleg(ALICE, PLANNER, max_depth=1)
    d2 = deleg(PLANNER, SUB, parent=d1, expires_at=NOW - 5)
    v = denied(run(engine, state([d1, d2]), actors=[PLANNER, SUB]), "delegation_expired")
    assert v.reason["link"] == 2 and v.reason["delegation_id"] == d2.id


def test_chain_picks_the_passing_branch(engine: Engine) -> None:
    # two alice→planner delegations; only the older one has a sub-delegation to sub
    old = deleg(ALICE, PLANNER, max_depth=1, created_at=NOW - 5 * HOUR)
    new = deleg(ALICE, PLANNER, max_depth=1, created_at=NOW - HOUR)
    d2 = deleg(PLANNER, SUB, parent=old)
    v = run(engine, state([old, new, d2]), actors=[PLANNER, SUB])
    assert v.allowed and v.delegation_ids == (old.id, d2.id)


def test_chain_among_several_passing_parents(engine: Engine) -> None:
    a = deleg(ALICE, PLANNER, max_depth=1, created_at=NOW - 5 * HOUR)
    b = deleg(ALICE, PLANNER, max_depth=1, created_at=NOW - 4 * HOUR)
    under_a = deleg(PLANNER, SUB, parent=a, created_at=NOW - 3 * HOUR)
    under_b = deleg(PLANNER, SUB, parent=b, created_at=NOW - 2 * HOUR)
    v = run(engine, state([a, b, under_a, under_b]), actors=[PLANNER, SUB])
    assert v.delegation_ids == (b.id, under_b.id)  # the newest last link and its parent
    v = run(engine, state([a, b, under_a, under_b]), actors=[PLANNER, SUB],
            delegation_id=under_a.id)  # fmt: skip
    assert v.delegation_ids == (a.id, under_a.id)
    stray = deleg(PLANNER, SUB, parent=deleg(MALLORY, PLANNER))
    v = denied(run(engine, state([a, b, stray]), actors=[PLANNER, SUB]), "delegation_missing")
    assert v.reason["check"] == "parent" and v.reason["parent_id"] == b.id


def test_best_failure_reported_among_candidates(engine: Engine) -> None:
    revoked = deleg(ALICE, PLANNER, status="revoked")
    narrow = deleg(ALICE, PLANNER, resource="document:other")
    v = denied(run(engine, state([revoked, narrow]), actors=[PLANNER]), "delegation_scope")
    assert v.reason["delegation_id"] == narrow.id
    # and one valid delegation among failing ones is enough
    ok = deleg(ALICE, PLANNER)
    assert run(engine, state([revoked, narrow, ok]), actors=[PLANNER]).delegation_ids == (ok.id,)


def test_pinned_delegation(engine: Engine) -> None:
    a = deleg(ALICE, PLANNER)
    b = deleg(ALICE, PLANNER, resource="document:other")
    st = state([a, b])
    assert run(engine, st, actors=[PLANNER], delegation_id=a.id).delegation_ids == (a.id,)
    denied(run(engine, st, actors=[PLANNER], delegation_id=b.id), "delegation_scope")
    v = denied(run(engine, st, actors=[PLANNER], delegation_id="01NOPE"), "delegation_missing")
    assert v.reason["check"] == "pinned"
    with pytest.raises(ValidationError):
        run(engine, st, delegation_id=a.id)  # no actors: nothing to pin


# ------------------------------------------------------------------------------ guardrails


def rule(id: str, expression: str, effect: str = "forbid", **kw: Any) -> Guardrail:
    return Guardrail(id, kw.pop("description", f"rule {id}"), effect, expression, **kw)


def test_guardrail_forbid(engine: Engine) -> None:
    st = state(
        [deleg(ALICE, PLANNER, actions=["deleter"])],
        rules=[rule("no-agent-delete", "relation == 'deleter' && chain_length > 0",
                    description="agents may not delete")],
    )  # fmt: skip
    v = denied(run(engine, st, actors=[PLANNER], action="deleter"), "guardrail_forbid")
    assert v.reason["rule"] == "no-agent-delete" and v.guardrail_version == 1
    assert v.fired == (("no-agent-delete", "forbid"),)
    assert "guardrail 'no-agent-delete' forbids this: agents may not delete" in v.reason_user
    assert run(engine, st, action="deleter").allowed  # alice herself


def test_guardrail_approval_and_forbid_overrides(engine: Engine) -> None:
    approval = rule("pii", "resource.attributes.pii == true", "require_approval")
    st = state(rules=[approval])
    v = denied(run(engine, st, resource_properties={"pii": True}), "approval_required")
    assert v.requestable
    assert run(engine, st, resource_properties={"pii": False}).allowed
    st = state(rules=[approval, rule("late", "hour >= 0")])
    v = denied(run(engine, st, resource_properties={"pii": True}), "guardrail_forbid")
    assert v.reason["rule"] == "late"
    assert set(v.fired) == {("pii", "require_approval"), ("late", "forbid")}


def test_guardrail_disabled_and_erroring(engine: Engine) -> None:
    st = state(rules=[rule("off", "true", enabled=False)])
    assert run(engine, st).allowed
    st = state(rules=[rule("needs-ticket", "context.ticket == ''")])
    v = denied(run(engine, st), "guardrail_forbid")  # no 'ticket': fails closed
    assert v.reason.get("error")


def test_guardrails_run_last(engine: Engine) -> None:
    st = state(rules=[rule("all", "true")])
    denied(run(engine, st, subject=MALLORY), "subject_lacks_permission")
    denied(run(engine, st, actors=[PLANNER]), "delegation_missing")
