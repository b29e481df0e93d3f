"""The gateway runtime in process: a real downstream MCP server (HTTP), the real
DownstreamPool, embedded services on SQLite; tokens minted by the service functions.

What the end-to-end test (test_gateway_e2e.py) proves through the real transports, this
proves at the runtime's seam, with the ledger read back: the kill switches' order and
codes, the decision's input (chain, tool ref, classification, arguments), the events
recorded before forwarding, the redaction, the denial text and its request hint.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from gateway.downstream_server import DownstreamHandle, serve_downstream
from gateway.gateway_env import SECRET, STORE, GatewayStore, build, claims_of
from keyplane.config import Settings
from keyplane.errors import AuthenticationError
from keyplane.gateway.downstream import DownstreamPool
from keyplane.gateway.runtime import GatewayRuntime, Gateways, arguments_digest, rediscover_due
from keyplane.ledger.events import LedgerEvent
from keyplane.policy.records import Guardrail
from keyplane.service import delegations, entitlements, guardrails, tuples
from keyplane.service import gateway as gw
from keyplane.service.context import Services

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def downstream() -> Iterator[DownstreamHandle]:
    with serve_downstream(require={"authorization": f"Bearer {SECRET}"}) as ds:
        yield ds


class ShiftedClock:
    """The real time plus ``offset``."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture
def env(
    tmp_path: Path, downstream: DownstreamHandle, clock: ShiftedClock
) -> Iterator[GatewayStore]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'kp.db'}",
        master_key_file=str(tmp_path / "master.key"),
    )
    svc = Services.open(settings, clock=clock)
    try:
        yield build(svc, downstream.url)
    finally:
        svc.close()


def events(svc: Services, type: str) -> list[LedgerEvent]:
    return [e for e in svc.storage.read_events(STORE, limit=10_000) if e.type == type]


def call(
    env: GatewayStore, token: str, name: str, args: dict[str, Any], **kw: Any
) -> tuple[Any, list[LedgerEvent], list[LedgerEvent]]:
    """One call through a fresh runtime and pool; the result, and the call's
    decision.evaluate and gateway.tool_call events."""
    before = {e.id for e in env.svc.storage.read_events(STORE, limit=10_000)}

    async def go() -> Any:
        async with DownstreamPool(env.svc) as pool:
            rt = GatewayRuntime(env.svc, STORE, audience=None, pool=pool)
            return await rt.call(token, name, args, **kw)

    result = anyio.run(go)
    new = [e for e in env.svc.storage.read_events(STORE, limit=10_000) if e.id not in before]
    return (
        result,
        [e for e in new if e.type == "decision.evaluate"],
        [e for e in new if e.type == "gateway.tool_call"],
    )


def text(result: Any) -> str:
    out: str = result.content[0].text
    return out


