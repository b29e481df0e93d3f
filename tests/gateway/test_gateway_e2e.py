"""The MCP gateway end to end (issue 9 §4): a real downstream MCP server (the official SDK,
over streamable HTTP, requiring a bearer secret), Keyplane as a real server process
(``python -m keyplane serve`` on a SQLite file, with a master key file), set up through
the embedded service layer on the same database, and the official MCP client as the
agent, holding an access token from the token endpoint (client credentials for the
agent itself; a token exchange with ``act`` for the agent acting for a human).

Proven: discovery and approval, the filtered ``tools/list``, an allowed call forwarded
with the downstream credential injected (the server saw the secret, the agent never
did), denied calls with their reason and how to request access, guardrails on the
tools' classification, every kill switch taking effect mid-session (engaged by another
process), a revoked delegation stopping the agent's next call, the ledger's
``gateway.tool_call`` events (the arguments' digest by default, the arguments when the
store opts in), the RFC 9728 challenge and metadata, and the gateway over stdio
(``keyplane gateway stdio``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from gateway.downstream_server import DownstreamHandle, serve_downstream
from gateway.gateway_env import AGENTS, SECRET, STORE, GatewayStore, build, claims_of
from keyplane.config import Settings
from keyplane.ledger.events import LedgerEvent
from keyplane.policy.records import Guardrail
from keyplane.service import delegations, entitlements, guardrails
from keyplane.service import gateway as gw
from keyplane.service.context import Services
from keyplane.service.keys import bootstrap_admin
from keyplane.service.tokens import TT_ACCESS, TT_JWT
from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client

pytestmark = pytest.mark.timeout(120)

GRANT_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class World:
    url: str  # the Keyplane server
    env: GatewayStore  # the embedded services on the same database
    downstream: DownstreamHandle
    admin_key: str
    process_env: dict[str, str]

    @property
    def svc(self) -> Services:
        return self.env.svc

    @property
    def gateway(self) -> str:
        return f"{self.url}/gateway/{STORE}/mcp"

    @property
    def token_endpoint(self) -> str:
        return f"{self.url}/stores/{STORE}/oauth2/token"

    def own_token(self, agent: str, *, resource: str | None = None) -> str:
        """The agent's client_credentials token from the token endpoint (HTTP)."""
        form = {"grant_type": "client_credentials"}
        if resource is not None:
            form["resource"] = resource
        r = httpx.post(
            self.token_endpoint, data=form, auth=(agent, self.env.secrets[agent]), timeout=30
        )
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        return token

    def acting_token(self, human: str, **extra: str) -> str:
        """The human's agent acting for the human: RFC 8693 exchange at the token endpoint,
        for the gateway's resource URL."""
        agent = AGENTS[human]
        form = {
            "grant_type": GRANT_EXCHANGE,
            "subject_token": self.env.idp_token(human.partition(":")[2]),
            "subject_token_type": TT_JWT,
            "actor_token": self.own_token(agent),
            "actor_token_type": TT_ACCESS,
            "resource": self.gateway,
            **extra,
        }
        r = httpx.post(self.token_endpoint, data=form, auth=(agent, self.env.secrets[agent]),
                       timeout=30)  # fmt: skip
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        return token

    def events(self, type: str) -> list[LedgerEvent]:
        return [e for e in self.svc.storage.read_events(STORE, limit=100_000) if e.type == type]

    def rest(self, path: str) -> Any:
        r = httpx.get(f"{self.url}/v1/stores/{STORE}{path}",
                      headers={"Authorization": f"Bearer {self.admin_key}"}, timeout=30)  # fmt: skip
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("gateway-e2e")
    db = f"sqlite:///{tmp / 'keyplane.db'}"
    key_file = str(tmp / "master.key")
    with serve_downstream(require={"authorization": f"Bearer {SECRET}"}) as ds:
        svc = Services.open(Settings(database_url=db, master_key_file=key_file))
        try:
            env = build(svc, ds.url)
            _, admin_key = bootstrap_admin(svc)
            process_env = {k: v for k, v in os.environ.items() if not k.startswith("KEYPLANE_")}
            process_env.update(
                KEYPLANE_DATABASE_URL=db,
                KEYPLANE_MASTER_KEY_FILE=key_file,
                KEYPLANE_KEY_CACHE_TTL="0",
            )
            port = _free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "keyplane", "serve", "--host", "127.0.0.1",
                 "--port", str(port), "--log-level", "warning"],
                env=process_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    _, err = proc.communicate()
                    raise AssertionError(f"keyplane serve did not start: {err}")
                time.sleep(0.05)
            try:
                yield World(url, env, ds, admin_key, process_env)
            finally:
                proc.terminate()
                try:
                    proc.communicate(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.communicate()
        finally:
            svc.close()


@asynccontextmanager
async def agent(world: World, token: str) -> AsyncIterator[ClientSession]:
    """The agent: the official MCP client over streamable HTTP, with its access token."""
    client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    async with (
        client,
        streamable_http_client(world.gateway, http_client=client) as (read, write),
        ClientSession(read, write) as session,
    ):
        info = await session.initialize()
        assert info.server_info.name == "keyplane-gateway"
        yield session


async def names(s: ClientSession) -> list[str]:
    return sorted(t.name for t in (await s.list_tools()).tools)


def text(result: CallToolResult) -> str:
    out: str = result.content[0].text  # type: ignore[union-attr]
    return out


# ------------------------------------------------------------------------------ the tests


def test_discovery_approval_and_the_filtered_listing(world: World) -> None:
    svc, admin = world.svc, world.env.admin
    token = world.acting_token("human:alice")
    # a second server: discovered at registration, every tool pending
    world.downstream.set_tools(add=["search"])
    try:
        gw.register_server(svc, admin, STORE, "tracker", transport="http",
                           url=world.downstream.url, credential={"kind": "bearer"},
                           secret=SECRET)  # fmt: skip
        found = {t.name: t.status for t in gw.list_tools(svc, admin, STORE, server="tracker")}
        assert found == dict.fromkeys(
            ("create_ticket", "delete_repo", "echo", "search", "whoami"), "pending"
        )

        async def session() -> None:
            async with agent(world, token) as s:
                # docs' approved tools in toolset dev; whoami pending; tracker all pending
                expected = ["docs__create_ticket", "docs__delete_repo", "docs__echo"]
                assert await names(s) == expected
                # approved but granted to no one: still not listed
                gw.update_tool(svc, admin, STORE, "tracker", "search", status="enabled")
                assert await names(s) == expected
                # in the toolset: listed, with the server's definition under its name
                gw.put_toolset(svc, admin, STORE, "dev",
                               ["docs/echo", "docs/create_ticket", "docs/delete_repo",
                                "tracker/search"])  # fmt: skip
                listed = {t.name: t for t in (await s.list_tools()).tools}
                assert sorted(listed) == sorted([*expected, "tracker__search"])
                echo = listed["docs__echo"]
                assert echo.description == "Echo the text back."
                assert echo.annotations is not None and echo.annotations.read_only_hint
                assert echo.input_schema["properties"]["text"]["type"] == "string"
                # disabled: gone from the list at once
                gw.update_tool(svc, admin, STORE, "tracker", "search", status="disabled")
                assert await names(s) == expected
                assert SECRET not in str((await s.list_tools()).model_dump())

        anyio.run(session)
    finally:
        world.downstream.reset_tools()
        gw.delete_server(svc, admin, STORE, "tracker")
        gw.put_toolset(svc, admin, STORE, "dev",
                       ["docs/echo", "docs/create_ticket", "docs/delete_repo"])  # fmt: skip
    (listed_event, *_) = reversed(world.events("gateway.tools_listed"))
    assert listed_event.subject == "human:alice"
    assert listed_event.actor_chain == ("agent:planner",)
    assert listed_event.details["listed"] == 3


def test_allowed_call_is_forwarded_with_the_secret_injected(world: World) -> None:
    token = world.acting_token("human:alice")
    before = len(world.downstream.seen_auth)

    async def session() -> list[CallToolResult]:
        async with agent(world, token) as s:
            return [
                await s.call_tool("docs__echo", {"text": "hello gateway"}),
                await s.call_tool("docs__create_ticket", {"title": "printer on fire"}),
            ]

    echoed, ticket = anyio.run(session)
    assert not echoed.is_error and text(echoed) == "hello gateway"
    assert not ticket.is_error and text(ticket) == "created ticket: printer on fire"
    assert world.downstream.calls[-2:] == [
        ("echo", {"text": "hello gateway"}),
        ("create_ticket", {"title": "printer on fire"}),
    ]
    # the downstream server saw the gateway's secret; the agent's token never reached it
    seen = world.downstream.seen_auth[before:]
    assert seen and all(h.get("authorization") == f"Bearer {SECRET}" for h in seen)
    assert all(token not in json.dumps(h) for h in world.downstream.seen_auth)
    # ... and the secret reached no agent answer and no REST read
    assert SECRET not in str(echoed.model_dump()) + str(ticket.model_dump())
    for path in ("/gateway/servers", "/gateway/servers/docs", "/gateway/tools"):
        assert SECRET not in json.dumps(world.rest(path))
    # the ledger: one decision and one tool call each, the arguments as a digest only
    calls = world.events("gateway.tool_call")[-2:]
    assert [c.outcome for c in calls] == ["allow", "allow"]
    c = calls[0]
    assert c.subject == "human:alice" and c.actor_chain == ("agent:planner",)
    assert c.resource == "mcp_tool:docs/echo" and c.action == "can_call"
    assert c.reasons == ("forwarded",) and c.details["token"] == claims_of(token)["jti"]
    assert c.details["arguments_digest"].startswith("sha256:")
    assert "arguments" not in c.details and "hello gateway" not in json.dumps(c.to_dict())
    assert c.details["latency_ms"] >= c.details["downstream_ms"] > 0
    decision = [e for e in world.events("decision.evaluate") if e.id == c.decision_id]
    assert len(decision) == 1 and decision[0].outcome == "allow"
    assert "hello gateway" not in json.dumps(decision[0].to_dict())


def test_recorded_arguments_when_the_store_opts_in(world: World) -> None:
    svc, admin = world.svc, world.env.admin
    gw.update_gateway_settings(svc, admin, STORE, record_arguments=True)
    try:

        async def session() -> CallToolResult:
            async with agent(world, world.acting_token("human:alice")) as s:
                return await s.call_tool("docs__echo", {"text": "keep me"})

        assert text(anyio.run(session)) == "keep me"
    finally:
        gw.update_gateway_settings(svc, admin, STORE, record_arguments=False)
    c = world.events("gateway.tool_call")[-1]
    assert c.details["arguments"] == {"text": "keep me"}


def test_denied_call_says_why_and_how_to_request_access(world: World) -> None:
    svc, admin = world.svc, world.env.admin
    gw.update_tool(svc, admin, STORE, "docs", "whoami", status="enabled")  # in no toolset
    token = world.acting_token("human:alice")
    try:

        async def denied() -> CallToolResult:
            async with agent(world, token) as s:
                assert "docs__whoami" not in await names(s)
                return await s.call_tool("docs__whoami", {})

        result = anyio.run(denied)
        assert result.is_error
        assert text(result).startswith("subject_lacks_permission: human:alice"), text(result)
        assert result.structured_content is not None
        assert result.structured_content["requestable"] is False
        # an entitlement an agent may request: the denial says how
        ent = entitlements.create_entitlement(
            svc, admin, STORE, "call-whoami", object="mcp_tool:docs/whoami",
            relation="caller", owners=["human:alice"], agents_may_request=True,
        )  # fmt: skip
        result = anyio.run(denied)
        sc = result.structured_content
        assert sc is not None and sc["requestable"] is True, text(result)
        assert sc["request"] == {
            "entitlement": ent.id, "object": "mcp_tool:docs/whoami", "relation": "caller",
            "beneficiary": "human:alice", "max_duration_seconds": 3600,
        }  # fmt: skip
        assert "`request_access`" in text(result)
        assert f"POST /v1/stores/{STORE}/access-requests" in text(result)
        call = world.events("gateway.tool_call")[-1]
        assert call.outcome == "deny" and call.reasons == ("subject_lacks_permission",)
        assert call.decision_id == sc["decision_id"]
        assert not any(name == "whoami" for name, _ in world.downstream.calls)
    finally:
        gw.update_tool(svc, admin, STORE, "docs", "whoami", status="disabled")


def test_guardrails_enforce_the_classification(world: World) -> None:
    svc, admin = world.svc, world.env.admin
    guardrails.put_guardrails(
        svc, admin, STORE,
        [
            Guardrail(id="dangerous-needs-approval", description="dangerous tools need approval",
                      effect="require_approval",
                      expression='resource.attributes.risk == "dangerous"'),
            Guardrail(id="contractors-no-writes",
                      description="agents acting for contractors may not call write tools",
                      effect="forbid",
                      expression='chain_length > 0 && "employment" in subject.attributes && '
                      'subject.attributes.employment == "contractor" && '
                      'resource.attributes.kind == "write"'),
        ],
    )  # fmt: skip
    try:

        async def session(human: str, tool: str, args: dict[str, Any]) -> CallToolResult:
            async with agent(world, world.acting_token(human)) as s:
                return await s.call_tool(tool, args)

        r = anyio.run(session, "human:alice", "docs__delete_repo", {"repo": "prod"})
        assert text(r).startswith("approval_required: "), text(r)
        assert r.structured_content is not None and r.structured_content["requestable"]
        r = anyio.run(session, "human:carol", "docs__create_ticket", {"title": "x"})
        assert text(r).startswith("guardrail_forbid: "), text(r)
        assert "contractors-no-writes" in text(r)
        r = anyio.run(session, "human:carol", "docs__echo", {"text": "reading is fine"})
        assert text(r) == "reading is fine"
        r = anyio.run(session, "human:alice", "docs__create_ticket", {"title": "alice may"})
        assert text(r) == "created ticket: alice may"
        assert ("delete_repo", {"repo": "prod"}) not in world.downstream.calls
    finally:
        guardrails.put_guardrails(svc, admin, STORE, [])


def test_kill_switches_take_effect_mid_session(world: World) -> None:
    svc, admin = world.svc, world.env.admin
    token = world.acting_token("human:alice")
    switches: list[tuple[dict[str, Any], str]] = [
        ({"level": "store", "reason": "incident 7"}, "gateway_disabled"),
        ({"level": "server", "target": "docs"}, "server_disabled"),
        ({"level": "tool", "target": "docs/echo"}, "tool_disabled"),
        ({"level": "agent", "target": "agent:planner", "reason": "runaway"}, "agent_blocked"),
    ]

    async def session() -> None:
        async with agent(world, token) as s:
            assert text(await s.call_tool("docs__echo", {"text": "on"})) == "on"
            for kw, code in switches:
                # engaged by this process; the server process holds it on the next call
                gw.set_kill_switch(svc, admin, STORE, **kw)
                n = len(world.downstream.calls)
                r = await s.call_tool("docs__echo", {"text": "off"})
                assert r.is_error and text(r).startswith(f"{code}: "), text(r)
                assert r.structured_content is not None
                assert r.structured_content["kill_switch"] == kw["level"]
                assert len(world.downstream.calls) == n
                assert "docs__echo" not in await names(s)
                gw.set_kill_switch(svc, admin, STORE, engaged=False, **kw)
                assert text(await s.call_tool("docs__echo", {"text": "on"})) == "on"

    anyio.run(session)
    refused = [e for e in world.events("gateway.tool_call") if e.outcome == "deny"][-4:]
    assert [e.details["kill_switch"] for e in refused] == ["store", "server", "tool", "agent"]


def test_revoked_delegation_stops_the_next_call(world: World) -> None:
    svc, admin, env = world.svc, world.env.admin, world.env
    token = world.acting_token("human:carol")

    async def session() -> None:
        async with agent(world, token) as s:
            assert text(await s.call_tool("docs__echo", {"text": "1"})) == "1"
            delegations.revoke_delegation(svc, admin, STORE, env.delegation["agent:helper"])
            n = len(world.downstream.calls)
            # the server answers 401 (below): the SDK reports it as an error response
            with pytest.raises(MCPError, match="error response"):
                await s.call_tool("docs__echo", {"text": "2"})
            assert len(world.downstream.calls) == n

    try:
        anyio.run(session)
        # the token no longer opens the gateway: 401, with the reason and the challenge
        r = httpx.post(world.gateway, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                       headers={"Authorization": f"Bearer {token}"}, timeout=30)  # fmt: skip
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "unauthenticated"
        assert "delegation" in r.json()["error"]["message"]
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
    finally:
        d = delegations.create_delegation(
            svc, admin, STORE, delegator="human:carol", delegate="agent:helper",
            scope=[{"actions": ["can_call"], "resource": "mcp_tool:*"}],
            expires_at=svc.clock.now() + 3600,
        )  # fmt: skip
        env.delegation["agent:helper"] = d.id


def test_the_challenge_and_the_protected_resource_metadata(world: World) -> None:
    r = httpx.post(world.gateway, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                   timeout=30)  # fmt: skip
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    meta_url = f"{world.url}/.well-known/oauth-protected-resource/gateway/{STORE}/mcp"
    assert r.headers["www-authenticate"] == f'Bearer resource_metadata="{meta_url}"'
    meta = httpx.get(meta_url, timeout=30).json()
    assert meta["resource"] == world.gateway
    assert meta["authorization_servers"] == [f"{world.url}/stores/{STORE}"]
    assert meta["bearer_methods_supported"] == ["header"] and meta["scopes_supported"] == []
    assert httpx.get(f"{world.url}/.well-known/oauth-protected-resource/gateway/nope/mcp",
                     timeout=30).status_code == 404  # fmt: skip
    # an API key is not an access token
    r = httpx.post(world.gateway, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                   headers={"Authorization": f"Bearer {world.admin_key}"}, timeout=30)  # fmt: skip
    assert r.status_code == 401
    # a token for another resource is refused; the agent's own token for Keyplane (its
    # issuer) or for the gateway is taken
    other = world.own_token("agent:planner", resource="https://elsewhere.example/api")
    r = httpx.post(world.gateway, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                   headers={"Authorization": f"Bearer {other}"}, timeout=30)  # fmt: skip
    assert r.status_code == 401 and "audience" in r.json()["error"]["message"]
    for own in (world.own_token("agent:planner"),
                world.own_token("agent:planner", resource=world.gateway)):  # fmt: skip

        async def session(tok: str = own) -> list[str]:
            async with agent(world, tok) as s:
                return await names(s)

        assert anyio.run(session) == ["docs__create_ticket", "docs__delete_repo", "docs__echo"]


def test_the_gateway_over_stdio(world: World) -> None:
    token = world.acting_token("human:alice")
    svc, admin = world.svc, world.env.admin
    gw.update_tool(svc, admin, STORE, "docs", "whoami", status="enabled")  # not granted
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "keyplane", "gateway", "stdio", "--store", STORE],
        # the gateway's resource URL names this server: the token obtained for it is taken
        env={**world.process_env, "KEYPLANE_ACCESS_TOKEN": token, "KEYPLANE_ISSUER": world.url},
    )

    async def session() -> tuple[list[str], CallToolResult, CallToolResult]:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
            info = await s.initialize()
            assert info.server_info.name == "keyplane-gateway"
            listed = await names(s)
            return (
                listed,
                await s.call_tool("docs__echo", {"text": "over stdio"}),
                await s.call_tool("docs__whoami", {}),
            )

    try:
        listed, allowed, denied = anyio.run(session)
    finally:
        gw.update_tool(svc, admin, STORE, "docs", "whoami", status="disabled")
    assert listed == ["docs__create_ticket", "docs__delete_repo", "docs__echo"]
    assert text(allowed) == "over stdio"
    assert denied.is_error and text(denied).startswith("subject_lacks_permission: ")
    assert world.downstream.seen_auth[-1]["authorization"] == f"Bearer {SECRET}"
    # without a token the gateway refuses to start
    bad = subprocess.run(
        [sys.executable, "-m", "keyplane", "gateway", "stdio", "--store", STORE],
        env=world.process_env, capture_output=True, text=True, timeout=60, input="",
    )  # fmt: skip
    assert bad.returncode != 0 and "KEYPLANE_ACCESS_TOKEN" in bad.stderr
    assert bad.stdout == ""


