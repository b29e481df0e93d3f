"""Helpers of the governance-analytics surface tests (issue 8; fixtures in conftest.py):
the model, a small organisation seeded through the embedded API, and the live server.

The ``default`` store holds :data:`MODEL` and this organisation:

* ``human:alice`` owns ``agent:planner``; ``human:bob`` owns ``agent:helper``;
  ``service_account:ci`` is owned by ``human:carol``, who is deprovisioned (an orphan);
* ``agent:planner`` is granted ``viewer`` on ``document:roadmap``, ``editor`` on
  ``document:budget`` and membership of ``group:eng`` (whose members view
  ``document:specs``); only its view of the roadmap is ever used;
* ``human:alice`` owns ``document:roadmap`` and delegated ``viewer`` on every document to
  ``agent:planner`` — so the planner's view of the roadmap also shows as delegated;
* ``agent:planner`` edits the budget, which alice cannot: it exceeds its owner.
"""

from __future__ import annotations

from dataclasses import dataclass

from keyplane import Client, Keyplane
from keyplane.sdk.protocol import KeyplaneAPI

MODEL = """\
model
  schema 1.1

type human

type group
  relations
    define member: [human, agent]

type agent
  relations
    define owner: [human, group#member]

type workload
  relations
    define owner: [human, group#member]

type service_account
  relations
    define owner: [human, group#member]

type document
  relations
    define owner: [human]
    define editor: [human, agent] or owner
    define viewer: [human, agent, group#member] or editor
"""

PLANNER_GRANTS = {
    "document:roadmap#viewer@agent:planner",
    "document:budget#editor@agent:planner",
    "group:eng#member@agent:planner",
}


def seed(kp: KeyplaneAPI) -> None:
    """The organisation above (the model already written)."""
    for who in ("alice", "bob", "carol"):
        kp.create_identity("human", who)
    kp.create_identity("agent", "planner", owners=["human:alice"], attributes={"env": "prod"})
    kp.create_identity("agent", "helper", owners=["human:bob"], attributes={"env": "dev"})
    kp.create_identity("service_account", "ci", owners=["human:carol"])
    kp.deprovision_identity("human:carol", reason="left")
    kp.write_tuples(
        [
            *sorted(PLANNER_GRANTS),
            "document:specs#viewer@group:eng#member",
            "document:roadmap#owner@human:alice",
            "document:budget#viewer@human:bob",
        ]
    )
    now = _now(kp)
    kp.create_delegation(
        delegator="human:alice",
        delegate="agent:planner",
        scope=[{"actions": ["viewer"], "resource": "document:*"}],
        expires_at=now + 3600,
    )
    kp.create_credential("agent:helper")  # a client secret: NHI4
    # the planner's use: reading the roadmap, three times
    for _ in range(3):
        assert kp.check("agent:planner", "viewer", "document:roadmap")


def _now(kp: KeyplaneAPI) -> float:
    if isinstance(kp, Keyplane):
        return kp.services.clock.now()
    import time

    return time.time()


@dataclass
class Live:
    url: str
    keys: dict[str, str]
    db_url: str

    def client(self, role: str = "admin") -> Client:
        return Client(self.url, self.keys[role])
