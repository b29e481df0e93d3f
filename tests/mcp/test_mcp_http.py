"""MCP over streamable HTTP at ``/mcp``: the official client against a real uvicorn server.

Each HTTP request carries the bearer key; without one, or with a bad one, ``/mcp`` answers
401 with Keyplane's error envelope before the MCP SDK sees the request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import anyio
import httpx
import httpx2
import pytest
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_scenario import (
    ALL_TOOLS,
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

from keyplane.mcp import READ_TOOLS
from keyplane.service.context import Services
from live_server import serve
from mcp import Client, ClientSession

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def services(seeded: Seeded) -> Iterator[Services]:
    svc = Services.open(seeded.settings(poll_interval=0.0))
    try:
        yield svc
    finally:
        svc.close()


@pytest.fixture
def base_url(services: Services) -> Iterator[str]:
    with serve(services) as url:
        yield url


@pytest.fixture
def read_only_url(seeded: Seeded) -> Iterator[str]:
    svc = Services.open(seeded.settings(poll_interval=0.0, mcp_read_only=True))
    try:
        with serve(svc) as url:
            yield url
    finally:
        svc.close()


@asynccontextmanager
async def http_session(url: str, key: str) -> AsyncIterator[ClientSession]:
    client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    async with (
        client,
        streamable_http_client(f"{url}/mcp", http_client=client) as (read, write),
        ClientSession(read, write) as session,
    ):
        info = await session.initialize()
        assert info.server_info.name == "keyplane"
        yield session


def test_admin_lists_and_calls_every_tool(seeded: Seeded, base_url: str) -> None:
    async def main() -> None:
        async with http_session(base_url, seeded.keys["admin"]) as s:
            assert await tool_names(s) == ALL_TOOLS
            await exercise_read_tools(s)
            await exercise_changes(s)
            await exercise_write_tools(s)
            await exercise_input_errors(s)

    anyio.run(main)


def test_tools_depend_on_the_key_of_each_request(seeded: Seeded, base_url: str) -> None:
    async def main() -> None:
        async with http_session(base_url, seeded.keys["writer"]) as s:
            assert await tool_names(s) == WRITER_TOOLS
            await exercise_write_tools(s)
        async with http_session(base_url, seeded.keys["reader"]) as s:
            assert await tool_names(s) == set(READ_TOOLS)
            await exercise_read_tools(s)
            tup = {"object": "document:roadmap", "relation": "viewer", "user": "user:dan"}
            await fails(s, "write_tuples", {"writes": [tup]}, "permission_denied")
            await fails(s, "read_changes", {}, "permission_denied")
        async with http_session(base_url, seeded.keys["auditor"]) as s:
            assert await tool_names(s) == set(READ_TOOLS)
            await exercise_changes(s)
            tup = {"object": "document:roadmap", "relation": "viewer", "user": "user:dan"}
            await fails(s, "write_tuples", {"writes": [tup]}, "permission_denied")
        async with http_session(base_url, seeded.keys["other"]) as s:
            assert await tool_names(s) == set(READ_TOOLS)
            await fails(s, "read_model", {}, "permission_denied")
            await ok(s, "read_model", {"store": "other"})

    anyio.run(main)


def test_modern_protocol_client(seeded: Seeded, base_url: str) -> None:
    """The SDK's high-level ``Client`` negotiates the 2026-07-28 protocol (no handshake)."""

    async def main() -> None:
        headers = {"Authorization": f"Bearer {seeded.keys['reader']}"}
        http = httpx2.AsyncClient(headers=headers, timeout=30)
        transport = streamable_http_client(f"{base_url}/mcp", http_client=http)
        async with http, Client(transport, mode="auto") as client:
            assert client.protocol_version in MODERN_PROTOCOL_VERSIONS
            listed = await client.list_tools()
            assert {t.name for t in listed.tools} == set(READ_TOOLS)
            result = await client.call_tool(
                "check", {"user": "user:bob", "relation": "viewer", "object": "document:roadmap"}
            )
            assert not result.is_error and result.structured_content is not None
            assert result.structured_content["allowed"] is True
            tup = {"object": "document:roadmap", "relation": "viewer", "user": "user:dan"}
            denied = await client.call_tool("write_tuples", {"writes": [tup]})
            assert denied.is_error
            assert denied.content[0].text.startswith("permission_denied: ")  # type: ignore[union-attr]

    anyio.run(main)


def test_read_only_server(seeded: Seeded, read_only_url: str) -> None:
    async def main() -> None:
        async with http_session(read_only_url, seeded.keys["admin"]) as s:
            assert await tool_names(s) == set(READ_TOOLS)
            await exercise_read_tools(s)
            tup = {"object": "document:roadmap", "relation": "viewer", "user": "user:dan"}
            text = await fails(s, "write_tuples", {"writes": [tup]}, "permission_denied")
            assert "read-only" in text
            await fails(s, "delete_tuples", {"deletes": [tup]}, "permission_denied")

    anyio.run(main)


INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream"}


@pytest.mark.parametrize("auth", [None, "Bearer", "Basic dXNlcjpwYXNz", "Bearer kp_not-a-real-key"])
def test_missing_or_invalid_key_is_401(base_url: str, auth: str | None) -> None:
    headers = dict(ACCEPT)
    if auth is not None:
        headers["Authorization"] = auth
    r = httpx.post(f"{base_url}/mcp", json=INIT, headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    error = r.json()["error"]
    assert error["code"] == "unauthenticated"
    assert error["request_id"] == r.headers["x-request-id"]  # the REST envelope, exactly


def _mcp_errors(exc: BaseException) -> list[MCPError]:
    if isinstance(exc, MCPError):
        return [exc]
    if isinstance(exc, BaseExceptionGroup):
        return [e for sub in exc.exceptions for e in _mcp_errors(sub)]
    return []


def test_official_client_without_a_key_gets_401(base_url: str) -> None:
    statuses: list[int] = []

    async def record(response: httpx2.Response) -> None:
        statuses.append(response.status_code)

    async def main() -> None:
        client = httpx2.AsyncClient(timeout=30, event_hooks={"response": [record]})
        async with (
            client,
            streamable_http_client(f"{base_url}/mcp", http_client=client) as (read, write),
            ClientSession(read, write, read_timeout_seconds=10) as session,
        ):
            await session.initialize()

    with pytest.raises(BaseException) as info:
        anyio.run(main)
    assert _mcp_errors(info.value), info.value
    assert statuses == [401]


def test_a_revoked_key_is_refused_at_once(
    seeded: Seeded, services: Services, base_url: str
) -> None:
    from keyplane.service.keys import authenticate, revoke_key

    async def main() -> None:
        async with http_session(base_url, seeded.keys["reader"]) as s:
            await ok(s, "read_model", {})
            admin = authenticate(services, seeded.keys["admin"])
            revoke_key(services, admin, seeded.key_ids["reader"])
            with pytest.raises(MCPError):  # the next HTTP request is refused with 401
                await s.call_tool("read_model", {})

    anyio.run(main)
    r = httpx.post(
        f"{base_url}/mcp",
        json=INIT,
        headers={**ACCEPT, "Authorization": f"Bearer {seeded.keys['reader']}"},
    )
    assert r.status_code == 401
