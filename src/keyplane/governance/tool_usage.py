"""Records of the MCP gateway's tool usage (issue 9): which tools were called, by whom,
how often, and which agents may call dangerous tools — from the window's
``gateway.tool_call`` ledger events and the graph.

Shared by :func:`keyplane.service.gateway_usage.tool_usage`, the posture report (its Tools
section, :class:`keyplane.governance.posture.PostureReport`), the renderers and every
surface. ``to_dict`` is the JSON the REST API, the CLI's ``--json`` and the MCP tool
return; ``from_dict`` rebuilds the record (the HTTP SDK). Times are seconds since the Unix
epoch (UTC) as ``float``.

A *call* is one ``gateway.tool_call`` event. It was *allowed* when the decision let it
through and the gateway forwarded it (outcome ``allow``, or ``error`` when the server then
failed — counted in ``errors`` too), *denied* when the decision or a kill switch refused
it. *Use* of a tool is an allowed call. The *acting* identities of a call are the agents
of its actor chain, or its subject when it had none (an agent calling for itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["AgentToolUse", "ToolUsageReport", "ToolUse"]


@dataclass(frozen=True, slots=True)
class ToolUse:
    """One tool of the gateway (or a tool the ledger names that is no longer registered:
    ``status`` ``unknown``) and its calls in the window. ``agents``: the acting identities
    of its allowed calls, ``on_behalf_of``: the subjects those calls were made for (when
    an agent acted for someone)."""

    server: str
    tool: str
    status: str  # pending | enabled | disabled | removed | unknown
    kind: str | None = None
    risk: str | None = None
    allowed: int = 0
    denied: int = 0
    errors: int = 0
    last_used_at: float | None = None
    last_denied_at: float | None = None
    agents: tuple[str, ...] = ()
    on_behalf_of: tuple[str, ...] = ()
    #: when it was approved (None: never approved); ``first_seen_at`` when it was discovered
    enabled_since: float | None = None
    first_seen_at: float | None = None

    @property
    def ref(self) -> str:
        return f"{self.server}/{self.tool}"

    @property
    def object(self) -> str:
        return f"mcp_tool:{self.server}/{self.tool}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "tool": self.tool,
            "ref": self.ref,
            "object": self.object,
            "status": self.status,
            "kind": self.kind,
            "risk": self.risk,
            "allowed": self.allowed,
            "denied": self.denied,
            "errors": self.errors,
            "last_used_at": self.last_used_at,
            "last_denied_at": self.last_denied_at,
            "agents": list(self.agents),
            "on_behalf_of": list(self.on_behalf_of),
            "enabled_since": self.enabled_since,
            "first_seen_at": self.first_seen_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ToolUse:
        return cls(
            server=str(d["server"]),
            tool=str(d["tool"]),
            status=str(d["status"]),
            kind=d.get("kind"),
            risk=d.get("risk"),
            allowed=int(d.get("allowed", 0)),
            denied=int(d.get("denied", 0)),
            errors=int(d.get("errors", 0)),
            last_used_at=d.get("last_used_at"),
            last_denied_at=d.get("last_denied_at"),
            agents=tuple(d.get("agents") or ()),
            on_behalf_of=tuple(d.get("on_behalf_of") or ()),
            enabled_since=d.get("enabled_since"),
            first_seen_at=d.get("first_seen_at"),
        )


@dataclass(frozen=True, slots=True)
class AgentToolUse:
    """One acting identity: its calls in the window (``calls`` allowed, ``denied``), the
    tools it used (refs ``<server>/<tool>``) and, for a non-human identity, the enabled
    tools classified ``dangerous`` that it may call now (effective ``can_call``: directly,
    through a toolset or its server, groups included)."""

    identity: str
    calls: int = 0
    denied: int = 0
    last_used_at: float | None = None
    tools: tuple[str, ...] = ()
    dangerous_tools: tuple[str, ...] = ()

    @property
    def unused_dangerous_tools(self) -> tuple[str, ...]:
        used = set(self.tools)
        return tuple(t for t in self.dangerous_tools if t not in used)

    def to_dict(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "calls": self.calls,
            "denied": self.denied,
            "last_used_at": self.last_used_at,
            "tools": list(self.tools),
            "dangerous_tools": list(self.dangerous_tools),
            "unused_dangerous_tools": list(self.unused_dangerous_tools),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AgentToolUse:
        return cls(
            identity=str(d["identity"]),
            calls=int(d.get("calls", 0)),
            denied=int(d.get("denied", 0)),
            last_used_at=d.get("last_used_at"),
            tools=tuple(d.get("tools") or ()),
            dangerous_tools=tuple(d.get("dangerous_tools") or ()),
        )


@dataclass(frozen=True, slots=True)
class ToolUsageReport:
    """The gateway's tools over ``[since, until]``: every tool with its calls (by server
    and name), every acting identity (and every NHI that may call a dangerous tool), the
    enabled tools never used in the window (``never_used``, refs), the totals of
    allowed and denied calls, and the
    dangerous tools whose callers could not be computed (``errors``: ref → error code)."""

    store_id: str
    since: float
    until: float
    tools: tuple[ToolUse, ...] = ()
    agents: tuple[AgentToolUse, ...] = ()
    never_used: tuple[str, ...] = ()
    allowed: int = 0
    denied: int = 0
    errors: dict[str, str] = field(default_factory=dict)

    def tool(self, ref: str) -> ToolUse | None:
        return next((t for t in self.tools if t.ref == ref), None)

    def agent(self, identity: str) -> AgentToolUse | None:
        return next((a for a in self.agents if a.identity == identity), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "store_id": self.store_id,
            "since": self.since,
            "until": self.until,
            "allowed": self.allowed,
            "denied": self.denied,
            "tools": [t.to_dict() for t in self.tools],
            "agents": [a.to_dict() for a in self.agents],
            "never_used": list(self.never_used),
            "errors": dict(self.errors),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ToolUsageReport:
        return cls(
            store_id=str(d["store_id"]),
            since=float(d["since"]),
            until=float(d["until"]),
            tools=tuple(ToolUse.from_dict(t) for t in d.get("tools") or ()),
            agents=tuple(AgentToolUse.from_dict(a) for a in d.get("agents") or ()),
            never_used=tuple(d.get("never_used") or ()),
            allowed=int(d.get("allowed", 0)),
            denied=int(d.get("denied", 0)),
            errors={str(k): str(v) for k, v in (d.get("errors") or {}).items()},
        )
