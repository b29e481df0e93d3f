"""The gateway's downstream client against a real MCP server (tests/gateway/downstream_server.py,
the official SDK) over streamable HTTP (uvicorn in a thread) and stdio (a child process).

Each credential kind is proven by what the server saw; pooled sessions by the initializes the
server counted.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest

from gateway.downstream_server import DownstreamHandle, serve_downstream, stdio_command
from keyplane.config import Settings
from keyplane.gateway.downstream import (
    DownstreamError,
    DownstreamPool,
    list_tools,
    list_tools_sync,
    open_secret,
    seal_secret,
)
from keyplane.gateway.records import DownstreamCredential, McpServer
from keyplane.secrets import generate_master_key
from keyplane.service.context import Services

pytestmark = pytest.mark.timeout(60)

STORE = "gw-store"
SECRET = "s3cret-Do-Not-Leak-42"


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Services]:
    services = Services.open(
        Settings(
            database_url=f"sqlite:///{tmp_path / 'kp.db'}",
            master_key=generate_master_key(),
            poll_interval=0.0,
        )
    )
    try:
        yield services
    finally:
        services.close()


def http_server(
    svc: Services,
    url: str,
    *,
    name: str = "tracker",
    secret: str | None = None,
    revision: int = 1,
    **cred: Any,
) -> McpServer:
    sealed = seal_secret(svc, STORE, name, secret) if secret is not None else None
    return McpServer(
        store_id=STORE,
        name=name,
        transport="http",
        url=url,
        credential=DownstreamCredential(**cred) if cred else DownstreamCredential(),
        encrypted_secret=sealed,
        revision=revision,
    )


def stdio_server(
    svc: Services,
    *,
    name: str = "local",
    secret: str | None = None,
    env: dict[str, str] | None = None,
    command: list[str] | None = None,
) -> McpServer:
    cred = DownstreamCredential(kind="env", env_var="TRACKER_TOKEN") if secret else None
    return McpServer(
        store_id=STORE,
        name=name,
        transport="stdio",
        command=tuple(command or stdio_command()),
        env={"DOWNSTREAM_SECRET_ENV": "TRACKER_TOKEN", **(env or {})},
        credential=cred or DownstreamCredential(),
        encrypted_secret=seal_secret(svc, STORE, name, secret) if secret else None,
    )


def text(result: types.CallToolResult) -> str:
    assert not result.is_error, result
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def names(tools: list[types.Tool]) -> list[str]:
    return sorted(t.name for t in tools)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- secrets -----------------------------------------------------------------------------


def test_sealed_secret_opens_only_for_its_store_and_server(svc: Services) -> None:
    server = http_server(svc, "http://127.0.0.1:1/mcp", secret=SECRET, kind="bearer")
    assert server.encrypted_secret is not None
    assert SECRET.encode() not in server.encrypted_secret
    assert open_secret(svc, server) == SECRET
    assert open_secret(svc, http_server(svc, "http://x/mcp")) is None
    assert SECRET not in repr(server) and SECRET not in json.dumps(server.to_dict())
    # the blob copied to another server (or store) does not open
    moved = McpServer(
        store_id=STORE,
        name="other",
        transport="http",
        url="http://127.0.0.1:1/mcp",
        credential=server.credential,
        encrypted_secret=server.encrypted_secret,
    )
    with pytest.raises(Exception, match="cannot decrypt"):
        open_secret(svc, moved)
    with pytest.raises(DownstreamError) as info:
        anyio.run(list_tools, svc, moved)
    assert info.value.details["reason"] == "secret_unreadable"


# -- discovery over HTTP and stdio ---------------------------------------------------------


def test_list_tools_over_http(svc: Services) -> None:
    with serve_downstream() as ds:
        tools = anyio.run(list_tools, svc, http_server(svc, ds.url))
        assert names(tools) == ["create_ticket", "delete_repo", "echo", "whoami"]
        by = {t.name: t for t in tools}
        assert by["echo"].annotations is not None and by["echo"].annotations.read_only_hint
        assert by["create_ticket"].annotations is None
        assert by["delete_repo"].annotations is not None
        assert by["delete_repo"].annotations.destructive_hint
        assert by["echo"].input_schema["properties"]["text"]["type"] == "string"
        # the tool list changes between discoveries: added, described anew, removed
        ds.set_tools(add=["search"], remove=["delete_repo"], describe={"echo": "Echo, louder."})
        again = {t.name: t for t in list_tools_sync(svc, http_server(svc, ds.url))}
        assert sorted(again) == ["create_ticket", "echo", "search", "whoami"]
        assert again["echo"].description == "Echo, louder."
        assert ds.initializes == 2 and ds.methods.count("tools/list") == 2


def test_list_tools_over_stdio(svc: Services) -> None:
    server = stdio_server(svc, env={"DOWNSTREAM_EXTRA_TOOLS": "search,fetch"})
    tools = list_tools_sync(svc, server)
    assert names(tools) == ["create_ticket", "delete_repo", "echo", "fetch", "search", "whoami"]


def test_list_tools_reads_every_page(svc: Services) -> None:
    with serve_downstream() as ds:
        ds.set_tools(add=["a1", "a2", "a3"], page_size=2)
        tools = list_tools_sync(svc, http_server(svc, ds.url))
        assert len(tools) == 7 and len(set(names(tools))) == 7
        assert ds.methods.count("tools/list") == 4  # pages of 2, 2, 2, 1


# -- every credential kind, proven by what the server saw ------------------------------------


def test_bearer_credential(svc: Services) -> None:
    with serve_downstream(require={"authorization": f"Bearer {SECRET}"}) as ds:
        server = http_server(svc, ds.url, secret=SECRET, kind="bearer")
        assert len(anyio.run(list_tools, svc, server)) == 4
        assert ds.seen_auth and all(
            h == {"authorization": f"Bearer {SECRET}"} for h in ds.seen_auth
        )

        async def whoami() -> dict[str, Any]:
            async with DownstreamPool(svc) as pool:
                return dict(json.loads(text(await pool.call_tool(server, "whoami", {}))))

        assert anyio.run(whoami)["authorization"] == f"Bearer {SECRET}"
        # a wrong secret: refused, and the error says so without the secret
        wrong = http_server(svc, ds.url, secret="not-" + SECRET, kind="bearer")
        with pytest.raises(DownstreamError) as info:
            anyio.run(list_tools, svc, wrong)
        err = info.value
        assert err.code == "downstream_unavailable" and err.details["reason"] == "unauthorized"
        assert "HTTP 401" in err.message and "'tracker'" in err.message
        assert_no_secret(err, SECRET, "not-" + SECRET)


def test_header_credential(svc: Services) -> None:
    with serve_downstream(require={"x-api-key": SECRET}) as ds:
        server = http_server(svc, ds.url, secret=SECRET, kind="header", header="X-Api-Key")
        assert len(list_tools_sync(svc, server)) == 4
        assert all(h == {"x-api-key": SECRET} for h in ds.seen_auth)

        async def whoami() -> dict[str, Any]:
            async with DownstreamPool(svc) as pool:
                return dict(json.loads(text(await pool.call_tool(server, "whoami", {}))))

        seen = anyio.run(whoami)
        assert seen["x-api-key"] == SECRET and seen["authorization"] is None


def test_oauth_client_credentials(svc: Services) -> None:
    with serve_downstream(client_id="gw-client", client_secret=SECRET, token_ttl=3600) as ds:
        server = http_server(
            svc,
            ds.url,
            name="oauthed",
            secret=SECRET,
            kind="oauth_client_credentials",
            token_url=ds.token_url,
            client_id="gw-client",
            scope="tickets:read tickets:write",
            audience="https://tracker.example",
        )
        assert len(list_tools_sync(svc, server)) == 4
        assert ds.token_requests == [
            {
                "grant_type": "client_credentials",
                "scope": "tickets:read tickets:write",
                "audience": "https://tracker.example",
                "client_id": "gw-client",
            }
        ]
        issued = set(ds.tokens)
        assert len(issued) == 1
        assert all(h["authorization"] == f"Bearer {next(iter(issued))}" for h in ds.seen_auth)
        # the token is cached: a second discovery asks the token endpoint nothing
        assert len(list_tools_sync(svc, server)) == 4
        assert len(ds.token_requests) == 1

        async def pooled() -> list[str]:
            async with DownstreamPool(svc) as pool:
                first = text(await pool.call_tool(server, "echo", {"text": "one"}))
                # the server forgets its tokens: the next request gets 401, the gateway
                # fetches a new token once and the call goes through on the same session
                ds.revoke_tokens()
                second = text(await pool.call_tool(server, "echo", {"text": "two"}))
                return [first, second]

        assert anyio.run(pooled) == ["one", "two"]
        assert len(ds.token_requests) == 2 and len(ds.tokens) == 1
        assert ds.initializes == 3  # two discoveries, one pooled session
        # a wrong client secret: the token endpoint refuses, the error says where
        wrong = http_server(
            svc,
            ds.url,
            name="oauthed",
            secret="wrong-" + SECRET,
            kind="oauth_client_credentials",
            token_url=ds.token_url,
            client_id="gw-client",
        )
        with pytest.raises(DownstreamError) as info:
            list_tools_sync(svc, wrong)
        assert info.value.details["reason"] == "unauthorized"
        assert "token endpoint" in info.value.message and "HTTP 401" in info.value.message
        assert_no_secret(info.value, SECRET, "wrong-" + SECRET)


# -- the pool ------------------------------------------------------------------------------


def test_pool_reuses_one_session_and_reconnects_when_needed(svc: Services) -> None:
    with serve_downstream() as ds:
        server = http_server(svc, ds.url, revision=1)

        async def main() -> None:
            async with DownstreamPool(svc) as pool:
                for i in range(3):
                    assert text(await pool.call_tool(server, "echo", {"text": f"hi {i}"})) == (
                        f"hi {i}"
                    )
                assert ds.initializes == 1 and pool.sessions == [(STORE, "tracker")]
                assert text(await pool.call_tool(server, "create_ticket", {"title": "T"})) == (
                    "created ticket: T"
                )
                assert ds.initializes == 1
                # the server restarts: its sessions are gone; the call reconnects once
                await anyio.to_thread.run_sync(ds.restart)
                assert text(await pool.call_tool(server, "echo", {"text": "back"})) == "back"
                assert ds.initializes == 2
                # a new revision alone (every discovery bumps it): the same session
                bumped = http_server(svc, ds.url, revision=2)
                assert text(await pool.call_tool(bumped, "echo", {"text": "r2"})) == "r2"
                assert ds.initializes == 2
                # what the connection depends on changed (the credential): a new session
                changed = http_server(
                    svc, ds.url, revision=3, secret="k", kind="header", header="X-Trace"
                )
                assert text(await pool.call_tool(changed, "echo", {"text": "r3"})) == "r3"
                assert ds.initializes == 3
                assert ds.seen_auth[-1] == {"x-trace": "k"}
                await pool.call_tool(changed, "echo", {"text": "again"})
                assert ds.initializes == 3
                # forget closes it; the next call opens another
                await pool.forget(STORE, "tracker")
                assert pool.sessions == []
                await pool.call_tool(changed, "echo", {"text": "new"})
                assert ds.initializes == 4

        anyio.run(main)
        assert next(c for c in ds.calls if c[0] == "echo") == ("echo", {"text": "hi 0"})
        # every call delivered exactly once (none resent after an answer)
        assert len(ds.calls) == 9


def test_pool_runs_concurrent_calls_on_one_session(svc: Services) -> None:
    with serve_downstream() as ds:
        server = http_server(svc, ds.url)
        out: dict[int, str] = {}

        async def main() -> None:
            async with DownstreamPool(svc) as pool, anyio.create_task_group() as tg:

                async def one(i: int) -> None:
                    out[i] = text(await pool.call_tool(server, "echo", {"text": str(i)}))

                for i in range(8):
                    tg.start_soon(one, i)

        anyio.run(main)
        assert out == {i: str(i) for i in range(8)}
        assert ds.initializes == 1


def test_pool_over_stdio_env_credential_one_child(
    svc: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the gateway's own environment holds its master key: the child must not inherit it
    monkeypatch.setenv("KEYPLANE_MASTER_KEY", "the-gateway-master-key")
    monkeypatch.setenv("KEYPLANE_DATABASE_URL", "sqlite:///secret.db")
    events = tmp_path / "events.jsonl"
    server = stdio_server(svc, secret=SECRET, env={"DOWNSTREAM_EVENTS_FILE": str(events)})

    async def main() -> None:
        async with DownstreamPool(svc) as pool:
            seen = json.loads(text(await pool.call_tool(server, "whoami", {})))
            assert seen == {
                "transport": "stdio",
                "env_var": "TRACKER_TOKEN",
                "secret": SECRET,
                "keyplane_env": [],
            }
            for i in range(2):
                assert text(await pool.call_tool(server, "echo", {"text": str(i)})) == str(i)
            await pool.forget(STORE, "local")
            assert text(await pool.call_tool(server, "delete_repo", {"repo": "r"})) == "deleted r"

    anyio.run(main)
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    methods = [line["method"] for line in lines]
    assert methods.count("initialize") == 2 and methods.count("tools/call") == 4
    assert lines[-1] == {"method": "tools/call", "tool": "delete_repo", "arguments": {"repo": "r"}}


def test_tool_errors_come_back_as_results(svc: Services) -> None:
    with serve_downstream() as ds:
        server = http_server(svc, ds.url)

        async def main() -> types.CallToolResult:
            async with DownstreamPool(svc) as pool:
                # a missing required argument: the tool fails, the server answers isError
                return await pool.call_tool(server, "create_ticket", {})

        result = anyio.run(main)
        assert result.is_error
        assert ds.calls == [("create_ticket", {})]


def test_call_timeout(svc: Services) -> None:
    with serve_downstream() as ds:
        ds.set_tools(add=[{"name": "slow", "sleep": 3}])
        server = http_server(svc, ds.url)

        async def main() -> None:
            async with DownstreamPool(svc, call_timeout=0.5) as pool:
                with pytest.raises(DownstreamError) as info:
                    await pool.call_tool(server, "slow", {})
                assert info.value.details["reason"] == "timeout", info.value.message
                # the session stays usable; the slow call was sent once
                assert text(await pool.call_tool(server, "echo", {"text": "ok"})) == "ok"

        anyio.run(main)
        assert [c[0] for c in ds.calls] == ["slow", "echo"] and ds.initializes == 1


# -- unreachable servers -------------------------------------------------------------------


def test_unreachable_http_server(svc: Services) -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    server = http_server(svc, url, secret=SECRET, kind="bearer")
    with pytest.raises(DownstreamError) as info:
        list_tools_sync(svc, server, timeout=5)
    err = info.value
    assert err.details == {"server": "tracker", "reason": "unreachable"}
    assert err.message.startswith(f"MCP server 'tracker' is unreachable ({url})")
    assert "ConnectError" in err.message
    assert_no_secret(err, SECRET)

    async def pooled() -> None:
        async with DownstreamPool(svc) as pool:
            await pool.call_tool(server, "echo", {"text": "x"})

    with pytest.raises(DownstreamError, match="unreachable"):
        anyio.run(pooled)


def test_server_going_away_mid_session(svc: Services) -> None:
    ds = DownstreamHandle()
    ds.start()
    try:
        server = http_server(svc, ds.url)

        async def main() -> None:
            async with DownstreamPool(svc) as pool:
                assert text(await pool.call_tool(server, "echo", {"text": "a"})) == "a"
                await anyio.to_thread.run_sync(ds.stop)
                with pytest.raises(DownstreamError) as info:
                    await pool.call_tool(server, "echo", {"text": "b"})
                assert info.value.details["reason"] == "unreachable", info.value.message
                # back on the same port: the pool connects again
                await anyio.to_thread.run_sync(ds.start)
                assert text(await pool.call_tool(server, "echo", {"text": "c"})) == "c"

        anyio.run(main)
    finally:
        ds.stop()


def test_stdio_command_that_does_not_start(svc: Services) -> None:
    server = stdio_server(svc, command=["/nonexistent/mcp-server-binary"], secret=SECRET)
    with pytest.raises(DownstreamError) as info:
        list_tools_sync(svc, server, timeout=5)
    assert info.value.details["reason"] == "unreachable"
    assert "/nonexistent/mcp-server-binary" in info.value.message
    assert_no_secret(info.value, SECRET)


def assert_no_secret(err: DownstreamError, *secrets: str) -> None:
    rendered = [err.message, repr(err), str(err), json.dumps(err.to_dict(), default=str)]
    for s in secrets:
        for r in rendered:
            assert s not in r


def test_nothing_renders_the_secret(svc: Services) -> None:
    with serve_downstream(require={"authorization": f"Bearer {SECRET}"}) as ds:
        server = http_server(svc, ds.url, secret=SECRET, kind="bearer")

        async def main() -> str:
            async with DownstreamPool(svc) as pool:
                await pool.call_tool(server, "echo", {"text": "x"})
                return repr(pool) + repr(pool._entries)

        assert SECRET not in anyio.run(main)
        assert SECRET not in repr(server) and SECRET not in str(server.to_dict())
    assert os.environ.get("TRACKER_TOKEN") is None


def test_stdio_child_that_dies(svc: Services, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    tools = {"add": [{"name": "crash", "exit": True}]}
    server = stdio_server(
        svc, env={"DOWNSTREAM_EVENTS_FILE": str(events), "DOWNSTREAM_TOOLS": json.dumps(tools)}
    )

    async def main() -> None:
        async with DownstreamPool(svc) as pool:
            assert text(await pool.call_tool(server, "echo", {"text": "1"})) == "1"
            # the child exits while answering: an error, and the call is not sent again
            with pytest.raises(DownstreamError) as info:
                await pool.call_tool(server, "crash", {})
            assert info.value.details["reason"] == "unreachable", info.value.message
            # the next call starts a new child
            assert text(await pool.call_tool(server, "echo", {"text": "2"})) == "2"

    anyio.run(main)
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert [x["method"] for x in lines].count("initialize") == 2
    assert [x.get("tool") for x in lines if x["method"] == "tools/call"] == [
        "echo",
        "crash",
        "echo",
    ]
