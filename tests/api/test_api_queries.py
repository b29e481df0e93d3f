"""The access queries over HTTP: check, batch check, expand, list objects (plain and
streamed), list users, explain — with contexts, contextual tuples and consistency."""

from __future__ import annotations

import json

import httpx
import pytest
from api_helpers import new_store, tk, write

from keyplane.storage.ids import ULID_RE

pytestmark = pytest.mark.anyio


async def _seeded(client: httpx.AsyncClient) -> tuple[str, int]:
    store = await new_store(client)
    rev = await write(
        client,
        store,
        tk("group:eng", "member", "user:anne"),
        tk("folder:plans", "viewer", "group:eng#member"),
        tk("document:roadmap", "parent", "folder:plans"),
        tk("document:memo", "owner", "user:bob"),
        tk("document:memo", "viewer", "user:cat", condition={"name": "in_hours"}),
        tk("document:public", "viewer", "user:*"),
        tk("document:public", "blocked", "user:eve"),
    )
    return store, rev


async def test_check(client: httpx.AsyncClient) -> None:
    store, rev = await _seeded(client)
    url = f"/v1/stores/{store}/check"
    r = await client.post(
        url, json={"user": "user:anne", "relation": "viewer", "object": "document:roadmap"}
    )
    assert r.status_code == 200
    body = r.json()
    assert body["allowed"] is True and body["revision"] == rev and body["model_id"]

    r = await client.post(
        url, json={"user": "user:bob", "relation": "viewer", "object": "document:roadmap"}
    )
    assert r.json()["allowed"] is False

    # a condition decided by the request's context
    q = {"user": "user:cat", "relation": "viewer", "object": "document:memo"}
    assert (await client.post(url, json={**q, "context": {"hour": 10}})).json()["allowed"]
    assert not (await client.post(url, json={**q, "context": {"hour": 20}})).json()["allowed"]
    r = await client.post(url, json=q)
    assert r.status_code == 400 and r.json()["error"]["code"] == "condition_error"

    # a contextual tuple holds for this request only
    ctx = {"user": "user:zed", "relation": "viewer", "object": "document:roadmap"}
    with_ctx = {**ctx, "contextual_tuples": [tk("group:eng", "member", "user:zed")]}
    assert (await client.post(url, json=with_ctx)).json()["allowed"] is True
    assert (await client.post(url, json=ctx)).json()["allowed"] is False

    # wildcard, and the exclusion beating it
    pub = {"relation": "viewer", "object": "document:public"}
    assert (await client.post(url, json={**pub, "user": "user:any"})).json()["allowed"]
    assert not (await client.post(url, json={**pub, "user": "user:eve"})).json()["allowed"]


