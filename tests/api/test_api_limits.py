"""Request limits: body size (announced or streamed), batch size, page size, contextual
tuples and tuples per write — each a 413 ``limit_exceeded`` naming the limit, each
configurable (``KEYPLANE_MAX_*``) and enforced whatever the schema allows."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from api_helpers import BASE_URL, make_settings, new_store, tk

from keyplane.api import create_app
from keyplane.service.context import Services
from keyplane.service.keys import bootstrap_admin

pytestmark = pytest.mark.anyio

LIMITS = {
    "max_body_bytes": 4096,
    "max_batch_check": 3,
    "max_contextual_tuples": 2,
    "max_page_size": 5,
    "max_write_tuples": 4,
}


@pytest.fixture
def small_services(tmp_path: Path) -> Iterator[Services]:
    svc = Services.open(make_settings(tmp_path / "limits.db", **LIMITS))
    try:
        yield svc
    finally:
        svc.close()


@pytest.fixture
async def small(small_services: Services) -> AsyncIterator[httpx.AsyncClient]:
    _, key = bootstrap_admin(small_services)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(small_services)),
        base_url=BASE_URL,
        headers={"Authorization": f"Bearer {key}"},
    ) as c:
        yield c


def _stores(svc: Services) -> list[str]:
    return [s.id for s in svc.storage.list_stores().items if s.id != "_system"]


def _limit(r: httpx.Response, limit: int) -> None:
    assert r.status_code == 413, r.text
    err = r.json()["error"]
    assert err["code"] == "limit_exceeded"
    assert err["details"]["limit"] == limit
    assert str(limit) in err["message"]


async def test_body_announced_too_large(small: httpx.AsyncClient, small_services: Services) -> None:
    body = b'{"name": "' + b"x" * 5000 + b'"}'
    r = await small.post("/v1/stores", content=body, headers={"content-type": "application/json"})
    _limit(r, 4096)
    assert _stores(small_services) == []  # the handler never ran


async def test_body_streamed_too_large(small: httpx.AsyncClient, small_services: Services) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    # an async iterator body goes out chunked: no Content-Length to check up front
    r = await small.post(
        "/v1/stores", content=chunks(), headers={"content-type": "application/json"}
    )
    _limit(r, 4096)
    assert _stores(small_services) == []


async def test_body_within_limit_streamed(small: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": '
        yield b'"streamed"}'

    r = await small.post(
        "/v1/stores", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 201 and r.json()["name"] == "streamed"


async def test_batch_size(small: httpx.AsyncClient) -> None:
    store = await new_store(small)
    check = {"user": "user:a", "relation": "viewer", "object": "document:1"}
    r = await small.post(f"/v1/stores/{store}/batch-check", json={"checks": [check] * 3})
    assert r.status_code == 200 and len(r.json()["results"]) == 3
    r = await small.post(f"/v1/stores/{store}/batch-check", json={"checks": [check] * 4})
    _limit(r, 3)


async def test_page_size(small: httpx.AsyncClient) -> None:
    store = await new_store(small)
    for path in (
        f"/v1/stores/{store}/tuples",
        f"/v1/stores/{store}/changes",
        "/v1/stores",
        f"/v1/stores/{store}/models",
    ):
        assert (await small.get(path, params={"page_size": 5})).status_code == 200
        _limit(await small.get(path, params={"page_size": 6}), 5)


async def test_contextual_tuples(small: httpx.AsyncClient) -> None:
    store = await new_store(small)
    ctx = [tk(f"document:{i}", "viewer", "user:a") for i in range(3)]
    q = {"user": "user:a", "relation": "viewer", "object": "document:1"}
    assert (
        await small.post(f"/v1/stores/{store}/check", json={**q, "contextual_tuples": ctx[:2]})
    ).json()["allowed"]
    for op, body in [
        ("check", q),
        ("expand", {"object": "document:1", "relation": "viewer"}),
        ("list-objects", {"user": "user:a", "relation": "viewer", "type": "document"}),
        ("list-users", {"object": "document:1", "relation": "viewer", "filters": ["user"]}),
        ("explain", q),
    ]:
        _limit(
            await small.post(f"/v1/stores/{store}/{op}", json={**body, "contextual_tuples": ctx}), 2
        )
    # in a batch, one item over the limit fails alone
    r = await small.post(
        f"/v1/stores/{store}/batch-check",
        json={"checks": [{**q, "contextual_tuples": ctx}, {**q, "contextual_tuples": ctx[1:2]}]},
    )
    results = r.json()["results"]
    assert results[0]["error"]["code"] == "limit_exceeded"
    assert results[1]["allowed"] is True


async def test_tuples_per_write(small: httpx.AsyncClient) -> None:
    store = await new_store(small)
    ts = [tk(f"document:{i}", "viewer", "user:a") for i in range(5)]
    _limit(await small.post(f"/v1/stores/{store}/tuples/write", json={"writes": ts}), 4)
    _limit(
        await small.post(
            f"/v1/stores/{store}/tuples/write", json={"writes": ts[:3], "deletes": ts[3:]}
        ),
        4,
    )
    r = await small.post(f"/v1/stores/{store}/tuples/write", json={"writes": ts[:4]})
    assert r.status_code == 200 and r.json()["written"] == 4
