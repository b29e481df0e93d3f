"""The identity-plane MCP tools through the official MCP client, over streamable HTTP at
``/mcp`` on a real server: identities, delegations and the store policy; errors are tool errors starting with the Keyplane code."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from idp_helpers import Live
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from keyplane.mcp import READ_TOOLS, WRITE_TOOLS
from mcp import ClientSession

pytestmark = pytest.mark.timeout(120)

IDENTITY_READ = {
    "get_identity",
    "list_identities",
    "get_delegation",
    "list_delegations",
    "get_store_policy",
}
IDENTITY_WRITE = {
    "create_identity",
    "update_identity",
    "set_identity_owners",
    "suspend_identity",
    "reactivate_identity",
    "deprovision_identity",
    "create_delegation",
    "revoke_delegation",
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


async def fails(s: ClientSession, name: str, args: dict[str, Any], code: str) -> dict[str, Any]:
    result = await s.call_tool(name, args)
    text: str = result.content[0].text  # type: ignore[union-attr]
    assert result.is_error, text
    assert text.startswith(f"{code}: "), text
    assert result.structured_content is not None
    err: dict[str, Any] = result.structured_content["error"]
    assert err["code"] == code
    return err


def test_tool_catalogue() -> None:
    assert set(READ_TOOLS) >= IDENTITY_READ
    assert set(WRITE_TOOLS) >= IDENTITY_WRITE


def test_identity_tools_round_trip(live: Live) -> None:
    async def main() -> None:
        async with session(live.url, live.keys["writer"]) as s:
            listed = {t.name for t in (await s.list_tools()).tools}
            assert listed >= IDENTITY_READ | IDENTITY_WRITE
            alice, text = await ok(
                s, "create_identity", {"kind": "human", "id": "alice", "display_name": "Alice"}
            )
            assert alice["node"] == "human:alice" and "created human:alice" in text
            await ok(s, "create_identity", {"kind": "human", "id": "bob"})
            planner, _ = await ok(
                s, "create_identity", {"kind": "agent", "id": "planner", "owners": ["human:alice"]}
            )
            assert planner["owners"] == ["human:alice"]
            got, _ = await ok(s, "get_identity", {"node": "agent:planner", "store": "default"})
            assert got == planner
            listed_ids, text = await ok(s, "list_identities", {"kind": "agent"})
            assert [i["node"] for i in listed_ids["identities"]] == ["agent:planner"]
            assert text.startswith("1 identities")
            upd, _ = await ok(
                s, "update_identity", {"node": "agent:planner", "attributes": {"model": "x"}}
            )
            assert upd["attributes"] == {"model": "x"}
            own, _ = await ok(
                s, "set_identity_owners", {"node": "agent:planner", "add": ["human:bob"]}
            )
            assert set(own["owners"]) == {"human:alice", "human:bob"}
            sus, text = await ok(s, "suspend_identity", {"node": "agent:planner", "reason": "t"})
            assert sus["status"] == "suspended" and "suspended" in text
            re, _ = await ok(s, "reactivate_identity", {"node": "agent:planner"})
            assert re["status"] == "active"
            gone, _ = await ok(s, "deprovision_identity", {"node": "human:bob"})
            assert gone["status"] == "deprovisioned"

            d, text = await ok(
                s,
                "create_delegation",
                {
                    "delegator": "human:alice",
                    "delegate": "agent:planner",
                    "scope": [{"actions": ["viewer"], "resource": "document:*"}],
                    "purposes": ["planning"],
                    "expires_at": time.time() + 3600,
                },
            )
            assert d["status"] == "active" and "human:alice → agent:planner" in text
            assert (await ok(s, "get_delegation", {"delegation_id": d["id"]}))[0] == d
            mine, _ = await ok(s, "list_delegations", {"delegate": "agent:planner"})
            assert [x["id"] for x in mine["delegations"]] == [d["id"]]
            pol, text = await ok(s, "get_store_policy", {})
            assert pol["max_delegation_seconds"] == 86400 and "86400" in text
            await ok(
                s, "create_identity", {"kind": "agent", "id": "helper", "owners": ["human:alice"]}
            )
            sub = {
                "delegator": "agent:planner",
                "delegate": "agent:helper",
                "scope": [{"actions": ["viewer"], "resource": "document:roadmap"}],
                "purposes": ["planning"],
                "expires_at": time.time() + 600,
                "parent_id": d["id"],
            }
            err = await fails(s, "create_delegation", sub, "delegation_widening")
            assert err["details"]["widening"] == "depth"  # the parent allows no further hop
            rev, text = await ok(s, "revoke_delegation", {"delegation_id": d["id"]})
            assert [x["id"] for x in rev["revoked"]] == [d["id"]] and "revoked 1" in text

            await fails(s, "get_identity", {"node": "agent:ghost"}, "identity_not_found")
            await fails(s, "create_identity", {"kind": "agent", "id": "x"}, "owner_required")
            await fails(s, "get_delegation", {"delegation_id": "nope"}, "delegation_not_found")
            await fails(
                s, "get_identity", {"node": "agent:planner", "bogus": 1}, "validation_error"
            )
        async with session(live.url, live.keys["reader"]) as r:
            listed = {t.name for t in (await r.list_tools()).tools}
            assert listed >= IDENTITY_READ and not (IDENTITY_WRITE & listed)
            await fails(r, "create_identity", {"kind": "human", "id": "eve"}, "permission_denied")
            got, _ = await ok(r, "get_identity", {"node": "human:alice"})
            assert got["status"] == "active"

    anyio.run(main)
