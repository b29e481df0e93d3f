"""The MCP gateway's admin operations (keyplane.service.gateway) against a real downstream
MCP server (tests/gateway/downstream_server.py, official SDK) over streamable HTTP and
stdio, on an embedded Keyplane (SQLite; one smoke test on SQLite and PostgreSQL):
registration and discovery, the tool lifecycle (pending → approved → definition changed →
removed → reappeared), classification, toolsets and grants as the engine decides them,
kill switches, deletion, secrets that never come back out, every error code, the events."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keyplane import FixedClock, Keyplane, Settings
from keyplane.errors import (
    GatewayServerExistsError,
    GatewayServerNotFoundError,
    GatewayToolNotFoundError,
    LimitExceededError,
    PermissionDeniedError,
    ToolDefinitionChangedError,
    ToolRemovedError,
    ToolsetNotFoundError,
    TypeNotFoundError,
    ValidationError,
)
from keyplane.gateway import downstream
from keyplane.gateway.records import definition_digest
from keyplane.graph.tuples import Tuple
from keyplane.secrets import generate_master_key
from keyplane.service import gateway as G
from keyplane.service import keys as K
from keyplane.service import ledger as L
from keyplane.service import tuples as T
from keyplane.service.auth import Caller
from keyplane.service.context import Services

from .downstream_server import DownstreamHandle, serve_downstream, stdio_command

S = "gw"
NOW = 1_800_000_000.0
ME = Caller.system_caller()
SECRET = "s3cret-Bearer-XYZ"


def _open(url: str, clock: FixedClock) -> Keyplane:
    settings = Settings(
        database_url=url, poll_interval=0.0, default_store=S, master_key=generate_master_key()
    )
    return Keyplane.open(settings=settings, clock=clock)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def svc(tmp_path: Path, clock: FixedClock) -> Iterator[Services]:
    kp = _open(f"sqlite:///{tmp_path / 'kp.db'}", clock)
    try:
        yield kp.services
    finally:
        kp.close()


@pytest.fixture(scope="module")
def ds() -> Iterator[DownstreamHandle]:
    with serve_downstream(require={"authorization": f"Bearer {SECRET}"}) as handle:
        yield handle


@pytest.fixture(autouse=True)
def _fresh_tools(request: pytest.FixtureRequest) -> None:
    if "ds" in request.fixturenames:
        request.getfixturevalue("ds").reset_tools()


def _register(svc: Services, ds: DownstreamHandle, name: str = "gh", **kw: Any) -> Any:
    kw.setdefault("credential", {"kind": "bearer"})
    kw.setdefault("secret", SECRET)
    return G.register_server(svc, ME, S, name, transport="http", url=ds.url, **kw)


def _events(svc: Services, type_: str) -> list[Any]:
    return [e for e in svc.storage.read_events(S, limit=1000) if e.type == type_]


def _status(svc: Services, server: str = "gh") -> dict[str, str]:
    return {t.name: t.status for t in G.list_tools(svc, ME, S, server=server)}


def _can(svc: Services, user: str, ref: str) -> bool:
    return svc.graphs.engine(S)[0].check(user, "can_call", f"mcp_tool:{ref}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------ lifecycle


def test_register_discovers_pending_tools_with_proposed_classification(
    svc: Services, ds: DownstreamHandle
) -> None:
    seen = len(ds.seen_auth)
    server = _register(svc, ds, description="GitHub")
    assert server.last_discovery_error is None and server.last_discovered_at == NOW
    assert server.credential.kind == "bearer" and server.credential.secret_set_at == NOW
    assert server.encrypted_secret is None  # never returned
    assert server.created_by == "system" and server.status == "enabled"
    # the downstream server saw the injected secret
    assert any(a.get("authorization") == f"Bearer {SECRET}" for a in ds.seen_auth[seen:])
    tools = {t.name: t for t in G.list_tools(svc, ME, S)}
    assert set(tools) == {"echo", "whoami", "create_ticket", "delete_repo"}
    assert {n: (t.status, t.kind, t.risk) for n, t in tools.items()} == {
        "echo": ("pending", "read", "normal"),
        "whoami": ("pending", "read", "normal"),
        "create_ticket": ("pending", "write", "sensitive"),
        "delete_repo": ("pending", "delete", "dangerous"),
    }
    echo = tools["echo"]
    assert echo.annotations == {"readOnlyHint": True}
    assert echo.description == "Echo the text back."
    assert echo.input_schema["properties"]["text"]["type"] == "string"
    assert echo.digest == definition_digest(
        echo.description, echo.input_schema, echo.annotations, echo.title
    )
    assert echo.first_seen_at == NOW and echo.approved_digest is None
    assert G.get_tool(svc, ME, S, "gh", "echo") == echo
    # each tool belongs to its server in the graph: a server-wide grant reaches it
    T.write_tuples(svc, ME, S, writes=["mcp_server:gh#caller@human:ann"])
    assert _can(svc, "human:ann", "gh/delete_repo")
    assert not _can(svc, "human:bob", "gh/echo")
    reg = _events(svc, "gateway.server_registered")
    assert len(reg) == 1 and reg[0].resource == "mcp_server:gh"
    assert reg[0].details["server"]["url"] == ds.url
    assert reg[0].details["server"]["credential"]["kind"] == "bearer"
    found = _events(svc, "gateway.tools_discovered")
    assert len(found) == 1 and found[0].resource == "mcp_server:gh"
    assert sorted(found[0].details["added"]) == sorted(tools)
    assert found[0].details["error"] is None
    assert found[0].revision == tools["echo"].revision


def test_tool_lifecycle_approve_change_remove_reappear(
    svc: Services, ds: DownstreamHandle, clock: FixedClock
) -> None:
    _register(svc, ds)
    echo = G.get_tool(svc, ME, S, "gh", "echo")
    approved = G.update_tool(
        svc, ME, S, "gh", "echo", status="enabled", expected_digest=echo.digest
    )
    assert approved.status == "enabled" and approved.approved_digest == echo.digest
    assert approved.approved_by == "system" and approved.approved_at == NOW
    assert approved.revision > echo.revision
    ev = _events(svc, "gateway.tool_updated")[-1]
    assert ev.resource == "mcp_tool:gh/echo" and ev.action == "approve"
    assert ev.details["before"] == {"status": "pending", "kind": "read", "risk": "normal"}
    assert ev.details["after"] == {"status": "enabled", "kind": "read", "risk": "normal"}
    assert ev.details["digest"] == echo.digest
    # classification at any time
    t = G.update_tool(svc, ME, S, "gh", "create_ticket", risk="dangerous", kind="write")
    assert (t.status, t.kind, t.risk) == ("pending", "write", "dangerous")
    # the same again: nothing written, no event
    n = len(_events(svc, "gateway.tool_updated"))
    G.update_tool(svc, ME, S, "gh", "create_ticket", risk="dangerous")
    assert len(_events(svc, "gateway.tool_updated")) == n

    # a changed definition sends the approved tool back to pending
    clock.advance(10)
    ds.set_tools(describe={"echo": "Echo, and also mail it to someone."})
    res = G.discover_tools(svc, ME, S, "gh")
    assert res.changed == ("echo",) and res.added == () and res.removed == ()
    assert set(res.unchanged) == {"whoami", "create_ticket", "delete_repo"}
    changed = G.get_tool(svc, ME, S, "gh", "echo")
    assert changed.status == "pending" and changed.status_reason == "definition changed"
    assert changed.description == "Echo, and also mail it to someone."
    assert changed.approved_digest == echo.digest != changed.digest
    assert changed.last_seen_at == NOW + 10 and changed.first_seen_at == NOW
    # approving what was reviewed before the change is refused; nothing changes
    with pytest.raises(ToolDefinitionChangedError) as info:
        G.update_tool(svc, ME, S, "gh", "echo", status="enabled", expected_digest=echo.digest)
    assert info.value.details == {
        "tool": "gh/echo",
        "expected": echo.digest,
        "current": changed.digest,
    }
    assert G.get_tool(svc, ME, S, "gh", "echo").status == "pending"
    # back to the approved definition: enabled again
    ds.reset_tools()
    G.discover_tools(svc, ME, S, "gh")
    assert G.get_tool(svc, ME, S, "gh", "echo").status == "enabled"

    # removed, added
    clock.advance(10)
    ds.set_tools(remove=["delete_repo"], add=["search_code"])
    res = G.discover_tools(svc, ME, S, "gh")
    assert res.removed == ("delete_repo",) and res.added == ("search_code",)
    gone = G.get_tool(svc, ME, S, "gh", "delete_repo")
    assert gone.status == "removed" and gone.removed_at == NOW + 20
    assert _status(svc)["search_code"] == "pending"
    with pytest.raises(ToolRemovedError):
        G.update_tool(svc, ME, S, "gh", "delete_repo", status="enabled")
    with pytest.raises(ToolRemovedError):
        G.set_kill_switch(svc, ME, S, level="tool", target="gh/delete_repo")
    # a removed tool may still be classified, and is listed by status
    assert [t.name for t in G.list_tools(svc, ME, S, status="removed")] == ["delete_repo"]
    # reappearing: pending again
    ds.reset_tools()
    res = G.discover_tools(svc, ME, S, "gh")
    assert "delete_repo" in res.added and res.removed == ("search_code",)
    back = G.get_tool(svc, ME, S, "gh", "delete_repo")
    assert back.status == "pending" and back.removed_at is None
    ev = _events(svc, "gateway.tools_discovered")[-1]
    assert ev.details["removed"] == ["search_code"] and "delete_repo" in ev.details["added"]


def test_skipped_names_and_discovery_errors(svc: Services, ds: DownstreamHandle) -> None:
    ds.set_tools(add=["bad name!", "ok.tool"])
    _register(svc, ds)
    res = G.discover_tools(svc, ME, S, "gh")
    assert "bad name!" in res.skipped and "ok.tool" in res.unchanged
    assert "bad name!" not in _status(svc)
    assert _events(svc, "gateway.tools_discovered")[-1].details["skipped"] == res.skipped

    # a wrong secret: the error is kept, tools untouched
    G.update_server(svc, ME, S, "gh", secret="wrong-secret")
    before = G.list_tools(svc, ME, S)
    res = G.discover_tools(svc, ME, S, "gh")
    assert res.error and "wrong-secret" not in res.error
    assert res.added == res.removed == res.changed == ()
    assert G.list_tools(svc, ME, S) == before
    server = G.get_server(svc, ME, S, "gh")
    assert server.last_discovery_error == res.error
    ev = _events(svc, "gateway.tools_discovered")[-1]
    assert ev.details["error"] == res.error and ev.details["removed"] == []
    # fixed: the error is cleared
    G.update_server(svc, ME, S, "gh", secret=SECRET)
    assert G.discover_tools(svc, ME, S, "gh").error is None
    assert G.get_server(svc, ME, S, "gh").last_discovery_error is None


def test_header_and_oauth_credentials_are_injected(svc: Services) -> None:
    with serve_downstream(require={"x-api-key": "key-123"}) as hdr:
        srv = G.register_server(
            svc, ME, S, "hdr", transport="http", url=hdr.url, secret="key-123",
            credential={"kind": "header", "header": "X-Api-Key"},
        )  # fmt: skip
        assert srv.last_discovery_error is None, srv.last_discovery_error
        assert any(a.get("x-api-key") == "key-123" for a in hdr.seen_auth)
    with serve_downstream(client_id="gw-client", client_secret="cs-456") as oa:
        srv = G.register_server(
            svc, ME, S, "oa", transport="http", url=oa.url, secret="cs-456",
            credential={
                "kind": "oauth_client_credentials", "token_url": oa.token_url,
                "client_id": "gw-client", "scope": "tools:read",
            },
        )  # fmt: skip
        assert srv.last_discovery_error is None, srv.last_discovery_error
        assert oa.token_requests and oa.token_requests[0].get("scope") == "tools:read"
        assert srv.credential.to_dict() == {
            "kind": "oauth_client_credentials", "token_url": oa.token_url,
            "client_id": "gw-client", "scope": "tools:read", "has_secret": True,
            "secret_set_at": NOW,
        }  # fmt: skip
    assert len(_status(svc, "hdr")) == len(_status(svc, "oa")) == 4


def test_unreachable_server_registers_with_its_error(svc: Services) -> None:
    url = f"http://127.0.0.1:{_free_port()}/mcp"
    server = G.register_server(svc, ME, S, "down", transport="http", url=url)
    assert server.last_discovery_error and server.last_discovered_at == NOW
    assert G.list_tools(svc, ME, S, server="down") == []
    assert G.list_servers(svc, ME, S) == [server]


def test_stdio_server_with_env_secret(svc: Services, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    server = G.register_server(
        svc, ME, S, "local", transport="stdio", command=stdio_command(),
        env={"DOWNSTREAM_SECRET_ENV": "DS_TOKEN", "DOWNSTREAM_EVENTS_FILE": str(events)},
        credential={"kind": "env", "env_var": "DS_TOKEN"}, secret="stdio-secret-1",
        discovery_interval_seconds=0,
    )  # fmt: skip
    assert server.last_discovery_error is None, server.last_discovery_error
    assert server.command == tuple(stdio_command()) and server.url is None
    assert server.credential.to_dict()["env_var"] == "DS_TOKEN"
    assert set(_status(svc, "local")) == {"echo", "whoami", "create_ticket", "delete_repo"}
    methods = [json.loads(line)["method"] for line in events.read_text().splitlines()]
    assert "tools/list" in methods
    ev = _events(svc, "gateway.server_registered")[-1]
    assert ev.details["server"]["command"] == stdio_command()
    assert ev.details["server"]["env"] == ["DOWNSTREAM_EVENTS_FILE", "DOWNSTREAM_SECRET_ENV"]
    assert "stdio-secret-1" not in json.dumps(ev.details)
    # the environment decides what the command runs: changing it needs the secret again
    with pytest.raises(ValidationError) as info:
        G.update_server(svc, ME, S, "local", env={"LD_PRELOAD": "/tmp/x.so"})
    assert info.value.details["field"] == "secret"
    with pytest.raises(ValidationError):  # the secret's variable is the secret's alone
        G.update_server(svc, ME, S, "local", env={"DS_TOKEN": "x"}, secret="s2")
    srv = G.update_server(
        svc, ME, S, "local", env={"DOWNSTREAM_SECRET_ENV": "DS_TOKEN"}, secret="s2"
    )
    assert srv.env == {"DOWNSTREAM_SECRET_ENV": "DS_TOKEN"}
    assert _events(svc, "gateway.server_updated")[-1].details["changed"] == ["env", "secret"]
    with pytest.raises(ValidationError):
        G.update_server(svc, ME, S, "local", url="https://x.example/mcp")  # stdio


# ------------------------------------------------------------------------------ toolsets


def test_toolsets_and_grants_decide_can_call(svc: Services, ds: DownstreamHandle) -> None:
    _register(svc, ds)
    ts = G.put_toolset(svc, ME, S, "readers", ["gh/echo", "gh/whoami", "gh/echo"])
    assert ts.tools == ("gh/echo", "gh/whoami") and ts.members == ()
    ev = _events(svc, "gateway.toolset_updated")[-1]
    assert ev.resource == "toolset:readers"
    assert ev.details == {
        "tools": ["gh/echo", "gh/whoami"],
        "added": ["gh/echo", "gh/whoami"],
        "removed": [],
    }
    T.write_tuples(
        svc,
        ME,
        S,
        writes=["toolset:readers#member@agent:bot", "toolset:readers#member@group:eng#member"],
    )
    T.write_tuples(svc, ME, S, writes=["group:eng#member@human:ann"])
    assert _can(svc, "agent:bot", "gh/echo") and _can(svc, "human:ann", "gh/whoami")
    assert not _can(svc, "agent:bot", "gh/create_ticket")
    # replace the set: whoami out, create_ticket in
    ts = G.put_toolset(svc, ME, S, "readers", ["gh/echo", "gh/create_ticket"])
    assert ts.members == ("agent:bot", "group:eng#member")
    ev = _events(svc, "gateway.toolset_updated")[-1]
    assert ev.details["added"] == ["gh/create_ticket"] and ev.details["removed"] == ["gh/whoami"]
    assert _can(svc, "agent:bot", "gh/create_ticket") and not _can(svc, "agent:bot", "gh/whoami")
    # unchanged: no event
    n = len(_events(svc, "gateway.toolset_updated"))
    assert G.put_toolset(svc, ME, S, "readers", ["gh/create_ticket", "gh/echo"]).tools == ts.tools
    assert len(_events(svc, "gateway.toolset_updated")) == n
    G.put_toolset(svc, ME, S, "ops", ["gh/delete_repo"])
    assert [(t.name, t.tools, t.members) for t in G.list_toolsets(svc, ME, S)] == [
        ("ops", ("gh/delete_repo",), ()),
        ("readers", ("gh/create_ticket", "gh/echo"), ("agent:bot", "group:eng#member")),
    ]
    # errors
    with pytest.raises(GatewayToolNotFoundError):
        G.put_toolset(svc, ME, S, "x", ["gh/nope"])
    with pytest.raises(GatewayServerNotFoundError):
        G.put_toolset(svc, ME, S, "x", ["ghost/echo"])
    with pytest.raises(ValidationError):
        G.put_toolset(svc, ME, S, "x", [])
    with pytest.raises(ValidationError):
        G.put_toolset(svc, ME, S, "x", ["no-slash"])
    with pytest.raises(ValidationError):
        G.put_toolset(svc, ME, S, "Bad Name", ["gh/echo"])
    ds.set_tools(remove=["whoami"])
    G.discover_tools(svc, ME, S, "gh")
    with pytest.raises(ToolRemovedError):
        G.put_toolset(svc, ME, S, "x", ["gh/whoami"])
    # deleting removes the tool tuples AND the grants
    revision = G.delete_toolset(svc, ME, S, "readers")
    ev = _events(svc, "gateway.toolset_deleted")[-1]
    assert ev.revision == revision and ev.details["members"] == ["agent:bot", "group:eng#member"]
    assert ev.details["removed"] == ["gh/create_ticket", "gh/echo"]
    assert not _can(svc, "agent:bot", "gh/echo") and not _can(svc, "human:ann", "gh/echo")
    assert svc.storage.read_tuples(S, object="toolset:readers").items == []
    assert [t.name for t in G.list_toolsets(svc, ME, S)] == ["ops"]
    with pytest.raises(ToolsetNotFoundError):
        G.delete_toolset(svc, ME, S, "readers")


def test_delete_server_removes_tools_and_every_tuple(svc: Services, ds: DownstreamHandle) -> None:
    _register(svc, ds)
    _register(svc, ds, "other", discover=False)
    G.put_toolset(svc, ME, S, "mixed", ["gh/echo"])
    T.write_tuples(
        svc, ME, S,
        writes=["mcp_tool:gh/echo#caller@agent:a", "mcp_server:gh#caller@agent:b",
                "toolset:mixed#member@agent:c", "mcp_server:other#caller@agent:d"],
    )  # fmt: skip
    assert _can(svc, "agent:a", "gh/echo") and _can(svc, "agent:b", "gh/echo")
    revision = G.delete_server(svc, ME, S, "gh")
    ev = _events(svc, "gateway.server_deleted")[-1]
    assert ev.resource == "mcp_server:gh" and ev.revision == revision
    assert ev.details["tools"] == 4
    with pytest.raises(GatewayServerNotFoundError):
        G.get_server(svc, ME, S, "gh")
    assert G.list_tools(svc, ME, S) == []
    assert svc.storage.read_tuples(S, object="mcp_tool:").items == []
    remaining = {str(t) for t in svc.storage.read_tuples(S, object="mcp_server:").items}
    assert remaining == {"mcp_server:other#caller@agent:d"}
    assert not _can(svc, "agent:a", "gh/echo")
    # the toolset lost its tools but keeps its member grant (listed, no tools)
    assert [(t.name, t.tools, t.members) for t in G.list_toolsets(svc, ME, S)] == [
        ("mixed", (), ("agent:c",))
    ]
    with pytest.raises(GatewayServerNotFoundError):
        G.delete_server(svc, ME, S, "gh")
    with pytest.raises(GatewayServerNotFoundError):
        G.discover_tools(svc, ME, S, "gh")


# ------------------------------------------------------------------------------ kill switches


def test_kill_switches(
    svc: Services, ds: DownstreamHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    _register(svc, ds)
    G.update_tool(svc, ME, S, "gh", "echo", status="enabled")
    ks = G.set_kill_switch(svc, ME, S, level="store", reason="incident 42")
    assert ks.to_dict() == {
        "level": "store", "target": None, "engaged": True, "reason": "incident 42",
        "revision": ks.revision,
    }  # fmt: skip
    st = G.get_gateway_settings(svc, ME, S)
    assert not st.enabled and st.disabled_reason == "incident 42" and st.updated_by == "system"
    ev = _events(svc, "gateway.kill_switch")[-1]
    assert ev.details == {
        "level": "store",
        "target": None,
        "engaged": True,
        "reason": "incident 42",
    }
    assert ev.resource == f"store:{S}" and ev.revision == ks.revision
    # already engaged: nothing written, no event
    n = len(_events(svc, "gateway.kill_switch"))
    assert (
        G.set_kill_switch(svc, ME, S, level="store", reason="incident 42").revision == ks.revision
    )
    assert len(_events(svc, "gateway.kill_switch")) == n
    G.set_kill_switch(svc, ME, S, level="store", engaged=False)
    assert G.get_gateway_settings(svc, ME, S).enabled

    G.set_kill_switch(svc, ME, S, level="server", target="gh", reason="compromised")
    srv = G.get_server(svc, ME, S, "gh")
    assert srv.status == "disabled" and srv.status_reason == "compromised"
    G.set_kill_switch(svc, ME, S, level="server", target="gh", engaged=False)
    assert G.get_server(svc, ME, S, "gh").status == "enabled"

    # tool: released, an approved tool is enabled again, an unapproved one pending
    G.set_kill_switch(svc, ME, S, level="tool", target="gh/echo", reason="leaks")
    G.set_kill_switch(svc, ME, S, level="tool", target="gh/create_ticket")
    assert _status(svc)["echo"] == _status(svc)["create_ticket"] == "disabled"
    assert G.get_tool(svc, ME, S, "gh", "echo").status_reason == "leaks"
    G.set_kill_switch(svc, ME, S, level="tool", target="gh/echo", engaged=False)
    G.set_kill_switch(svc, ME, S, level="tool", target="gh/create_ticket", engaged=False)
    assert _status(svc)["echo"] == "enabled" and _status(svc)["create_ticket"] == "pending"
    # a disabled tool stays disabled through a discovery that changes it, and comes back
    # pending (not enabled) when released: the new definition was never approved
    G.set_kill_switch(svc, ME, S, level="tool", target="gh/echo")
    ds.set_tools(describe={"echo": "changed"})
    G.discover_tools(svc, ME, S, "gh")
    assert _status(svc)["echo"] == "disabled"
    G.set_kill_switch(svc, ME, S, level="tool", target="gh/echo", engaged=False)
    assert _status(svc)["echo"] == "pending"

    ks = G.set_kill_switch(svc, ME, S, level="agent", target="agent:bot", reason="rogue")
    G.set_kill_switch(svc, ME, S, level="agent", target="human:ann")
    assert G.get_gateway_settings(svc, ME, S).blocked_agents == {
        "agent:bot": "rogue",
        "human:ann": "",
    }
    assert _events(svc, "gateway.kill_switch")[-2].resource == "agent:bot"
    G.set_kill_switch(svc, ME, S, level="agent", target="agent:bot", engaged=False)
    assert G.get_gateway_settings(svc, ME, S).blocked_agents == {"human:ann": ""}

    # the blocked list is bounded (a smaller bound here, not 1000 writes)
    monkeypatch.setattr(G, "MAX_BLOCKED_AGENTS", 2)
    G.set_kill_switch(svc, ME, S, level="agent", target="agent:x")
    with pytest.raises(LimitExceededError):
        G.set_kill_switch(svc, ME, S, level="agent", target="agent:y")
    G.set_kill_switch(svc, ME, S, level="agent", target="agent:x", reason="again")  # present

    for bad in (
        {"level": "galaxy"},
        {"level": "store", "target": "x"},
        {"level": "server"},
        {"level": "tool", "target": "echo"},
        {"level": "agent", "target": "bot"},
        {"level": "store", "engaged": "yes"},
    ):
        with pytest.raises(ValidationError):
            G.set_kill_switch(svc, ME, S, **bad)
    with pytest.raises(GatewayServerNotFoundError):
        G.set_kill_switch(svc, ME, S, level="server", target="ghost")
    with pytest.raises(GatewayToolNotFoundError):
        G.set_kill_switch(svc, ME, S, level="tool", target="gh/ghost")


def test_settings(svc: Services) -> None:
    assert G.get_gateway_settings(svc, ME, S).to_dict()["record_arguments"] is False
    st = G.update_gateway_settings(svc, ME, S, record_arguments=True)
    assert st.record_arguments and st.updated_by == "system" and st.revision > 0
    ev = _events(svc, "gateway.settings_updated")[-1]
    assert ev.details == {
        "before": {"record_arguments": False},
        "after": {"record_arguments": True},
    }
    n = len(_events(svc, "gateway.settings_updated"))
    assert G.update_gateway_settings(svc, ME, S, record_arguments=True) == st
    assert G.update_gateway_settings(svc, ME, S) == st
    assert len(_events(svc, "gateway.settings_updated")) == n
    with pytest.raises(ValidationError):
        G.update_gateway_settings(svc, ME, S, record_arguments="yes")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ secrets


def test_secret_never_comes_back_out(svc: Services, ds: DownstreamHandle) -> None:
    _register(svc, ds)
    for srv in (G.get_server(svc, ME, S, "gh"), *G.list_servers(svc, ME, S)):
        assert srv.encrypted_secret is None
        assert SECRET not in json.dumps(srv.to_dict()) and SECRET not in repr(srv)
        assert srv.to_dict()["credential"]["has_secret"] is True
    stored = svc.storage.read_gateway(S).servers["gh"]
    assert stored.encrypted_secret and SECRET.encode() not in stored.encrypted_secret
    assert downstream.open_secret(svc, stored) == SECRET  # sealed for the gateway to open
    G.update_server(svc, ME, S, "gh", secret="second-secret")
    for fmt in ("jsonl", "ocsf"):
        text = "".join(L.export_events(svc, ME, S, format=fmt))
        assert "gateway.server_updated" in text
        assert SECRET not in text and "second-secret" not in text
    ev = _events(svc, "gateway.server_updated")[-1]
    assert ev.details["changed"] == ["secret"]


def test_update_server_and_where_the_secret_goes(
    svc: Services, ds: DownstreamHandle, clock: FixedClock
) -> None:
    _register(svc, ds, discover=False)
    clock.advance(5)
    # moving the secret elsewhere needs the secret again
    with pytest.raises(ValidationError) as info:
        G.update_server(svc, ME, S, "gh", url="https://evil.example/mcp")
    assert info.value.details["field"] == "secret"
    with pytest.raises(ValidationError):
        G.update_server(svc, ME, S, "gh", credential={"kind": "header", "header": "X-Api-Key"})
    srv = G.update_server(
        svc, ME, S, "gh", credential={"kind": "header", "header": "X-Api-Key"}, secret="k1"
    )
    assert srv.credential.kind == "header" and srv.credential.header == "X-Api-Key"
    assert srv.credential.secret_set_at == NOW + 5 and srv.updated_at == NOW + 5
    ev = _events(svc, "gateway.server_updated")[-1]
    assert ev.details["changed"] == ["credential", "secret"]
    # not moving it: fine without the secret
    srv = G.update_server(svc, ME, S, "gh", description="GH", discovery_interval_seconds=600)
    assert srv.description == "GH" and srv.discovery_interval_seconds == 600
    assert svc.storage.read_gateway(S).servers["gh"].encrypted_secret is not None
    assert _events(svc, "gateway.server_updated")[-1].details["changed"] == [
        "description", "discovery_interval_seconds",
    ]  # fmt: skip
    # nothing changed: no event
    n = len(_events(svc, "gateway.server_updated"))
    G.update_server(svc, ME, S, "gh", description="GH")
    assert len(_events(svc, "gateway.server_updated")) == n
    # kind none clears the secret
    srv = G.update_server(svc, ME, S, "gh", credential={"kind": "none"})
    assert srv.credential.kind == "none" and srv.credential.secret_set_at is None
    assert svc.storage.read_gateway(S).servers["gh"].encrypted_secret is None
    # no secret: the URL moves freely
    assert (
        G.update_server(svc, ME, S, "gh", url="https://x.example/mcp").url
        == "https://x.example/mcp"
    )
    with pytest.raises(ValidationError):
        G.update_server(svc, ME, S, "gh", secret="s")  # kind none takes no secret
    with pytest.raises(ValidationError):
        G.update_server(svc, ME, S, "gh", command=["x"])  # http
    with pytest.raises(GatewayServerNotFoundError):
        G.update_server(svc, ME, S, "ghost", description="x")


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "kw",
    [
        {"name": "Bad_Name"},
        {"transport": "carrier-pigeon"},
        {"url": None},
        {"url": "ftp://x.example/mcp"},
        {"url": "mcp"},
        {"url": "https://user:pw@x.example/mcp"},
        {"url": "https://x.example/mcp", "command": ["x"]},
        {"transport": "stdio", "url": None, "command": []},
        {"transport": "stdio", "url": None, "command": "python server.py"},
        {"transport": "stdio", "url": None, "command": ["x"] * 65},
        {"transport": "stdio", "url": None, "command": ["x"], "env": {"1BAD": "v"}},
        {
            "transport": "stdio",
            "url": None,
            "command": ["x"],
            "env": {f"V{i}": "v" for i in range(65)},
        },
        {"transport": "stdio", "url": "https://x.example/mcp", "command": ["x"]},
        {"credential": {"kind": "bearer"}},  # no secret
        {"secret": "s"},  # kind none
        {"credential": {"kind": "magic"}, "secret": "s"},
        {"credential": {"kind": "env", "env_var": "T"}, "secret": "s"},  # http
        {"credential": {"kind": "bearer", "header": "X"}, "secret": "s"},
        {"credential": {"kind": "header"}, "secret": "s"},
        {"credential": {"kind": "header", "header": "Content-Type"}, "secret": "s"},
        {"credential": {"kind": "header", "header": "X-Key"}, "secret": "a\r\nHost: evil"},
        {"credential": {"kind": "oauth_client_credentials", "client_id": "c"}, "secret": "s"},
        {"credential": {"kind": "bearer"}, "secret": ""},
        {
            "transport": "stdio",
            "url": None,
            "command": ["x"],
            "credential": {"kind": "bearer"},
            "secret": "s",
        },
        {
            "transport": "stdio",
            "url": None,
            "command": ["x"],
            "env": {"T": "v"},
            "credential": {"kind": "env", "env_var": "T"},
            "secret": "s",
        },
        {"discovery_interval_seconds": 5},
        {"discovery_interval_seconds": True},
        {"description": "x" * 2000},
    ],
)
def test_register_validation(svc: Services, kw: dict[str, Any]) -> None:
    args: dict[str, Any] = {"name": "s1", "transport": "http", "url": "https://x.example/mcp"}
    args.update(kw)
    name = args.pop("name")
    with pytest.raises(ValidationError) as info:
        G.register_server(svc, ME, S, name, discover=False, **args)
    assert type(info.value) is ValidationError
    assert G.list_servers(svc, ME, S) == []
    # refused inputs are recorded as failed attempts, never with the secret
    ev = _events(svc, "gateway.server_registered")[-1]
    assert ev.outcome == "error" and ev.reasons == ("validation_error",)
    assert "a\r\nHost" not in json.dumps(ev.details)


def test_not_found_exists_and_tool_errors(svc: Services, ds: DownstreamHandle) -> None:
    _register(svc, ds)
    with pytest.raises(GatewayServerExistsError):
        _register(svc, ds)
    with pytest.raises(GatewayServerNotFoundError):
        G.get_server(svc, ME, S, "ghost")
    with pytest.raises(GatewayServerNotFoundError):
        G.list_tools(svc, ME, S, server="ghost")
    with pytest.raises(GatewayServerNotFoundError):
        G.get_tool(svc, ME, S, "ghost", "echo")
    with pytest.raises(GatewayToolNotFoundError):
        G.get_tool(svc, ME, S, "gh", "ghost")
    with pytest.raises(GatewayToolNotFoundError):
        G.update_tool(svc, ME, S, "gh", "ghost", status="enabled")
    for bad in ({}, {"status": "pending"}, {"kind": "explode"}, {"risk": "extreme"}):
        with pytest.raises(ValidationError):
            G.update_tool(svc, ME, S, "gh", "echo", **bad)
    with pytest.raises(ValidationError):
        G.list_tools(svc, ME, S, status="sleeping")
    assert {e.reasons for e in _events(svc, "gateway.tool_updated")} >= {
        ("gateway_tool_not_found",),
        ("validation_error",),
    }


def test_reader_reads_admin_manages(svc: Services, ds: DownstreamHandle) -> None:
    _register(svc, ds, discover=False)
    _key, token = K.create_key(svc, ME, owner="human:ann", roles=[f"reader:{S}"])
    reader = K.authenticate(svc, token)
    assert G.get_server(svc, reader, S, "gh").name == "gh"
    assert G.list_tools(svc, reader, S) == []
    assert G.get_gateway_settings(svc, reader, S).enabled
    assert G.list_toolsets(svc, reader, S) == []
    for op in (
        lambda: G.discover_tools(svc, reader, S, "gh"),
        lambda: G.set_kill_switch(svc, reader, S, level="store"),
        lambda: G.update_server(svc, reader, S, "gh", description="x"),
        lambda: G.delete_server(svc, reader, S, "gh"),
        lambda: G.update_gateway_settings(svc, reader, S, record_arguments=True),
        lambda: G.put_toolset(svc, reader, S, "x", ["gh/echo"]),
    ):
        with pytest.raises(PermissionDeniedError):
            op()
    refused = [e for e in _events(svc, "gateway.kill_switch") if e.outcome == "deny"]
    assert refused and refused[0].reasons == ("permission_denied",)


def test_model_without_gateway_types_is_refused(svc: Services) -> None:
    # a model stored as written (the OpenFGA-compatible API), without the base types
    from keyplane.graph.language import load_model

    svc.storage.write_model(S, load_model("model\n  schema 1.1\ntype user\n"))
    svc.graphs.catch_up(S)
    with pytest.raises(TypeNotFoundError) as info:
        G.register_server(svc, ME, S, "gh", transport="http", url="https://x.example/mcp")
    assert "base model" in info.value.message
    assert G.list_servers(svc, ME, S) == []


# ------------------------------------------------------------------------------ both backends


def test_smoke_on_each_backend(storage_url: str, ds: DownstreamHandle) -> None:
    clock = FixedClock(NOW)
    kp = _open(storage_url, clock)
    svc = kp.services
    try:
        _register(svc, ds)
        assert len(_status(svc)) == 4
        G.update_tool(svc, ME, S, "gh", "echo", status="enabled")
        G.put_toolset(svc, ME, S, "r", ["gh/echo"])
        T.write_tuples(svc, ME, S, writes=[Tuple("toolset:r", "member", "agent:bot")])
        assert _can(svc, "agent:bot", "gh/echo")
        G.set_kill_switch(svc, ME, S, level="agent", target="agent:bot")
        assert G.get_gateway_settings(svc, ME, S).blocked_agents == {"agent:bot": ""}
        assert downstream.open_secret(svc, svc.storage.read_gateway(S).servers["gh"]) == SECRET
        G.delete_server(svc, ME, S, "gh")
        assert not _can(svc, "agent:bot", "gh/echo")
        assert G.list_servers(svc, ME, S) == []
    finally:
        try:
            kp.delete_store(S)
        finally:
            kp.close()
