"""``/v1/keys`` and bearer authentication over real HTTP (httpx ASGITransport into the app),
on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from keyplane.api import create_app
from keyplane.service.context import Services
from keyplane.service.keys import bootstrap_admin

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def http(svc: Services) -> AsyncIterator[Callable[[str | None], httpx.AsyncClient]]:
    app = create_app(svc)
    opened: list[httpx.AsyncClient] = []

    def client(secret: str | None) -> httpx.AsyncClient:
        headers = {} if secret is None else {"Authorization": f"Bearer {secret}"}
        c = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://keyplane.test", headers=headers
        )
        opened.append(c)
        return c

    yield client
    for c in opened:
        await c.aclose()


def _error(r: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["code"] == code and body["request_id"]
    return body  # type: ignore[no-any-return]


async def test_key_lifecycle_over_http(
    svc: Services, http: Callable[[str | None], httpx.AsyncClient]
) -> None:
    _, admin_secret = bootstrap_admin(svc)
    admin = http(admin_secret)
    r = await admin.post(
        "/v1/keys",
        json={"owner": "ci", "roles": ["writer:default"], "expires_in": 3600, "description": "ci"},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    key, secret = created["key"], created["secret"]
    assert set(key) == {
        "id", "owner", "roles", "description", "created_at", "expires_at", "last_used_at",
        "revoked_at",
    }  # fmt: skip
    assert key["roles"] == ["writer:default"] and key["created_at"].endswith("Z")
    writer = http(secret)
    assert (await writer.get("/v1/stores/default")).status_code == 200
    _error(await writer.get("/v1/keys"), 403, "permission_denied")
    _error(await writer.post("/v1/stores", json={"name": "x"}), 403, "permission_denied")

    r = await admin.get("/v1/keys", params={"page_size": 1})
    assert r.status_code == 200 and len(r.json()["keys"]) == 1 and r.json()["continuation_token"]
    r = await admin.get(f"/v1/keys/{key['id']}")
    assert r.status_code == 200 and r.json()["last_used_at"] is not None
    assert secret.split("_")[2] not in r.text

    r = await admin.post(f"/v1/keys/{key['id']}/rotate", json={"overlap_seconds": 0})
    assert r.status_code == 200 and r.json()["key"]["id"] == key["id"]
    _error(await writer.get("/v1/stores/default"), 401, "unauthenticated")
    rotated = http(r.json()["secret"])
    assert (await rotated.get("/v1/stores/default")).status_code == 200

    r = await admin.delete(f"/v1/keys/{key['id']}")
    assert r.status_code == 204
    r = await rotated.get("/v1/stores/default")
    assert "revoked" in str(_error(r, 401, "unauthenticated")["message"])
    assert r.headers["www-authenticate"].startswith("Bearer")
    _error(await admin.get("/v1/keys/01ARZ3NDEKTSV4RRFFQ69G5FAV"), 404, "not_found")
    _error(
        await admin.post("/v1/keys", json={"owner": "x", "roles": ["root"]}),
        400,
        "validation_error",
    )


async def test_requests_without_a_valid_key_are_unauthenticated(
    svc: Services, http: Callable[[str | None], httpx.AsyncClient]
) -> None:
    for secret in (None, "", "kp_nonsense", "kp_01ARZ3NDEKTSV4RRFFQ69G5FAV_" + "a" * 52):
        c = http(secret)
        for method, path in (("GET", "/v1/stores"), ("GET", "/v1/keys"), ("POST", "/v1/keys")):
            _error(await c.request(method, path, json={}), 401, "unauthenticated")
    assert (await http(None).get("/healthz")).status_code == 200
