"""``/v1/stores/{store}/gateway/…`` — administration of the MCP gateway (issue 9):
downstream servers (register, update, read, delete, ``:discover``), their tools (list,
read, approve / disable / enable / classify), toolsets, kill switches and the store's
gateway settings.

A thin surface over :mod:`keyplane.service.gateway`: each handler is one service call.
Reading needs ``can_read_gateway``, changing ``can_manage_gateway``. A server's secret is
accepted in a request body and never answered. The gateway itself (the MCP endpoint agents
connect to) is ``/gateway/{store}/mcp`` (:mod:`keyplane.gateway.http`). See
``docs/gateway.md``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from keyplane.api.deps import CallerDep, ServicesDep
from keyplane.api.gateway_schemas import (
    DiscoveryOut,
    KillSwitchOut,
    KillSwitchRequest,
    PutToolsetRequest,
    RegisterServerRequest,
    RevisionOut,
    ServerList,
    ServerOut,
    SettingsOut,
    ToolList,
    ToolOut,
    ToolsetList,
    ToolsetOut,
    ToolStatus,
    UpdateServerRequest,
    UpdateSettingsRequest,
    UpdateToolRequest,
)
from keyplane.api.v1.common import StoreId, error_responses
from keyplane.service import gateway

__all__ = ["router"]

router = APIRouter(prefix="/stores/{store}/gateway", tags=["gateway"])

ServerName = Annotated[
    str, Path(min_length=1, max_length=32, description="The server's name, e.g. `github`.")
]
ToolName = Annotated[
    str, Path(min_length=1, max_length=128, description="The tool's name on its server.")
]
ToolsetName = Annotated[str, Path(min_length=1, max_length=64, description="The toolset.")]


def _credential(c: Any) -> dict[str, Any] | None:
    return None if c is None else c.model_dump(exclude_none=True)


# ---------------------------------------------------------------------------- servers


@router.post(
    "/servers",
    operation_id="register_server",
    status_code=201,
    responses=error_responses(409),
    summary="Register a downstream MCP server",
)
def register_server(
    store: StoreId, body: RegisterServerRequest, svc: ServicesDep, caller: CallerDep
) -> ServerOut:
    """Register a server reached over streamable HTTP (`url`) or started over stdio
    (`command`), with how the gateway authenticates to it. Its tools are discovered now
    (unless `discover: false`) and start `pending`: nothing is callable until approved.
    The secret is sealed under the master key and never answered."""
    s = gateway.register_server(
        svc, caller, store, body.name, transport=body.transport, url=body.url,
        command=body.command, env=body.env, description=body.description,
        credential=_credential(body.credential), secret=body.secret,
        discovery_interval_seconds=body.discovery_interval_seconds, discover=body.discover,
    )  # fmt: skip
    return ServerOut.of(s)


@router.get(
    "/servers",
    operation_id="list_servers",
    responses=error_responses(),
    summary="List the downstream servers",
)
def list_servers(store: StoreId, svc: ServicesDep, caller: CallerDep) -> ServerList:
    """Every registered server, by name. Never a secret."""
    return ServerList(servers=[ServerOut.of(s) for s in gateway.list_servers(svc, caller, store)])


@router.get(
    "/servers/{name}",
    operation_id="get_server",
    responses=error_responses(),
    summary="Get a downstream server",
)
def get_server(store: StoreId, name: ServerName, svc: ServicesDep, caller: CallerDep) -> ServerOut:
    """404 `gateway_server_not_found` when the store has no such server."""
    return ServerOut.of(gateway.get_server(svc, caller, store, name))


@router.patch(
    "/servers/{name}",
    operation_id="update_server",
    responses=error_responses(),
    summary="Update a downstream server",
)
def update_server(
    store: StoreId,
    name: ServerName,
    body: UpdateServerRequest,
    svc: ServicesDep,
    caller: CallerDep,
) -> ServerOut:
    """Change the address, command, environment, description, credential, secret or
    discovery schedule; fields left out are unchanged."""
    s = gateway.update_server(
        svc, caller, store, name, url=body.url, command=body.command, env=body.env,
        description=body.description, credential=_credential(body.credential),
        secret=body.secret, discovery_interval_seconds=body.discovery_interval_seconds,
    )  # fmt: skip
    return ServerOut.of(s)


@router.delete(
    "/servers/{name}",
    operation_id="delete_server",
    responses=error_responses(),
    summary="Delete a downstream server",
)
def delete_server(
    store: StoreId, name: ServerName, svc: ServicesDep, caller: CallerDep
) -> RevisionOut:
    """Remove the server, its tools and every grant on them (the `server`, `toolset` and
    `caller` tuples of its tools and of the server)."""
    return RevisionOut(revision=gateway.delete_server(svc, caller, store, name))


@router.post(
    "/servers/{name}:discover",
    operation_id="discover_tools",
    responses=error_responses(),
    summary="Discover a server's tools now",
)
def discover_tools(
    store: StoreId, name: ServerName, svc: ServicesDep, caller: CallerDep
) -> DiscoveryOut:
    """List the server's tools now: new ones are added `pending`, changed definitions go
    back to `pending`, missing ones are marked `removed`. An unreachable server is a 200
    with `error` set (and kept in the server's `last_discovery_error`)."""
    return DiscoveryOut.of(gateway.discover_tools(svc, caller, store, name))


# ---------------------------------------------------------------------------- tools


@router.get(
    "/tools",
    operation_id="list_tools",
    responses=error_responses(),
    summary="List the gateway's tools",
)
def list_tools(
    store: StoreId,
    svc: ServicesDep,
    caller: CallerDep,
    server: Annotated[
        str | None, Query(max_length=32, description="Only this server's tools.")
    ] = None,
    status: Annotated[ToolStatus | None, Query(description="Only tools in this status.")] = None,
) -> ToolList:
    """Every discovered tool (by server, then name) with its status and classification."""
    found = gateway.list_tools(svc, caller, store, server=server, status=status)
    return ToolList(tools=[ToolOut.of(t) for t in found])


@router.get(
    "/tools/{server}/{tool}",
    operation_id="get_tool",
    responses=error_responses(),
    summary="Get a tool",
)
def get_tool(
    store: StoreId, server: ServerName, tool: ToolName, svc: ServicesDep, caller: CallerDep
) -> ToolOut:
    """The tool's definition as the server announced it, its digest, status and
    classification. 404 `gateway_tool_not_found`."""
    return ToolOut.of(gateway.get_tool(svc, caller, store, server, tool))


@router.patch(
    "/tools/{server}/{tool}",
    operation_id="update_tool",
    responses=error_responses(409),
    summary="Approve, disable, enable or classify a tool",
)
def update_tool(
    store: StoreId,
    server: ServerName,
    tool: ToolName,
    body: UpdateToolRequest,
    svc: ServicesDep,
    caller: CallerDep,
) -> ToolOut:
    """`status: enabled` on a pending tool approves it (its digest is recorded: a later
    change of definition sends it back to pending); `disabled` kills it; `kind` and
    `risk` set the classification guardrails read (`resource.attributes.kind|risk`)."""
    t = gateway.update_tool(
        svc, caller, store, server, tool, status=body.status, kind=body.kind, risk=body.risk,
        reason=body.reason, expected_digest=body.expected_digest,
    )  # fmt: skip
    return ToolOut.of(t)


# ---------------------------------------------------------------------------- toolsets


@router.get(
    "/toolsets",
    operation_id="list_toolsets",
    responses=error_responses(),
    summary="List the toolsets",
)
def list_toolsets(store: StoreId, svc: ServicesDep, caller: CallerDep) -> ToolsetList:
    """Every toolset with its tools and members."""
    return ToolsetList(
        toolsets=[ToolsetOut.of(t) for t in gateway.list_toolsets(svc, caller, store)]
    )


@router.put(
    "/toolsets/{name}",
    operation_id="put_toolset",
    responses=error_responses(),
    summary="Create or replace a toolset",
)
def put_toolset(
    store: StoreId,
    name: ToolsetName,
    body: PutToolsetRequest,
    svc: ServicesDep,
    caller: CallerDep,
) -> ToolsetOut:
    """Set the toolset's tools (written as `mcp_tool:<s>/<t>#toolset@toolset:<name>`
    tuples). Grant it with an ordinary tuple: `toolset:<name>#member@agent:x`."""
    return ToolsetOut.of(gateway.put_toolset(svc, caller, store, name, body.tools))


@router.delete(
    "/toolsets/{name}",
    operation_id="delete_toolset",
    responses=error_responses(),
    summary="Delete a toolset",
)
def delete_toolset(
    store: StoreId, name: ToolsetName, svc: ServicesDep, caller: CallerDep
) -> RevisionOut:
    """Remove the toolset's tools and its member grants. 404 `toolset_not_found`."""
    return RevisionOut(revision=gateway.delete_toolset(svc, caller, store, name))


# ---------------------------------------------------------------------------- kill switch


@router.post(
    "/kill-switch",
    operation_id="set_kill_switch",
    responses=error_responses(),
    summary="Engage or release a kill switch",
)
def set_kill_switch(
    store: StoreId, body: KillSwitchRequest, svc: ServicesDep, caller: CallerDep
) -> KillSwitchOut:
    """Stop every call (`store`), a server's calls, one tool's, or an agent's — on the
    very next call, in every gateway process. `engaged: false` releases it (a tool goes
    back to `enabled` only if its current definition was approved)."""
    k = gateway.set_kill_switch(
        svc, caller, store, level=body.level, target=body.target, engaged=body.engaged,
        reason=body.reason,
    )  # fmt: skip
    return KillSwitchOut.model_validate(k.to_dict())


# ---------------------------------------------------------------------------- settings


@router.get(
    "/settings",
    operation_id="get_gateway_settings",
    responses=error_responses(),
    summary="Get the store's gateway settings",
)
def get_gateway_settings(store: StoreId, svc: ServicesDep, caller: CallerDep) -> SettingsOut:
    """The store kill switch, the blocked agents and whether arguments are recorded."""
    return SettingsOut.of(gateway.get_gateway_settings(svc, caller, store))


@router.patch(
    "/settings",
    operation_id="update_gateway_settings",
    responses=error_responses(),
    summary="Update the store's gateway settings",
)
def update_gateway_settings(
    store: StoreId, body: UpdateSettingsRequest, svc: ServicesDep, caller: CallerDep
) -> SettingsOut:
    """`record_arguments: true` keeps each tool call's arguments in its ledger event
    (default: only their digest). Kill switches are set with `POST …/kill-switch`."""
    return SettingsOut.of(
        gateway.update_gateway_settings(svc, caller, store, record_arguments=body.record_arguments)
    )
