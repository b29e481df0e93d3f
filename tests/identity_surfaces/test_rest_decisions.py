"""``POST /v1/stores/{store}/decide`` and ``/decide:batch`` over real HTTP: the answer's
fields, the store's action map, batch semantics, and the error envelopes."""

from __future__ import annotations

import time
from typing import Any

import httpx
from idp_helpers import Live

from keyplane.service.auth import Caller
from keyplane.service.keys import create_key
from keyplane.storage.ids import ULID_RE

S = "/v1/stores/default"


def _ok(resp: httpx.Response, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json()


def _error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    err: dict[str, Any] = resp.json()["error"]
    assert err["code"] == code, err
    return err


def _setup(c: httpx.Client) -> tuple[str, int]:
    _ok(c.post(f"{S}/identities", json={"kind": "human", "id": "alice"}), 201)
    _ok(
        c.post(
            f"{S}/identities", json={"kind": "agent", "id": "planner", "owners": ["human:alice"]}
        ),
        201,
    )
    d = _ok(
        c.post(
            f"{S}/delegations",
            json={
                "delegator": "human:alice",
                "delegate": "agent:planner",
                "scope": [
                    {"actions": ["read"], "resource": "document:*", "tools": ["read_tuples"]}
                ],
                "purposes": ["planning"],
                "expires_at": time.time() + 3600,
            },
        ),
        201,
    )
    _ok(c.patch(f"{S}/policy", json={"actions": {"read": "viewer"}}))
    rev = _ok(
        c.post(
            f"{S}/tuples/write",
            json={
                "writes": [
                    {"object": "document:roadmap", "relation": "viewer", "user": "human:alice"},
                    {"object": "document:roadmap", "relation": "viewer", "user": "agent:planner"},
                    {"object": "document:q3", "relation": "viewer", "user": "human:alice"},
                ]
            },
        )
    )["revision"]
    return d["id"], rev


ASK = {
    "subject": "human:alice",
    "actors": ["agent:planner"],
    "action": "read",
    "resource": "document:roadmap",
    "purpose": "planning",
    "tool": "read_tuples",
}


def test_decide(live: Live) -> None:
    auth = {"Authorization": f"Bearer {live.keys['reader']}"}
    with live.client() as admin_sdk:
        admin_sdk.create_store("other", store_id="other")
    with httpx.Client(
        base_url=live.url, headers={"Authorization": f"Bearer {live.keys['admin']}"}
    ) as c:
        delegation_id, rev = _setup(c)
    with httpx.Client(base_url=live.url, headers=auth, timeout=30) as r:  # a reader decides
        d = _ok(r.post(f"{S}/decide", json={**ASK, "at_least_as_fresh": rev}))
        assert d["allowed"] is True and d["code"] == "allowed" and ULID_RE.match(d["decision_id"])
        assert d["delegation_ids"] == [delegation_id] and d["revision"] >= rev
        assert d["model_id"] and d["guardrail_version"] == 0 and d["requestable"] is False
        assert d["reason_user"] and isinstance(d["reason"], dict) and d["error"] is None
        # the action map: `read` means `viewer`
        assert d["evaluated"] == {"relation": "viewer", "fired": []}

        wrong_tool = _ok(r.post(f"{S}/decide", json={**ASK, "tool": "write_tuples"}))
        assert wrong_tool["allowed"] is False and wrong_tool["code"] == "delegation_scope"
        no_graph = _ok(r.post(f"{S}/decide", json={**ASK, "resource": "document:q3"}))
        assert no_graph["code"] == "actor_lacks_permission"
        # no entitlement matches: nothing the caller could request
        assert no_graph["requestable"] is False and "request" not in no_graph["reason"]
        assert "agent:planner" in no_graph["reason_user"]

        batch = _ok(
            r.post(
                f"{S}/decide:batch",
                json={
                    "items": [
                        {**ASK, "correlation_id": "1"},
                        {**ASK, "resource": "document:q3", "correlation_id": "2"},
                        {**ASK, "correlation_id": "3"},
                    ],
                    "semantic": "deny_on_first_deny",
                },
            )
        )
        assert [(x["correlation_id"], x["allowed"]) for x in batch["results"]] == [
            ("1", True),
            ("2", False),
        ]
        every = _ok(
            r.post(
                f"{S}/decide:batch",
                json={"items": [{**ASK, "resource": "bad"}, ASK]},
            )
        )
        first, second = every["results"]
        assert first["allowed"] is False and first["error"]["code"] == first["code"]
        assert second["allowed"] is True

        _error(r.post(f"{S}/decide", json={**ASK, "resource": "nope"}), 400, first["code"])
        _error(r.post(f"{S}/decide", json={**ASK, "surprise": 1}), 400, "validation_error")
        _error(
            r.post(f"{S}/decide:batch", json={"items": [], "semantic": "sometimes"}),
            400,
            "validation_error",
        )
        _error(r.post("/v1/stores/nope/decide", json=ASK), 404, "store_not_found")
        _error(
            r.post(f"{S}/decide", json={**ASK, "at_least_as_fresh": rev + 1000}),
            504,
            "consistency_timeout",
        )

    _, other = create_key(live.services, Caller.system_caller(), owner="t", roles=["reader:other"])
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {other}"}) as o:
        err = _error(o.post(f"{S}/decide", json=ASK), 403, "permission_denied")
        assert "can_query" in str(err)
        _error(o.get(f"{S}/identities"), 403, "permission_denied")