async def test_check_pins_model_and_waits_for_revision(client: httpx.AsyncClient) -> None:
    store, rev = await _seeded(client)
    model_id = (await client.get(f"/v1/stores/{store}/models/latest")).json()["id"]
    q = {"user": "user:bob", "relation": "owner", "object": "document:memo"}
    r = await client.post(
        f"/v1/stores/{store}/check", json={**q, "model_id": model_id, "at_least_as_fresh": rev}
    )
    body = r.json()
    assert body == {
        "allowed": True,
        "model_id": model_id,
        "revision": rev,
        "decision_id": body["decision_id"],
    }
    assert ULID_RE.match(body["decision_id"])

    r = await client.post(
        f"/v1/stores/{store}/check", json={**q, "model_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"

    r = await client.post(f"/v1/stores/{store}/check", json={**q, "at_least_as_fresh": rev + 5})
    assert r.status_code == 504
    err = r.json()["error"]
    assert err["code"] == "consistency_timeout"
    assert err["details"]["requested"] == rev + 5


async def test_check_errors(client: httpx.AsyncClient) -> None:
    store, _ = await _seeded(client)
    url = f"/v1/stores/{store}/check"
    r = await client.post(url, json={"user": "user:a", "relation": "pilot", "object": "document:x"})
    assert r.status_code == 400 and "pilot" in r.json()["error"]["message"]
    r = await client.post(url, json={"user": "user:a", "relation": "viewer", "object": "nope"})
    assert r.status_code == 400 and "nope" in r.json()["error"]["message"]
    r = await client.post(url, json={"user": "user:a", "relation": "viewer"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "validation_error"
    assert r.json()["error"]["details"]["errors"][0]["loc"] == ["body", "object"]
    r = await client.post(
        url, json={"user": "user:a", "relation": "viewer", "object": "document:x", "colour": 1}
    )
    assert r.status_code == 400  # unknown fields are refused, not ignored


async def test_batch_check(client: httpx.AsyncClient) -> None:
    store, _ = await _seeded(client)
    r = await client.post(
        f"/v1/stores/{store}/batch-check",
        json={
            "checks": [
                {
                    "user": "user:anne",
                    "relation": "viewer",
                    "object": "document:roadmap",
                    "correlation_id": "a",
                },
                {
                    "user": "user:bob",
                    "relation": "viewer",
                    "object": "document:roadmap",
                    "correlation_id": "b",
                },
                {
                    "user": "user:anne",
                    "relation": "pilot",
                    "object": "document:roadmap",
                    "correlation_id": "c",
                },
                {
                    "user": "user:cat",
                    "relation": "viewer",
                    "object": "document:memo",
                    "context": {"hour": 12},
                },
            ]
        },
    )
    assert r.status_code == 200
    results = r.json()["results"]
    assert [(x["correlation_id"], x["allowed"]) for x in results] == [
        ("a", True),
        ("b", False),
        ("c", False),
        (None, True),
    ]
    assert results[2]["error"]["code"] == "validation_error"
    assert "pilot" in results[2]["error"]["message"]
    assert results[0].get("error") is None


async def test_expand(client: httpx.AsyncClient) -> None:
    store, _ = await _seeded(client)
    r = await client.post(
        f"/v1/stores/{store}/expand", json={"object": "folder:plans", "relation": "viewer"}
    )
    assert r.status_code == 200
    tree = r.json()["tree"]
    assert tree["root"]["name"] == "folder:plans#viewer"
    assert "group:eng#member" in json.dumps(tree)


async def test_list_objects_plain_and_streamed(client: httpx.AsyncClient) -> None:
    store, _ = await _seeded(client)
    q = {"user": "user:anne", "relation": "viewer", "type": "document"}
    r = await client.post(f"/v1/stores/{store}/list-objects", json=q)
    assert r.status_code == 200
    assert sorted(r.json()["objects"]) == ["document:public", "document:roadmap"]

    r = await client.post(f"/v1/stores/{store}/streamed-list-objects", json=q)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert sorted(x["object"] for x in lines) == ["document:public", "document:roadmap"]

    # errors come before the stream starts, as the envelope
    r = await client.post(
        f"/v1/stores/{store}/streamed-list-objects", json={**q, "type": "spaceship"}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "type_not_found"


async def test_list_users(client: httpx.AsyncClient) -> None:
    store, _ = await _seeded(client)
    r = await client.post(
        f"/v1/stores/{store}/list-users",
        json={"object": "document:roadmap", "relation": "viewer", "filters": ["user"]},
    )
    assert r.status_code == 200 and r.json()["users"] == ["user:anne"]
    r = await client.post(
        f"/v1/stores/{store}/list-users",
        json={"object": "folder:plans", "relation": "viewer", "filters": ["group#member"]},
    )
    assert r.json()["users"] == ["group:eng#member"]
    r = await client.post(
        f"/v1/stores/{store}/list-users",
        json={"object": "folder:plans", "relation": "viewer", "filters": []},
    )
    assert r.status_code == 400


async def test_explain(client: httpx.AsyncClient) -> None:
    store, _ = await _seeded(client)
    url = f"/v1/stores/{store}/explain"
    r = await client.post(
        url, json={"user": "user:anne", "relation": "viewer", "object": "document:roadmap"}
    )
    assert r.status_code == 200
    body = r.json()
    assert body["allowed"] is True and body["paths"]
    kinds = [step["kind"] for step in body["paths"][0]]
    assert "tuple_to_userset" in kinds and kinds[-1] == "direct"

    r = await client.post(
        url, json={"user": "user:eve", "relation": "viewer", "object": "document:public"}
    )
    body = r.json()
    assert body["allowed"] is False
    assert any(reason["kind"] == "excluded" for reason in body["reasons"])


async def test_queries_on_a_missing_store(client: httpx.AsyncClient) -> None:
    q = {"user": "user:a", "relation": "viewer", "object": "document:x"}
    r = await client.post("/v1/stores/nope/check", json=q)
    assert r.status_code == 404 and r.json()["error"]["code"] == "store_not_found"
