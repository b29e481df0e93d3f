"""/healthz, /readyz and /metrics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from api_helpers import BASE_URL, make_settings, new_store, tk, write
from prometheus_client.parser import text_string_to_metric_families

from keyplane.api import create_app
from keyplane.graph.tuples import Tuple
from keyplane.service.context import Services

pytestmark = pytest.mark.anyio


async def test_healthz_and_readyz_need_no_key(anon: httpx.AsyncClient) -> None:
    r = await anon.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = await anon.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "checks": {"database": "ok", "graphs": "ok"}}


async def test_readyz_fails_when_the_database_does(tmp_path: Path) -> None:
    path = tmp_path / "gone.db"
    svc = Services.open(make_settings(path))
    app = create_app(svc)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as c:
        assert (await c.get("/readyz")).status_code == 200
        svc.storage.close()  # the database is gone from under the server
        r = await c.get("/readyz")
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "unavailable" and body["checks"]["database"] != "ok"
        assert (await c.get("/healthz")).status_code == 200  # alive, just not ready


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def _value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_after_traffic(
    client: httpx.AsyncClient, services: Services, tmp_path: Path
) -> None:
    store = await new_store(client)
    rev = await write(
        client,
        store,
        tk("document:1", "viewer", "user:anne"),
        tk("document:2", "viewer", "user:anne"),
    )
    q = {"relation": "viewer", "object": "document:1"}
    for user in ("user:anne", "user:anne", "user:bob"):
        await client.post(f"/v1/stores/{store}/check", json={**q, "user": user})
    await client.post(
        f"/v1/stores/{store}/batch-check",
        json={
            "checks": [
                {**q, "user": "user:anne"},
                {**q, "user": "user:bob"},
                {**q, "relation": "nope", "user": "user:a"},
            ]
        },
    )
    await client.get("/v1/stores/ghost")
    await client.get("/no/such/path/123")

    # a write by another process: this one has not applied it yet → revision lag 1
    other = Services.open(
        make_settings(Path(services.settings.database_url.removeprefix("sqlite:///")))
    )
    try:
        other.storage.write(store, writes=[Tuple("document:3", "viewer", "user:cat")])
    finally:
        other.close()

    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    s = _samples(r.text)

    assert (
        _value(s, "keyplane_http_requests_total", operation="check", method="POST", status="200")
        == 3
    )
    assert (
        _value(s, "keyplane_http_requests_total", operation="get_store", method="GET", status="404")
        == 1
    )
    assert (
        _value(s, "keyplane_http_requests_total", operation="unmatched", method="GET", status="404")
        == 1
    )
    assert _value(s, "keyplane_http_request_duration_seconds_count", operation="check") == 3
    assert _value(s, "keyplane_http_request_duration_seconds_count", operation="write_tuples") == 1
    # labels are operations (route templates), never raw paths
    assert not any(store in dict(labels).get("operation", "") for _, labels in s)
    assert "/no/such/path" not in r.text

    assert _value(s, "keyplane_decisions_total", operation="check", outcome="allowed") == 2
    assert _value(s, "keyplane_decisions_total", operation="check", outcome="denied") == 1
    assert _value(s, "keyplane_decisions_total", operation="batch_check", outcome="allowed") == 1
    assert _value(s, "keyplane_decisions_total", operation="batch_check", outcome="denied") == 1
    assert _value(s, "keyplane_decisions_total", operation="batch_check", outcome="error") == 1

    assert _value(s, "keyplane_graph_tuples", store=store) == 2
    assert _value(s, "keyplane_graph_revision", store=store) == rev
    assert _value(s, "keyplane_graph_revision_lag", store=store) == 1

    # the ledger writer's counters: every decision above was committed, none is lost
    recorded = _value(s, "keyplane_ledger_events", counter="recorded")
    assert recorded >= 3 + 3  # three checks and three batch items at least
    assert _value(s, "keyplane_ledger_events", counter="committed") == recorded
    assert _value(s, "keyplane_ledger_events", counter="pending") == 0
    assert _value(s, "keyplane_ledger_events", counter="lost") == 0

    # once applied, the lag is gone and the size follows
    await client.post(
        f"/v1/stores/{store}/check", json={**q, "user": "user:cat", "at_least_as_fresh": rev + 1}
    )
    s = _samples((await client.get("/metrics")).text)
    assert _value(s, "keyplane_graph_revision_lag", store=store) == 0
    assert _value(s, "keyplane_graph_tuples", store=store) == 3

    # a deleted store's series disappear
    await client.delete(f"/v1/stores/{store}")
    s = _samples((await client.get("/metrics")).text)
    assert ("keyplane_graph_tuples", frozenset({("store", store)})) not in s


async def test_metrics_registries_are_per_app(
    client: httpx.AsyncClient, services: Services
) -> None:
    await client.get("/healthz")
    other = create_app(services)
    assert other.state.metrics.registry is not client._transport.app.state.metrics.registry  # type: ignore[attr-defined]


async def test_metrics_need_a_role_that_lists_stores(
    client: httpx.AsyncClient, client_with_roles: Callable[..., httpx.AsyncClient]
) -> None:
    store = await new_store(client)
    assert (await client_with_roles("auditor").get("/metrics")).status_code == 200
    assert (await client_with_roles(f"reader:{store}").get("/metrics")).status_code == 403
