"""Helpers of the identity-plane surface tests (issue 5; the fixtures are in conftest.py):
the model, the seeded server's handle and its keys.

The ``default`` store holds :data:`MODEL` (humans, agents, groups, documents) and no
tuples; every test writes what it needs. Keys: ``admin``, ``writer`` (may manage
identities and delegations, not the policy), ``reader`` (reads and decides only).
"""

from __future__ import annotations

from dataclasses import dataclass

from keyplane import Client
from keyplane.service import models, stores
from keyplane.service.auth import Caller
from keyplane.service.context import Services

MODEL = """\
model
  schema 1.1

type human

type group
  relations
    define member: [human]

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


@dataclass
class Live:
    url: str
    keys: dict[str, str]
    services: Services
    db_url: str

    def client(self, role: str = "admin") -> Client:
        return Client(self.url, self.keys[role])


def seed(svc: Services) -> dict[str, str]:
    from keyplane.service.keys import authenticate, bootstrap_admin, create_key

    system = Caller.system_caller()
    stores.create_store(svc, system, "default", store_id="default")
    models.write_model(svc, system, "default", MODEL)
    _, admin_secret = bootstrap_admin(svc)
    admin = authenticate(svc, admin_secret)
    keys = {"admin": admin_secret}
    for role in ("writer", "reader"):
        _, secret = create_key(svc, admin, owner=f"test-{role}", roles=[role])
        keys[role] = secret
    return keys
