"""Records of the MCP gateway (issue 9): downstream servers, their tools, the store's
gateway settings (with the store and agent kill switches) and the snapshot the gateway
decides with.

Plain frozen dataclasses shared by storage (``storage/gateway_sql.py``), the service
(``service/gateway.py``), the runtime (``gateway/runtime.py``) and the surfaces. Every
record carries the store revision of its last change (``revision``), the counter tuples
use; times are seconds since the Unix epoch (UTC) as ``float``.

Names in the graph (the built-in base model declares the types, see
:mod:`keyplane.policy.base_model`):

- a server is ``mcp_server:<server>``;
- a tool is ``mcp_tool:<server>/<tool>`` with ``mcp_tool:<server>/<tool>#server@mcp_server:<server>``
  written when the tool is first discovered;
- a toolset is ``toolset:<name>``; a tool in it: ``mcp_tool:<s>/<t>#toolset@toolset:<name>``;
- ``can_call`` on a tool: its direct ``caller``s, the ``member``s of a toolset holding it,
  the ``caller``s of its server.

An agent sees a tool as ``<server>__<tool>`` (:func:`exposed_name`): server names are
DNS-label-like (no ``_``), so the first ``__`` splits the two.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Final

# -- vocabulary --------------------------------------------------------------------------

#: a server name: lower-case letters, digits and inner hyphens, 1-32 characters
SERVER_NAME_RE: Final = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
#: a tool name the gateway accepts from a downstream server (MCP's recommended characters)
TOOL_NAME_RE: Final = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
#: a toolset name
TOOLSET_NAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")

TRANSPORTS: Final = ("http", "stdio")
SERVER_STATUSES: Final = ("enabled", "disabled")
#: pending: discovered (or changed) and not approved; enabled: callable; disabled: killed
#: by an admin; removed: gone from the server at the last discovery (kept for the record)
TOOL_STATUSES: Final = ("pending", "enabled", "disabled", "removed")
TOOL_KINDS: Final = ("read", "write", "delete")
TOOL_RISKS: Final = ("normal", "sensitive", "dangerous")
#: how the gateway authenticates to a downstream server
CREDENTIAL_KINDS: Final = ("none", "bearer", "header", "oauth_client_credentials", "env")
#: kill switch levels
KILL_LEVELS: Final = ("store", "server", "tool", "agent")

SERVER_TYPE: Final = "mcp_server"
TOOL_TYPE: Final = "mcp_tool"
TOOLSET_TYPE: Final = "toolset"
#: the relation the gateway decides on (and the action it asks for)
CALL_RELATION: Final = "can_call"

MAX_COMMAND_PARTS: Final = 64
MAX_ENV_VARS: Final = 64
DEFAULT_DISCOVERY_SECONDS: Final = 3600


def tool_object(server: str, tool: str) -> str:
    """``mcp_tool:<server>/<tool>``: the tool's graph object."""
    return f"{TOOL_TYPE}:{server}/{tool}"


def server_object(server: str) -> str:
    return f"{SERVER_TYPE}:{server}"


def toolset_object(name: str) -> str:
    return f"{TOOLSET_TYPE}:{name}"


def tool_ref(server: str, tool: str) -> str:
    """``<server>/<tool>``: how decisions (``tool``), delegations' ``tools`` and the ledger
    name a tool."""
    return f"{server}/{tool}"


def exposed_name(server: str, tool: str) -> str:
    """The name an agent sees and calls: ``<server>__<tool>``."""
    return f"{server}__{tool}"


def split_exposed(name: str) -> tuple[str, str] | None:
    """``(server, tool)`` of an exposed name, or None when it is not one."""
    server, sep, tool = name.partition("__")
    if not sep or not SERVER_NAME_RE.match(server) or not TOOL_NAME_RE.match(tool):
        return None
    return server, tool


def split_ref(ref: str) -> tuple[str, str] | None:
    """``(server, tool)`` of ``<server>/<tool>`` (or of ``mcp_tool:<server>/<tool>``)."""
    ref = ref.removeprefix(f"{TOOL_TYPE}:")
    server, sep, tool = ref.partition("/")
    if not sep or not SERVER_NAME_RE.match(server) or not TOOL_NAME_RE.match(tool):
        return None
    return server, tool