def test_a_raw_json_rpc_tools_call(world: World) -> None:
    """tools/call as any MCP client sends it over streamable HTTP (JSON response mode):
    the answer's wire form, and what the gateway leaves to the SDK."""
    gw.update_tool(world.svc, world.env.admin, STORE, "docs", "whoami", status="disabled")
    token = world.acting_token("human:alice")
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-06-18",
        "X-Request-ID": "raw-call-1",
    }

    def post(body: Any, **extra: str) -> httpx.Response:
        return httpx.post(world.gateway, json=body, headers={**headers, **extra}, timeout=30)

    call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "docs__echo", "arguments": {"text": "raw"}}}  # fmt: skip
    r = post(call)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == {
        "jsonrpc": "2.0",
        "id": 7,
        "result": {
            "content": [{"type": "text", "text": "raw"}],
            "structuredContent": {"result": "raw"},
            "isError": False,
        },
    }
    event = world.events("gateway.tool_call")[-1]
    assert event.request_id == "raw-call-1" and event.outcome == "allow"
    # a refusal is a result too (isError), with its structured reason
    denied = post({**call, "id": "x", "params": {"name": "docs__whoami", "arguments": {}}})
    body = denied.json()
    assert body["id"] == "x" and body["result"]["isError"] is True
    assert body["result"]["content"][0]["text"].startswith("tool_disabled: ")
    assert body["result"]["structuredContent"]["kill_switch"] == "tool"
    # malformed params: the SDK's own validation answers
    bad = post({**call, "params": {"name": 3}})
    assert bad.json()["error"]["code"] == -32602  # invalid params
    # a client that cannot take JSON: the SDK's 406
    assert post(call, Accept="text/event-stream").status_code == 406


