"""MCP tools administering the MCP gateway (issue 9): read the downstream servers and their
tools, approve / disable / classify tools, set toolsets, engage or release kill switches,
change the gateway settings.

Same rules as :mod:`keyplane.mcp.tools`: one tool, one service function of
:mod:`keyplane.service.gateway`; inputs mirror the REST bodies (plus the path parameters
as fields), outputs are the REST response models (:mod:`keyplane.api.gateway_schemas`).
Write tools are listed only for keys that may manage the gateway (``can_manage_gateway``).

These are the ADMINISTRATION tools on Keyplane's own ``/mcp``; the gateway agents call
downstream tools through is ``/gateway/{store}/mcp`` (:mod:`keyplane.gateway.server`).

Registering or updating a server is not offered here: those calls carry the downstream
credential's secret, and a secret must never pass through an LLM's context (the
conversation, the host's logs); and changing a server's address while its secret stays
would let a manipulated agent send that secret elsewhere. Administrators do both over
REST, the CLI or the SDK.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from keyplane.api import gateway_schemas as gs
from keyplane.service import gateway
from keyplane.service.auth import Caller, Permission
from keyplane.service.context import Services

__all__ = ["GATEWAY_NOT_EXPOSED", "GATEWAY_SERVICE_OF_TOOL", "GATEWAY_SPECS"]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _server() -> Any:
    return Field(min_length=1, max_length=32, description="The server's name.", examples=["github"])


def _tool() -> Any:
    return Field(min_length=1, max_length=128, description="The tool's name on its server.")


class NoArgs(_Args):
    """No arguments but the store."""


class ServerArgs(_Args):
    """One downstream server."""

    name: str = _server()


class ListToolsArgs(_Args):
    """The gateway's tools, optionally filtered."""

    server: str | None = Field(default=None, max_length=32, description="Only this server's.")
    status: gs.ToolStatus | None = Field(default=None, description="Only this status.")


class ToolArgs(_Args):
    """One tool."""

    server: str = _server()
    tool: str = _tool()


class UpdateToolArgs(gs.UpdateToolRequest):
    server: str = _server()
    tool: str = _tool()


class ToolsetArgs(_Args):
    """One toolset."""

    name: str = Field(min_length=1, max_length=64, description="The toolset's name.")


class PutToolsetArgs(gs.PutToolsetRequest):
    name: str = Field(min_length=1, max_length=64, description="The toolset's name.")


class SettingsArgs(_Args):
    """The settings to change (omitted: unchanged)."""

    record_arguments: StrictBool | None = Field(
        default=None, description="Keep tool-call arguments in the ledger (else a digest)."
    )


# ------------------------------------------------------------------ handlers

Result = tuple[BaseModel, str]


def _server_line(s: gs.ServerOut) -> str:
    where = s.url or " ".join(s.command)
    err = f", last discovery failed: {s.last_discovery_error}" if s.last_discovery_error else ""
    return f"{s.name} ({s.transport} {where}): {s.status}, credential {s.credential.kind}{err}"


def _tool_line(t: gs.ToolOut) -> str:
    return f"{t.server}/{t.name}: {t.status}, {t.kind}/{t.risk}"


def _list_servers(svc: Services, caller: Caller, store: str, a: NoArgs) -> Result:
    out = gs.ServerList(
        servers=[gs.ServerOut.of(s) for s in gateway.list_servers(svc, caller, store)]
    )
    return out, "\n".join([f"{len(out.servers)} server(s):", *map(_server_line, out.servers)])


def _get_server(svc: Services, caller: Caller, store: str, a: ServerArgs) -> Result:
    out = gs.ServerOut.of(gateway.get_server(svc, caller, store, a.name))
    return out, _server_line(out)


def _delete_server(svc: Services, caller: Caller, store: str, a: ServerArgs) -> Result:
    revision = gateway.delete_server(svc, caller, store, a.name)
    return gs.RevisionOut(revision=revision), f"deleted server {a.name} (revision {revision})"


def _discover(svc: Services, caller: Caller, store: str, a: ServerArgs) -> Result:
    out = gs.DiscoveryOut.of(gateway.discover_tools(svc, caller, store, a.name))
    if out.error:
        return out, f"discovery of {a.name} failed: {out.error}"
    return out, (
        f"{a.name}: added {out.added}, changed {out.changed}, removed {out.removed}, "
        f"{len(out.unchanged)} unchanged, skipped {sorted(out.skipped)}"
    )


def _list_tools(svc: Services, caller: Caller, store: str, a: ListToolsArgs) -> Result:
    found = gateway.list_tools(svc, caller, store, server=a.server, status=a.status)
    out = gs.ToolList(tools=[gs.ToolOut.of(t) for t in found])
    return out, "\n".join([f"{len(out.tools)} tool(s):", *map(_tool_line, out.tools)])


