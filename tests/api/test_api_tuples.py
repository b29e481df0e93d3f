"""/v1/stores/{store}/tuples and /changes over HTTP."""

from __future__ import annotations

import httpx
import pytest
from api_helpers import new_store, tk, write

from keyplane.errors import ValidationError
from keyplane.service.context import Services

pytestmark = pytest.mark.anyio


async def test_write_read_delete(client: httpx.AsyncClient) -> None:
    store = await new_store(client)
    url = f"/v1/stores/{store}/tuples"
    r = await client.post(
        f"{url}/write",
        json={
            "writes": [
                tk("document:1", "viewer", "user:anne"),
                tk("document:1", "viewer", "group:eng#member"),
                tk("document:2", "owner", "user:bob"),
                tk("document:1", "viewer", "user:cat", condition={"name": "in_hours"}),
                tk("document:3", "viewer", "user:dan", expires_at="2099-01-02T03:04:05Z"),
            ]
        },
    )
    assert r.status_code == 200
    first = r.json()
    assert first["written"] == 5 and first["deleted"] == 0 and first["revision"] > 0

    r = await client.get(url, params={"object": "document:1"})
    got = r.json()["tuples"]
    assert {t["user"] for t in got} == {"user:anne", "group:eng#member", "user:cat"}
    cond = next(t for t in got if t["user"] == "user:cat")
    assert cond["condition"] == {"name": "in_hours", "context": {}}
    assert "condition" not in next(t for t in got if t["user"] == "user:anne")

    r = await client.get(url, params={"user": "user:dan"})
    assert r.json()["tuples"] == [
        tk("document:3", "viewer", "user:dan", expires_at="2099-01-02T03:04:05Z")
    ]
    r = await client.get(url, params={"object": "document:", "relation": "owner"})
    assert [t["user"] for t in r.json()["tuples"]] == ["user:bob"]

    r = await client.post(f"{url}/write", json={"deletes": [tk("document:2", "owner", "user:bob")]})
    assert r.json() == {"revision": first["revision"] + 1, "written": 0, "deleted": 1}
    r = await client.get(url, params={"relation": "owner"})
    assert r.json()["tuples"] == []


async def test_read_pages(client: httpx.AsyncClient) -> None:
    store = await new_store(client)
    await write(client, store, *(tk(f"document:{i}", "viewer", "user:anne") for i in range(7)))
    seen: list[str] = []
    token = None
    while True:
        params: dict[str, str | int] = {"page_size": 3, "user": "user:anne"}
        if token:
            params["continuation_token"] = token
        r = await client.get(f"/v1/stores/{store}/tuples", params=params)
        page = r.json()
        seen.extend(t["object"] for t in page["tuples"])
        token = page["continuation_token"]
        if not token:
            break
    assert sorted(seen) == sorted(f"document:{i}" for i in range(7))
    assert len(seen) == 7


async def test_conflicts_and_idempotence(client: httpx.AsyncClient) -> None:
    store = await new_store(client)
    url = f"/v1/stores/{store}/tuples/write"
    t = tk("document:1", "viewer", "user:anne")
    await write(client, store, t)
    r = await client.post(url, json={"writes": [t]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "tuple_exists"
    r = await client.post(url, json={"deletes": [tk("document:1", "viewer", "user:zed")]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "tuple_missing"
    r = await client.post(url, json={"writes": [t], "idempotent": True})
    assert r.status_code == 200 and r.json()["written"] == 1


@pytest.mark.parametrize(
    ("tuple_", "code"),
    [
        (tk("document:1", "viewer", "nobody"), "invalid_tuple"),
        (tk("spaceship:1", "viewer", "user:anne"), "type_not_found"),
        (tk("document:1", "pilot", "user:anne"), "relation_not_found"),
        (tk("document:1", "owner", "group:eng#member"), "invalid_tuple"),
        (tk("document:1", "viewer", "user:anne", expires_at="yesterday"), "validation_error"),
    ],
)
async def test_bad_tuples_are_400(
    client: httpx.AsyncClient, tuple_: dict[str, object], code: str
) -> None:
    store = await new_store(client)
    r = await client.post(f"/v1/stores/{store}/tuples/write", json={"writes": [tuple_]})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == code


async def test_empty_write_is_400(client: httpx.AsyncClient) -> None:
    store = await new_store(client)
    r = await client.post(f"/v1/stores/{store}/tuples/write", json={})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_tuple"


async def test_changes(client: httpx.AsyncClient) -> None:
    store = await new_store(client)
    r1 = await write(client, store, tk("document:1", "viewer", "user:anne"))
    r2 = await write(client, store, tk("folder:f", "viewer", "user:bob"))
    r = await client.post(
        f"/v1/stores/{store}/tuples/write",
        json={"deletes": [tk("document:1", "viewer", "user:anne")]},
    )
    r3 = r.json()["revision"]

    r = await client.get(f"/v1/stores/{store}/changes")
    page = r.json()
    assert [(c["revision"], c["operation"]) for c in page["changes"]] == [
        (r1, "write"),
        (r2, "write"),
        (r3, "delete"),
    ]
    assert page["changes"][0]["tuple"] == tk("document:1", "viewer", "user:anne")
    assert page["changes"][0]["timestamp"].endswith("Z")
    assert page["last_revision"] == r3 and page["has_more"] is False

    r = await client.get(f"/v1/stores/{store}/changes", params={"after_revision": r1})
    assert [c["revision"] for c in r.json()["changes"]] == [r2, r3]
    r = await client.get(f"/v1/stores/{store}/changes", params={"object_type": "folder"})
    assert [c["revision"] for c in r.json()["changes"]] == [r2]
    assert r.json()["last_revision"] == r3

    r = await client.get(f"/v1/stores/{store}/changes", params={"page_size": 1})
    page = r.json()
    assert len(page["changes"]) == 1 and page["has_more"] is True


async def test_revisions_beyond_64_bits_are_refused(client: httpx.AsyncClient) -> None:
    # found by schemathesis: this used to reach SQLite and fail with an OverflowError (500)
    store = await new_store(client)
    r = await client.get(f"/v1/stores/{store}/changes", params={"after_revision": 2**64})
    assert r.status_code == 400 and r.json()["error"]["code"] == "validation_error"
    q = {"user": "user:a", "relation": "viewer", "object": "document:1"}
    r = await client.post(f"/v1/stores/{store}/check", json={**q, "at_least_as_fresh": 2**64})
    assert r.status_code == 400


def test_the_service_refuses_them_too(services: Services) -> None:
    from keyplane.embedded import Keyplane

    kp = Keyplane(services)
    store = kp.create_store("s").id
    with pytest.raises(ValidationError):
        kp.read_changes(store=store, after_revision=2**64)
    with pytest.raises(ValidationError):
        kp.read_changes(store=store, after_revision=-1)
