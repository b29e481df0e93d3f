"""MCP over stdio: the official client spawns ``python -m keyplane mcp`` as a real subprocess.

The key comes from ``KEYPLANE_API_KEY``. Without a valid key the server refuses to start
(exit status 1, ``error[unauthenticated]`` on stderr, nothing on stdout) — the documented
choice, so an agent host shows the problem at once instead of a session of failing calls.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from mcp_scenario import (
    ALL_TOOLS,
    GATEWAY_WRITE_TOOLS,
    WRITER_TOOLS,
    exercise_changes,
    exercise_input_errors,
    exercise_read_tools,
    exercise_write_tools,
    fails,
    ok,
    tool_names,
)
from mcp_seed import Seeded
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from keyplane.mcp import READ_TOOLS, WRITE_TOOLS
from mcp import Client, ClientSession, MCPError, StdioServerParameters, stdio_client

pytestmark = pytest.mark.timeout(120)


def _env(seeded: Seeded, key: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYPLANE_")}
    env["KEYPLANE_DATABASE_URL"] = seeded.url
    env["KEYPLANE_KEY_CACHE_TTL"] = "0"  # a revocation by another process applies at once
    if key is not None:
        env["KEYPLANE_API_KEY"] = key
    env.update(extra)
    return env


@asynccontextmanager
async def stdio_session(
    seeded: Seeded, key: str, *args: str, **env: str
) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "keyplane", "mcp", *args], env=_env(seeded, key, **env)
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        info = await session.initialize()
        assert info.server_info.name == "keyplane"
        yield session


def test_admin_lists_and_calls_every_tool(seeded: Seeded) -> None:
    async def main() -> None:
        async with stdio_session(seeded, seeded.keys["admin"]) as s:
            assert await tool_names(s) == ALL_TOOLS
            await exercise_read_tools(s)
            await exercise_changes(s)
            await exercise_write_tools(s)
            await exercise_input_errors(s)

    anyio.run(main)


def test_reader_sees_no_write_tools_and_is_refused_writes(seeded: Seeded) -> None:
    async def main() -> None:
        async with stdio_session(seeded, seeded.keys["reader"]) as s:
            assert await tool_names(s) == set(READ_TOOLS)
            await exercise_read_tools(s)
            # hidden, and refused when called anyway
            tup = {"object": "document:roadmap", "relation": "viewer", "user": "user:dan"}
            text = await fails(s, "write_tuples", {"writes": [tup]}, "permission_denied")
            assert f"key:{seeded.key_ids['reader']}" in text
            await fails(s, "delete_tuples", {"deletes": [tup]}, "permission_denied")
            await fails(s, "read_changes", {}, "permission_denied")

    anyio.run(main)


def test_read_only_flag_hides_and_refuses_writes_for_a_writer(seeded: Seeded) -> None:
    async def main() -> None:
        async with stdio_session(seeded, seeded.keys["writer"], "--read-only") as s:
            assert await tool_names(s) == set(READ_TOOLS)
            tup = {"object": "document:roadmap", "relation": "viewer", "user": "user:dan"}
            text = await fails(s, "write_tuples", {"writes": [tup]}, "permission_denied")
            assert "read-only" in text
            await fails(s, "delete_tuples", {"deletes": [tup]}, "permission_denied")
            await ok(s, "read_changes", {})  # a writer still reads the changelog
        # the setting does the same as the flag
        async with stdio_session(seeded, seeded.keys["writer"], KEYPLANE_MCP_READ_ONLY="true") as s:
            assert await tool_names(s) == set(READ_TOOLS)

    anyio.run(main)


def test_store_argument_and_default_store(seeded: Seeded) -> None:
    """A ``writer:other`` key: no rights on ``default``; writes on ``other`` by naming it."""

    async def main() -> None:
        tup = {"object": "document:plan", "relation": "owner", "user": "user:erin"}
        async with stdio_session(seeded, seeded.keys["other"]) as s:
            assert await tool_names(s) == set(READ_TOOLS)  # cannot write the default store
            await fails(
                s,
                "check",
                {"user": "user:anne", "relation": "viewer", "object": "document:roadmap"},
                "permission_denied",
            )
            w, _ = await ok(s, "write_tuples", {"writes": [tup], "store": "other"})
            assert w["written"] == 1
        # again with the SDK's high-level Client, which negotiates the 2026-07-28 protocol
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "keyplane", "mcp", "--store", "other"],
            env=_env(seeded, seeded.keys["other"]),
        )
        async with Client(params, mode="auto") as client:
            assert client.protocol_version in MODERN_PROTOCOL_VERSIONS
            listed = await client.list_tools()
            assert {t.name for t in listed.tools} == WRITER_TOOLS  # its default store is writable
            d = await client.call_tool(
                "check", {"user": "user:erin", "relation": "viewer", "object": "document:plan"}
            )
            assert d.structured_content is not None and d.structured_content["allowed"] is True

    anyio.run(main)


def test_revoked_key_stops_working_mid_session(seeded: Seeded) -> None:
    from keyplane.service.context import Services
    from keyplane.service.keys import authenticate, revoke_key

    async def main() -> None:
        async with stdio_session(seeded, seeded.keys["reader"]) as s:
            await ok(s, "read_model", {})
            svc = Services.open(seeded.settings(poll_interval=0.0))
            try:
                admin = authenticate(svc, seeded.keys["admin"])
                revoke_key(svc, admin, seeded.key_ids["reader"])
            finally:
                svc.close()
            await fails(s, "read_model", {}, "unauthenticated")
            with pytest.raises(MCPError, match="unauthenticated"):
                await s.list_tools()

    anyio.run(main)


@pytest.mark.parametrize("key", [None, "", "kp_not-a-real-key"])
def test_refuses_to_start_without_a_valid_key(seeded: Seeded, key: str | None) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "keyplane", "mcp"],
        env=_env(seeded, key),
        input="",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""  # nothing an MCP host could mistake for a message
    assert "error[unauthenticated]" in proc.stderr


def test_write_tools_are_the_documented_ones() -> None:
    assert set(WRITE_TOOLS) == {
        "write_tuples",
        "delete_tuples",
        "create_identity",
        "update_identity",
        "set_identity_owners",
        "suspend_identity",
        "reactivate_identity",
        "deprovision_identity",
        "create_delegation",
        "revoke_delegation",
        "revoke_token",
        "request_access",
        "cancel_access_request",
        "approve_access_request",
        "deny_access_request",
        "decide_review_item",
        "apply_privilege_recommendation",
        *GATEWAY_WRITE_TOOLS,
    }