def _get_tool(svc: Services, caller: Caller, store: str, a: ToolArgs) -> Result:
    out = gs.ToolOut.of(gateway.get_tool(svc, caller, store, a.server, a.tool))
    return out, f"{_tool_line(out)}; digest {out.digest}"


def _update_tool(svc: Services, caller: Caller, store: str, a: UpdateToolArgs) -> Result:
    t = gateway.update_tool(
        svc, caller, store, a.server, a.tool, status=a.status, kind=a.kind, risk=a.risk,
        reason=a.reason, expected_digest=a.expected_digest,
    )  # fmt: skip
    out = gs.ToolOut.of(t)
    return out, _tool_line(out)


def _list_toolsets(svc: Services, caller: Caller, store: str, a: NoArgs) -> Result:
    out = gs.ToolsetList(
        toolsets=[gs.ToolsetOut.of(t) for t in gateway.list_toolsets(svc, caller, store)]
    )
    lines = [f"{len(out.toolsets)} toolset(s):"]
    lines += [f"{t.name}: tools {t.tools}, members {t.members}" for t in out.toolsets]
    return out, "\n".join(lines)


def _put_toolset(svc: Services, caller: Caller, store: str, a: PutToolsetArgs) -> Result:
    out = gs.ToolsetOut.of(gateway.put_toolset(svc, caller, store, a.name, a.tools))
    return out, f"toolset {out.name}: {', '.join(out.tools)}"


def _delete_toolset(svc: Services, caller: Caller, store: str, a: ToolsetArgs) -> Result:
    revision = gateway.delete_toolset(svc, caller, store, a.name)
    return gs.RevisionOut(revision=revision), f"deleted toolset {a.name} (revision {revision})"


def _kill(svc: Services, caller: Caller, store: str, a: gs.KillSwitchRequest) -> Result:
    k = gateway.set_kill_switch(
        svc, caller, store, level=a.level, target=a.target, engaged=a.engaged, reason=a.reason
    )
    out = gs.KillSwitchOut.model_validate(k.to_dict())
    what = f"{out.level} {out.target}" if out.target else f"store {store}"
    return out, f"kill switch {'engaged' if out.engaged else 'released'}: {what}"


def _get_settings(svc: Services, caller: Caller, store: str, a: NoArgs) -> Result:
    out = gs.SettingsOut.of(gateway.get_gateway_settings(svc, caller, store))
    return out, _settings_text(out)


def _update_settings(svc: Services, caller: Caller, store: str, a: SettingsArgs) -> Result:
    s = gateway.update_gateway_settings(svc, caller, store, record_arguments=a.record_arguments)
    out = gs.SettingsOut.of(s)
    return out, _settings_text(out)


def _settings_text(s: gs.SettingsOut) -> str:
    state = "enabled" if s.enabled else f"disabled ({s.disabled_reason or 'no reason'})"
    return (
        f"gateway {state}; record arguments: {s.record_arguments}; "
        f"blocked agents: {sorted(s.blocked_agents) or 'none'}"
    )


# ------------------------------------------------------------------ the tools

M = Permission.MANAGE_GATEWAY

