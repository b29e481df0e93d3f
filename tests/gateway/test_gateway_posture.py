"""The gateway's tool usage (issue 9) and the posture report's Tools section, on SQLite and
PostgreSQL: tools and servers written through gateway storage, grants through the graph
(direct caller tuples, a toolset granted to a group, a server's callers), and
``gateway.tool_call`` events recorded through the ledger exactly as the gateway records
them (docs/ledger.md). Asserts the per-tool and per-agent analytics, the window (its end
included), dangerous tools from effective ``can_call``, never-used tools, the findings
``agent_with_dangerous_tools`` and ``unused_tool``, HMAC-redacted ledger fields, the
renderers, permissions and input errors."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from keyplane import FixedClock, Keyplane, Settings
from keyplane.errors import PermissionDeniedError, ValidationError
from keyplane.gateway.records import GatewayWrite, McpServer, McpTool, tool_object
from keyplane.governance.posture import PostureReport
from keyplane.governance.tool_usage import ToolUsageReport
from keyplane.graph.tuples import parse_tuple
from keyplane.ledger.events import LedgerEvent, new_event_id
from keyplane.service import audit, gateway_usage, posture
from keyplane.service import identities as I
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.service.keys import authenticate, create_key
from keyplane.storage.base import GatewayTxReader

S = "gw"
NOW = 1_800_000_000.0
DAY = 86400.0
SYSTEM = Caller.system_caller()
MODEL = """\
model
  schema 1.1