def _gateway_requests(world: World, status: str) -> float:
    """keyplane_http_requests_total of the gateway route with that status (/metrics)."""
    r = httpx.get(f"{world.url}/metrics", headers={"Authorization": f"Bearer {world.admin_key}"},
                  timeout=30)  # fmt: skip
    assert r.status_code == 200, r.text
    for line in r.text.splitlines():
        if (
            line.startswith("keyplane_http_requests_total{")
            and 'operation="/gateway/{store_id}/mcp"' in line
            and 'method="POST"' in line
            and f'status="{status}"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_the_tools_call_lane_ahead_of_the_middleware(world: World) -> None:
    """The outer lane (gateway.http.GatewayLane, outermost of the app's middleware) keeps
    what the stack gives every request: the request id (echoed, on the ledger events),
    the metrics under the gateway route, and the body limit."""
    from keyplane.api.app import create_app
    from keyplane.gateway.http import GatewayLane

    # outermost of the middleware the app adds (Starlette's error middleware aside)
    app = create_app(world.svc)
    assert app.user_middleware[0].cls is GatewayLane
    token = world.acting_token("human:alice")
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-06-18",
    }
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "docs__echo", "arguments": {"text": "lane"}}}  # fmt: skip
    before = _gateway_requests(world, "200")
    r = httpx.post(world.gateway, json=call, headers={**headers, "X-Request-ID": "lane-1"},
                   timeout=30)  # fmt: skip
    assert r.status_code == 200 and r.json()["result"]["content"][0]["text"] == "lane"
    assert r.headers.get_list("x-request-id") == ["lane-1"]
    assert world.events("gateway.tool_call")[-1].request_id == "lane-1"
    # without X-Request-ID: a new one, echoed and on the events
    r = httpx.post(world.gateway, json=call, headers=headers, timeout=30)
    rid = r.headers["x-request-id"]
    assert len(rid) == 32 and world.events("gateway.tool_call")[-1].request_id == rid
    assert _gateway_requests(world, "200") == before + 2
    # a refused token through the lane: 401 with the challenge, counted, with its id
    bad = httpx.post(world.gateway, json=call, headers={**headers, "Authorization": "Bearer x"},
                     timeout=30)  # fmt: skip
    assert bad.status_code == 401 and "resource_metadata=" in bad.headers["www-authenticate"]
    assert bad.headers["x-request-id"] and _gateway_requests(world, "401") >= 1
    # a body over the limit (1 MiB by default) is the stack's: 413
    big = {**call, "params": {"name": "docs__echo", "arguments": {"text": "x" * 1_100_000}}}
    assert httpx.post(world.gateway, json=big, headers=headers, timeout=30).status_code == 413
