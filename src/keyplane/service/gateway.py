"""Administration of a store's MCP gateway (issue 9): downstream servers, their tools,
toolsets, kill switches and settings.

Operations (``fn(svc, caller, store_id, ...)``; ``can_read_gateway`` to read,
``can_manage_gateway`` to change):

* servers — :func:`register_server`, :func:`update_server`, :func:`get_server`,
  :func:`list_servers`, :func:`delete_server`;
* tools — :func:`discover_tools` (connects to the server, lists its tools and applies the
  lifecycle below), :func:`list_tools`, :func:`get_tool`, :func:`update_tool` (approve,
  classify, disable, enable);
* toolsets — :func:`put_toolset`, :func:`list_toolsets`, :func:`delete_toolset` (granting
  a toolset is the ordinary tuple ``toolset:<name>#member@<user>``);
* :func:`set_kill_switch` (store, server, tool, agent), :func:`get_gateway_settings`,
  :func:`update_gateway_settings`.

Every change is one :meth:`~keyplane.storage.base.GatewayStore.write_gateway` transaction
that commits its ``gateway.*`` ledger event with it (fields: docs/ledger.md); the store's
in-process graph then catches up, so tuples written here (a tool's ``#server``, a toolset's
``#toolset``) decide the very next check.

Tool lifecycle (:mod:`keyplane.gateway.records`): a tool first seen is ``pending`` with a
classification proposed from its annotations; an admin approves it (``enabled``: the
definition's digest becomes ``approved_digest``); a discovery that finds a definition
other than the approved one puts it back to ``pending`` ("definition changed") — and to
``enabled`` again if the server returns to the approved definition; a tool the server no
longer lists is ``removed``, and ``pending`` when it reappears. ``disabled`` is the tool's
kill switch: it survives discoveries, and releasing it enables the tool only when its
current definition is the approved one.

Secrets: a server's secret is sealed here with the master key (AES-GCM, associated data
:func:`~keyplane.gateway.records.secret_aad`) and stored beside it; nothing here ever
decrypts it, returns it (records are returned without the sealed blob) or puts it in an
event. Changing where a secret goes (an HTTP server's URL, a stdio server's command or
environment, the credential's kind, header, token URL or variable) requires the secret
again: an admin who can edit a server cannot redirect its stored secret to an address
(or a program) of their choosing.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from keyplane.errors import (
    GatewayServerExistsError,
    GatewayServerNotFoundError,
    GatewayToolNotFoundError,
    InvalidTupleError,
    KeyplaneError,
    LimitExceededError,
    RelationNotFoundError,
    ToolDefinitionChangedError,
    ToolRemovedError,
    ToolsetNotFoundError,
    TypeNotFoundError,
    ValidationError,
)
from keyplane.gateway.records import (
    DEFAULT_DISCOVERY_SECONDS,
    KILL_LEVELS,
    SERVER_TYPE,
    TOOL_KINDS,
    TOOL_RISKS,
    TOOL_STATUSES,
    TOOL_TYPE,
    TOOLSET_TYPE,
    TRANSPORTS,
    DiscoveryResult,
    GatewaySettings,
    GatewayWrite,
    McpServer,
    McpTool,
    Toolset,
    secret_aad,
    server_object,
    tool_object,
    tool_ref,
    toolset_object,
)
from keyplane.graph.tuples import Tuple
from keyplane.ledger.events import LedgerEvent
from keyplane.service import audit
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services
from keyplane.service.gateway_rules import (
    MAX_TEXT_CHARS,
    MAX_TOOLSET_TOOLS,
    after_discovery,
    check_command,
    check_credential,
    check_env,
    check_interval,
    check_ref,
    check_secret,
    check_server_name,
    check_text,
    check_tool_name,
    check_toolset_name,
    check_url,
    listed_definitions,
)
from keyplane.service.identities import ensure_model, parse_node
from keyplane.storage.base import GatewayTxReader

__all__ = [
    "MAX_BLOCKED_AGENTS",
    "KillSwitch",
    "delete_server",
    "delete_toolset",
    "discover_tools",
    "get_gateway_settings",
    "get_server",
    "get_tool",
    "list_servers",
    "list_tools",
    "list_toolsets",
    "put_toolset",
    "register_server",
    "set_kill_switch",
    "update_gateway_settings",
    "update_server",
    "update_tool",
]

log = logging.getLogger("keyplane.gateway")

#: agents one store's agent kill switch may hold at once (they live in the settings row)
MAX_BLOCKED_AGENTS: Final = 1000


@dataclass(frozen=True, slots=True)
class KillSwitch:
    """A kill switch as set: ``level`` (store, server, tool, agent), ``target`` (None for
    the store; the server name, the tool ref ``<server>/<tool>`` or the agent's node),
    ``engaged`` and ``reason``; ``revision`` the store revision of the change (the current
    one when nothing changed)."""

    level: str
    target: str | None
    engaged: bool
    reason: str | None
    revision: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "target": self.target,
            "engaged": self.engaged,
            "reason": self.reason,
            "revision": self.revision,
        }


def _seal(svc: Services, store_id: str, server: str, secret: str) -> bytes:
    return svc.master_key().encrypt(secret.encode(), aad=secret_aad(store_id, server))


def _public(server: McpServer) -> McpServer:
    """The server as operations return it: never the sealed secret."""
    return replace(server, encrypted_secret=None) if server.encrypted_secret else server


def _summary(server: McpServer) -> dict[str, Any]:
    """A server in events: where it is and how the gateway authenticates — never the
    secret, and the names of its environment variables only."""
    out: dict[str, Any] = {"name": server.name, "transport": server.transport}
    if server.transport == "http":
        out["url"] = server.url
    else:
        out["command"] = list(server.command)
        out["env"] = sorted(server.env)
    out["credential"] = server.credential.to_dict()
    out["discovery_interval_seconds"] = server.discovery_interval_seconds
    if server.description is not None:
        out["description"] = server.description
    return out


def _check_graph_types(
    svc: Services, caller: Caller, store_id: str, tuples: Sequence[Tuple]
) -> None:
    """The store's model must hold the gateway's types (the built-in base model declares
    them; a store with no model gets the base model first)."""
    model = ensure_model(svc, caller, store_id)
    try:
        for t in tuples:
            model.validate_tuple(t)
    except (TypeNotFoundError, RelationNotFoundError, InvalidTupleError) as exc:
        raise type(exc)(
            f"{exc.message} in the store's model {model.model_id}: the gateway needs the "
            "types mcp_server, mcp_tool (server, toolset, caller, can_call) and toolset "
            "(member) of the built-in base model — a model written through the native API "
            "(/v1, SDK, CLI) gets them added; rewrite the model that way, or add them",
            details={**exc.details, "model_id": model.model_id},
        ) from None


# ------------------------------------------------------------------------------ the write


def _write(
    svc: Services,
    caller: Caller,
    store_id: str,
    event_type: str,
    plan: Callable[[GatewayTxReader], tuple[GatewayWrite, str, str, dict[str, Any]]],
) -> tuple[int, bool]:
    """One gateway write with its event: ``plan`` returns (the write, the event's
    resource, its action, its details). Returns (revision, changed)."""
    box: dict[str, Any] = {}

    def run(r: GatewayTxReader) -> GatewayWrite:
        write, box["resource"], box["action"], box["details"] = plan(r)
        return write

    def events(revision: int) -> list[tuple[LedgerEvent, str]]:
        return audit.change_events(
            svc, caller, event_type, store_id, resource=box["resource"], action=box["action"],
            revision=revision, details=box["details"],
        )  # fmt: skip

    result = svc.storage.write_gateway(store_id, run, ledger_events=events)
    svc.graphs.catch_up(store_id)
    return result.revision, result.changed


def _server(r: GatewayTxReader, name: str) -> McpServer:
    found = r.server(name)
    if found is None:
        raise GatewayServerNotFoundError(
            f"no MCP server {name!r} in the gateway", details={"server": name}
        )
    return found


def _tool(r: GatewayTxReader, server: str, name: str) -> McpTool:
    _server(r, server)
    for t in r.tools(server):
        if t.name == name:
            return t
    raise GatewayToolNotFoundError(
        f"server {server!r} has no tool {name!r}",
        details={"server": server, "tool": name},
    )


def _endpoint(s: McpServer) -> tuple[Any, ...]:
    """What decides which server a discovery reaches and with what secret."""
    return (s.transport, s.url, s.command, s.env, s.credential, s.encrypted_secret)


def _state_server(svc: Services, store_id: str, name: str) -> McpServer:
    found = svc.storage.read_gateway(store_id).servers.get(name)
    if found is None:
        raise GatewayServerNotFoundError(
            f"no MCP server {name!r} in the gateway", details={"server": name}
        )
    return found


# ------------------------------------------------------------------------------ servers


@audited("gateway.server_registered")
def register_server(
    svc: Services,
    caller: Caller,
    store_id: str,
    name: str,
    *,
    transport: str,
    url: str | None = None,
    command: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    description: str | None = None,
    credential: Mapping[str, Any] | None = None,
    secret: str | None = None,
    discovery_interval_seconds: int = DEFAULT_DISCOVERY_SECONDS,
    discover: bool = True,
) -> McpServer:
    """Register a downstream MCP server: ``transport`` ``http`` (``url``) or ``stdio``
    (``command``, argv without a shell, and non-secret ``env``). ``credential`` says how
    the gateway authenticates (``kind`` ``none``, ``bearer``, ``header`` with ``header``,
    ``oauth_client_credentials`` with ``token_url``, ``client_id``, optional ``scope`` and
    ``audience`` — all http — or ``env`` with ``env_var`` for stdio); ``secret`` is
    required exactly when the kind is not ``none``: sealed under the master key, never
    returned. With ``discover`` the tools are discovered at once (a failure is kept in
    ``last_discovery_error``; the registration stands). Returns the server as stored."""
    authorize(svc, caller, Permission.MANAGE_GATEWAY, store_id)
    check_server_name(name)
    if transport not in TRANSPORTS:
        raise ValidationError(
            f"unknown transport {str(transport)[:50]!r}: one of {', '.join(TRANSPORTS)}",
            details={"field": "transport"},
        )
    cmd: tuple[str, ...] = ()
    variables: dict[str, str] = {}
    if transport == "http":
        url = check_url(url)
        if command is not None or env:
            raise ValidationError(
                "command and env are for stdio servers", details={"field": "command"}
            )
    else:
        if url is not None:
            raise ValidationError("url is for http servers", details={"field": "url"})
        cmd = check_command(command)
        variables = check_env(env if env is not None else {})
    cred = check_credential(credential, transport, variables)
    desc = check_text(description, "description") or None
    interval = check_interval(discovery_interval_seconds)
    if not isinstance(discover, bool):
        raise ValidationError("discover must be a boolean", details={"field": "discover"})
    now = svc.clock.now()
    sealed: bytes | None = None
    if cred.kind == "none":
        if secret is not None:
            raise ValidationError(
                "a secret needs a credential kind other than 'none'", details={"field": "secret"}
            )
    else:
        if secret is None:
            raise ValidationError(
                f"a {cred.kind!r} credential needs its secret", details={"field": "secret"}
            )
        sealed = _seal(svc, store_id, name, check_secret(secret, cred.kind))
        cred = replace(cred, secret_set_at=now)
    _check_graph_types(
        svc, caller, store_id, [Tuple(tool_object(name, "t"), "server", server_object(name))]
    )
    server = McpServer(
        store_id=store_id, name=name, transport=transport, url=url, command=cmd, env=variables,
        description=desc, credential=cred, encrypted_secret=sealed,
        discovery_interval_seconds=interval, created_at=now, created_by=caller.principal,
        updated_at=now,
    )  # fmt: skip

    def plan(r: GatewayTxReader) -> tuple[GatewayWrite, str, str, dict[str, Any]]:
        if r.server(name) is not None:
            raise GatewayServerExistsError(
                f"an MCP server named {name!r} is already registered", details={"server": name}
            )
        return GatewayWrite(servers=(server,)), server.node, "create", {"server": _summary(server)}

    _write(svc, caller, store_id, "gateway.server_registered", plan)
    if discover:
        discover_tools(svc, caller, store_id, name)
    return _public(_state_server(svc, store_id, name))


@audited("gateway.server_updated")
def update_server(
    svc: Services,
    caller: Caller,
    store_id: str,
    name: str,
    *,
    url: str | None = None,
    command: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    description: str | None = None,
    credential: Mapping[str, Any] | None = None,
    secret: str | None = None,
    discovery_interval_seconds: int | None = None,
) -> McpServer:
    """Change a server (None: unchanged; the transport and name never change; an empty
    ``description`` clears it). A new ``credential`` replaces the old one whole; kind
    ``none`` clears the secret. ``secret`` alone replaces the secret. Changing where the
    secret goes — the URL, the command or its environment, the credential's kind, header,
    token URL or variable — needs the secret again (without a secret, nothing to give).
    Returns the server as stored."""
    authorize(svc, caller, Permission.MANAGE_GATEWAY, store_id)
    check_server_name(name)
    desc = check_text(description, "description")
    interval = (
        None if discovery_interval_seconds is None else check_interval(discovery_interval_seconds)
    )
    now = svc.clock.now()

    def plan(r: GatewayTxReader) -> tuple[GatewayWrite, str, str, dict[str, Any]]:
        old = _server(r, name)
        new = old
        changed: list[str] = []
        moved = False  # the secret would go somewhere else
        if url is not None:
            if old.transport != "http":
                raise ValidationError("url is for http servers", details={"field": "url"})
            if check_url(url) != old.url:
                new, moved = replace(new, url=url), True
                changed.append("url")
        if command is not None or env is not None:
            if old.transport != "stdio":
                raise ValidationError(
                    "command and env are for stdio servers", details={"field": "command"}
                )
            if command is not None and check_command(command) != old.command:
                new, moved = replace(new, command=tuple(command)), True
                changed.append("command")
            if env is not None and check_env(env) != old.env:
                # the environment changes what the command runs (PATH, LD_PRELOAD, …)
                new, moved = replace(new, env=check_env(env)), True
                changed.append("env")
        if desc is not None and (desc or None) != old.description:
            new = replace(new, description=desc or None)
            changed.append("description")
        if interval is not None and interval != old.discovery_interval_seconds:
            new = replace(new, discovery_interval_seconds=interval)
            changed.append("discovery_interval_seconds")
        cred = old.credential
        if credential is not None:
            cred = check_credential(credential, old.transport, new.env)
            same_place = dataclasses.astuple(replace(cred, secret_set_at=None)) == (
                dataclasses.astuple(replace(old.credential, secret_set_at=None))
            )
            if not same_place:
                changed.append("credential")
                moved = True
            cred = replace(cred, secret_set_at=old.credential.secret_set_at)
        elif env is not None and cred.env_var is not None and cred.env_var in new.env:
            raise ValidationError(
                f"env must not hold {cred.env_var!r}: it is the secret's variable",
                details={"field": "env"},
            )
        sealed = old.encrypted_secret
        if cred.kind == "none":
            if secret is not None:
                raise ValidationError(
                    "a secret needs a credential kind other than 'none'",
                    details={"field": "secret"},
                )
            sealed, cred = None, replace(cred, secret_set_at=None)
        elif secret is not None:
            sealed = _seal(svc, store_id, name, check_secret(secret, cred.kind))
            cred = replace(cred, secret_set_at=now)
            changed.append("secret")
        elif old.encrypted_secret is None or cred.kind != old.credential.kind:
            raise ValidationError(
                f"a {cred.kind!r} credential needs its secret", details={"field": "secret"}
            )
        elif moved:
            raise ValidationError(
                "this change sends the server's secret somewhere else (a new URL, command or "
                "credential): give the secret again with it",
                details={"field": "secret", "changed": changed},
            )
        if not changed:
            return GatewayWrite(), new.node, "update", {}
        new = replace(new, credential=cred, encrypted_secret=sealed, updated_at=now)
        details = {"server": _summary(new), "changed": changed}
        return GatewayWrite(servers=(new,)), new.node, "update", details

    _write(svc, caller, store_id, "gateway.server_updated", plan)
    return _public(_state_server(svc, store_id, name))


@audited(None)
def get_server(svc: Services, caller: Caller, store_id: str, name: str) -> McpServer:
    """The server (never its secret)."""
    authorize(svc, caller, Permission.READ_GATEWAY, store_id)
    check_server_name(name)
    return _public(_state_server(svc, store_id, name))


@audited(None)
def list_servers(svc: Services, caller: Caller, store_id: str) -> list[McpServer]:
    """Every server of the store's gateway, by name."""
    authorize(svc, caller, Permission.READ_GATEWAY, store_id)
    state = svc.storage.read_gateway(store_id)
    return [_public(state.servers[n]) for n in sorted(state.servers)]


@audited("gateway.server_deleted")
def delete_server(svc: Services, caller: Caller, store_id: str, name: str) -> int:
    """Remove a server with its tools, its sealed secret and every tuple on the server
    or its tools (``#server``, ``#toolset``, ``#caller`` grants). Returns the revision."""
    authorize(svc, caller, Permission.MANAGE_GATEWAY, store_id)
    check_server_name(name)

    def plan(r: GatewayTxReader) -> tuple[GatewayWrite, str, str, dict[str, Any]]:
        server = _server(r, name)
        tools = r.tools(name)
        prefix = f"{TOOL_TYPE}:{name}/"
        deletes = [t for t in r.tuples(TOOL_TYPE) if t.object.startswith(prefix)]
        deletes += [t for t in r.tuples(SERVER_TYPE) if t.object == server.node]
        details = {"tools": len(tools), "tuples": len(deletes)}
        write = GatewayWrite(deleted_servers=(name,), tuple_deletes=tuple(deletes))
        return write, server.node, "delete", details

    revision, _ = _write(svc, caller, store_id, "gateway.server_deleted", plan)
    return revision


# ------------------------------------------------------------------------------ discovery


@audited("gateway.tools_discovered")
def discover_tools(svc: Services, caller: Caller, store_id: str, name: str) -> DiscoveryResult:
    """Connect to the server, list its tools and apply the lifecycle (module docstring):
    new tools ``pending`` (with their ``#server`` tuple), changed ones back to ``pending``,
    missing ones ``removed``. Tools whose names the gateway cannot take are skipped (with
    why). A server that cannot be reached is not an error of this operation: the result's
    ``error`` says why (kept as the server's ``last_discovery_error``) and no tool
    changes. The gateway's scheduler calls this as the system caller."""
    authorize(svc, caller, Permission.MANAGE_GATEWAY, store_id)
    check_server_name(name)
    server = _state_server(svc, store_id, name)
    error: str | None = None
    listed: Sequence[Any] = ()
    try:
        from keyplane.gateway import downstream

        listed = downstream.list_tools_sync(svc, server)
    except KeyplaneError as exc:
        error = exc.message[:MAX_TEXT_CHARS] or exc.code
    except Exception as exc:  # never str(exc): whatever failed might quote a header
        log.warning("discovery of %s/%s failed", store_id, name, exc_info=True)
        error = f"discovery failed: {type(exc).__name__}"
    definitions, skipped = listed_definitions(listed) if error is None else ({}, {})
    now = svc.clock.now()
    out: dict[str, tuple[str, ...]] = {}
    if definitions:
        first = next(iter(definitions))
        _check_graph_types(
            svc, caller, store_id, [Tuple(tool_object(name, first), "server", server_object(name))]
        )

    def plan(r: GatewayTxReader) -> tuple[GatewayWrite, str, str, dict[str, Any]]:
        out.clear()  # the plan may run again
        current = _server(r, name)
        failed = error
        if failed is None and _endpoint(current) != _endpoint(server):
            # changed while it was being listed: the listing may be the old server's
            failed = "the server's address or credential changed during discovery: run it again"
        srv = replace(current, last_discovered_at=now, last_discovery_error=failed)
        if failed is not None:
            out["error"] = (failed,)
            details: dict[str, Any] = {
                "added": [], "changed": [], "removed": [], "skipped": {}, "error": failed,
            }  # fmt: skip
            return GatewayWrite(servers=(srv,)), srv.node, "discover", details
        existing = {t.name: t for t in r.tools(name)}
        tools: list[McpTool] = []
        tuples: list[Tuple] = []
        seen: dict[str, list[str]] = {"added": [], "changed": [], "unchanged": [], "removed": []}
        for tname in sorted(definitions):
            tool, what = after_discovery(
                existing.get(tname), definitions[tname], store_id, name, tname, now
            )
            seen[what].append(tname)
            tools.append(tool)
            if what == "added":
                tuples.append(Tuple(tool.object, "server", srv.node))
        for tname, old in sorted(existing.items()):
            if tname not in definitions and old.status != "removed":
                tools.append(
                    replace(
                        old,
                        status="removed",
                        status_reason="no longer listed by the server",
                        removed_at=now,
                        updated_at=now,
                    )
                )
                seen["removed"].append(tname)
        out.update({k: tuple(v) for k, v in seen.items()})
        details = {
            "added": seen["added"],
            "changed": seen["changed"],
            "removed": seen["removed"],
            "skipped": dict(skipped),
            "error": None,
        }
        write = GatewayWrite(servers=(srv,), tools=tuple(tools), tuple_writes=tuple(tuples))
        return write, srv.node, "discover", details

    revision, _ = _write(svc, caller, store_id, "gateway.tools_discovered", plan)
    return DiscoveryResult(
        server=name,
        added=out.get("added", ()),
        changed=out.get("changed", ()),
        removed=out.get("removed", ()),
        unchanged=out.get("unchanged", ()),
        skipped=dict(skipped) if "error" not in out else {},
        error=out["error"][0] if "error" in out else None,
        discovered_at=now,
        revision=revision,
    )


# ------------------------------------------------------------------------------ tools


@audited(None)
def list_tools(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    server: str | None = None,
    status: str | None = None,
) -> list[McpTool]:
    """The gateway's tools by (server, name), removed ones included, optionally of one
    server (which must exist) or status."""
    authorize(svc, caller, Permission.READ_GATEWAY, store_id)
    if server is not None:
        check_server_name(server)
    if status is not None and status not in TOOL_STATUSES:
        raise ValidationError(
            f"unknown status {str(status)[:50]!r}: one of {', '.join(TOOL_STATUSES)}",
            details={"field": "status"},
        )
    state = svc.storage.read_gateway(store_id)
    if server is not None and server not in state.servers:
        raise GatewayServerNotFoundError(
            f"no MCP server {server!r} in the gateway", details={"server": server}
        )
    return [
        t
        for _, t in sorted(state.tools.items())
        if (server is None or t.server == server) and (status is None or t.status == status)
    ]


@audited(None)
def get_tool(svc: Services, caller: Caller, store_id: str, server: str, tool: str) -> McpTool:
    """A tool of a server (also when ``removed``)."""
    authorize(svc, caller, Permission.READ_GATEWAY, store_id)
    check_server_name(server)
    check_tool_name(tool)
    state = svc.storage.read_gateway(store_id)
    if server not in state.servers:
        raise GatewayServerNotFoundError(
            f"no MCP server {server!r} in the gateway", details={"server": server}
        )
    found = state.tool(server, tool)
    if found is None:
        raise GatewayToolNotFoundError(
            f"server {server!r} has no tool {tool!r}", details={"server": server, "tool": tool}
        )
    return found


def _classification(t: McpTool) -> dict[str, Any]:
    return {"status": t.status, "kind": t.kind, "risk": t.risk}


@audited("gateway.tool_updated")
def update_tool(
    svc: Services,
    caller: Caller,
    store_id: str,
    server: str,
    tool: str,
    *,
    status: str | None = None,
    kind: str | None = None,
    risk: str | None = None,
    reason: str | None = None,
    expected_digest: str | None = None,
) -> McpTool:
    """Approve, classify, disable or enable a tool. ``status`` ``enabled`` approves the
    tool's current definition (``approved_digest``, ``approved_by``, ``approved_at``); with
    ``expected_digest`` — the definition the caller reviewed — it is refused
    (``tool_definition_changed``) when the tool changed since. ``disabled`` is the tool's
    kill switch (``reason`` kept). ``kind`` / ``risk`` change its classification at any
    time. A removed tool cannot be enabled or disabled (``tool_removed``). Nothing changed:
    no event; the tool is returned as it is."""
    authorize(svc, caller, Permission.MANAGE_GATEWAY, store_id)
    check_server_name(server)
    check_tool_name(tool)
    if status is None and kind is None and risk is None:
        raise ValidationError(
            "nothing to update: give status, kind or risk", details={"field": "status"}
        )
    if status is not None and status not in ("enabled", "disabled"):
        raise ValidationError(
            f"status must be 'enabled' or 'disabled', not {str(status)[:50]!r} (pending and "
            "removed are set by discovery)",
            details={"field": "status"},
        )
    if kind is not None and kind not in TOOL_KINDS:
        raise ValidationError(
            f"unknown kind {str(kind)[:50]!r}: one of {', '.join(TOOL_KINDS)}",
            details={"field": "kind"},
        )
    if risk is not None and risk not in TOOL_RISKS:
        raise ValidationError(
            f"unknown risk {str(risk)[:50]!r}: one of {', '.join(TOOL_RISKS)}",
            details={"field": "risk"},
        )
    why = check_text(reason, "reason")
    if expected_digest is not None and not isinstance(expected_digest, str):
        raise ValidationError(
            "expected_digest must be a string", details={"field": "expected_digest"}
        )
    now = svc.clock.now()
    box: dict[str, McpTool] = {}

    def plan(r: GatewayTxReader) -> tuple[GatewayWrite, str, str, dict[str, Any]]:
        old = _tool(r, server, tool)
        box["tool"] = new = old
        if expected_digest is not None and expected_digest != old.digest:
            raise ToolDefinitionChangedError(
                f"tool {old.ref} changed since it was reviewed: its definition is now "
                f"{old.digest}; review it again",
                details={"tool": old.ref, "expected": expected_digest, "current": old.digest},
            )
        if status is not None and old.status == "removed":
            raise ToolRemovedError(
                f"tool {old.ref} is removed: its server no longer lists it",
                details={"tool": old.ref},
            )
        approving = status == "enabled" and (
            old.status != "enabled" or old.approved_digest != old.digest
        )
        if approving:
            new = replace(
                new, status="enabled", status_reason=why, approved_digest=old.digest,
                approved_by=caller.principal, approved_at=now,
            )  # fmt: skip
        elif status == "disabled" and (old.status != "disabled" or old.status_reason != why):
            new = replace(new, status="disabled", status_reason=why)
        if kind is not None:
            new = replace(new, kind=kind)
        if risk is not None:
            new = replace(new, risk=risk)
        if new == old:
            return GatewayWrite(), old.object, "update", {}
        new = replace(new, updated_at=now)
        box["tool"] = new
        details: dict[str, Any] = {
            "before": _classification(old),
            "after": _classification(new),
            "digest": new.digest,
        }
        if why is not None:
            details["reason"] = why
        action = "approve" if approving else "update"
        return GatewayWrite(tools=(new,)), new.object, action, details

    revision, changed = _write(svc, caller, store_id, "gateway.tool_updated", plan)
    return replace(box["tool"], revision=revision) if changed else box["tool"]


# ------------------------------------------------------------------------------ toolsets


def _members(tuples: Sequence[Tuple], obj: str, now: float) -> tuple[str, ...]:
    return tuple(
        sorted(
            {
                t.user
                for t in tuples
                if t.object == obj and (t.expires_at is None or t.expires_at > now)
            }
        )
    )


def _ref_of(t: Tuple) -> str:
    return t.object.removeprefix(f"{TOOL_TYPE}:")


@audited("gateway.toolset_updated")
def put_toolset(
    svc: Services, caller: Caller, store_id: str, name: str, tools: Sequence[str]
) -> Toolset:
    """Set the tools of toolset ``name`` (refs ``<server>/<tool>``, each an existing tool
    that is not removed): its ``#toolset`` tuples are replaced in one write (those added
    written, those dropped deleted). Its members (the grants) are kept."""
    authorize(svc, caller, Permission.MANAGE_GATEWAY, store_id)
    check_toolset_name(name)
    if isinstance(tools, str | bytes) or not isinstance(tools, Sequence) or not tools:
        raise ValidationError(
            "tools must be a non-empty list of '<server>/<tool>' (delete_toolset removes a "
            "toolset)",
            details={"field": "tools"},
        )
    if len(tools) > MAX_TOOLSET_TOOLS:
        raise ValidationError(
            f"a toolset holds at most {MAX_TOOLSET_TOOLS} tools", details={"field": "tools"}
        )
    wanted = sorted({tool_ref(*check_ref(t)) for t in tools})
    obj = toolset_object(name)
    _check_graph_types(
        svc, caller, store_id, [Tuple(tool_object(*check_ref(wanted[0])), "toolset", obj)]
    )
    now = svc.clock.now()
    box: dict[str, tuple[str, ...]] = {}

    def plan(r: GatewayTxReader) -> tuple[GatewayWrite, str, str, dict[str, Any]]:
        for ref in wanted:
            t = _tool(r, *check_ref(ref))
            if t.status == "removed":
                raise ToolRemovedError(
                    f"tool {ref} is removed: its server no longer lists it", details={"tool": ref}
                )
        held = {_ref_of(t): t for t in r.tuples(TOOL_TYPE, "toolset", obj)}
        added = [ref for ref in wanted if ref not in held]
        removed = sorted(ref for ref in held if ref not in wanted)
        box["members"] = _members(r.tuples(TOOLSET_TYPE, "member"), obj, now)
        writes = tuple(Tuple(tool_object(*check_ref(ref)), "toolset", obj) for ref in added)
        deletes = tuple(held[ref] for ref in removed)
        details = {"tools": wanted, "added": added, "removed": removed}
        return GatewayWrite(tuple_writes=writes, tuple_deletes=deletes), obj, "update", details

    revision, _ = _write(svc, caller, store_id, "gateway.toolset_updated", plan)
    return Toolset(name=name, tools=tuple(wanted), members=box["members"], revision=revision)


@audited(None)
def list_toolsets(svc: Services, caller: Caller, store_id: str) -> list[Toolset]:
    """Every toolset (one holding a tool, or with a member), by name, with its tools and
    its members (unexpired ``member`` grants)."""
    authorize(svc, caller, Permission.READ_GATEWAY, store_id)
    revision = svc.storage.current_revision(store_id)
    now = svc.clock.now()
    tools: dict[str, set[str]] = {}
    members: dict[str, set[str]] = {}
    for t in _read_all(svc, store_id, object=f"{TOOL_TYPE}:", relation="toolset"):
        if t.user.startswith(f"{TOOLSET_TYPE}:"):
            tools.setdefault(t.user.removeprefix(f"{TOOLSET_TYPE}:"), set()).add(_ref_of(t))
    for t in _read_all(svc, store_id, object=f"{TOOLSET_TYPE}:", relation="member"):
        if t.expires_at is None or t.expires_at > now:
            members.setdefault(t.object.removeprefix(f"{TOOLSET_TYPE}:"), set()).add(t.user)
    return [
        Toolset(
            name=n,
            tools=tuple(sorted(tools.get(n, ()))),
            members=tuple(sorted(members.get(n, ()))),
            revision=revision,
        )
        for n in sorted(set(tools) | set(members))
    ]


def _read_all(svc: Services, store_id: str, *, object: str, relation: str) -> list[Tuple]:
    out: list[Tuple] = []
    token: str | None = None
    while True:
        page = svc.storage.read_tuples(
            store_id, object=object, relation=relation, page_size=100, continuation_token=token
        )
        out.extend(page.items)
        token = page.continuation_token
        if not token:
            return out


@audited("gateway.toolset_deleted")
def delete_toolset(svc: Services, caller: Caller, store_id: str, name: str) -> int:
    """Delete a toolset: its ``#toolset`` tuples AND its ``member`` grants (whoever held
    the toolset loses its tools). Returns the revision."""
    authorize(svc, caller, Permission.MANAGE_GATEWAY, store_id)
    check_toolset_name(name)
    obj = toolset_object(name)

    def plan(r: GatewayTxReader) -> tuple[GatewayWrite, str, str, dict[str, Any]]:
        held = r.tuples(TOOL_TYPE, "toolset", obj)
        grants = [t for t in r.tuples(TOOLSET_TYPE, "member") if t.object == obj]
        if not held and not grants:
            raise ToolsetNotFoundError(f"no toolset {name!r}", details={"toolset": name})
        refs = sorted(_ref_of(t) for t in held)
        details = {
            "tools": refs,
            "added": [],
            "removed": refs,
            "members": sorted(t.user for t in grants),
        }
        write = GatewayWrite(tuple_deletes=(*held, *grants))
        return write, obj, "delete", details

    revision, _ = _write(svc, caller, store_id, "gateway.toolset_deleted", plan)
    return revision


# ------------------------------------------------------------------------------ kill switches


@audited("gateway.kill_switch")
def set_kill_switch(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    level: str,
    target: str | None = None,
    engaged: bool = True,
    reason: str | None = None,
) -> KillSwitch:
    """Engage (or release, ``engaged=False``) a kill switch; it holds from the gateway's
    next call. ``store``: every call refused (no target); ``server`` (target: its name):
    the server disabled; ``tool`` (target ``<server>/<tool>``): the tool disabled —
    released, it is enabled again only if its current definition is the approved one,
    else it goes back to ``pending``; ``agent`` (target a node, any identity kind): calls
    where it is the subject or in the actor chain refused. Setting a switch as it already
    is changes nothing (no event)."""
    authorize(svc, caller, Permission.MANAGE_GATEWAY, store_id)
    if level not in KILL_LEVELS:
        raise ValidationError(
            f"unknown kill switch level {str(level)[:50]!r}: one of {', '.join(KILL_LEVELS)}",
            details={"field": "level"},
        )
    if not isinstance(engaged, bool):
        raise ValidationError("engaged must be a boolean", details={"field": "engaged"})
    why = check_text(reason, "reason")
    if level == "store":
        if target is not None:
            raise ValidationError(
                "the store kill switch takes no target", details={"field": "target"}
            )
    elif target is None:
        raise ValidationError(f"a {level} kill switch needs a target", details={"field": "target"})
    elif level == "server":
        check_server_name(target)
    elif level == "tool":
        target = tool_ref(*check_ref(target, "target"))
    else:
        kind, id_ = parse_node(target, what="target")
        target = f"{kind}:{id_}"
    now = svc.clock.now()
    details = {"level": level, "target": target, "engaged": engaged, "reason": why}

    def plan(r: GatewayTxReader) -> tuple[GatewayWrite, str, str, dict[str, Any]]:
        action = "engage" if engaged else "release"
        if level in ("store", "agent"):
            old = r.settings()
            new = old
            if level == "store":
                resource = f"store:{store_id}"
                new = replace(old, enabled=not engaged, disabled_reason=why if engaged else None)
            else:
                assert target is not None
                resource = target
                blocked = dict(old.blocked_agents)
                if engaged and target not in blocked and len(blocked) >= MAX_BLOCKED_AGENTS:
                    raise LimitExceededError(
                        f"at most {MAX_BLOCKED_AGENTS} agents may be blocked at once: release "
                        "some, or suspend the identities instead",
                        details={"limit": MAX_BLOCKED_AGENTS},
                    )
                if engaged:
                    blocked[target] = why or ""
                else:
                    blocked.pop(target, None)
                new = replace(old, blocked_agents=blocked)
            if new == old:
                return GatewayWrite(), resource, action, details
            new = replace(new, updated_at=now, updated_by=caller.principal)
            return GatewayWrite(settings=new), resource, action, details
        assert target is not None
        if level == "server":
            srv = _server(r, target)
            status = "disabled" if engaged else "enabled"
            changed = replace(srv, status=status, status_reason=why if engaged else None)
            if changed == srv:
                return GatewayWrite(), srv.node, action, details
            return (
                GatewayWrite(servers=(replace(changed, updated_at=now),)),
                srv.node,
                action,
                details,
            )
        tool = _tool(r, *check_ref(target))
        if tool.status == "removed":
            raise ToolRemovedError(
                f"tool {tool.ref} is removed: its server no longer lists it",
                details={"tool": tool.ref},
            )
        if engaged:
            new_tool = replace(tool, status="disabled", status_reason=why)
        elif tool.status != "disabled":
            new_tool = tool  # released: nothing was engaged
        elif tool.approved_digest is not None and tool.approved_digest == tool.digest:
            new_tool = replace(tool, status="enabled", status_reason=None)
        else:
            new_tool = replace(tool, status="pending", status_reason="awaiting approval")
        if new_tool == tool:
            return GatewayWrite(), tool.object, action, details
        return (
            GatewayWrite(tools=(replace(new_tool, updated_at=now),)),
            tool.object,
            action,
            details,
        )

    revision, _ = _write(svc, caller, store_id, "gateway.kill_switch", plan)
    return KillSwitch(level, target, engaged, why, revision)


# ------------------------------------------------------------------------------ settings


@audited(None)
def get_gateway_settings(svc: Services, caller: Caller, store_id: str) -> GatewaySettings:
    """The store's gateway settings (the defaults when never set): the store kill switch
    (``enabled``), blocked agents, ``record_arguments``."""
    authorize(svc, caller, Permission.READ_GATEWAY, store_id)
    return svc.storage.read_gateway(store_id).settings


@audited("gateway.settings_updated")
def update_gateway_settings(
    svc: Services, caller: Caller, store_id: str, *, record_arguments: bool | None = None
) -> GatewaySettings:
    """Change the settings (None: unchanged): ``record_arguments`` keeps each call's
    arguments in its ``gateway.tool_call`` event (by default only their digest)."""
    authorize(svc, caller, Permission.MANAGE_GATEWAY, store_id)
    if record_arguments is not None and not isinstance(record_arguments, bool):
        raise ValidationError(
            "record_arguments must be a boolean", details={"field": "record_arguments"}
        )
    now = svc.clock.now()

    def plan(r: GatewayTxReader) -> tuple[GatewayWrite, str, str, dict[str, Any]]:
        old = r.settings()
        new = old
        if record_arguments is not None:
            new = replace(new, record_arguments=record_arguments)
        resource = f"store:{store_id}"
        if new == old:
            return GatewayWrite(), resource, "update", {}
        details = {
            "before": {"record_arguments": old.record_arguments},
            "after": {"record_arguments": new.record_arguments},
        }
        new = replace(new, updated_at=now, updated_by=caller.principal)
        return GatewayWrite(settings=new), resource, "update", details

    _write(svc, caller, store_id, "gateway.settings_updated", plan)
    return svc.storage.read_gateway(store_id).settings
