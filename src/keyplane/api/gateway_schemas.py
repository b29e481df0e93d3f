"""Request and response bodies of the MCP gateway's administration (issue 9):
``/v1/stores/{store}/gateway/…`` — downstream servers, their tools, toolsets, kill switches
and the store's gateway settings.

Each response model mirrors the ``to_dict`` of its record in
:mod:`keyplane.gateway.records` field for field, so the REST API, the CLI's ``--json`` and
the MCP tools return one JSON shape and the HTTP SDK rebuilds the record from it. Times
are seconds since the Unix epoch (UTC, a JSON number), as in the records.

A downstream server's secret is accepted in a request (``secret``) and never answered:
responses carry ``credential.has_secret`` and ``credential.secret_set_at`` only. The
models validate shape; names, transports, credential kinds against transports, URLs,
commands and environments are checked by :mod:`keyplane.service.gateway`, so every
surface refuses the same inputs with the same error codes. The MCP server reuses these
models as tool schemas.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from keyplane.gateway.records import (
    DiscoveryResult,
    GatewaySettings,
    McpServer,
    McpTool,
    Toolset,
)

__all__ = [
    "DiscoveryOut",
    "DownstreamCredentialIn",
    "DownstreamCredentialOut",
    "KillSwitchOut",
    "KillSwitchRequest",
    "PutToolsetRequest",
    "RegisterServerRequest",
    "RevisionOut",
    "ServerList",
    "ServerOut",
    "SettingsOut",
    "ToolList",
    "ToolOut",
    "ToolsetList",
    "ToolsetOut",
    "UpdateServerRequest",
    "UpdateSettingsRequest",
    "UpdateToolRequest",
]

Seconds = float
CredentialKind = Literal["none", "bearer", "header", "oauth_client_credentials", "env"]
ToolStatus = Literal["pending", "enabled", "disabled", "removed"]
ToolKind = Literal["read", "write", "delete"]
ToolRisk = Literal["normal", "sensitive", "dangerous"]
KillLevel = Literal["store", "server", "tool", "agent"]

#: the longest secret accepted (an OAuth client secret, an API key, a token)
MAX_SECRET = 8192
MAX_URL = 2048
MAX_DESCRIPTION = 4096


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------- servers


class DownstreamCredentialIn(_In):
    """How the gateway authenticates to the server. The secret itself travels beside it
    (``secret``), is sealed under the master key and is never answered."""

    kind: CredentialKind = Field(
        default="none",
        description="`none`; `bearer` (HTTP: `Authorization: Bearer <secret>`); `header` "
        "(HTTP: `<header>: <secret>`); `oauth_client_credentials` (HTTP: a token from "
        "`token_url` with `client_id` and the secret, sent as a bearer token); `env` "
        "(stdio: the secret in the environment variable `env_var`).",
    )
    header: str | None = Field(
        default=None, max_length=256, description="For `header`: the header name."
    )
    token_url: str | None = Field(
        default=None, max_length=MAX_URL, description="For `oauth_client_credentials`."
    )
    client_id: str | None = Field(
        default=None, max_length=512, description="For `oauth_client_credentials`."
    )
    scope: str | None = Field(default=None, max_length=1024, description="Sent when set.")
    audience: str | None = Field(default=None, max_length=MAX_URL, description="Sent when set.")
    env_var: str | None = Field(
        default=None, max_length=128, description="For `env`: the variable's name."
    )


class DownstreamCredentialOut(_Out):
    kind: CredentialKind
    header: str | None = None
    token_url: str | None = None
    client_id: str | None = None
    scope: str | None = None
    audience: str | None = None
    env_var: str | None = None
    has_secret: bool = Field(description="Whether a secret is stored (never the secret).")
    secret_set_at: Seconds | None = Field(default=None, description="When the secret was last set.")


class RegisterServerRequest(_In):
    name: str = Field(
        min_length=1,
        max_length=32,
        description="Lower-case letters, digits and inner hyphens (the agent sees its tools "
        "as `<name>__<tool>`).",
        examples=["github"],
    )
    transport: Literal["http", "stdio"] = Field(
        description="`http`: streamable HTTP at `url`; `stdio`: the gateway starts `command`."
    )
    url: str | None = Field(
        default=None,
        max_length=MAX_URL,
        description="For `http`: the server's MCP endpoint (absolute http(s) URL).",
        examples=["https://mcp.example.com/mcp"],
    )
    command: list[str] | None = Field(
        default=None,
        description="For `stdio`: the argv to start (no shell), at most 64 parts.",
        examples=[["npx", "-y", "@modelcontextprotocol/server-filesystem", "/srv"]],
    )
    env: dict[str, str] | None = Field(
        default=None,
        description="For `stdio`: non-secret environment variables (POSIX names, at most 64).",
    )
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    credential: DownstreamCredentialIn | None = Field(
        default=None, description="How the gateway authenticates to the server (default none)."
    )
    secret: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SECRET,
        description="The credential's secret: required for every kind but `none`; stored "
        "sealed and never answered.",
    )
    discovery_interval_seconds: StrictInt = Field(
        default=3600,
        ge=0,
        description="Re-discover the tools this often (0: only on demand).",
    )
    discover: StrictBool = Field(
        default=True,
        description="Discover the tools now (a failure is kept in `last_discovery_error`; "
        "the registration stands).",
    )


class UpdateServerRequest(_In):
    """Fields left out (or null) are unchanged. A new credential of kind `none` clears the
    secret."""

    url: str | None = Field(default=None, max_length=MAX_URL)
    command: list[str] | None = None
    env: dict[str, str] | None = None
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    credential: DownstreamCredentialIn | None = None
    secret: str | None = Field(default=None, min_length=1, max_length=MAX_SECRET)
    discovery_interval_seconds: StrictInt | None = Field(default=None, ge=0)


class ServerOut(_Out):
    name: str
    object: str = Field(description="The server's graph object, `mcp_server:<name>`.")
    transport: Literal["http", "stdio"]
    url: str | None = None
    command: list[str]
    env: dict[str, str]
    description: str | None = None
    credential: DownstreamCredentialOut
    status: Literal["enabled", "disabled"] = Field(
        description="`disabled`: the server's kill switch is engaged."
    )
    status_reason: str | None = None
    discovery_interval_seconds: int
    last_discovered_at: Seconds | None = None
    last_discovery_error: str | None = None
    created_at: Seconds
    created_by: str | None = None
    updated_at: Seconds
    revision: int

    @classmethod
    def of(cls, s: McpServer) -> ServerOut:
        return cls.model_validate(s.to_dict())


class ServerList(_Out):
    servers: list[ServerOut]


class RevisionOut(_Out):
    revision: int = Field(description="The store revision of the change.")


class DiscoveryOut(_Out):
    server: str
    added: list[str]
    changed: list[str] = Field(description="Tools whose definition changed (back to pending).")
    removed: list[str]
    unchanged: list[str]
    skipped: dict[str, str] = Field(description="Tools the gateway cannot take, with why.")
    error: str | None = Field(
        default=None, description="Why the server could not be reached (nothing changed)."
    )
    discovered_at: Seconds
    revision: int

    @classmethod
    def of(cls, d: DiscoveryResult) -> DiscoveryOut:
        return cls.model_validate(d.to_dict())


# ---------------------------------------------------------------------------- tools


class ToolOut(_Out):
    server: str
    name: str
    object: str = Field(description="The tool's graph object, `mcp_tool:<server>/<tool>`.")
    exposed_name: str = Field(description="The name agents see: `<server>__<tool>`.")
    title: str | None = None
    description: str | None = None
    input_schema: dict[str, Any]
    annotations: dict[str, Any] = Field(description="The server's hints (never trusted).")
    digest: str = Field(description="SHA-256 of the definition as the server announced it.")
    status: ToolStatus = Field(
        description="`pending`: discovered or changed, not approved; `enabled`: callable; "
        "`disabled`: killed; `removed`: gone from the server."
    )
    status_reason: str | None = None
    kind: ToolKind = Field(description="The enforced classification: read, write, delete.")
    risk: ToolRisk
    approved_digest: str | None = None
    approved_by: str | None = None
    approved_at: Seconds | None = None
    first_seen_at: Seconds
    last_seen_at: Seconds
    removed_at: Seconds | None = None
    updated_at: Seconds
    revision: int

    @classmethod
    def of(cls, t: McpTool) -> ToolOut:
        return cls.model_validate(t.to_dict())


class ToolList(_Out):
    tools: list[ToolOut]


class UpdateToolRequest(_In):
    """Approve (`status: enabled` on a pending tool), disable, enable or classify a tool."""

    status: Literal["enabled", "disabled"] | None = Field(
        default=None,
        description="`enabled` approves a pending tool (recording its digest) or re-enables "
        "a disabled one; `disabled` is the tool's kill switch. A removed tool cannot be "
        "enabled (`tool_removed`).",
    )
    kind: ToolKind | None = None
    risk: ToolRisk | None = None
    reason: str | None = Field(default=None, max_length=1024)
    expected_digest: str | None = Field(
        default=None,
        max_length=128,
        description="The digest you reviewed: a tool whose definition changed since is "
        "refused (`tool_definition_changed`, 409).",
    )


# ---------------------------------------------------------------------------- toolsets


class PutToolsetRequest(_In):
    tools: list[str] = Field(
        description="The tools it holds, as `<server>/<tool>` (each must exist and not be "
        "removed); replaces the set.",
        examples=[["github/list_issues", "github/create_issue"]],
    )


class ToolsetOut(_Out):
    name: str
    object: str = Field(description="`toolset:<name>`: grant it with a `member` tuple.")
    tools: list[str]
    members: list[str] = Field(description="The users of its `member` tuples.")
    revision: int

    @classmethod
    def of(cls, t: Toolset) -> ToolsetOut:
        return cls.model_validate(t.to_dict())


class ToolsetList(_Out):
    toolsets: list[ToolsetOut]


# ---------------------------------------------------------------------------- kill switches


class KillSwitchRequest(_In):
    level: KillLevel = Field(
        description="`store`: every call; `server`: its tools; `tool`: one tool; `agent`: "
        "every call by the agent, whoever it acts for."
    )
    target: str | None = Field(
        default=None,
        max_length=512,
        description="None for `store`; the server name; the tool as `<server>/<tool>`; "
        "the agent's node (e.g. `agent:planner`).",
    )
    engaged: StrictBool = Field(default=True, description="false releases the switch.")
    reason: str | None = Field(default=None, max_length=1024)


class KillSwitchOut(_Out):
    level: KillLevel
    target: str | None = None
    engaged: bool
    reason: str | None = None
    revision: int


# ---------------------------------------------------------------------------- settings


class SettingsOut(_Out):
    enabled: bool = Field(description="false: the store kill switch is engaged.")
    disabled_reason: str | None = None
    record_arguments: bool = Field(
        description="Keep each call's arguments in its ledger event (else only their digest)."
    )
    blocked_agents: dict[str, str] = Field(description="Blocked agents, with why.")
    updated_at: Seconds
    updated_by: str | None = None
    revision: int

    @classmethod
    def of(cls, s: GatewaySettings) -> SettingsOut:
        return cls.model_validate(s.to_dict())


class UpdateSettingsRequest(_In):
    record_arguments: StrictBool | None = Field(
        default=None,
        description="Record tool-call arguments in the ledger (off by default: only a digest).",
    )
