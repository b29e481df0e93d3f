"""Wire form of the MCP gateway's administration (issue 9): each call one request to
``/v1/stores/{store}/gateway/…`` and the decoder that rebuilds the record the embedded
:class:`keyplane.Keyplane` returns (:mod:`keyplane.gateway.records`; the REST API answers
with their ``to_dict``). A secret goes out in a request body and never comes back: the
records rebuilt here hold no ``encrypted_secret``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keyplane.gateway.records import (
    DiscoveryResult,
    DownstreamCredential,
    GatewaySettings,
    McpServer,
    McpTool,
    Toolset,
)
from keyplane.sdk.wire import Call, _body, _params, seg
from keyplane.service.gateway import KillSwitch

__all__ = [
    "delete_server",
    "delete_toolset",
    "discover_tools",
    "get_gateway_settings",
    "get_server",
    "get_tool",
    "kill_switch",
    "list_servers",
    "list_tools",
    "list_toolsets",
    "put_toolset",
    "register_server",
    "server",
    "set_kill_switch",
    "settings",
    "tool",
    "toolset",
    "update_gateway_settings",
    "update_server",
    "update_tool",
]

#: discovery connects to the downstream server (and may start a stdio command): give it
#: the service's own discovery timeout and some
DISCOVERY_TIMEOUT = 60.0


def _path(store: str, rest: str) -> str:
    return f"/v1/stores/{seg(store)}/gateway{rest}"


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


# ---------------------------------------------------------------------------- decoders


def server(d: Mapping[str, Any], store: str = "") -> McpServer:
    c = d.get("credential") or {}
    return McpServer(
        store_id=store,
        name=str(d["name"]),
        transport=str(d["transport"]),
        url=d.get("url"),
        command=tuple(d.get("command") or ()),
        env=dict(d.get("env") or {}),
        description=d.get("description"),
        credential=DownstreamCredential.from_json(dict(c)),
        status=str(d.get("status", "enabled")),
        status_reason=d.get("status_reason"),
        discovery_interval_seconds=int(d.get("discovery_interval_seconds", 0)),
        last_discovered_at=_opt_float(d.get("last_discovered_at")),
        last_discovery_error=d.get("last_discovery_error"),
        created_at=float(d.get("created_at") or 0.0),
        created_by=d.get("created_by"),
        updated_at=float(d.get("updated_at") or 0.0),
        revision=int(d.get("revision", 0)),
    )


def tool(d: Mapping[str, Any], store: str = "") -> McpTool:
    return McpTool(
        store_id=store,
        server=str(d["server"]),
        name=str(d["name"]),
        title=d.get("title"),
        description=d.get("description"),
        input_schema=dict(d.get("input_schema") or {}),
        annotations=dict(d.get("annotations") or {}),
        digest=str(d.get("digest", "")),
        status=str(d.get("status", "pending")),
        status_reason=d.get("status_reason"),
        kind=str(d.get("kind", "write")),
        risk=str(d.get("risk", "sensitive")),
        approved_digest=d.get("approved_digest"),
        approved_by=d.get("approved_by"),
        approved_at=_opt_float(d.get("approved_at")),
        first_seen_at=float(d.get("first_seen_at") or 0.0),
        last_seen_at=float(d.get("last_seen_at") or 0.0),
        removed_at=_opt_float(d.get("removed_at")),
        updated_at=float(d.get("updated_at") or 0.0),
        revision=int(d.get("revision", 0)),
    )


def toolset(d: Mapping[str, Any]) -> Toolset:
    return Toolset(
        name=str(d["name"]),
        tools=tuple(d.get("tools") or ()),
        members=tuple(d.get("members") or ()),
        revision=int(d.get("revision", 0)),
    )


def settings(d: Mapping[str, Any], store: str = "") -> GatewaySettings:
    return GatewaySettings(
        store_id=store,
        enabled=bool(d.get("enabled", True)),
        disabled_reason=d.get("disabled_reason"),
        record_arguments=bool(d.get("record_arguments", False)),
        blocked_agents=dict(d.get("blocked_agents") or {}),
        updated_at=float(d.get("updated_at") or 0.0),
        updated_by=d.get("updated_by"),
        revision=int(d.get("revision", 0)),
    )


def discovery(d: Mapping[str, Any]) -> DiscoveryResult:
    return DiscoveryResult(
        server=str(d["server"]),
        added=tuple(d.get("added") or ()),
        changed=tuple(d.get("changed") or ()),
        removed=tuple(d.get("removed") or ()),
        unchanged=tuple(d.get("unchanged") or ()),
        skipped=dict(d.get("skipped") or {}),
        error=d.get("error"),
        discovered_at=float(d.get("discovered_at") or 0.0),
        revision=int(d.get("revision", 0)),
    )


def kill_switch(d: Mapping[str, Any]) -> KillSwitch:
    return KillSwitch(
        level=str(d["level"]),
        target=d.get("target"),
        engaged=bool(d["engaged"]),
        reason=d.get("reason"),
        revision=int(d.get("revision", 0)),
    )


def _revision(d: Mapping[str, Any]) -> int:
    return int(d["revision"])


# ---------------------------------------------------------------------------- calls


def register_server(
    store: str,
    name: str,
    *,
    transport: str,
    url: str | None,
    command: Sequence[str] | None,
    env: Mapping[str, str] | None,
    description: str | None,
    credential: Mapping[str, Any] | None,
    secret: str | None,
    discovery_interval_seconds: int,
    discover: bool,
) -> Call[McpServer]:
    return Call(
        "POST",
        _path(store, "/servers"),
        lambda d: server(d, store),
        body=_body(
            name=name,
            transport=transport,
            url=url,
            command=None if command is None else list(command),
            env=None if env is None else dict(env),
            description=description,
            credential=None if credential is None else dict(credential),
            secret=secret,
            discovery_interval_seconds=discovery_interval_seconds,
            discover=discover,
        ),
        min_timeout=DISCOVERY_TIMEOUT if discover else None,
    )


def update_server(
    store: str,
    name: str,
    *,
    url: str | None,
    command: Sequence[str] | None,
    env: Mapping[str, str] | None,
    description: str | None,
    credential: Mapping[str, Any] | None,
    secret: str | None,
    discovery_interval_seconds: int | None,
) -> Call[McpServer]:
    return Call(
        "PATCH",
        _path(store, f"/servers/{seg(name)}"),
        lambda d: server(d, store),
        body=_body(
            url=url,
            command=None if command is None else list(command),
            env=None if env is None else dict(env),
            description=description,
            credential=None if credential is None else dict(credential),
            secret=secret,
            discovery_interval_seconds=discovery_interval_seconds,
        ),
    )


def get_server(store: str, name: str) -> Call[McpServer]:
    return Call(
        "GET", _path(store, f"/servers/{seg(name)}"), lambda d: server(d, store), idempotent=True
    )


def list_servers(store: str) -> Call[list[McpServer]]:
    return Call(
        "GET",
        _path(store, "/servers"),
        lambda d: [server(s, store) for s in d.get("servers") or ()],
        idempotent=True,
    )


def delete_server(store: str, name: str) -> Call[int]:
    return Call("DELETE", _path(store, f"/servers/{seg(name)}"), _revision)


def discover_tools(store: str, name: str) -> Call[DiscoveryResult]:
    return Call(
        "POST",
        _path(store, f"/servers/{seg(name)}:discover"),
        discovery,
        min_timeout=DISCOVERY_TIMEOUT,
    )


def list_tools(store: str, server_name: str | None, status: str | None) -> Call[list[McpTool]]:
    return Call(
        "GET",
        _path(store, "/tools"),
        lambda d: [tool(t, store) for t in d.get("tools") or ()],
        params=_params(server=server_name, status=status),
        idempotent=True,
    )


def get_tool(store: str, server_name: str, name: str) -> Call[McpTool]:
    return Call(
        "GET",
        _path(store, f"/tools/{seg(server_name)}/{seg(name)}"),
        lambda d: tool(d, store),
        idempotent=True,
    )


def update_tool(
    store: str,
    server_name: str,
    name: str,
    *,
    status: str | None,
    kind: str | None,
    risk: str | None,
    reason: str | None,
    expected_digest: str | None,
) -> Call[McpTool]:
    return Call(
        "PATCH",
        _path(store, f"/tools/{seg(server_name)}/{seg(name)}"),
        lambda d: tool(d, store),
        body=_body(
            status=status, kind=kind, risk=risk, reason=reason, expected_digest=expected_digest
        ),
    )


def put_toolset(store: str, name: str, tools: Sequence[str]) -> Call[Toolset]:
    return Call(
        "PUT",
        _path(store, f"/toolsets/{seg(name)}"),
        toolset,
        body={"tools": list(tools)},
        idempotent=True,
    )


def list_toolsets(store: str) -> Call[list[Toolset]]:
    return Call(
        "GET",
        _path(store, "/toolsets"),
        lambda d: [toolset(t) for t in d.get("toolsets") or ()],
        idempotent=True,
    )


def delete_toolset(store: str, name: str) -> Call[int]:
    return Call("DELETE", _path(store, f"/toolsets/{seg(name)}"), _revision)


def set_kill_switch(
    store: str, *, level: str, target: str | None, engaged: bool, reason: str | None
) -> Call[KillSwitch]:
    return Call(
        "POST",
        _path(store, "/kill-switch"),
        kill_switch,
        body=_body(level=level, target=target, engaged=engaged, reason=reason),
    )


def get_gateway_settings(store: str) -> Call[GatewaySettings]:
    return Call("GET", _path(store, "/settings"), lambda d: settings(d, store), idempotent=True)


def update_gateway_settings(store: str, record_arguments: bool | None) -> Call[GatewaySettings]:
    return Call(
        "PATCH",
        _path(store, "/settings"),
        lambda d: settings(d, store),
        body=_body(record_arguments=record_arguments),
    )
