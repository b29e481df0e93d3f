"""Roles over HTTP: each key gets exactly its operations, decided by Keyplane's own engine
(the full matrix is proven at the service layer; this proves the REST surface adds and
loses nothing — 403 with the envelope for everything else)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from api_helpers import MODEL, new_store, tk, write

from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.service.keys import create_key, revoke_key

pytestmark = pytest.mark.anyio

Q = {"user": "user:anne", "relation": "viewer", "object": "document:1"}


def _ops(store: str, n: int) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {
        "create_store": ("POST", "/v1/stores", {"json": {"name": "x"}}),
        "list_stores": ("GET", "/v1/stores", {}),
        "get_store": ("GET", f"/v1/stores/{store}", {}),
        "write_model": ("POST", f"/v1/stores/{store}/models", {"json": {"dsl": MODEL}}),
        "read_latest_model": ("GET", f"/v1/stores/{store}/models/latest", {}),
        "write_tuples": (
            "POST",
            f"/v1/stores/{store}/tuples/write",
            {"json": {"writes": [tk(f"document:w{n}", "viewer", "user:anne")]}},
        ),
        "read_tuples": ("GET", f"/v1/stores/{store}/tuples", {}),
        "read_changes": ("GET", f"/v1/stores/{store}/changes", {}),
        "check": ("POST", f"/v1/stores/{store}/check", {"json": Q}),
        "list_objects": (
            "POST",
            f"/v1/stores/{store}/list-objects",
            {"json": {"user": "user:anne", "relation": "viewer", "type": "document"}},
        ),
        "list_keys": ("GET", "/v1/keys", {}),
    }


READS = {"get_store", "read_latest_model", "read_tuples", "check", "list_objects"}
ALLOWED = {
    "writer:{a}": READS | {"write_model", "write_tuples", "read_changes"},
    "reader:{a}": READS,
    "auditor": READS | {"read_changes", "list_stores"},
    "writer": READS | {"write_model", "write_tuples", "read_changes", "list_stores"},
}


@pytest.mark.parametrize("role", sorted(ALLOWED))
async def test_each_role_gets_exactly_its_operations(
    role: str, client: httpx.AsyncClient, client_with_roles: Callable[..., httpx.AsyncClient]
) -> None:
    a = await new_store(client)
    b = await new_store(client)
    await write(client, a, tk("document:1", "viewer", "user:anne"))
    await write(client, b, tk("document:1", "viewer", "user:anne"))
    c = client_with_roles(role.format(a=a))
    for name, (method, path, kwargs) in _ops(a, 0).items():
        r = await c.request(method, path, **kwargs)
        expected = name in ALLOWED[role]
        assert (r.status_code < 400) == expected, (role, name, r.status_code, r.text)
        if not expected:
            assert r.status_code == 403 and r.json()["error"]["code"] == "permission_denied"
    if role.endswith(":{a}"):
        # a per-store role is nothing on another store
        for name, (method, path, kwargs) in _ops(b, 1).items():
            if name in READS | {"write_tuples"}:
                r = await c.request(method, path, **kwargs)
                assert r.status_code == 403, (role, name, "other store")


async def test_revoked_key_is_refused_at_once(
    services: Services, app: Any, client: httpx.AsyncClient
) -> None:
    rec, secret = create_key(services, Caller.system_caller(), owner="t", roles=["reader"])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://keyplane.test",
        headers={"Authorization": f"Bearer {secret}"},
    ) as c:
        assert (await c.get("/v1/stores")).status_code == 200
        revoke_key(services, Caller.system_caller(), rec.id)
        r = await c.get("/v1/stores")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