def definition_digest(
    description: str | None, input_schema: Any, annotations: Any, title: str | None = None
) -> str:
    """SHA-256 of a tool's definition as the server announced it: a change of any part
    (a rewritten description, a new parameter) sends an approved tool back to ``pending``."""
    canon = json.dumps(
        {
            "title": title,
            "description": description,
            "input_schema": input_schema,
            "annotations": annotations,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return "sha256:" + hashlib.sha256(canon.encode()).hexdigest()


def proposed_classification(annotations: Any) -> tuple[str, str]:
    """``(kind, risk)`` proposed from the server's MCP tool annotations, which are hints a
    server chooses (never trusted for access): ``readOnlyHint`` → read/normal,
    ``destructiveHint`` → delete/dangerous, else write/sensitive. An admin confirms or
    changes it when approving the tool."""
    a = annotations if isinstance(annotations, dict) else {}
    if a.get("readOnlyHint") is True:
        return "read", "normal"
    if a.get("destructiveHint") is True:
        return "delete", "dangerous"
    return "write", "sensitive"


# -- records -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DownstreamCredential:
    """How the gateway authenticates to a server; the secret itself is never here (it is
    stored encrypted beside the server and only the gateway decrypts it).

    - ``none``;
    - ``bearer`` (HTTP): ``Authorization: Bearer <secret>``;
    - ``header`` (HTTP): ``<header>: <secret>`` (an API key header);
    - ``oauth_client_credentials`` (HTTP): the gateway obtains a token from ``token_url``
      with ``client_id`` and the secret (RFC 6749 §4.4, client_secret_basic; ``scope`` and
      ``audience`` sent when set), caches it until shortly before it expires and sends it as
      a bearer token;
    - ``env`` (stdio): the secret in the environment variable ``env_var`` of the command.
    """

    kind: str = "none"
    header: str | None = None
    token_url: str | None = None
    client_id: str | None = None
    scope: str | None = None
    audience: str | None = None
    env_var: str | None = None
    #: when the secret was last set (None: no secret)
    secret_set_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for name in ("header", "token_url", "client_id", "scope", "audience", "env_var"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out["has_secret"] = self.secret_set_at is not None
        out["secret_set_at"] = self.secret_set_at
        return out

    def to_json(self) -> dict[str, Any]:
        """The stored form (no secret): :meth:`from_json` reads it back."""
        out = self.to_dict()
        out.pop("has_secret")
        return out

    @classmethod
    def from_json(cls, d: Any) -> DownstreamCredential:
        if not isinstance(d, dict):
            return cls()
        return cls(
            kind=str(d.get("kind", "none")),
            header=d.get("header"),
            token_url=d.get("token_url"),
            client_id=d.get("client_id"),
            scope=d.get("scope"),
            audience=d.get("audience"),
            env_var=d.get("env_var"),
            secret_set_at=d.get("secret_set_at"),
        )


@dataclass(frozen=True, slots=True)
class McpServer:
    """A downstream MCP server registered in a store.

    ``transport`` ``http``: streamable HTTP at ``url``; ``stdio``: the gateway starts
    ``command`` (argv, no shell) with ``env`` (non-secret variables) and speaks MCP on its
    stdin/stdout. ``status`` ``disabled`` is the server's kill switch. ``encrypted_secret``
    (AES-GCM under the master key, associated data :func:`secret_aad`) is None without a
    secret; it never leaves storage and the gateway (``to_dict`` omits it)."""

    store_id: str
    name: str
    transport: str
    url: str | None = None
    command: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    credential: DownstreamCredential = field(default_factory=DownstreamCredential)
    encrypted_secret: bytes | None = field(default=None, repr=False)
    status: str = "enabled"
    status_reason: str | None = None
    discovery_interval_seconds: int = DEFAULT_DISCOVERY_SECONDS
    last_discovered_at: float | None = None
    last_discovery_error: str | None = None
    created_at: float = 0.0
    created_by: str | None = None
    updated_at: float = 0.0
    revision: int = 0

    @property
    def node(self) -> str:
        return server_object(self.name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "object": self.node,
            "transport": self.transport,
            "url": self.url,
            "command": list(self.command),
            "env": dict(self.env),
            "description": self.description,
            "credential": self.credential.to_dict(),
            "status": self.status,
            "status_reason": self.status_reason,
            "discovery_interval_seconds": self.discovery_interval_seconds,
            "last_discovered_at": self.last_discovered_at,
            "last_discovery_error": self.last_discovery_error,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "updated_at": self.updated_at,
            "revision": self.revision,
        }


def secret_aad(store_id: str, server: str) -> bytes:
    """The associated data a server's secret is sealed with: a blob copied to another
    store or server does not decrypt."""
    return f"keyplane.gateway.secret:{store_id}:{server}".encode()


@dataclass(frozen=True, slots=True)
class McpTool:
    """A tool of a downstream server, as discovered, and its governance.

    ``kind`` (read / write / delete) and ``risk`` (normal / sensitive / dangerous) are the
    classification the gateway ENFORCES: set by an admin (proposed from the server's
    annotations at discovery), passed by the gateway — never by the agent — to every
    decision as resource properties, so guardrails read ``resource.attributes.kind`` and
    ``resource.attributes.risk``. ``digest`` is :func:`definition_digest` of what the
    server announced; ``approved_digest`` the one an admin approved (a differing digest
    puts the tool back to ``pending``)."""

    store_id: str
    server: str
    name: str
    title: str | None = None
    description: str | None = None
    input_schema: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, Any] = field(default_factory=dict)
    digest: str = ""
    status: str = "pending"
    status_reason: str | None = None
    kind: str = "write"
    risk: str = "sensitive"
    approved_digest: str | None = None
    approved_by: str | None = None
    approved_at: float | None = None
    first_seen_at: float = 0.0
    last_seen_at: float = 0.0
    removed_at: float | None = None
    updated_at: float = 0.0
    revision: int = 0

    @property
    def object(self) -> str:
        return tool_object(self.server, self.name)

    @property
    def ref(self) -> str:
        return tool_ref(self.server, self.name)

    @property
    def exposed(self) -> str:
        return exposed_name(self.server, self.name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "name": self.name,
            "object": self.object,
            "exposed_name": self.exposed,
            "title": self.title,
            "description": self.description,
            "input_schema": self.input_schema,
            "annotations": self.annotations,
            "digest": self.digest,
            "status": self.status,
            "status_reason": self.status_reason,
            "kind": self.kind,
            "risk": self.risk,
            "approved_digest": self.approved_digest,
            "approved_by": self.approved_by,
            "approved_at": self.approved_at,
            "first_seen_at": self.first_seen_at,
            "last_seen_at": self.last_seen_at,
            "removed_at": self.removed_at,
            "updated_at": self.updated_at,
            "revision": self.revision,
        }


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """A store's gateway settings. ``enabled`` false is the store kill switch (every call
    refused); ``blocked_agents`` maps an agent's node to the reason it was blocked (the
    agent kill switch: its calls refused, whoever it acts for); ``record_arguments`` opts
    in to keeping a call's arguments in its ledger event (else only their digest)."""

    store_id: str
    enabled: bool = True
    disabled_reason: str | None = None
    record_arguments: bool = False
    blocked_agents: dict[str, str] = field(default_factory=dict)
    updated_at: float = 0.0
    updated_by: str | None = None
    revision: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
            "record_arguments": self.record_arguments,
            "blocked_agents": dict(self.blocked_agents),
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
            "revision": self.revision,
        }


@dataclass(frozen=True, slots=True)
class GatewayState:
    """Everything the gateway decides with, read in one snapshot at ``revision`` (the
    store's revision when it was read)."""

    store_id: str
    revision: int
    settings: GatewaySettings
    servers: dict[str, McpServer] = field(default_factory=dict)
    #: by (server, tool name)
    tools: dict[tuple[str, str], McpTool] = field(default_factory=dict)

    def tool(self, server: str, name: str) -> McpTool | None:
        return self.tools.get((server, name))

    def tools_of(self, server: str) -> list[McpTool]:
        return sorted((t for (s, _), t in self.tools.items() if s == server), key=_tool_key)


def _tool_key(t: McpTool) -> tuple[str, str]:
    return (t.server, t.name)


@dataclass(frozen=True, slots=True)
class GatewayWrite:
    """One atomic change of a store's gateway, as a plan returns it to
    :meth:`~keyplane.storage.base.GatewayStore.write_gateway`: servers and tools are
    upserted whole (keyed by name / (server, name)); ``deleted_servers`` removes servers
    with all their tools; ``settings`` replaces the store's settings; tuple writes and
    deletes are idempotent, in the changelog, as in a policy write."""

    servers: tuple[McpServer, ...] = ()
    deleted_servers: tuple[str, ...] = ()
    tools: tuple[McpTool, ...] = ()
    settings: GatewaySettings | None = None
    tuple_writes: tuple[Any, ...] = ()
    tuple_deletes: tuple[Any, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.servers
            or self.deleted_servers
            or self.tools
            or self.settings is not None
            or self.tuple_writes
            or self.tuple_deletes
        )


@dataclass(frozen=True, slots=True)
class Toolset:
    """A toolset: graph object ``toolset:<name>``; its tools are the ``mcp_tool`` objects
    with a ``toolset`` tuple to it, its members (who may call them) the ``member`` tuples
    on it. It exists while it holds a tool."""

    name: str
    tools: tuple[str, ...] = ()  # tool refs "<server>/<tool>", sorted
    members: tuple[str, ...] = ()  # users of its member tuples, sorted
    revision: int = 0

    @property
    def object(self) -> str:
        return toolset_object(self.name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "object": self.object,
            "tools": list(self.tools),
            "members": list(self.members),
            "revision": self.revision,
        }


@dataclass(frozen=True, slots=True)
class DiscoveryResult:
    """What one discovery of a server found, by tool name."""

    server: str
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    #: tools the server listed that the gateway cannot take (name → why)
    skipped: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    discovered_at: float = 0.0
    revision: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "added": list(self.added),
            "changed": list(self.changed),
            "removed": list(self.removed),
            "unchanged": list(self.unchanged),
            "skipped": dict(self.skipped),
            "error": self.error,
            "discovered_at": self.discovered_at,
            "revision": self.revision,
        }
