"""PolicyState: immutable snapshots advanced copy-on-write from PolicyChanges."""

from __future__ import annotations

import dataclasses

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

S = "s"


def _identity(node: str, revision: int, status: str = "active") -> Identity:
    kind, _, id_ = node.partition(":")
    return Identity(S, kind, id_, id_, {}, status, (), False, "api", 1.0, 1.0, None, revision)


def _delegation(did: str, delegator: str, delegate: str, revision: int, **kw: object) -> Delegation:
    d = Delegation(
        S, did, delegator, delegate, None, (ScopeGrant(("read",), "doc:*"),), (), 0.0, 10.0, 1,
        None, "active", None, None, "system", 0.0, revision,
    )  # fmt: skip
    return dataclasses.replace(d, **kw)  # type: ignore[arg-type]


def _changes(revision: int, *, identities=(), delegations=(), guardrails=None, policy=None):  # type: ignore[no-untyped-def]
    return PolicyChanges(tuple(identities), tuple(delegations), guardrails, policy, revision)


def test_empty_state() -> None:
    st = PolicyState.empty(S)
    assert st.revision == 0 and st.policy == StorePolicy(S) and st.guardrails is None
    assert st.identity("human:a") is None and st.delegation("x") is None
    assert st.delegations_between("human:a", "agent:b") == () and st.children("x") == ()
    assert len(st) == 0


def test_advancing_leaves_the_old_snapshot_untouched() -> None:
    s0 = PolicyState.empty(S)
    s1 = s0.advanced(
        _changes(
            2,
            identities=[_identity("human:alice", 1), _identity("agent:bot", 2)],
            delegations=[_delegation("D1", "human:alice", "agent:bot", 2)],
        )
    )
    s2 = s1.advanced(
        _changes(
            3,
            identities=[_identity("agent:bot", 3, "suspended")],
            delegations=[
                _delegation("D1", "human:alice", "agent:bot", 3, status="revoked"),
                _delegation("D0", "human:alice", "agent:bot", 3),
            ],
        )
    )
    assert s0.identity("agent:bot") is None and s0.revision == 0
    bot1, bot2 = s1.identity("agent:bot"), s2.identity("agent:bot")
    assert bot1 is not None and bot1.status == "active" and s1.revision == 2
    assert bot2 is not None and bot2.status == "suspended" and s2.revision == 3
    assert [d.status for d in s1.delegations_between("human:alice", "agent:bot")] == ["active"]
    # both, sorted by id; revoked ones stay visible (the decision says "revoked")
    assert [(d.id, d.status) for d in s2.delegations_between("human:alice", "agent:bot")] == [
        ("D0", "active"),
        ("D1", "revoked"),
    ]
    d1 = s2.delegation("D1")
    assert d1 is not None and d1.status == "revoked"
    assert s2.identity("human:alice") is s1.identity("human:alice")  # shared, not copied


def test_children_index_and_reparenting() -> None:
    st = PolicyState.empty(S).advanced(
        _changes(
            1,
            delegations=[
                _delegation("R", "human:a", "agent:b", 1),
                _delegation("C2", "agent:b", "agent:c", 1, parent_id="R"),
                _delegation("C1", "agent:b", "agent:d", 1, parent_id="R"),
                _delegation("G", "agent:c", "agent:e", 1, parent_id="C2"),
            ],
        )
    )
    assert [d.id for d in st.children("R")] == ["C1", "C2"]
    assert [d.id for d in st.children("C2")] == ["G"] and st.children("G") == ()
    # a row moving under another key leaves its old bucket (storage never does this today,
    # but the index must not keep a stale entry if it ever does)
    moved = st.advanced(
        _changes(
            2,
            delegations=[_delegation("C1", "agent:c", "agent:d", 2, parent_id="C2")],
        )
    )
    assert [d.id for d in moved.children("R")] == ["C2"]
    assert [d.id for d in moved.children("C2")] == ["C1", "G"]
    assert moved.delegations_between("agent:b", "agent:d") == ()
    assert [d.id for d in moved.delegations_between("agent:c", "agent:d")] == ["C1"]


def test_rows_never_move_backwards() -> None:
    st = PolicyState.empty(S).advanced(
        _changes(5, identities=[_identity("human:a", 5, "suspended")])
    )
    again = st.advanced(_changes(4, identities=[_identity("human:a", 2)]))
    a = again.identity("human:a")
    assert a is not None and a.status == "suspended" and again.revision == 5


def test_policy_and_guardrails_follow_the_latest() -> None:
    g1 = GuardrailSet(S, 1, (Guardrail("r", "", "forbid", "true"),), "system", 1.0, 2)
    g2 = GuardrailSet(S, 2, (), "system", 2.0, 4)
    st = PolicyState.empty(S).advanced(
        _changes(2, guardrails=g1, policy=StorePolicy(S, 60, True, {"read": "viewer"}, 2))
    )
    assert st.guardrails == g1 and st.policy.max_delegation_seconds == 60
    st2 = st.advanced(_changes(4, guardrails=g2))
    assert st2.guardrails == g2 and st2.policy is st.policy
    assert st.guardrails == g1