type group
  relations
    define member: [human, agent, workload, service_account, group#member]
type document
  relations
    define viewer: [human, agent]
"""
OLD = NOW - 200 * DAY  # approved long before the 90-day window


def _tool(server: str, name: str, status: str, kind: str, risk: str, approved: float | None):
    return McpTool(
        S, server, name, description=f"{name} tool", digest=f"sha256:{name}", status=status,
        kind=kind, risk=risk, approved_digest=f"sha256:{name}" if approved else None,
        approved_by="key:admin" if approved else None, approved_at=approved,
        first_seen_at=approved or NOW - DAY, last_seen_at=NOW,
        removed_at=NOW - DAY if status == "removed" else None,
    )  # fmt: skip


TOOLS = [
    _tool("github", "create_issue", "enabled", "write", "sensitive", OLD),
    _tool("github", "delete_repo", "enabled", "delete", "dangerous", OLD),
    _tool("github", "list_repos", "enabled", "read", "normal", OLD),
    _tool("github", "old", "removed", "read", "normal", OLD),
    _tool("files", "read", "enabled", "read", "normal", NOW - 5 * DAY),  # new: not unused yet
    _tool("files", "wipe", "pending", "delete", "dangerous", None),  # not approved: no one calls
]
GRANTS = [
    "mcp_tool:github/delete_repo#caller@agent:ops",
    "mcp_tool:github/delete_repo#caller@agent:gone",  # deprovisioned: no finding
    "mcp_tool:github/delete_repo#toolset@toolset:admin",
    "toolset:admin#member@group:eng#member",
    "group:eng#member@agent:idle",
    "mcp_server:github#caller@agent:planner",  # every github tool, delete_repo included
    "mcp_tool:files/wipe#caller@agent:ops",  # pending: not counted as callable
    "mcp_tool:files/read#caller@workload:ci",
]


def call(
    svc: Services,
    tool: str,
    outcome: str,
    at: float,
    *,
    subject: str,
    actors: tuple[str, ...] = (),
    reason: str | None = None,
) -> None:
    """One ``gateway.tool_call`` event, shaped as the gateway records it."""
    server, _, name = tool.partition("/")
    args = {"q": "x"}
    digest = hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()
    reasons = {"allow": "forwarded", "error": "downstream_error"}.get(outcome, reason or "")
    audit.record(svc, [LedgerEvent(
        id=new_event_id(), time=at, store=S, type="gateway.tool_call", caller="key:gateway",
        subject=subject, actor_chain=actors, action="can_call",
        resource=tool_object(server, name), outcome=outcome, reasons=(reasons,),
        decision_id=new_event_id(),
        details={"server": server, "tool": name, "arguments_digest": f"sha256:{digest}",
                 "latency_ms": 1.5, "downstream_ms": 1.0, "token": "jti-1"},
    )])  # fmt: skip


def seed(kp: Keyplane) -> None:
    svc = kp.services
    kp.write_model(MODEL)
    for node in ("agent:planner", "agent:ops", "agent:idle", "agent:gone", "workload:ci"):
        kind, _, ident = node.partition(":")
        I.create_identity(svc, SYSTEM, S, kind, ident, owners=["human:alice"])
    I.deprovision_identity(svc, SYSTEM, S, "agent:gone")

    def plan(tx: GatewayTxReader) -> GatewayWrite:
        return GatewayWrite(
            servers=(
                McpServer(S, "github", "http", url="https://gh.example/mcp", created_at=OLD),
                McpServer(S, "files", "stdio", command=("files-mcp",), created_at=OLD),
            ),
            tools=tuple(TOOLS),
            tuple_writes=tuple(
                parse_tuple(t)
                for t in [  # discovery writes each tool's #server tuple
                    *(f"{x.object}#server@mcp_server:{x.server}" for x in TOOLS),
                    *GRANTS,
                ]
            ),
        )

    svc.storage.write_gateway(S, plan)
    svc.graphs.catch_up(S)
    # the planner acting for alice: three calls and one that failed downstream
    for t in (NOW - 30 * DAY, NOW - 10 * DAY, NOW - 2 * DAY):
        call(
            svc, "github/create_issue", "allow", t, subject="human:alice", actors=("agent:planner",)
        )
    call(svc, "github/create_issue", "error", NOW - DAY, subject="human:alice",
         actors=("agent:planner",))  # fmt: skip
    # … refused the dangerous tool (a guardrail asks for approval)
    call(svc, "github/delete_repo", "deny", NOW - DAY, subject="human:alice",
         actors=("agent:planner",), reason="approval_required")  # fmt: skip
    # ops for itself: twice, the second at the very instant of the report (window end)
    call(svc, "github/delete_repo", "allow", NOW - 3 * DAY, subject="agent:ops")
    call(svc, "github/delete_repo", "allow", NOW, subject="agent:ops")
    # a name the registry does not have (kill switch tool_not_found)
    call(svc, "github/ghost", "deny", NOW - DAY, subject="agent:ops", reason="tool_not_found")
    # outside the window: list_repos is unused in it
    call(svc, "github/list_repos", "allow", NOW - 100 * DAY, subject="human:alice",
         actors=("agent:planner",))  # fmt: skip
    # another event type naming a tool is not a call
    audit.record(svc, [LedgerEvent(
        id=new_event_id(), time=NOW - DAY, store=S, type="gateway.tool_updated",
        caller="key:admin", resource=tool_object("github", "list_repos"),
    )])  # fmt: skip


def _open(url: str, **settings: Any) -> Keyplane:
    s = Settings(database_url=url, poll_interval=0.0, default_store=S, **settings)
    return Keyplane.open(settings=s, clock=FixedClock(NOW))


@pytest.fixture
def kp(storage_url: str) -> Iterator[Keyplane]:
    k = _open(storage_url)
    try:
        seed(k)
        yield k
    finally:
        k.close()


def _check(r: ToolUsageReport) -> None:
    by = {t.ref: t for t in r.tools}
    assert [t.ref for t in r.tools] == [
        "files/read", "files/wipe", "github/create_issue", "github/delete_repo",
        "github/list_repos", "github/old", "github/ghost",
    ]  # fmt: skip
    ci = by["github/create_issue"]
    assert (ci.status, ci.kind, ci.risk) == ("enabled", "write", "sensitive")
    assert (ci.allowed, ci.errors, ci.denied) == (4, 1, 0)
    assert ci.last_used_at == NOW - DAY and ci.last_denied_at is None
    assert ci.agents == ("agent:planner",) and ci.on_behalf_of == ("human:alice",)
    assert ci.enabled_since == OLD
    dr = by["github/delete_repo"]
    assert (dr.allowed, dr.errors, dr.denied) == (2, 0, 1)
    assert dr.last_used_at == NOW  # the window includes its end
    assert dr.last_denied_at == NOW - DAY
    assert dr.agents == ("agent:ops",) and dr.on_behalf_of == ()  # ops acted for itself
    lr = by["github/list_repos"]
    assert (lr.allowed, lr.denied, lr.last_used_at) == (0, 0, None)  # 100 days ago: outside
    ghost = by["github/ghost"]
    assert (ghost.status, ghost.kind, ghost.denied, ghost.allowed) == ("unknown", None, 1, 0)
    assert by["github/old"].status == "removed" and by["files/wipe"].status == "pending"
    assert r.never_used == ("files/read", "github/list_repos")
    assert (r.allowed, r.denied) == (6, 2)
    assert r.errors == {}

    agents = {a.identity: a for a in r.agents}
    # the acting identities and every NHI that may call the one enabled dangerous tool
    assert sorted(agents) == ["agent:gone", "agent:idle", "agent:ops", "agent:planner"]
    p = agents["agent:planner"]
    assert (p.calls, p.denied, p.last_used_at) == (4, 1, NOW - DAY)
    assert p.tools == ("github/create_issue",)
    assert p.dangerous_tools == ("github/delete_repo",)  # through its server grant
    assert p.unused_dangerous_tools == ("github/delete_repo",)
    o = agents["agent:ops"]
    assert (o.calls, o.denied, o.tools) == (2, 1, ("github/delete_repo",))
    assert o.dangerous_tools == ("github/delete_repo",)  # files/wipe is pending: not counted
    assert o.unused_dangerous_tools == ()
    idle = agents["agent:idle"]
    assert (idle.calls, idle.tools, idle.dangerous_tools) == (0, (), ("github/delete_repo",))
    assert "workload:ci" not in agents  # callable tools, none dangerous, no call
    assert "human:alice" not in agents  # she was acted for; the planner acted


def test_tool_usage(kp: Keyplane) -> None:
    r = gateway_usage.tool_usage(kp.services, SYSTEM, S)
    assert (r.since, r.until) == (NOW - 90 * DAY, NOW)
    _check(r)
    # the JSON round trip the HTTP SDK makes
    again = ToolUsageReport.from_dict(json.loads(json.dumps(r.to_dict())))
    assert again == r
    assert r.to_dict()["agents"][0]["unused_dangerous_tools"] == ["github/delete_repo"]


def test_window(kp: Keyplane) -> None:
    svc = kp.services
    r = gateway_usage.tool_usage(svc, SYSTEM, S, since=NOW - 5 * DAY, until=NOW - DAY)
    ci = r.tool("github/create_issue")
    assert ci is not None and (ci.allowed, ci.errors) == (2, 1)  # NOW-2d, NOW-1d (end included)
    dr = r.tool("github/delete_repo")
    assert dr is not None and (dr.allowed, dr.denied) == (1, 1)  # NOW is after the end
    r = gateway_usage.tool_usage(svc, SYSTEM, S, since=NOW - 101 * DAY, until=NOW - 99 * DAY)
    lr = r.tool("github/list_repos")
    assert lr is not None and lr.allowed == 1 and lr.agents == ("agent:planner",)
    assert r.never_used == ("files/read", "github/create_issue", "github/delete_repo")
    for bad in ({"since": NOW, "until": NOW - 1}, {"since": "yesterday"}, {"until": True},
                {"since": float("nan")}):  # fmt: skip
        with pytest.raises(ValidationError):
            gateway_usage.tool_usage(svc, SYSTEM, S, **bad)


def test_permissions(kp: Keyplane) -> None:
    svc = kp.services
    for role, allowed in ((f"reader:{S}", False), ("auditor", True), (f"writer:{S}", True)):
        _, secret = create_key(svc, SYSTEM, owner="human:alice", roles=[role])
        who = authenticate(svc, secret)
        if allowed:
            assert gateway_usage.tool_usage(svc, who, S).allowed == 6
        else:
            with pytest.raises(PermissionDeniedError):
                gateway_usage.tool_usage(svc, who, S)


def test_redacted_ledger(storage_url: str) -> None:
    """Subjects and resources stored as HMACs: matched by hashing the registry's tools and
    the identity plane's nodes — the same answer."""
    k = _open(storage_url, ledger_hmac_fields="subject,resource")
    try:
        seed(k)
        stored = k.services.storage.ledger_activity(
            S, since=0, until=NOW + 1, types=("gateway.tool_call",)
        )
        assert stored and all(r.resource and r.resource.startswith("hmac-") for r in stored)
        r = gateway_usage.tool_usage(k.services, SYSTEM, S)
        by = {t.ref: t for t in r.tools}
        # a hashed name the registry never had cannot be named: left out
        assert "github/ghost" not in by and r.denied == 1
        assert r.tools == tuple(t for t in r.tools if t.status != "unknown")
        full = {t.ref: t for t in gateway_usage.tool_usage(k.services, SYSTEM, S).tools}
        assert by == full
        ops = r.agent("agent:ops")  # its calls had no chain: found through its hashed subject
        assert ops is not None and ops.calls == 2
    finally:
        k.close()


def test_empty_store_and_no_gateway(storage_url: str) -> None:
    k = _open(storage_url)
    try:
        k.write_model(MODEL)
        r = gateway_usage.tool_usage(k.services, SYSTEM, S)
        assert (r.tools, r.agents, r.never_used, r.allowed, r.denied) == ((), (), (), 0, 0)
        rep = posture.posture_report(k.services, SYSTEM, S)
        assert rep.tools is not None and rep.tools.tools == ()
        assert "Tools (MCP gateway)" not in _text(rep)
    finally:
        k.close()


def _text(r: PostureReport) -> str:
    from keyplane.governance.report import render_text

    return render_text(r, width=120)


def test_posture_report(kp: Keyplane) -> None:
    rep = posture.posture_report(kp.services, SYSTEM, S)
    assert rep.tools is not None
    _check(rep.tools)
    found = {(f.identity, f.code): f for f in rep.findings if f.code in gateway_usage.TOOL_FINDINGS}
    assert set(found) == {
        ("agent:planner", "agent_with_dangerous_tools"),
        ("agent:idle", "agent_with_dangerous_tools"),
        ("agent:ops", "agent_with_dangerous_tools"),
        ("mcp_tool:github/list_repos", "unused_tool"),
    }
    p = found[("agent:planner", "agent_with_dangerous_tools")]
    assert (p.owasp, p.severity) == ("NHI5", "high")
    assert p.evidence["dangerous_tools"] == ["github/delete_repo"]
    assert p.evidence["unused"] == ["github/delete_repo"] and p.evidence["used"] == []
    assert "github/delete_repo" in p.fix and "approval" in p.fix
    o = found[("agent:ops", "agent_with_dangerous_tools")]
    assert o.severity == "medium" and o.evidence["used"] == ["github/delete_repo"]
    u = found[("mcp_tool:github/list_repos", "unused_tool")]
    assert (u.owasp, u.severity) == ("NHI5", "low")
    assert u.evidence["tool"] == "github/list_repos" and u.evidence["enabled_since"] == OLD
    assert "keyplane gateway tool disable github/list_repos" in u.fix
    assert rep.counts["findings_by_code"]["agent_with_dangerous_tools"] == 3
    # the JSON round trip keeps the section
    again = PostureReport.from_dict(json.loads(json.dumps(rep.to_dict())))
    assert again.tools == rep.tools

    text = _text(rep)
    assert "Tools (MCP gateway)" in text and "Never used: files/read, github/list_repos" in text
    for ref in ("github/create_issue", "github/delete_repo", "github/list_repos"):
        assert ref in text
    from keyplane.governance.report import render_html

    page = render_html(rep)
    assert 'id="tools-section"' in page and 'data-tool="github/delete_repo"' in page
    assert 'id="tool-agents"' in page and 'data-agent="agent:planner"' in page


# -- surfaces: REST, SDK (HTTP and embedded), CLI, MCP -----------------------------------------


@pytest.fixture
def served(tmp_path: Any) -> Iterator[tuple[Keyplane, str, dict[str, str]]]:
    """A real uvicorn server over the seeded services (its clock fixed at NOW), with an
    auditor's key (can_read_posture) and a store reader's (cannot)."""
    from keyplane.service.keys import bootstrap_admin
    from live_server import serve

    k = _open(f"sqlite:///{tmp_path / 'kp.db'}")
    try:
        seed(k)
        svc = k.services
        _, admin_secret = bootstrap_admin(svc)
        admin = authenticate(svc, admin_secret)
        keys = {}
        for name, role in (("auditor", "auditor"), ("reader", f"reader:{S}")):
            keys[name] = create_key(svc, admin, owner=f"test-{name}", roles=[role])[1]
        with serve(svc) as base:
            yield k, base, keys
    finally:
        k.close()


def test_surfaces(served: tuple[Keyplane, str, dict[str, str]]) -> None:
    import anyio
    import httpx
    from typer.testing import CliRunner

    from keyplane.cli.main import app
    from keyplane.sdk import AsyncClient, Client

    k, base, keys = served
    expected = k.tool_usage(store=S).to_dict()  # embedded
    _check(ToolUsageReport.from_dict(expected))
    window = {"since": NOW - 5 * DAY, "until": NOW - DAY}
    narrow = k.tool_usage(store=S, **window).to_dict()
    assert narrow != expected

    auditor = {"Authorization": f"Bearer {keys['auditor']}"}
    url = f"{base}/v1/stores/{S}/posture/tools"
    got = httpx.get(url, headers=auditor)
    assert got.status_code == 200 and got.json() == expected
    assert httpx.get(url, headers=auditor, params=window).json() == narrow
    bad = httpx.get(url, headers=auditor, params={"since": NOW, "until": NOW - 1})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"
    refused = httpx.get(url, headers={"Authorization": f"Bearer {keys['reader']}"})
    assert refused.status_code == 403
    report = httpx.get(f"{base}/v1/stores/{S}/posture/report", headers=auditor).json()
    assert report["tools"] == expected
    assert {f["code"] for f in report["findings"]} >= set(gateway_usage.TOOL_FINDINGS)

    with Client(base, keys["auditor"]) as c:
        assert c.tool_usage(store=S).to_dict() == expected
        assert c.tool_usage(store=S, **window).to_dict() == narrow
        assert c.posture_report(store=S).tools == ToolUsageReport.from_dict(expected)

    async def remote() -> dict[str, Any]:
        async with AsyncClient(base, keys["auditor"]) as ac:
            return (await ac.tool_usage(store=S)).to_dict()

    assert anyio.run(remote) == expected

    runner = CliRunner()
    env = {"KEYPLANE_URL": base, "KEYPLANE_API_KEY": keys["auditor"]}
    common = ["--store", S, "--url", base, "--api-key", keys["auditor"]]
    res = runner.invoke(app, ["posture", "tools", *common, "--json"], env=env)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == expected
    res = runner.invoke(app, ["posture", "tools", *common], env=env)
    assert res.exit_code == 0, res.output
    assert "github/delete_repo" in res.stdout and "never used: files/read" in res.stdout
    assert "github/delete_repo*" in res.stdout  # the planner's unused dangerous tool
    res = runner.invoke(
        app,
        ["posture", "tools", *common, "--json", "--since", str(window["since"]), "--until",
         str(window["until"])],
        env=env,
    )  # fmt: skip
    assert res.exit_code == 0 and json.loads(res.stdout) == narrow

    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    from mcp import ClientSession

    async def mcp_call() -> tuple[dict[str, Any] | None, str, set[str]]:
        client = httpx2.AsyncClient(headers=auditor, timeout=30)
        async with (
            client,
            streamable_http_client(f"{base}/mcp", http_client=client) as (read, write),
            ClientSession(read, write) as s,
        ):
            await s.initialize()
            listed = {t.name for t in (await s.list_tools()).tools}
            result = await s.call_tool("tool_usage", {})
            assert not result.is_error, result.content
            text = result.content[0].text  # type: ignore[union-attr]
            return result.structured_content, text, listed

    structured, text, listed = anyio.run(mcp_call)
    assert "tool_usage" in listed
    assert structured == expected
    assert "agent:planner may call dangerous tools: github/delete_repo" in text


def test_ledger_activity(storage_url: str) -> None:
    """The aggregate itself: one row per (subject, actors, resource, type, outcome) with
    the count and the oldest and newest times; the window's start included, its end not;
    only the asked types; nothing for an empty ``types`` or an unknown store."""
    k = _open(storage_url)
    try:
        seed(k)
        st = k.services.storage
        rows = st.ledger_activity(S, since=NOW - 90 * DAY, until=NOW, types=("gateway.tool_call",))
        got = {(r.subject, r.actors, r.resource, r.outcome): (r.events, r.first_at, r.last_at)
               for r in rows}  # fmt: skip
        assert all(r.type == "gateway.tool_call" for r in rows)
        planner = ("human:alice", ("agent:planner",))
        assert got[(*planner, "mcp_tool:github/create_issue", "allow")] == (
            3, NOW - 30 * DAY, NOW - 2 * DAY,
        )  # fmt: skip
        assert got[(*planner, "mcp_tool:github/create_issue", "error")] == (1, NOW - DAY, NOW - DAY)
        # the end is excluded here (the service passes the next float up to include it)
        assert got[("agent:ops", (), "mcp_tool:github/delete_repo", "allow")][0] == 1
        assert (*planner, "mcp_tool:github/list_repos", "allow") not in got  # 100 days ago
        assert len(rows) == 5
        assert st.ledger_activity(S, since=0, until=NOW + 1, types=()) == []
        assert (
            st.ledger_activity("nope", since=0, until=NOW + 1, types=("gateway.tool_call",)) == []
        )
        other = st.ledger_activity(S, since=0, until=NOW + 1, types=("gateway.tool_updated",))
        assert [(r.resource, r.outcome, r.events) for r in other] == [
            ("mcp_tool:github/list_repos", "ok", 1)
        ]
    finally:
        k.close()
