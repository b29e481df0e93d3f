"""The agent's "may I?": the ``decide`` and ``decide_batch`` MCP tools through the official
MCP client over streamable HTTP — denied with the reason until a delegation exists,
allowed after."""

from __future__ import annotations

import time

import anyio
import httpx2
import pytest
from idp_helpers import Live
from mcp.client.streamable_http import streamable_http_client
from test_mcp_identity_plane import fails, ok, session

from keyplane.mcp import READ_TOOLS
from mcp import ClientSession

pytestmark = pytest.mark.timeout(120)


def test_decide_tools_are_read_tools() -> None:
    assert {"decide", "decide_batch"} <= set(READ_TOOLS)


def test_decide_tool_answers_with_the_reason(live: Live) -> None:
    async def main() -> None:
        async with session(live.url, live.keys["admin"]) as s:
            await ok(s, "create_identity", {"kind": "human", "id": "alice"})
            await ok(
                s, "create_identity", {"kind": "agent", "id": "planner", "owners": ["human:alice"]}
            )
            w, _ = await ok(
                s,
                "write_tuples",
                {
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
            ask = {
                "subject": "human:alice",
                "actors": ["agent:planner"],
                "action": "viewer",
                "resource": "document:roadmap",
                "purpose": "planning",
            }
            d, text = await ok(s, "decide", {**ask, "at_least_as_fresh": w["revision"]})
            assert d["allowed"] is False and d["code"] == "delegation_missing"
            assert d["requestable"] is False and d["reason_user"] in text
            assert "You may request this access." not in text
            assert text.startswith("denied (delegation_missing): ")
            await ok(
                s,
                "create_delegation",
                {
                    "delegator": "human:alice",
                    "delegate": "agent:planner",
                    "scope": [{"actions": ["viewer"], "resource": "document:roadmap"}],
                    "purposes": ["planning"],
                    "expires_at": time.time() + 600,
                },
            )
            d, text = await ok(s, "decide", ask)
            assert d["allowed"] is True and text.startswith("allowed: ")
            assert d["decision_id"] in text
            b, text = await ok(
                s,
                "decide_batch",
                {
                    "items": [
                        {**ask, "correlation_id": "ok"},
                        {**ask, "purpose": "marketing", "correlation_id": "no"},
                    ]
                },
            )
            assert [(x["correlation_id"], x["allowed"]) for x in b["results"]] == [
                ("ok", True),
                ("no", False),
            ]
            assert b["results"][1]["code"] == "purpose_not_allowed"
            assert text.startswith("2 decisions: 1 allowed, 1 denied")
            await fails(s, "decide", {**ask, "resource": "nope"}, "validation_error")

    anyio.run(main)


def test_server_instructions_point_agents_at_decide(live: Live) -> None:
    async def main() -> str:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {live.keys['reader']}"})
        async with (
            http,
            streamable_http_client(f"{live.url}/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as cs,
        ):
            info = await cs.initialize()
            return info.instructions or ""

    text = anyio.run(main)
    assert "call `decide` before you act" in text and "reason_user" in text
