"""End to end, across surfaces on one real server: a human and the agent she owns, a
delegation, a tuple granting both; the decision allows through REST and through the MCP
``decide`` tool; the agent is suspended from the CLI; the same decision now denies with
``identity_suspended`` — and every decision id is in the ledger with the whole chain."""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx
from idp_helpers import Live
from test_mcp_identity_plane import ok as mcp_ok
from test_mcp_identity_plane import session
from typer.testing import CliRunner

from keyplane.cli.main import app

S = "/v1/stores/default"


def _ok(resp: httpx.Response, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json()


def test_suspending_an_agent_denies_its_decisions_everywhere(any_live: Live) -> None:
    live = any_live
    auth = {"Authorization": f"Bearer {live.keys['admin']}"}
    ask = {
        "subject": "human:alice",
        "actors": ["agent:planner"],
        "action": "viewer",
        "resource": "document:roadmap",
        "purpose": "planning",
    }
    with httpx.Client(base_url=live.url, headers=auth, timeout=30) as c:
        _ok(c.post(f"{S}/identities", json={"kind": "human", "id": "alice"}), 201)
        _ok(
            c.post(
                f"{S}/identities",
                json={"kind": "agent", "id": "planner", "owners": ["human:alice"]},
            ),
            201,
        )
        delegation = _ok(
            c.post(
                f"{S}/delegations",
                json={
                    "delegator": "human:alice",
                    "delegate": "agent:planner",
                    "scope": [{"actions": ["viewer"], "resource": "document:roadmap"}],
                    "purposes": ["planning"],
                    "expires_at": time.time() + 3600,
                },
            ),
            201,
        )
        rev = _ok(
            c.post(
                f"{S}/tuples/write",
                json={
                    "writes": [
                        {"object": "document:roadmap", "relation": "viewer", "user": "human:alice"},
                        {
                            "object": "document:roadmap",
                            "relation": "viewer",
                            "user": "agent:planner",
                        },
                    ]
                },
            )
        )["revision"]
        rest_allow = _ok(c.post(f"{S}/decide", json={**ask, "at_least_as_fresh": rev}))
        assert rest_allow["allowed"] is True and rest_allow["code"] == "allowed"
        assert rest_allow["delegation_ids"] == [delegation["id"]]

        async def via_mcp() -> dict[str, Any]:
            async with session(live.url, live.keys["admin"]) as s:
                d, text = await mcp_ok(s, "decide", ask)
                assert text.startswith("allowed: ")
                return d

        mcp_allow = anyio.run(via_mcp)
        assert mcp_allow["allowed"] is True
        assert mcp_allow["decision_id"] != rest_allow["decision_id"]

        # the kill switch, from the command line against the same server
        res = CliRunner().invoke(
            app,
            ["identity", "suspend", "agent:planner", "--reason", "runaway", "--json"],
            env={"KEYPLANE_URL": live.url, "KEYPLANE_API_KEY": live.keys["admin"]},
        )
        assert res.exit_code == 0, (res.stdout, res.stderr)
        assert '"status": "suspended"' in res.stdout

        rest_deny = _ok(c.post(f"{S}/decide", json=ask))
        assert rest_deny["allowed"] is False and rest_deny["code"] == "identity_suspended"
        assert "agent:planner" in rest_deny["reason_user"]

        async def via_mcp_again() -> dict[str, Any]:
            async with session(live.url, live.keys["admin"]) as s:
                d, text = await mcp_ok(s, "decide", ask)
                assert text.startswith("denied (identity_suspended): ")
                return d

        mcp_deny = anyio.run(via_mcp_again)
        assert mcp_deny["code"] == "identity_suspended"
        # the delegation it held was revoked with it
        assert _ok(c.get(f"{S}/delegations/{delegation['id']}"))["status"] == "revoked"

        # every decision is in the ledger, with the whole chain and its outcome
        expected = {
            rest_allow["decision_id"]: "allow",
            mcp_allow["decision_id"]: "allow",
            rest_deny["decision_id"]: "deny",
            mcp_deny["decision_id"]: "deny",
        }
        for decision_id, outcome in expected.items():
            events = _ok(c.get(f"{S}/ledger/events", params={"decision_id": decision_id}))["events"]
            assert len(events) == 1, events
            e = events[0]
            assert e["type"] == "decision.evaluate" and e["outcome"] == outcome
            assert e["subject"] == "human:alice" and e["actor_chain"] == ["agent:planner"]
            assert e["purpose"] == "planning" and e["resource"] == "document:roadmap"
            prov = _ok(c.get(f"/v1/ledger/decisions/{decision_id}"))
            assert prov["event"]["id"] == decision_id
        denied = _ok(c.get(f"{S}/ledger/events", params={"decision_id": rest_deny["decision_id"]}))
        assert "identity_suspended" in str(denied["events"][0])
        suspended = _ok(c.get(f"{S}/ledger/events", params={"type": "identity.suspended"}))
        assert [e["resource"] or e["subject"] for e in suspended["events"]] != []
        assert _ok(c.get(f"{S}/ledger/verify"))["ok"] is True
