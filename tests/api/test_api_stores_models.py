"""/v1/stores and /v1/stores/{store}/models over HTTP."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest
from api_helpers import MODEL, new_store

pytestmark = pytest.mark.anyio


async def test_store_lifecycle(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/stores", json={"name": "acme", "id": "acme"})
    assert r.status_code == 201
    body = r.json()
    assert body["id"] == "acme" and body["name"] == "acme"
    created = datetime.fromisoformat(body["created_at"].replace("Z", "+00:00"))
    assert created.tzinfo is not None and body["created_at"].endswith("Z")

    r = await client.get("/v1/stores/acme")
    assert r.status_code == 200 and r.json() == body

    r = await client.post("/v1/stores", json={"name": "again", "id": "acme"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "store_exists"

    r = await client.delete("/v1/stores/acme")
    assert r.status_code == 204 and r.content == b""
    r = await client.get("/v1/stores/acme")
    assert r.status_code == 404 and r.json()["error"]["code"] == "store_not_found"
    r = await client.delete("/v1/stores/acme")
    assert r.status_code == 404


async def test_list_stores_pages(client: httpx.AsyncClient) -> None:
    ids = {await new_store(client, model=None) for _ in range(5)}
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"page_size": 2}
        if token:
            params["continuation_token"] = token
        r = await client.get("/v1/stores", params=params)
        assert r.status_code == 200
        page = r.json()
        assert len(page["stores"]) <= 2
        seen.extend(s["id"] for s in page["stores"])
        pages += 1
        token = page["continuation_token"]
        if token is None:
            break
    assert set(seen) == ids and len(seen) == len(ids) and pages >= 3
    assert seen == sorted(seen)

    r = await client.get("/v1/stores", params={"continuation_token": "garbage"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_continuation_token"


async def test_models_dsl_and_json(client: httpx.AsyncClient) -> None:
    store = await new_store(client, model=None)
    r = await client.get(f"/v1/stores/{store}/models/latest")
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"

    r = await client.post(f"/v1/stores/{store}/models", json={"dsl": MODEL})
    assert r.status_code == 201
    first = r.json()
    assert set(first) == {"id", "created_at", "dsl", "model"}
    assert "define viewer" in first["dsl"]
    assert first["model"]["schema_version"] == "1.1"

    # the JSON form written back is the same model, as a new version
    r = await client.post(f"/v1/stores/{store}/models", json={"model": first["model"]})
    assert r.status_code == 201
    second = r.json()
    assert second["id"] > first["id"] and second["dsl"] == first["dsl"]

    r = await client.get(f"/v1/stores/{store}/models/latest")
    assert r.json()["id"] == second["id"]
    r = await client.get(f"/v1/stores/{store}/models/{first['id']}")
    assert r.status_code == 200 and r.json() == first

    r = await client.get(f"/v1/stores/{store}/models", params={"page_size": 1})
    page = r.json()
    assert [m["id"] for m in page["models"]] == [second["id"]]
    assert set(page["models"][0]) == {"id", "created_at"}
    r = await client.get(
        f"/v1/stores/{store}/models",
        params={"page_size": 1, "continuation_token": page["continuation_token"]},
    )
    assert [m["id"] for m in r.json()["models"]] == [first["id"]]

    r = await client.get(f"/v1/stores/{store}/models/01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


async def test_invalid_model_reports_positions(client: httpx.AsyncClient) -> None:
    store = await new_store(client, model=None)
    bad = "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [usr]\n"
    r = await client.post(f"/v1/stores/{store}/models", json={"dsl": bad})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "invalid_model"
    issues = err["details"]["errors"]
    assert issues and "line" in issues[0] and "column" in issues[0]
    assert err["details"]["fga_code"] == 2036


@pytest.mark.parametrize(
    "body",
    [{}, {"dsl": MODEL, "model": {"schema_version": "1.1"}}, {"dsl": 3}, {"source": MODEL}],
)
async def test_write_model_needs_exactly_one_source(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    store = await new_store(client, model=None)
    r = await client.post(f"/v1/stores/{store}/models", json=body)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "validation_error"


async def test_model_routes_need_an_existing_store(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/stores/nope/models", json={"dsl": MODEL})
    assert r.status_code == 404 and r.json()["error"]["code"] == "store_not_found"
    r = await client.get("/v1/stores/nope/models")
    assert r.status_code == 404
