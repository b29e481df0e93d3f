"""The decision point through the Python SDK — ``decide`` and ``decide_batch`` through a
two-hop chain, a purpose refused, a batch, the kill switch — with the same answers on the
embedded :class:`Keyplane`, the HTTP :class:`Client` and :class:`AsyncClient`."""

from __future__ import annotations

import time
from typing import Any

from test_sdk_identity_plane import kp  # noqa: F401  (the fixture: one run per SDK flavour)

from keyplane.policy.decide import Decision
from keyplane.policy.records import ScopeGrant
from keyplane.service.decisions import DecideItem


def test_decisions_through_the_sdk(kp: Any) -> None:  # noqa: F811
    kp.create_identity("human", "alice")
    kp.create_identity("agent", "planner", owners=["human:alice"])
    kp.create_identity("agent", "researcher", owners=["human:alice"])
    root = kp.create_delegation(
        delegator="human:alice",
        delegate="agent:planner",
        scope=[ScopeGrant(("viewer",), "document:*")],
        expires_at=time.time() + 3600,
        purposes=["planning"],
        max_depth=1,
    )
    child = kp.create_delegation(
        delegator="agent:planner",
        delegate="agent:researcher",
        scope=[ScopeGrant(("viewer",), "document:roadmap")],
        expires_at=time.time() + 1800,
        purposes=["planning"],
        parent_id=root.id,
    )
    rev = kp.write_tuples(
        [
            "document:roadmap#viewer@human:alice",
            "document:roadmap#viewer@agent:planner",
            "document:roadmap#viewer@agent:researcher",
        ]
    ).revision
    d = kp.decide(
        "human:alice",
        "viewer",
        "document:roadmap",
        actors=["agent:planner", "agent:researcher"],
        purpose="planning",
        at_least_as_fresh=rev,
    )
    assert d.allowed and d.code == "allowed" and d.decision_id
    assert d.delegation_ids == (root.id, child.id)
    denied = kp.decide(
        "human:alice",
        "viewer",
        "document:roadmap",
        actors=["agent:planner", "agent:researcher"],
        purpose="marketing",
    )
    assert not denied.allowed and denied.code == "purpose_not_allowed" and denied.reason_user
    batch = kp.decide_batch(
        [
            DecideItem(
                "human:alice",
                "viewer",
                "document:roadmap",
                ("agent:planner",),
                "planning",
                correlation_id="a",
            ),
            DecideItem(
                "human:alice",
                "editor",
                "document:roadmap",
                ("agent:planner",),
                "planning",
                correlation_id="b",
            ),
        ]
    )
    assert [(b.correlation_id, b.allowed) for b in batch] == [("a", True), ("b", False)]
    assert batch[1].code == "delegation_scope" and not batch[1].requestable

    assert isinstance(d, Decision) and isinstance(batch[0], Decision)

    # the kill switch: the same question now denies, naming the suspended agent
    kp.suspend_identity("agent:planner", reason="test")
    after = kp.decide(
        "human:alice", "viewer", "document:roadmap", actors=["agent:planner"], purpose="planning"
    )
    assert not after.allowed and after.code == "identity_suspended"
    assert "agent:planner" in after.reason_user
    assert after.decision_id != d.decision_id
