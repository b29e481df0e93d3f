"""Governance analytics as MCP tools (issue 8), through the official MCP client over
streamable HTTP at ``/mcp`` on a real server: structured results are the REST bodies,
errors are tool errors starting with the Keyplane code, and the write tool
(``apply_privilege_recommendation``) is listed only for keys that may use it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult
from posture_helpers import PLANNER_GRANTS, Live

from keyplane.mcp import READ_TOOLS, WRITE_TOOLS
from mcp import ClientSession

pytestmark = pytest.mark.timeout(120)

POSTURE_READ = {
    "effective_access",
    "who_can_access",
    "over_privilege",
    "agents_exceeding_owners",
    "nhi_inventory",
    "posture_report",
}


@asynccontextmanager
async def session(url: str, key: str) -> AsyncIterator[ClientSession]:
    client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    async with (
        client,
        streamable_http_client(f"{url}/mcp", http_client=client) as (read, write),
        ClientSession(read, write) as s,
    ):
        await s.initialize()
        yield s


async def ok(s: ClientSession, name: str, args: dict[str, Any]) -> tuple[dict[str, Any], str]:
    result = await s.call_tool(name, args)
    assert isinstance(result, CallToolResult)
    text: str = result.content[0].text  # type: ignore[union-attr]
    assert not result.is_error, text
    assert result.structured_content is not None
    return result.structured_content, text


async def fails(s: ClientSession, name: str, args: dict[str, Any], code: str) -> str:
    result = await s.call_tool(name, args)
    text: str = result.content[0].text  # type: ignore[union-attr]
    assert result.is_error, text
    assert text.startswith(f"{code}: "), text
    return text


def test_catalogue() -> None:
    assert set(READ_TOOLS) >= POSTURE_READ
    assert "apply_privilege_recommendation" in WRITE_TOOLS


def test_posture_tools(live: Live) -> None:
    async def main() -> None:
        async with session(live.url, live.keys["admin"]) as s:
            listed = {t.name for t in (await s.list_tools()).tools}
            assert listed >= POSTURE_READ | {"apply_privilege_recommendation"}

            eff, text = await ok(s, "effective_access", {"identity": "agent:planner"})
            mine = {(e["object"], e["relation"]) for e in eff["entries"] if e["via"] == "graph"}
            assert ("document:budget", "editor") in mine
            assert "agent:planner editor document:budget" in text
            page, text = await ok(
                s,
                "effective_access",
                {"identity": "agent:planner", "page_size": 1, "include_paths": False},
            )
            assert len(page["entries"]) == 1 and page["continuation_token"]
            assert page["entries"][0]["paths"] == [] and "continuation_token" in text
            nxt, _ = await ok(
                s,
                "effective_access",
                {"identity": "agent:planner", "continuation_token": page["continuation_token"]},
            )
            assert nxt["entries"] == eff["entries"][1:]

            holders, _ = await ok(
                s, "who_can_access", {"object": "document:roadmap", "relation": "viewer"}
            )
            assert ("agent:planner", "delegation", "human:alice") in {
                (e["user"], e["via"], e["on_behalf_of"]) for e in holders["entries"]
            }

            over, text = await ok(s, "over_privilege", {"identity": "agent:planner"})
            revoke = over["recommendation"]["revoke"]
            assert sorted(revoke) == sorted(
                PLANNER_GRANTS - {"document:roadmap#viewer@agent:planner"}
            )
            assert "revoke 2" in text

            ex, text = await ok(s, "agents_exceeding_owners", {})
            assert ("agent:planner", "human:alice") in {
                (e["agent"], e["principal"]) for e in ex["agents"]
            }
            inv, text = await ok(s, "nhi_inventory", {"kind": "agent"})
            assert [i["identity"] for i in inv["identities"]] == ["agent:helper", "agent:planner"]

            rep, text = await ok(s, "posture_report", {"window_days": 30})
            assert rep["inventory"] == []  # include_inventory is off for agents by default
            assert ("orphaned_identity", "service_account:ci") in {
                (f["code"], f["identity"]) for f in rep["findings"]
            }
            assert "orphaned_identity" in text

            await fails(
                s, "effective_access", {"identity": "agent:planner", "object_type": "nope"},
                "type_not_found",
            )  # fmt: skip
            await fails(
                s, "apply_privilege_recommendation",
                {"identity": "agent:planner", "expected": ["document:x#viewer@agent:planner"]},
                "recommendation_changed",
            )  # fmt: skip
            applied, text = await ok(
                s,
                "apply_privilege_recommendation",
                {"identity": "agent:planner", "expected": revoke, "reviewer": "human:alice"},
            )
            assert applied["mode"] == "review" and applied["review_id"]
            assert sorted(applied["tuples"]) == sorted(revoke) and "review" in text

        # an auditor reads posture, but is not shown (nor allowed) the write tool
        async with session(live.url, live.keys["auditor"]) as s:
            listed = {t.name for t in (await s.list_tools()).tools}
            assert listed >= POSTURE_READ
            assert "apply_privilege_recommendation" not in listed
            await ok(s, "nhi_inventory", {})
        # a reader queries effective access but not posture
        async with session(live.url, live.keys["reader"]) as s:
            await ok(s, "effective_access", {"identity": "agent:planner"})
            await fails(s, "posture_report", {}, "permission_denied")

    anyio.run(main)
