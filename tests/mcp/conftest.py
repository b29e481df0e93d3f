"""Fixtures for the MCP tests: a seeded SQLite database with real API keys of every role.

The database holds two stores — ``default`` (a small document model and a few tuples) and
``other`` (the same model) — and these keys, minted the way operators mint them:

=========  ==================  =====================================================
key        roles               may
=========  ==================  =====================================================
admin      ``admin``           everything
writer     ``writer``          query and write tuples on every store
reader     ``reader``          query and read, no writes, no changelog
auditor    ``auditor``         read everything incl. the changelog, no writes
other      ``writer:other``    write on store ``other`` only; nothing on ``default``
=========  ==================  =====================================================
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp_seed import Seeded

from keyplane.config import Settings
from keyplane.service import models, stores, tuples
from keyplane.service.auth import Caller
from keyplane.service.context import Services

MODEL = """\
model
  schema 1.1

type user

type group
  relations
    define member: [user]

type document
  relations
    define owner: [user]
    define editor: [user, group#member] or owner
    define viewer: [user, user:*] or editor
"""

TUPLES = [
    "document:roadmap#owner@user:anne",
    "group:eng#member@user:bob",
    "document:roadmap#editor@group:eng#member",
    "document:notes#viewer@user:carol",
]


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[Seeded]:
    from keyplane.service.keys import authenticate, bootstrap_admin, create_key

    url = f"sqlite:///{tmp_path / 'keyplane.db'}"
    svc = Services.open(Settings.from_env(database_url=url, poll_interval=0.0))
    try:
        system = Caller.system_caller()
        for store_id in ("default", "other"):
            stores.create_store(svc, system, store_id, store_id=store_id)
            models.write_model(svc, system, store_id, MODEL)
        tuples.write_tuples(svc, system, "default", writes=TUPLES)
        admin, admin_secret = bootstrap_admin(svc)
        admin_caller = authenticate(svc, admin_secret)
        keys = {"admin": admin_secret}
        ids = {"admin": admin.id}
        for name, roles in (
            ("writer", ["writer"]),
            ("reader", ["reader"]),
            ("auditor", ["auditor"]),
            ("other", ["writer:other"]),
        ):
            rec, secret = create_key(svc, admin_caller, owner=f"agent-{name}", roles=roles)
            keys[name] = secret
            ids[name] = rec.id
    finally:
        svc.close()
    yield Seeded(url, keys, ids)