GATEWAY_SPECS: list[
    tuple[str, str, str, type[BaseModel], type[BaseModel], Any, bool, str | None, bool]
] = [
    (
        "gateway_list_servers",
        "Gateway: downstream servers",
        "List the downstream MCP servers registered with the gateway: transport, address, "
        "status (disabled = its kill switch), credential kind (never a secret), last "
        "discovery and its error. Needs can_read_gateway. Example: {}.",
        NoArgs, gs.ServerList, _list_servers, False, None, False,
    ),
    (
        "gateway_get_server",
        "Gateway: one server",
        'One downstream server. Example: {"name": "github"}.',
        ServerArgs, gs.ServerOut, _get_server, False, None, False,
    ),
    (
        "gateway_discover_tools",
        "Gateway: discover a server's tools",
        "Ask a downstream server for its tools now: new tools are added pending approval, "
        "tools whose definition changed go back to pending, missing ones are marked "
        "removed. An unreachable server answers with `error`. Only listed for keys that may "
        'manage the gateway. Example: {"name": "github"}.',
        ServerArgs, gs.DiscoveryOut, _discover, True, M, False,
    ),
    (
        "gateway_delete_server",
        "Gateway: delete a server",
        "Remove a downstream server, its tools and every grant on them. Irreversible. Only "
        'listed for keys that may manage the gateway. Example: {"name": "old-wiki"}.',
        ServerArgs, gs.RevisionOut, _delete_server, True, M, True,
    ),
    (
        "gateway_list_tools",
        "Gateway: tools",
        "List the tools the gateway discovered, with status (pending = awaiting approval, "
        "enabled, disabled, removed) and the enforced classification (kind read/write/"
        "delete, risk normal/sensitive/dangerous). Needs can_read_gateway. Example: "
        '{"status": "pending"}.',
        ListToolsArgs, gs.ToolList, _list_tools, False, None, False,
    ),
    (
        "gateway_get_tool",
        "Gateway: one tool",
        "One tool: its definition as the server announced it (description, input schema, "
        "annotations), digest, status and classification. Read the description before "
        'approving. Example: {"server": "github", "tool": "create_issue"}.',
        ToolArgs, gs.ToolOut, _get_tool, False, None, False,
    ),
    (
        "gateway_update_tool",
        "Gateway: approve, disable or classify a tool",
        "`status: enabled` approves a pending tool (pass `expected_digest`, the digest you "
        "reviewed, so a definition changed since is refused) or re-enables a disabled one; "
        "`status: disabled` kills it; `kind` / `risk` set its classification, which "
        "guardrails read. Only listed for keys that may manage the gateway. Example: "
        '{"server": "github", "tool": "create_issue", "status": "enabled", "kind": "write", '
        '"risk": "sensitive"}.',
        UpdateToolArgs, gs.ToolOut, _update_tool, True, M, False,
    ),
    (
        "gateway_list_toolsets",
        "Gateway: toolsets",
        "List the toolsets (named groups of tools) with their tools and members. Needs "
        "can_read_gateway. Example: {}.",
        NoArgs, gs.ToolsetList, _list_toolsets, False, None, False,
    ),
    (
        "gateway_put_toolset",
        "Gateway: set a toolset",
        "Create or replace a toolset's tools (`<server>/<tool>`). Grant it by writing the "
        "tuple `toolset:<name>#member@agent:<id>`. Only listed for keys that may manage the "
        'gateway. Example: {"name": "triage", "tools": ["github/list_issues"]}.',
        PutToolsetArgs, gs.ToolsetOut, _put_toolset, True, M, False,
    ),
    (
        "gateway_delete_toolset",
        "Gateway: delete a toolset",
        "Delete a toolset: its tools leave it and its member grants are removed. Only "
        'listed for keys that may manage the gateway. Example: {"name": "triage"}.',
        ToolsetArgs, gs.RevisionOut, _delete_toolset, True, M, True,
    ),
    (
        "gateway_kill_switch",
        "Gateway: kill switch",
        "Engage (or with `engaged: false` release) a kill switch, effective on the very "
        "next call: `store` (every call), `server` (target: its name), `tool` (target: "
        "`<server>/<tool>`) or `agent` (target: the agent's node; its calls refused "
        "whoever it acts for). Only listed for keys that may manage the gateway. Example: "
        '{"level": "agent", "target": "agent:planner", "reason": "suspected injection"}.',
        gs.KillSwitchRequest, gs.KillSwitchOut, _kill, True, M, False,
    ),
    (
        "gateway_get_settings",
        "Gateway: settings",
        "The store's gateway settings: whether the gateway is enabled (the store kill "
        "switch), the blocked agents, whether call arguments are recorded. Example: {}.",
        NoArgs, gs.SettingsOut, _get_settings, False, None, False,
    ),
    (
        "gateway_update_settings",
        "Gateway: change settings",
        "Turn the recording of tool-call arguments in the ledger on or off (off: only a "
        "digest). Only listed for keys that may manage the gateway. Example: "
        '{"record_arguments": true}.',
        SettingsArgs, gs.SettingsOut, _update_settings, True, M, False,
    ),
]  # fmt: skip


GATEWAY_SERVICE_OF_TOOL: dict[str, Any] = {
    "gateway_list_servers": gateway.list_servers,
    "gateway_get_server": gateway.get_server,
    "gateway_discover_tools": gateway.discover_tools,
    "gateway_delete_server": gateway.delete_server,
    "gateway_list_tools": gateway.list_tools,
    "gateway_get_tool": gateway.get_tool,
    "gateway_update_tool": gateway.update_tool,
    "gateway_list_toolsets": gateway.list_toolsets,
    "gateway_put_toolset": gateway.put_toolset,
    "gateway_delete_toolset": gateway.delete_toolset,
    "gateway_kill_switch": gateway.set_kill_switch,
    "gateway_get_settings": gateway.get_gateway_settings,
    "gateway_update_settings": gateway.update_gateway_settings,
}

_SECRET_WHY = (
    "carries a downstream server's secret, which must never pass through an LLM's context; "
    "and re-pointing a server that keeps its secret would let a manipulated agent send the "
    "secret elsewhere — administrators use REST, the CLI or the SDK"
)

GATEWAY_NOT_EXPOSED: dict[str, str] = {
    "gateway.register_server": _SECRET_WHY,
    "gateway.update_server": _SECRET_WHY,
}