def test_allowed_call_is_decided_recorded_then_forwarded(
    env: GatewayStore, downstream: DownstreamHandle
) -> None:
    token = env.acting_token("human:alice")
    args = {"text": "hello"}
    result, decided, called = call(env, token, "docs__echo", args)
    assert not result.is_error, text(result)
    assert text(result) == "hello"
    assert downstream.calls[-1] == ("echo", args)
    # the decision: the token's chain, can_call on the tool, the tool ref, the record's
    # classification, the arguments as context (recorded as their digest)
    (d,) = decided
    assert d.outcome == "allow" and d.subject == "human:alice"
    assert d.actor_chain == ("agent:planner",) and d.action == "can_call"
    assert d.resource == "mcp_tool:docs/echo"
    inp = d.details["input"]
    assert inp["tool"] == "docs/echo"
    assert inp["resource_properties"] == {
        "server": "docs", "tool": "echo", "kind": "read", "risk": "normal", "title": None,
    }  # fmt: skip
    assert inp["context"] == {"arguments_digest": arguments_digest(args)}
    assert "hello" not in str(d.to_dict())
    # the call's event, after the decision's
    (c,) = called
    assert c.outcome == "allow" and c.reasons == ("forwarded",)
    assert c.decision_id == d.id and c.subject == "human:alice"
    assert c.actor_chain == ("agent:planner",) and c.resource == "mcp_tool:docs/echo"
    assert c.details["arguments_digest"] == arguments_digest(args)
    assert "arguments" not in c.details
    assert c.details["server"] == "docs" and c.details["tool"] == "echo"
    assert c.details["latency_ms"] >= c.details["downstream_ms"] > 0
    assert c.details["token"] == claims_of(token)["jti"]
    ids = [e.id for e in env.svc.storage.read_events(STORE, limit=10_000)]
    assert ids.index(d.id) < ids.index(c.id)
    # the downstream saw the gateway's secret, the agent's result does not hold it
    assert downstream.seen_auth[-1]["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in str(result.model_dump())


def test_record_arguments_keeps_them(env: GatewayStore) -> None:
    gw.update_gateway_settings(env.svc, env.admin, STORE, record_arguments=True)
    args = {"title": "printer on fire", "body": "3rd floor"}
    result, (d,), (c,) = call(env, env.acting_token("human:alice"), "docs__create_ticket", args)
    assert text(result) == "created ticket: printer on fire"
    assert c.details["arguments"] == args
    assert d.details["input"]["context"] == {"arguments": args}


def test_kill_switches_in_order(env: GatewayStore, downstream: DownstreamHandle) -> None:
    token = env.acting_token("human:alice")
    svc, admin = env.svc, env.admin
    n = len(downstream.calls)

    def refused(name: str, code: str, level: str | None) -> None:
        result, decided, (c,) = call(env, token, name, {"text": "x"})
        assert result.is_error and text(result).startswith(f"{code}: "), text(result)
        assert result.structured_content["code"] == code
        assert decided == [] and c.outcome == "deny" and c.reasons == (code,)
        assert c.details.get("kill_switch") == level
        assert c.subject == "human:alice" and c.decision_id is None

    gw.set_kill_switch(svc, admin, STORE, level="agent", target="agent:planner", reason="runaway")
    refused("docs__echo", "agent_blocked", "agent")
    gw.set_kill_switch(svc, admin, STORE, level="tool", target="docs/echo")
    refused("docs__echo", "tool_disabled", "tool")
    gw.set_kill_switch(svc, admin, STORE, level="server", target="docs")
    refused("docs__echo", "server_disabled", "server")
    gw.set_kill_switch(svc, admin, STORE, level="store", reason="incident 42")
    refused("docs__echo", "gateway_disabled", "store")
    refused("docs__nope", "gateway_disabled", "store")
    gw.set_kill_switch(svc, admin, STORE, level="store", engaged=False)
    refused("docs__nope", "tool_not_found", None)
    refused("nonsense", "tool_not_found", None)
    gw.set_kill_switch(svc, admin, STORE, level="server", target="docs", engaged=False)
    refused("docs__whoami", "tool_pending", None)
    gw.set_kill_switch(svc, admin, STORE, level="tool", target="docs/echo", engaged=False)
    refused("docs__echo", "agent_blocked", "agent")
    gw.set_kill_switch(svc, admin, STORE, level="agent", target="agent:planner", engaged=False)
    result, _, _ = call(env, token, "docs__echo", {"text": "back"})
    assert text(result) == "back"
    assert len(downstream.calls) == n + 1  # nothing refused reached the server


def test_denied_call_says_why_and_how_to_request(env: GatewayStore) -> None:
    svc, admin = env.svc, env.admin
    # whoami approved but in no toolset: not granted
    gw.update_tool(svc, admin, STORE, "docs", "whoami", status="enabled")
    token = env.acting_token("human:alice")
    result, (d,), (c,) = call(env, token, "docs__whoami", {})
    assert result.is_error
    code = d.reasons[0]
    assert text(result).startswith(f"{code}: ") and d.outcome == "deny"
    assert result.structured_content["requestable"] is False
    assert result.structured_content["decision_id"] == d.id == c.decision_id
    assert "request_access" not in text(result)
    # with an entitlement for it, the denial says how to request it
    ent = entitlements.create_entitlement(
        svc, admin, STORE, "whoami", object="mcp_tool:docs/whoami", relation="caller",
        owners=["human:alice"], agents_may_request=True,
    )  # fmt: skip
    result, (d,), _ = call(env, token, "docs__whoami", {})
    sc = result.structured_content
    assert sc["requestable"] is True, text(result)
    assert sc["request"]["entitlement"] == ent.id
    assert "request_access" in text(result) and f"/v1/stores/{STORE}/access-requests" in text(
        result
    )
    assert ent.id in text(result)


def test_guardrails_see_the_classification_and_the_arguments(env: GatewayStore) -> None:
    svc, admin = env.svc, env.admin
    guardrails.put_guardrails(
        svc, admin, STORE,
        [
            Guardrail(id="dangerous-needs-approval", description="", effect="require_approval",
                      expression='resource.attributes.risk == "dangerous"'),
            Guardrail(id="contractors-read-only", description="", effect="forbid",
                      expression='"employment" in subject.attributes && '
                      'subject.attributes.employment == "contractor" && '
                      'resource.attributes.kind != "read"'),
            Guardrail(id="no-secrets-in-tickets", description="", effect="forbid",
                      expression='tool == "docs/create_ticket" && "title" in context.arguments'
                      ' && context.arguments.title.contains("password")'),
        ],
    )  # fmt: skip
    alice, carol = env.acting_token("human:alice"), env.acting_token("human:carol")
    result, _, _ = call(env, alice, "docs__delete_repo", {"repo": "x"})
    assert text(result).startswith("approval_required: "), text(result)
    assert result.structured_content["requestable"] is True
    result, _, _ = call(env, carol, "docs__create_ticket", {"title": "t"})
    assert text(result).startswith("guardrail_forbid: "), text(result)
    assert "contractors-read-only" in text(result)
    result, _, _ = call(env, carol, "docs__echo", {"text": "ok"})
    assert text(result) == "ok"
    result, _, _ = call(env, alice, "docs__create_ticket", {"title": "the password is x"})
    assert text(result).startswith("guardrail_forbid: "), text(result)
    assert "no-secrets-in-tickets" in text(result)
    result, _, _ = call(env, alice, "docs__create_ticket", {"title": "fine"})
    assert not result.is_error, text(result)


def test_list_tools_filtered_and_recorded(env: GatewayStore) -> None:
    svc, admin = env.svc, env.admin
    guardrails.put_guardrails(
        svc, admin, STORE,
        [Guardrail(id="contractors-read-only", description="", effect="forbid",
                   expression='"employment" in subject.attributes && '
                      'subject.attributes.employment == "contractor" && '
                   'resource.attributes.kind != "read"'),
         Guardrail(id="dangerous-needs-approval", description="", effect="require_approval",
                   expression='resource.attributes.risk == "dangerous"')],
    )  # fmt: skip

    def listed(token: str) -> list[str]:
        rt = GatewayRuntime(svc, STORE, audience=None, pool=None)  # type: ignore[arg-type]
        return [t.exposed for t in rt.list_tools(token)]

    alice = env.acting_token("human:alice")
    # whoami pending; delete_repo asks for approval: listed (the call says how)
    assert listed(alice) == ["docs__create_ticket", "docs__delete_repo", "docs__echo"]
    # acting for a contractor: the forbidden write and delete tools are not listed
    assert listed(env.acting_token("human:carol")) == ["docs__echo"]
    gw.set_kill_switch(svc, admin, STORE, level="tool", target="docs/echo")
    assert listed(alice) == ["docs__create_ticket", "docs__delete_repo"]
    tuples.write_tuples(svc, admin, STORE, deletes=["toolset:dev#member@agent:planner"])
    assert listed(alice) == []
    (e, *_) = reversed(events(svc, "gateway.tools_listed"))
    assert e.subject == "human:alice" and e.actor_chain == ("agent:planner",)
    assert e.details["listed"] == 0 and e.details["considered"] == 2
    gw.set_kill_switch(svc, admin, STORE, level="store")
    assert listed(alice) == []


def test_revoked_delegation_and_bad_tokens(env: GatewayStore) -> None:
    token = env.acting_token("human:alice")
    result, _, _ = call(env, token, "docs__echo", {"text": "1"})
    assert text(result) == "1"
    delegations.revoke_delegation(env.svc, env.admin, STORE, env.delegation["agent:planner"])
    result, (d,), (c,) = call(env, token, "docs__echo", {"text": "2"})
    assert text(result).startswith("token_invalid: "), text(result)
    assert d.outcome == "deny" and d.reasons == ("token_invalid",)
    assert c.outcome == "deny" and c.decision_id == d.id
    assert "delegation" in text(result)
    rt = GatewayRuntime(env.svc, STORE, audience=None, pool=None)  # type: ignore[arg-type]
    with pytest.raises(AuthenticationError, match="revoked"):
        rt.authenticate(token)
    with pytest.raises(AuthenticationError):
        rt.authenticate("not-a-token")
    # a token for another audience is refused; the gateway's own audience accepted
    aud = "https://gw.example/gateway/acme/mcp"
    own = env.own_token("agent:helper", resource=[aud])
    with pytest.raises(AuthenticationError, match="audience"):
        rt.authenticate(own)
    rt2 = GatewayRuntime(env.svc, STORE, audience=aud, pool=None)  # type: ignore[arg-type]
    assert rt2.authenticate(own).subject == "agent:helper"


def test_purpose_from_meta_when_the_token_has_none(env: GatewayStore) -> None:
    token = env.own_token("agent:helper")
    _, (d,), (c,) = call(
        env, token, "docs__echo", {"text": "p"}, meta={"keyplane/purpose": "triage"}
    )
    assert d.purpose == "triage" and c.purpose == "triage"
    assert d.subject == "agent:helper" and d.actor_chain == ()
    with_purpose = env.acting_token("human:alice", purpose="support")
    _, (d,), _ = call(
        env, with_purpose, "docs__echo", {"text": "p"}, meta={"keyplane/purpose": "x"}
    )
    assert d.purpose == "support"


def test_rediscovery_when_due(
    env: GatewayStore, downstream: DownstreamHandle, clock: ShiftedClock
) -> None:
    svc, admin = env.svc, env.admin
    assert rediscover_due(svc, [STORE]) == []  # discovered at registration, due in an hour
    gw.update_server(svc, admin, STORE, "docs", discovery_interval_seconds=60)
    downstream.set_tools(add=["search"])
    clock.offset += 59
    assert rediscover_due(svc, [STORE]) == []
    clock.offset += 2
    assert rediscover_due(svc, [STORE]) == [(STORE, "docs")]
    assert gw.get_tool(svc, admin, STORE, "docs", "search").status == "pending"
    assert rediscover_due(svc, [STORE]) == []  # just discovered
    gw.update_server(svc, admin, STORE, "docs", discovery_interval_seconds=0)
    clock.offset += 3600
    assert rediscover_due(svc, [STORE]) == []  # on demand only


def test_the_registry_keeps_only_authenticated_runtimes_and_a_bounded_number(
    env: GatewayStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keyplane.gateway import runtime as runtime_mod

    gateways = runtime_mod.Gateways(env.svc, pool=None)  # type: ignore[arg-type]
    made_up = gateways.runtime("nope", "https://evil.example/gateway/nope/mcp")
    assert gateways.runtime("nope", made_up.audience) is not made_up  # not kept
    assert gateways.stores() == []
    rt = gateways.runtime(STORE, None)
    rt.authenticate(env.acting_token("human:alice"))
    gateways.keep(rt)
    assert gateways.runtime(STORE, None) is rt and gateways.stores() == [STORE]
    monkeypatch.setattr(runtime_mod, "MAX_RUNTIMES", 3)
    for i in range(5):
        gateways.keep(gateways.runtime(STORE, f"https://h{i}.example/gateway/{STORE}/mcp"))
    assert len(gateways._runtimes) == 3 and gateways.runtime(STORE, None) is not rt


def test_tool_errors_and_an_unreachable_server_are_recorded(
    env: GatewayStore, downstream: DownstreamHandle
) -> None:
    token = env.acting_token("human:alice")
    # the tool's own error (a missing argument): forwarded, answered with isError as is
    result, (d,), (c,) = call(env, token, "docs__echo", {})
    assert result.is_error and d.outcome == "allow", text(result)
    assert c.outcome == "error" and c.reasons == ("tool_error",)
    # the server gone: the agent gets downstream_unavailable, never the secret
    downstream.stop()
    result, (d,), (c,) = call(env, token, "docs__echo", {"text": "anyone?"})
    assert result.is_error and text(result).startswith("downstream_unavailable: "), text(result)
    assert SECRET not in str(result.model_dump())
    assert result.structured_content["decision_id"] == d.id
    assert d.outcome == "allow" and c.outcome == "error" and c.reasons == ("downstream_error",)
    assert "downstream_ms" in c.details


def test_the_scheduler_rediscovers_the_stores_served(
    env: GatewayStore, downstream: DownstreamHandle, clock: ShiftedClock
) -> None:
    from keyplane.gateway.runtime import Gateways, run_rediscovery

    svc, admin = env.svc, env.admin
    gw.update_server(svc, admin, STORE, "docs", discovery_interval_seconds=60)
    downstream.set_tools(remove=["delete_repo"])
    clock.offset += 61
    gateways = Gateways(svc, pool=None)  # type: ignore[arg-type]
    gateways.keep(gateways.runtime(STORE, None))

    async def run() -> None:
        with anyio.move_on_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: run_rediscovery(svc, gateways, tick=0.05))
                while gw.get_tool(svc, admin, STORE, "docs", "delete_repo").status != "removed":
                    await anyio.sleep(0.05)
                tg.cancel_scope.cancel()

    anyio.run(run)
    assert gw.get_tool(svc, admin, STORE, "docs", "delete_repo").status == "removed"


def test_calls_recorded_through_the_ledger_bridge(
    env: GatewayStore, downstream: DownstreamHandle
) -> None:
    """The runtimes of a Gateways record through its one LedgerBridge (from the event
    loop, no thread hop per record): durable when the call returns, the decision's event
    before the call's; a ledger that cannot take the decision refuses the call unsent."""
    token = env.acting_token("human:alice")
    env.svc.ledger.record_many(())  # the writer is up
    before = {e.id for e in env.svc.storage.read_events(STORE, limit=10_000)}

    async def go() -> tuple[Any, Any, Exception | None]:
        async with DownstreamPool(env.svc) as pool:
            gateways = Gateways(env.svc, pool)
            rt = gateways.runtime(STORE, None)
            assert rt.bridge is gateways.bridge and rt.bridge is not None
            allowed = await rt.call(token, "docs__echo", {"text": "bridged"})
            denied = await rt.call(token, "docs__nope", {})
            env.svc.ledger.close()  # the ledger can no longer take events
            try:
                await rt.call(token, "docs__echo", {"text": "never"})
            except Exception as exc:
                return allowed, denied, exc
            return allowed, denied, None

    allowed, denied, failure = anyio.run(go)
    assert text(allowed) == "bridged" and denied.is_error
    assert failure is not None and "closed" in str(failure)
    assert [c for c in downstream.calls if c[0] == "echo"] == [("echo", {"text": "bridged"})]
    new = [e for e in env.svc.storage.read_events(STORE, limit=10_000) if e.id not in before]
    kinds = [(e.type, e.outcome) for e in new]
    assert kinds == [
        ("decision.evaluate", "allow"),
        ("gateway.tool_call", "allow"),
        ("gateway.tool_call", "deny"),
    ]
