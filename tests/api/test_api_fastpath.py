"""The decision endpoints' fast lane (keyplane.api.fastpath): it answers exactly as the
FastAPI routes do, authenticates and authorizes every call, records every event durably
before the answer, fails closed when the ledger cannot, and leaves everything unusual to
the routes. Two apps over the same services — one with the lane, one without — answer the
same requests; their bodies must match but for the decision ids."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from api_helpers import BASE_URL, new_store, tk, write
from fastapi import FastAPI

from keyplane.api import create_app
from keyplane.api.fastpath import LaneStats
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.service.keys import create_key

pytestmark = pytest.mark.anyio


@pytest.fixture
async def plain(services: Services, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    """The same services behind an app without the lane: the reference answers."""
    app = create_app(services, fast_path=False)
    assert not hasattr(app.state, "fast_lane")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=BASE_URL,
        headers={"Authorization": f"Bearer {admin_key}"},
    ) as c:
        yield c


def _lane(app: FastAPI) -> LaneStats:
    stats: LaneStats = app.state.fast_lane
    return stats


def _masked(value: Any) -> Any:
    """The body with every decision and request id replaced (each answer has new ones)."""
    if isinstance(value, dict):
        return {
            k: "<id>"
            if k in ("decision_id", "id", "request_id") and isinstance(v, str)
            else _masked(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


async def _store(client: httpx.AsyncClient) -> str:
    store = await new_store(client)
    await write(
        client,
        store,
        tk("document:1", "viewer", "user:anne"),
        tk("document:2", "viewer", "user:anne"),
        tk("document:3", "viewer", "user:bob"),
    )
    return store


def _requests(store: str) -> list[tuple[str, dict[str, Any]]]:
    anne, bob = {"type": "user", "id": "anne"}, {"type": "user", "id": "bob"}
    view = {"name": "viewer"}
    doc = [{"type": "document", "id": str(i)} for i in range(4)]
    items = [
        {"resource": doc[1]},
        {"resource": doc[3]},
        {"action": {"name": "no_such_relation"}},
        {"resource": {"type": "no_such_type", "id": "x"}},
        {"subject": bob, "resource": doc[3]},
    ]
    out: list[tuple[str, dict[str, Any]]] = []
    for prefix in ("", f"/stores/{store}"):
        out += [
            (f"{prefix}/access/v1/evaluation", {"subject": anne, "action": view, "resource": doc[1]}),
            (f"{prefix}/access/v1/evaluation", {"subject": anne, "action": view, "resource": doc[3],
                                               "context": {"purpose": "audit"}}),
            (f"{prefix}/access/v1/evaluation", {"subject": anne, "action": {"name": "nope"},
                                               "resource": doc[1]}),
        ]  # fmt: skip
        for semantic in ("execute_all", "deny_on_first_deny", "permit_on_first_permit"):
            out.append(
                (
                    f"{prefix}/access/v1/evaluations",
                    {"subject": anne, "action": view, "evaluations": items,
                     "options": {"evaluations_semantic": semantic, "include_context": True}},
                )
            )  # fmt: skip
        out.append(
            (
                f"{prefix}/access/v1/evaluations",
                {"subject": anne, "action": view, "resource": doc[2]},
            )
        )
        # no evaluations and no complete single evaluation: a 400, from both
        out.append((f"{prefix}/access/v1/evaluations", {"subject": None, "evaluations": []}))
    checks = [
        {**tk("document:1", "viewer", "user:anne"), "correlation_id": "a"},
        tk("document:3", "viewer", "user:anne"),
        tk("document:1", "nope", "user:anne"),
    ]
    out += [
        (f"/v1/stores/{store}/check", tk("document:1", "viewer", "user:anne")),
        (f"/v1/stores/{store}/check", tk("document:3", "viewer", "user:anne")),
        (f"/v1/stores/{store}/check", tk("document:1", "nope", "user:anne")),
        (f"/v1/stores/{store}/batch-check", {"checks": checks}),
    ]
    return out


async def test_the_lane_answers_exactly_as_the_routes_do(
    app: FastAPI, client: httpx.AsyncClient, plain: httpx.AsyncClient, services: Services
) -> None:
    store = await _store(client)
    # the root AuthZEN paths decide on the default store
    services_store = services.settings.default_store
    r = await client.post("/v1/stores", json={"name": "default", "id": services_store})
    assert r.status_code in (201, 409), r.text
    await client.post(f"/v1/stores/{services_store}/models", json={"dsl": _model()})
    await write(client, services_store, tk("document:1", "viewer", "user:anne"))
    for url, body in _requests(store):
        await client.post(url, json=body)  # warms the store's graph and the key cache
    served = _lane(app).served
    for url, body in _requests(store):
        fast = await client.post(url, json=body)
        ref = await plain.post(url, json=body)
        assert fast.status_code == ref.status_code, (url, body, fast.text, ref.text)
        assert fast.status_code in (200, 400), (url, body, fast.text)
        assert _masked(fast.json()) == _masked(ref.json()), (url, body)
        assert fast.headers["content-type"] == ref.headers["content-type"]
    assert _lane(app).served - served == len(_requests(store))


def _model() -> str:
    from api_helpers import MODEL

    return MODEL


async def test_every_answer_is_in_the_ledger_with_its_request_id(
    app: FastAPI, client: httpx.AsyncClient, services: Services
) -> None:
    store = await _store(client)
    url = f"/stores/{store}/access/v1/evaluation"
    body = {"subject": {"type": "user", "id": "anne"}, "action": {"name": "viewer"},
            "resource": {"type": "document", "id": "1"}}  # fmt: skip
    await client.post(url, json=body)
    served = _lane(app).served
    r = await client.post(url, json=body, headers={"X-Request-ID": "lane-1"})
    assert _lane(app).served == served + 1
    assert r.status_code == 200 and r.headers["x-request-id"] == "lane-1"
    event = services.storage.get_event_by_decision(r.json()["context"]["id"])
    assert event is not None and event.type == "decision.evaluate"
    assert event.request_id == "lane-1" and event.caller.startswith("key:")

    r = await client.post(
        f"/v1/stores/{store}/batch-check",
        json={"checks": [tk(f"document:{i}", "viewer", "user:anne") for i in range(100)]},
        headers={"X-Request-ID": "lane-2"},
    )  # more items than THREAD_BATCH_ITEMS: decided on a worker thread, recorded all the same
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["allowed"] for x in results[:4]] == [False, True, True, False]
    for x in results:
        e = services.storage.get_event_by_decision(x["decision_id"])
        assert e is not None and e.request_id == "lane-2"


async def test_refusals_are_recorded_and_answered_like_the_routes(
    app: FastAPI, client: httpx.AsyncClient, services: Services
) -> None:
    store = await _store(client)
    other = await _store(client)
    _, secret = create_key(services, Caller.system_caller(), owner="t", roles=[f"reader:{other}"])
    url = f"/stores/{store}/access/v1/evaluation"
    body = {"subject": {"type": "user", "id": "anne"}, "action": {"name": "viewer"},
            "resource": {"type": "document", "id": "1"}}  # fmt: skip
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=BASE_URL,
        headers={"Authorization": f"Bearer {secret}"},
    ) as reader:
        ok = await reader.post(f"/stores/{other}/access/v1/evaluation", json=body)
        assert ok.status_code == 200 and ok.json()["decision"] is True
        served = _lane(app).served
        r = await reader.post(url, json=body, headers={"X-Request-ID": "refused-1"})
        assert _lane(app).served == served + 1  # the lane refused it, not the route
        assert r.status_code == 403 and r.json()["error"]["code"] == "permission_denied"
        assert r.json()["error"]["request_id"] == "refused-1"
        denied = [
            e
            for e in services.storage.read_events(store, limit=1000)
            if e.request_id == "refused-1"
        ]
        assert [(e.type, e.outcome) for e in denied] == [("decision.evaluate", "deny")]

    # an unknown key or none at all: the route answers (and records auth.failed)
    for headers in ({"Authorization": "Bearer kp_nope"}, {}):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE_URL, headers=headers
        ) as anon:
            passed = _lane(app).passed_on
            r = await anon.post(url, json=body)
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
            assert _lane(app).passed_on == passed + 1

    # a malformed body: the route's 400
    r = await client.post(url, json={"subject": {"type": "user"}})
    assert r.status_code == 400 and r.json()["error"]["code"] == "validation_error"


async def test_a_revoked_key_is_refused_at_once(
    app: FastAPI, client: httpx.AsyncClient, services: Services
) -> None:
    from keyplane.service.keys import revoke_key

    store = await _store(client)
    key, secret = create_key(services, Caller.system_caller(), owner="t", roles=[f"reader:{store}"])
    body = tk("document:1", "viewer", "user:anne")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=BASE_URL,
        headers={"Authorization": f"Bearer {secret}"},
    ) as c:
        assert (await c.post(f"/v1/stores/{store}/check", json=body)).status_code == 200
        assert (await c.post(f"/v1/stores/{store}/check", json=body)).status_code == 200
        revoke_key(services, Caller.system_caller(), key.id)
        r = await c.post(f"/v1/stores/{store}/check", json=body)
        assert r.status_code == 401, r.text


async def test_no_answer_without_its_event_the_lane_fails_closed(
    app: FastAPI, client: httpx.AsyncClient, services: Services
) -> None:
    store = await _store(client)
    body = tk("document:1", "viewer", "user:anne")
    assert (await client.post(f"/v1/stores/{store}/check", json=body)).status_code == 200
    served = _lane(app).served
    services.ledger.close()  # nothing can be recorded any more
    r = await client.post(f"/v1/stores/{store}/check", json=body)
    assert _lane(app).served == served + 1
    assert r.status_code == 503 and r.json()["error"]["code"] == "storage_error"
    assert "allowed" not in r.json()
