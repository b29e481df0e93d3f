"""The MCP gateway's administration on every surface (issue 9): REST over real HTTP (a
uvicorn server in a thread), the SDK (``Client``, ``AsyncClient`` and the embedded
``Keyplane`` run through one flow), the CLI (local database and a live server) and the MCP
admin tools through the official client on ``/mcp`` — each against a real downstream MCP
server (tests/gateway/downstream_server.py) that requires the bearer secret the gateway
injects. The secret goes in on every surface and never comes back out."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp.client.streamable_http import streamable_http_client
from typer.testing import CliRunner

from keyplane import Keyplane
from keyplane.cli.main import app as cli_app
from keyplane.config import Settings
from keyplane.errors import (
    GatewayServerNotFoundError,
    PermissionDeniedError,
    ToolDefinitionChangedError,
    ValidationError,
)
from keyplane.gateway import downstream
from keyplane.gateway.records import DiscoveryResult, McpServer, McpTool, Toolset
from keyplane.mcp import NOT_EXPOSED, READ_TOOLS, WRITE_TOOLS
from keyplane.sdk import AsyncClient, AsyncKeyplaneAPI, Client, KeyplaneAPI
from keyplane.sdk.gateway_api import AsyncGatewayAPI, GatewayAPI
from keyplane.secrets import generate_master_key
from keyplane.service import stores
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.service.gateway import KillSwitch
from keyplane.service.keys import authenticate, bootstrap_admin, create_key
from live_server import serve
from mcp import ClientSession

from .downstream_server import DownstreamHandle, serve_downstream

pytestmark = pytest.mark.timeout(120)

SECRET = "gw-surface-s3cret-0123456789"
S = "default"
TOOLS = {"echo", "whoami", "create_ticket", "delete_repo"}


@pytest.fixture(scope="module")
def ds() -> Iterator[DownstreamHandle]:
    with serve_downstream(require={"authorization": f"Bearer {SECRET}"}) as handle:
        yield handle


@pytest.fixture(autouse=True)
def _fresh_tools(request: pytest.FixtureRequest) -> None:
    if "ds" in request.fixturenames:
        request.getfixturevalue("ds").reset_tools()


def _settings(db: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{db}", poll_interval=0.0, master_key=generate_master_key()
    )


class Live:
    def __init__(self, url: str, keys: dict[str, str], svc: Services) -> None:
        self.url, self.keys, self.svc = url, keys, svc


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    svc = Services.open(_settings(tmp_path / "server.db"))
    try:
        stores.create_store(svc, Caller.system_caller(), S, store_id=S)
        _, admin = bootstrap_admin(svc)
        _, reader = create_key(svc, authenticate(svc, admin), owner="r", roles=["reader"])
        with serve(svc) as base:
            yield Live(base, {"admin": admin, "reader": reader}, svc)
    finally:
        svc.close()


def _server_body(ds: DownstreamHandle, name: str = "docs", **kw: Any) -> dict[str, Any]:
    return {
        "name": name,
        "transport": "http",
        "url": ds.url,
        "credential": {"kind": "bearer"},
        "secret": SECRET,
        "description": "the docs server",
        **kw,
    }


# ---------------------------------------------------------------------------- REST


def test_rest(live: Live, ds: DownstreamHandle) -> None:
    seen: list[str] = []  # every response body: the secret must be in none

    def call(method: str, path: str, key: str = "admin", **kw: Any) -> httpx.Response:
        r = httpx.request(
            method,
            f"{live.url}/v1/stores/{S}/gateway{path}",
            headers={"Authorization": f"Bearer {live.keys[key]}"},
            timeout=60,
            **kw,
        )
        seen.append(r.text)
        return r

    r = call("POST", "/servers", json=_server_body(ds))
    assert r.status_code == 201, r.text
    server = r.json()
    assert server["name"] == "docs" and server["object"] == "mcp_server:docs"
    assert server["credential"]["kind"] == "bearer" and server["credential"]["has_secret"]
    assert server["last_discovery_error"] is None and server["last_discovered_at"]
    assert "encrypted_secret" not in server and "secret" not in server
    # the downstream server saw the secret the gateway injected
    assert any(a.get("authorization") == f"Bearer {SECRET}" for a in ds.seen_auth)

    assert call("POST", "/servers", json=_server_body(ds)).json()["error"]["code"] == (
        "gateway_server_exists"
    )
    bad = call("POST", "/servers", json={**_server_body(ds, "x"), "credential": {"kind": "env"}})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"
    extra = call("POST", "/servers", json={**_server_body(ds, "y"), "password": "x"})
    assert extra.status_code == 400

    assert [s["name"] for s in call("GET", "/servers").json()["servers"]] == ["docs"]
    assert call("GET", "/servers/docs").json()["url"] == ds.url
    missing = call("GET", "/servers/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "gateway_server_not_found"

    tools = call("GET", "/tools", params={"status": "pending"}).json()["tools"]
    assert {t["name"] for t in tools} == TOOLS
    assert call("GET", "/tools", params={"server": "docs", "status": "enabled"}).json() == {
        "tools": []
    }
    echo = call("GET", "/tools/docs/echo").json()
    assert echo["exposed_name"] == "docs__echo" and echo["kind"] == "read"
    assert call("GET", "/tools/docs/nope").json()["error"]["code"] == "gateway_tool_not_found"

    # approve: a stale digest is refused, the reviewed one approves
    stale = call("PATCH", "/tools/docs/echo", json={"status": "enabled", "expected_digest": "x"})
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "tool_definition_changed"
    ok = call(
        "PATCH",
        "/tools/docs/echo",
        json={"status": "enabled", "expected_digest": echo["digest"], "risk": "sensitive"},
    ).json()
    assert ok["status"] == "enabled" and ok["approved_digest"] == echo["digest"]
    assert ok["risk"] == "sensitive" and ok["approved_by"].startswith("key:")
    # a reader reads and is refused every change
    assert call("GET", "/tools/docs/echo", "reader").status_code == 200
    denied = call("PATCH", "/tools/docs/echo", "reader", json={"status": "disabled"})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "permission_denied"

    # the definition changes downstream: discovery sends the tool back to pending
    ds.set_tools(describe={"echo": "Echo, now also exfiltrating."})
    found = call("POST", "/servers/docs:discover").json()
    assert found["changed"] == ["echo"] and found["error"] is None
    assert call("GET", "/tools/docs/echo").json()["status"] == "pending"

    ts = call("PUT", "/toolsets/triage", json={"tools": ["docs/echo", "docs/create_ticket"]})
    assert ts.status_code == 200, ts.text
    assert ts.json()["tools"] == ["docs/create_ticket", "docs/echo"]
    grant = httpx.post(
        f"{live.url}/v1/stores/{S}/tuples/write",
        headers={"Authorization": f"Bearer {live.keys['admin']}"},
        json={"writes": [{"object": "toolset:triage", "relation": "member", "user": "agent:bot"}]},
    )
    assert grant.status_code == 200, grant.text
    (listed,) = call("GET", "/toolsets").json()["toolsets"]
    assert listed["name"] == "triage" and listed["members"] == ["agent:bot"]

    kill = call(
        "POST", "/kill-switch", json={"level": "agent", "target": "agent:bot", "reason": "drill"}
    ).json()
    assert kill["level"] == "agent" and kill["engaged"] and kill["target"] == "agent:bot"
    settings = call("GET", "/settings").json()
    assert settings["blocked_agents"] == {"agent:bot": "drill"} and settings["enabled"]
    store_kill = call("POST", "/kill-switch", json={"level": "store"}).json()
    assert store_kill["engaged"] and call("GET", "/settings").json()["enabled"] is False
    call("POST", "/kill-switch", json={"level": "store", "engaged": False})
    assert call("GET", "/settings").json()["enabled"] is True
    patched = call("PATCH", "/settings", json={"record_arguments": True}).json()
    assert patched["record_arguments"] is True

    # changing the secret; the answer still holds none
    upd = call("PATCH", "/servers/docs", json={"secret": SECRET + "-2", "description": "d2"})
    assert upd.status_code == 200 and upd.json()["description"] == "d2"

    assert call("DELETE", "/toolsets/triage").json()["revision"] > 0
    assert call("GET", "/toolsets").json() == {"toolsets": []}
    assert call("DELETE", "/servers/docs").json()["revision"] > 0
    assert call("GET", "/servers/docs").status_code == 404
    assert call("GET", "/tools").json() == {"tools": []}

    for text in seen:
        assert SECRET not in text


def test_rest_openapi_lists_the_routes(live: Live) -> None:
    spec = httpx.get(f"{live.url}/openapi.json").json()
    ops = {
        op["operationId"]
        for path, item in spec["paths"].items()
        if "/gateway/" in path
        for op in item.values()
        if isinstance(op, dict)
    }
    assert ops == {
        "register_server", "list_servers", "get_server", "update_server", "delete_server",
        "discover_tools", "list_tools", "get_tool", "update_tool", "put_toolset",
        "list_toolsets", "delete_toolset", "set_kill_switch", "get_gateway_settings",
        "update_gateway_settings",
    }  # fmt: skip
    # the secret is a request field only
    schemas = spec["components"]["schemas"]
    assert "secret" in schemas["RegisterServerRequest"]["properties"]
    assert "secret" not in schemas["ServerOut"]["properties"]
    assert set(schemas["DownstreamCredentialOut"]["properties"]) >= {"has_secret", "secret_set_at"}
    assert "secret" not in schemas["DownstreamCredentialOut"]["properties"]


# ---------------------------------------------------------------------------- SDK


GATEWAY_METHODS = sorted(
    n for n, v in vars(GatewayAPI).items() if callable(v) and not n.startswith("_")
)


@pytest.mark.parametrize("name", GATEWAY_METHODS)
def test_sdk_same_signature_everywhere(name: str) -> None:
    """Names, kinds, defaults: the embedded API, Client, AsyncClient and the protocols."""

    def shape(fn: Any) -> list[tuple[str, Any, Any]]:
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    want = shape(getattr(Keyplane, name))
    for impl in (Client, AsyncClient, KeyplaneAPI, AsyncKeyplaneAPI, GatewayAPI, AsyncGatewayAPI):
        assert shape(getattr(impl, name)) == want, impl
    assert inspect.iscoroutinefunction(getattr(AsyncClient, name))
    assert len(GATEWAY_METHODS) == 15


def _sdk_flow(kp: KeyplaneAPI, ds: DownstreamHandle) -> None:
    """One flow through the SDK interface: the same calls, results and errors in process
    and over HTTP."""
    server = kp.register_server(
        "docs", transport="http", url=ds.url, credential={"kind": "bearer"}, secret=SECRET
    )
    assert isinstance(server, McpServer) and server.credential.kind == "bearer"
    assert server.credential.secret_set_at is not None and server.encrypted_secret is None
    assert SECRET not in repr(server) and SECRET not in json.dumps(server.to_dict())
    assert kp.get_server("docs") == server
    assert [s.name for s in kp.list_servers()] == ["docs"]

    tools = kp.list_tools(server="docs")
    assert all(isinstance(t, McpTool) for t in tools) and {t.name for t in tools} == TOOLS
    echo = kp.get_tool("docs", "echo")
    assert echo.status == "pending" and echo.exposed == "docs__echo"
    with pytest.raises(ToolDefinitionChangedError):
        kp.update_tool("docs", "echo", status="enabled", expected_digest="sha256:0")
    approved = kp.update_tool("docs", "echo", status="enabled", expected_digest=echo.digest)
    assert approved.status == "enabled" and approved.approved_digest == echo.digest
    assert [t.name for t in kp.list_tools(status="enabled")] == ["echo"]
    classified = kp.update_tool("docs", "delete_repo", risk="dangerous", kind="delete")
    assert (classified.kind, classified.risk, classified.status) == (
        "delete",
        "dangerous",
        "pending",
    )

    ds.set_tools(remove=["whoami"])
    found = kp.discover_tools("docs")
    assert isinstance(found, DiscoveryResult) and found.removed == ("whoami",)
    assert kp.get_tool("docs", "whoami").status == "removed"

    ts = kp.put_toolset("triage", ["docs/echo"])
    assert isinstance(ts, Toolset) and ts.tools == ("docs/echo",)
    kp.write_tuples(["toolset:triage#member@agent:bot"])
    assert [(t.name, t.members) for t in kp.list_toolsets()] == [("triage", ("agent:bot",))]

    k = kp.set_kill_switch(level="tool", target="docs/echo", reason="drill")
    assert isinstance(k, KillSwitch) and (k.level, k.target, k.engaged) == (
        "tool",
        "docs/echo",
        True,
    )
    assert kp.get_tool("docs", "echo").status == "disabled"
    kp.set_kill_switch(level="tool", target="docs/echo", engaged=False)
    assert kp.get_tool("docs", "echo").status == "enabled"
    s = kp.update_gateway_settings(record_arguments=True)
    assert s.record_arguments and kp.get_gateway_settings().record_arguments

    updated = kp.update_server("docs", description="docs v2", discovery_interval_seconds=0)
    assert (updated.description, updated.discovery_interval_seconds) == ("docs v2", 0)
    with pytest.raises(ValidationError):
        kp.update_server("docs", url="not a url")

    assert kp.delete_toolset("triage") > 0 and kp.list_toolsets() == []
    assert kp.delete_server("docs") > 0
    with pytest.raises(GatewayServerNotFoundError):
        kp.get_server("docs")


def test_sdk_remote(live: Live, ds: DownstreamHandle) -> None:
    with Client(live.url, live.keys["admin"]) as kp:
        _sdk_flow(kp, ds)
    with Client(live.url, live.keys["reader"]) as reader:
        assert reader.list_servers() == []
        with pytest.raises(PermissionDeniedError):
            reader.set_kill_switch(level="store")


def test_sdk_embedded(tmp_path: Path, ds: DownstreamHandle) -> None:
    with Keyplane.open(settings=_settings(tmp_path / "embedded.db")) as kp:
        _sdk_flow(kp, ds)


def test_sdk_async(live: Live, ds: DownstreamHandle) -> None:
    async def main() -> None:
        async with AsyncClient(live.url, live.keys["admin"]) as kp:
            server = await kp.register_server(
                "docs", transport="http", url=ds.url, credential={"kind": "bearer"},
                secret=SECRET,
            )  # fmt: skip
            assert server.last_discovery_error is None
            tools = await kp.list_tools(server="docs", status="pending")
            assert {t.name for t in tools} == TOOLS
            t = await kp.update_tool("docs", "echo", status="enabled")
            assert t.status == "enabled"
            assert (await kp.put_toolset("t1", ["docs/echo"])).tools == ("docs/echo",)
            assert [x.name for x in await kp.list_toolsets()] == ["t1"]
            k = await kp.set_kill_switch(level="server", target="docs")
            assert k.engaged and (await kp.get_server("docs")).status == "disabled"
            assert (await kp.get_gateway_settings()).enabled
            assert (await kp.discover_tools("docs")).unchanged
            assert await kp.delete_toolset("t1") > 0
            assert await kp.delete_server("docs") > 0

    asyncio.run(main())


# ---------------------------------------------------------------------------- CLI


def _cli(env: dict[str, str]) -> Any:
    runner = CliRunner()

    def run(*args: str, input: str | None = None, code: int = 0) -> str:
        res = runner.invoke(cli_app, ["gateway", *args], env=env, input=input)
        assert res.exit_code == code, (args, res.exit_code, res.stdout, res.stderr)
        assert SECRET not in res.stdout and SECRET not in res.stderr
        return res.stdout

    return run


def test_cli_local(tmp_path: Path, ds: DownstreamHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("KEYPLANE_URL", "KEYPLANE_API_KEY", "KEYPLANE_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    env = {"KEYPLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'local.db'}", "DS_TOKEN": SECRET}
    run = _cli(env)

    # the secret from an environment variable (never argv)
    added = json.loads(run("server", "add", "docs", "--server-url", ds.url, "--credential",
                           "bearer", "--secret-env", "DS_TOKEN", "--json"))  # fmt: skip
    assert added["credential"]["has_secret"] and added["last_discovery_error"] is None
    # from a hidden prompt
    run("server", "add", "docs2", "--server-url", ds.url, "--credential", "bearer",
        "--no-discover", input=f"{SECRET}\n")  # fmt: skip
    # from stdin
    run("server", "update", "docs2", "--secret-stdin", "--description", "two",
        input=f"{SECRET}\n")  # fmt: skip
    run("server", "add", "bad", "--server-url", ds.url, "--secret-env", "NOPE", code=2)
    assert "docs2" in run("server", "list")
    assert json.loads(run("server", "get", "docs2", "--json"))["description"] == "two"

    tools = json.loads(run("tool", "list", "--server", "docs", "--json"))
    assert {t["name"] for t in tools} == TOOLS and {t["status"] for t in tools} == {"pending"}
    assert "docs/echo" in run("tool", "list")
    digest = json.loads(run("tool", "get", "docs/echo", "--json"))["digest"]
    approved = json.loads(run("tool", "approve", "docs/echo", "--digest", digest, "--json"))
    assert approved["status"] == "enabled"
    run("tool", "approve", "docs/create_ticket", "--digest", "sha256:0", code=1)
    c = json.loads(run("tool", "classify", "docs/create_ticket", "--risk", "dangerous", "--json"))
    assert c["risk"] == "dangerous"
    assert json.loads(run("tool", "disable", "docs/echo", "--json"))["status"] == "disabled"
    assert json.loads(run("tool", "enable", "docs/echo", "--json"))["status"] == "enabled"
    run("tool", "get", "not-a-ref", code=2)

    assert "0 added, 0 changed, 0 removed, 4 unchanged" in run("server", "discover", "docs")
    ds.set_tools(add=["search"])
    assert "1 added" in run("server", "discover", "docs")

    ts = json.loads(run("toolset", "put", "triage", "docs/echo", "docs/search", "--json"))
    assert ts["tools"] == ["docs/echo", "docs/search"]
    assert "triage" in run("toolset", "list")

    assert "engaged: agent agent:bot" in run("kill", "--agent", "agent:bot", "--reason", "drill")
    assert "engaged: store default" in run("kill")
    assert "released: store default" in run("kill", "--release")
    run("kill", "--server", "docs", "--agent", "agent:x", code=2)
    got = json.loads(run("settings", "get", "--json"))
    assert got["blocked_agents"] == {"agent:bot": "drill"} and got["enabled"]
    assert json.loads(run("settings", "set", "--record-arguments", "--json"))["record_arguments"]

    assert json.loads(run("toolset", "delete", "triage", "--json"))["revision"] > 0
    assert "Deleted server docs2" in run("server", "delete", "docs2")
    run("server", "get", "docs2", code=1)


def test_cli_remote(live: Live, ds: DownstreamHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEYPLANE_DATABASE_URL", raising=False)
    env = {"KEYPLANE_URL": live.url, "KEYPLANE_API_KEY": live.keys["admin"], "DS": SECRET}
    run = _cli(env)
    run("server", "add", "docs", "--server-url", ds.url, "--credential", "bearer",
        "--secret-env", "DS")  # fmt: skip
    assert "docs__echo" in run("tool", "list")
    run("tool", "approve", "docs/echo")
    assert json.loads(run("tool", "list", "--status", "enabled", "--json"))[0]["name"] == "echo"
    # the server holds the secret sealed, and only its gateway code opens it
    stored = live.svc.storage.read_gateway(S).servers["docs"]
    assert stored.encrypted_secret and SECRET.encode() not in stored.encrypted_secret
    assert downstream.open_secret(live.svc, stored) == SECRET


def test_cli_stdio_refuses_without_a_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYPLANE_")}
    env["KEYPLANE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'stdio.db'}"
    proc = subprocess.run(
        [sys.executable, "-m", "keyplane", "gateway", "stdio", "--store", "default"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 1, proc.stderr
    assert "error[unauthenticated]" in proc.stderr and proc.stdout == ""


# ---------------------------------------------------------------------------- MCP


@asynccontextmanager
async def _session(url: str, key: str) -> AsyncIterator[ClientSession]:
    client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60)
    async with (
        client,
        streamable_http_client(f"{url}/mcp", http_client=client) as (read, write),
        ClientSession(read, write) as s,
    ):
        await s.initialize()
        yield s


GATEWAY_READ = {
    "gateway_list_servers",
    "gateway_get_server",
    "gateway_list_tools",
    "gateway_get_tool",
    "gateway_list_toolsets",
    "gateway_get_settings",
}
GATEWAY_WRITE = {
    "gateway_discover_tools",
    "gateway_delete_server",
    "gateway_update_tool",
    "gateway_put_toolset",
    "gateway_delete_toolset",
    "gateway_kill_switch",
    "gateway_update_settings",
}


def test_mcp_catalogue() -> None:
    assert set(READ_TOOLS) >= GATEWAY_READ and set(WRITE_TOOLS) >= GATEWAY_WRITE
    assert "secret" in NOT_EXPOSED["gateway.register_server"]
    assert "secret" in NOT_EXPOSED["gateway.update_server"]


def test_mcp_admin_tools(live: Live, ds: DownstreamHandle) -> None:
    with Client(live.url, live.keys["admin"]) as kp:
        kp.register_server(
            "docs", transport="http", url=ds.url, credential={"kind": "bearer"}, secret=SECRET
        )

    async def call(s: ClientSession, name: str, args: dict[str, Any]) -> tuple[Any, str]:
        r = await s.call_tool(name, args)
        text: str = r.content[0].text  # type: ignore[union-attr]
        assert SECRET not in text and SECRET not in json.dumps(r.structured_content)
        return r, text

    async def main() -> None:
        async with _session(live.url, live.keys["admin"]) as s:
            listed = {t.name for t in (await s.list_tools()).tools}
            assert listed >= GATEWAY_READ | GATEWAY_WRITE
            assert not {"gateway_register_server", "gateway_update_server"} & listed
            r, text = await call(s, "gateway_list_servers", {})
            assert not r.is_error and r.structured_content["servers"][0]["name"] == "docs"
            assert "docs (http" in text
            r, _ = await call(s, "gateway_list_tools", {"status": "pending"})
            assert {t["name"] for t in r.structured_content["tools"]} == TOOLS
            r, _ = await call(s, "gateway_get_tool", {"server": "docs", "tool": "echo"})
            digest = r.structured_content["digest"]
            r, text = await call(
                s,
                "gateway_update_tool",
                {"server": "docs", "tool": "echo", "status": "enabled", "expected_digest": digest},
            )
            assert not r.is_error and r.structured_content["status"] == "enabled", text
            r, text = await call(s, "gateway_get_server", {"name": "nope"})
            assert r.is_error and text.startswith("gateway_server_not_found: ")
            r, _ = await call(s, "gateway_put_toolset", {"name": "t", "tools": ["docs/echo"]})
            assert r.structured_content["tools"] == ["docs/echo"]
            r, _ = await call(s, "gateway_list_toolsets", {})
            assert [t["name"] for t in r.structured_content["toolsets"]] == ["t"]
            r, text = await call(
                s, "gateway_kill_switch", {"level": "agent", "target": "agent:bot"}
            )
            assert r.structured_content["engaged"] and "engaged: agent agent:bot" in text
            r, _ = await call(s, "gateway_get_settings", {})
            assert list(r.structured_content["blocked_agents"]) == ["agent:bot"]
            r, _ = await call(s, "gateway_update_settings", {"record_arguments": True})
            assert r.structured_content["record_arguments"] is True
            r, _ = await call(s, "gateway_discover_tools", {"name": "docs"})
            assert set(r.structured_content["unchanged"]) == TOOLS
            r, _ = await call(s, "gateway_delete_toolset", {"name": "t"})
            assert r.structured_content["revision"] > 0
            r, _ = await call(s, "gateway_delete_server", {"name": "docs"})
            assert not r.is_error
        async with _session(live.url, live.keys["reader"]) as s:
            listed = {t.name for t in (await s.list_tools()).tools}
            assert listed >= GATEWAY_READ and not GATEWAY_WRITE & listed
            r, text = await call(s, "gateway_kill_switch", {"level": "store"})
            assert r.is_error and text.startswith("permission_denied: ")

    anyio.run(main)
