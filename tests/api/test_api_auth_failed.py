"""Over real HTTP (the full app through httpx's ASGI transport): a refused API key on the
REST API, the OpenFGA-compatible API and MCP is answered 401 as before AND recorded as an
``auth.failed`` event in the ``_system`` chain, naming the surface, the method and path,
the request id and the client address — never the secret."""

from __future__ import annotations

import httpx
import pytest
from api_helpers import BASE_URL
from fastapi import FastAPI

from keyplane.ledger.events import EventFilter, LedgerEvent
from keyplane.service.auth import SYSTEM_STORE_ID
from keyplane.service.context import Services

pytestmark = pytest.mark.anyio

KEY_ID = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
UNKNOWN = f"kp_{KEY_ID}_{'q' * 52}"


def failed(services: Services) -> list[LedgerEvent]:
    services.ledger.flush()
    return services.storage.read_events(
        SYSTEM_STORE_ID, limit=1000, filters=EventFilter(types=("auth.failed",))
    )


async def call(
    app: FastAPI, method: str, path: str, key: str | None, rid: str, **kw: object
) -> httpx.Response:
    headers = {"X-Request-Id": rid}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
        return await c.request(method, path, headers=headers, **kw)  # type: ignore[arg-type]


async def test_each_surface_records_its_refusals(app: FastAPI, services: Services) -> None:
    cases = [
        ("GET", "/v1/stores", None, "missing_key", "rest"),
        ("GET", "/v1/stores", "kp_nonsense", "malformed_key", "rest"),
        ("POST", "/stores/abc/check", UNKNOWN, "unknown_key", "openfga"),
        ("GET", "/stores", None, "missing_key", "openfga"),
        ("POST", "/mcp", UNKNOWN, "unknown_key", "mcp"),
        ("POST", "/mcp", None, "missing_key", "mcp"),
    ]
    for i, (method, path, key, _, _) in enumerate(cases):
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"} if path == "/mcp" else {}
        r = await call(app, method, path, key, f"rid-{i}", json=body)
        assert r.status_code == 401, (path, r.text)
    events = failed(services)
    got = [
        (e.reasons[0], e.details["surface"], e.resource, e.request_id, e.details["remote"])
        for e in events
    ]
    assert got == [
        (reason, surface, f"{method} {path}", f"rid-{i}", "198.51.100.7")
        for i, (method, path, _, reason, surface) in enumerate(cases)
    ]
    assert [e.subject for e in events if e.reasons[0] == "unknown_key"] == [f"key:{KEY_ID}"] * 2
    assert all("q" * 8 not in repr(e.to_dict()) for e in events)


async def test_the_401_does_not_change(app: FastAPI, services: Services, admin_key: str) -> None:
    unknown = await call(app, "GET", "/v1/stores", UNKNOWN, "a")
    key_id = admin_key.split("_")[1]
    wrong = await call(app, "GET", "/v1/stores", f"kp_{key_id}_{'q' * 52}", "b")
    # an unknown id and a wrong secret look the same to the client (no oracle) ...
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json()["error"]["message"] == wrong.json()["error"]["message"]
    assert "reason" not in unknown.text
    # ... while the ledger tells the auditor which it was
    assert [e.reasons[0] for e in failed(services)] == ["unknown_key", "invalid_secret"]
    ok = await call(app, "GET", "/v1/stores", admin_key, "c")
    assert ok.status_code == 200 and len(failed(services)) == 2


async def test_a_flood_over_http_writes_one_event_per_window(
    app: FastAPI, services: Services
) -> None:
    services.auth_failures.window = 3600.0  # a slow machine must not close it mid-flood
    for i in range(200):
        r = await call(app, "GET", "/v1/stores", UNKNOWN, f"f{i}")
        assert r.status_code == 401
    assert len(failed(services)) == 1  # the window is still open
    services.auth_failures.flush(services, force=True)
    first, summary = failed(services)
    assert (first.details["count"], summary.details["count"]) == (1, 199)
    assert summary.request_id == "f199"
