"""The AuthZEN layer's own rules, in-process (the full app over ASGI, real keys): how a
request is translated into a decision (nodes, the actor chain, purpose, properties), what
it answers (context, reasons, decision ids in the ledger), batch defaults and semantics,
search paging, errors and authentication. Conformance against the interop and
certification data is tests/api/test_authzen_conformance.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from api_helpers import new_store, tk, write

from keyplane.service.context import Services

pytestmark = pytest.mark.anyio

ALICE = {"type": "user", "id": "anne"}
READ = {"name": "viewer"}
DOC1 = {"type": "document", "id": "1"}


def ev(subject: Any = ALICE, action: Any = READ, resource: Any = DOC1, **kw: Any) -> dict[str, Any]:
    return {"subject": subject, "action": action, "resource": resource, **kw}


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


async def test_evaluation_translates_and_answers_with_the_decision(
    client: httpx.AsyncClient, services: Services
) -> None:
    store = await _store(client)
    url = f"/stores/{store}/access/v1/evaluation"
    r = await client.post(url, json=ev(), headers={"X-Request-ID": "req-42"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "req-42"
    body = r.json()
    assert body["decision"] is True and "reason_user" not in body["context"]
    event = services.storage.get_event_by_decision(body["context"]["id"])
    assert event is not None and event.type == "decision.evaluate"
    assert (event.subject, event.action, event.resource) == ("user:anne", "viewer", "document:1")
    assert event.request_id == "req-42"

    r = await client.post(url, json=ev(subject={"type": "user", "id": "carl"}))
    body = r.json()
    assert body["decision"] is False
    ctx = body["context"]
    assert ctx["reason_admin"]["code"] == "subject_lacks_permission"
    assert "user:carl" in ctx["reason_user"]["en"]
    assert ctx["keyplane"]["requestable"] is False  # no entitlement to request


async def test_actor_chain_purpose_and_properties_reach_the_decision(
    client: httpx.AsyncClient, services: Services
) -> None:
    store = await _store(client)
    url = f"/stores/{store}/access/v1/evaluation"
    listed = ev(context={"actors": [{"type": "agent", "id": "planner"},
                                    {"type": "agent", "id": "worker"}],
                         "purpose": "support", "ticket": 7})  # fmt: skip
    nested = ev(context={"act": {"type": "agent", "id": "worker",
                                 "act": {"type": "agent", "id": "planner"}},
                         "purpose": "support", "ticket": 7})  # fmt: skip
    for body in (listed, nested):
        body["resource"] = {**DOC1, "properties": {"env": "prod"}}
        body["subject"] = {**ALICE, "properties": {"dept": "ops"}}
        r = (await client.post(url, json=body)).json()
        # no delegation from anne to planner: the first link fails, and says so
        assert r["decision"] is False
        assert r["context"]["reason_admin"]["code"] == "delegation_missing"
        reason = r["context"]["keyplane"]["reason"]
        assert (reason["delegator"], reason["delegate"]) == ("user:anne", "agent:planner")
        event = services.storage.get_event_by_decision(r["context"]["id"])
        assert event is not None
        assert tuple(event.actor_chain) == ("agent:planner", "agent:worker")
        assert event.purpose == "support"
        inp = event.details["input"]
        assert inp["resource_properties"] == {"env": "prod"}
        assert inp["subject_properties"] == {"dept": "ops"}
        assert inp["context"]["ticket"] == 7


@pytest.mark.parametrize(
    "context",
    [{"actors": "agent:x"}, {"actors": [{"type": "agent"}]}, {"purpose": 3},
     {"actors": [], "act": {"type": "agent", "id": "x"}}, {"delegation_id": ["x"]}],
)  # fmt: skip
async def test_malformed_chain_fields_are_400(
    client: httpx.AsyncClient, context: dict[str, Any]
) -> None:
    store = await _store(client)
    r = await client.post(f"/stores/{store}/access/v1/evaluation", json=ev(context=context))
    assert r.status_code == 400 and r.json()["error"]["code"] == "validation_error"


async def test_unknown_action_or_type_is_a_deny_not_an_error(client: httpx.AsyncClient) -> None:
    store = await _store(client)
    url = f"/stores/{store}/access/v1/evaluation"
    for body, code in ((ev(action={"name": "launch"}), "relation_not_found"),
                       (ev(resource={"type": "rocket", "id": "1"}), "type_not_found")):  # fmt: skip
        r = await client.post(url, json=body)
        assert r.status_code == 200
        assert r.json()["decision"] is False
        assert r.json()["context"]["error"]["code"] == code


async def test_batch_defaults_and_semantics(client: httpx.AsyncClient) -> None:
    store = await _store(client)
    url = f"/stores/{store}/access/v1/evaluations"
    items = [{"resource": {"type": "document", "id": i}} for i in ("1", "3", "2")]
    base = {"subject": ALICE, "action": READ}

    async def run(semantic: str | None, **opts: Any) -> list[dict[str, Any]]:
        body: dict[str, Any] = {**base, "evaluations": items}
        if semantic:
            body["options"] = {"evaluations_semantic": semantic, **opts}
        r = await client.post(url, json=body)
        assert r.status_code == 200, r.text
        assert "decision" not in r.json()
        out: list[dict[str, Any]] = r.json()["evaluations"]
        return out

    assert await run(None) == [{"decision": True}, {"decision": False}, {"decision": True}]
    assert await run("deny_on_first_deny") == [{"decision": True}, {"decision": False}]
    assert await run("permit_on_first_permit") == [{"decision": True}]
    full = await run("execute_all", include_context=True)
    assert all(x["context"]["id"] for x in full)
    assert len({x["context"]["id"] for x in full}) == 3
    # an item's own subject overrides the default; a missing field is that item's deny
    r = await client.post(url, json={**base, "evaluations": [
        {"subject": {"type": "user", "id": "bob"}, "resource": {"type": "document", "id": "3"}},
        {"action": {"name": "viewer"}}, {"resource": {"type": "document", "id": "1"}}]})  # fmt: skip
    got = r.json()["evaluations"]
    assert [x["decision"] for x in got] == [True, False, True]
    assert got[1]["context"]["error"]["status"] == 400
    # deny_on_first_deny stops at an item that cannot be evaluated
    r = await client.post(url, json={**base, "options": {"evaluations_semantic":
                                     "deny_on_first_deny"}, "evaluations": [items[0], {}, items[2]]})  # fmt: skip
    assert [x["decision"] for x in r.json()["evaluations"]] == [True, False]
    r = await client.post(url, json={**base, "options": {"evaluations_semantic": "all"},
                                     "evaluations": items})  # fmt: skip
    assert r.status_code == 400


async def test_search_paging_and_tokens(client: httpx.AsyncClient) -> None:
    store = await _store(client)
    url = f"/stores/{store}/access/v1/search/resource"
    req = {"subject": ALICE, "action": READ, "resource": {"type": "document"}}
    first = (await client.post(url, json={**req, "page": {"limit": 1}})).json()
    assert first["results"] == [{"type": "document", "id": "1"}]
    token = first["page"]["next_token"]
    assert token
    second = (await client.post(url, json={**req, "page": {"token": token}})).json()
    assert second["results"] == [{"type": "document", "id": "2"}]
    assert second["page"]["next_token"] == ""
    # a token issued for another query is not honoured: the search starts over
    other = {**req, "subject": {"type": "user", "id": "bob"}, "page": {"token": token}}
    assert (await client.post(url, json=other)).json()["results"] == [
        {"type": "document", "id": "3"}
    ]
    r = await client.post(url, json={**req, "page": {"limit": -1}})
    assert r.status_code == 400


async def test_default_store_at_the_root(client: httpx.AsyncClient, services: Services) -> None:
    r = await client.post("/access/v1/evaluation", json=ev())
    assert r.status_code == 404 and r.json()["error"]["code"] == "store_not_found"
    r = await client.post("/v1/stores", json={"name": "d", "id": services.settings.default_store})
    assert r.status_code == 201
    await client.post(f"/v1/stores/{services.settings.default_store}/models",
                      json={"dsl": "model\n  schema 1.1\ntype user\ntype document\n  relations\n"
                                   "    define viewer: [user]\n"})  # fmt: skip
    await write(client, services.settings.default_store, tk("document:1", "viewer", "user:anne"))
    r = await client.post("/access/v1/evaluation", json=ev())
    assert r.json()["decision"] is True


async def test_authentication_and_permission(
    client: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    client_with_roles: Callable[..., httpx.AsyncClient],
) -> None:
    store = await _store(client)
    other = await new_store(client)
    url = f"/stores/{store}/access/v1/evaluation"
    r = await anon.post(url, json=ev())
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    for path in ("evaluations", "search/subject", "search/resource", "search/action"):
        assert (await anon.post(f"/stores/{store}/access/v1/{path}", json={})).status_code in (
            400,
            401,
        )
    stranger = client_with_roles(f"reader:{other}")
    r = await stranger.post(url, json=ev())
    assert r.status_code == 403 and r.json()["error"]["code"] == "permission_denied"
    r = await stranger.post(f"/stores/{store}/access/v1/search/action",
                            json={"subject": ALICE, "resource": DOC1})  # fmt: skip
    assert r.status_code == 403
    # discovery is public
    r = await anon.get(f"/stores/{store}/.well-known/authzen-configuration")
    assert r.status_code == 200
    assert r.json()["access_evaluation_endpoint"].endswith(f"/stores/{store}/access/v1/evaluation")
