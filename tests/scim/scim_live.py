"""A real Keyplane server for the SCIM tests: uvicorn on loopback, real API keys.

:func:`scim_server` (on SQLite or PostgreSQL: the ``storage_url`` fixture) yields a
:class:`ScimLive`: the base URL of the store ``acme``'s SCIM
service (``<server>/scim/v2/acme``) and keys — ``admin``, ``provisioner``
(``provisioner:acme``), ``other`` (``provisioner:other``, a store of its own) and
``writer`` (may write tuples and identities, may not provision).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from keyplane.config import Settings
from keyplane.service import stores
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.service.keys import authenticate, bootstrap_admin, create_key
from live_server import serve

SCIM_JSON = "application/scim+json"


@dataclass
class ScimLive:
    server: str
    base: str
    keys: dict[str, str]
    services: Services

    def http(self, key: str = "provisioner", **kw: object) -> httpx.Client:
        headers = {"Accept": SCIM_JSON}
        if key:
            headers["Authorization"] = f"Bearer {self.keys[key]}"
        return httpx.Client(base_url=self.base, headers=headers, timeout=30, **kw)  # type: ignore[arg-type]


def seed(svc: Services) -> dict[str, str]:
    system = Caller.system_caller()
    stores.create_store(svc, system, "acme", store_id="acme")
    stores.create_store(svc, system, "other", store_id="other")
    _, admin_secret = bootstrap_admin(svc)
    admin = authenticate(svc, admin_secret)
    keys = {"admin": admin_secret}
    for name, roles in (
        ("provisioner", ["provisioner:acme"]),
        ("other", ["provisioner:other"]),
        ("writer", ["writer:acme"]),
    ):
        _, keys[name] = create_key(svc, admin, owner=f"test-{name}", roles=roles)
    return keys


@contextmanager
def scim_server(url: str) -> Iterator[ScimLive]:
    """The server on the database at ``url`` (empty: the ``storage_url`` fixture's)."""
    svc = Services.open(Settings(database_url=url, poll_interval=0.0, consistency_timeout=0.5))
    try:
        keys = seed(svc)
        with serve(svc) as server:
            yield ScimLive(server, f"{server}/scim/v2/acme", keys, svc)
    finally:
        svc.close()
