"""The MCP gateway's tool usage (issue 9): which tools are called, by whom, how often, which
enabled tools nobody uses, and which non-human identities may call dangerous tools — and
the posture findings drawn from it.

Operation (``can_read_posture``; nothing written, nothing recorded when allowed):

* :func:`tool_usage` — over ``[since, until]`` (the last 90 days by default; the window
  includes its end): per tool its status, classification (``kind``, ``risk``), calls
  allowed (forwarded; ``errors`` of them failed downstream) and denied (by the decision
  or a kill switch), when last used and the agents that called it; per acting identity
  its calls, the tools it used and — for an NHI — the enabled tools classified
  ``dangerous`` it may call now; the enabled tools with no allowed call in the window
  (``never_used``).

How it is computed: the window's ``gateway.tool_call`` events in ONE aggregate query
(:meth:`~keyplane.storage.ledger_activity.LedgerActivityStore.ledger_activity`: grouped by
subject, actor chain, resource and outcome — never reading event bodies), the registry
in one snapshot (:meth:`~keyplane.storage.base.GatewayStore.read_gateway`), and for each
enabled dangerous tool the NHIs holding ``can_call`` on it (the engine's list users over
the store's latest model: direct ``caller`` tuples, toolset membership, the server's
callers, groups included). The *acting* identities of a call are its actor chain (the
agents) or, without one, its subject. Ledger fields hashed with
``KEYPLANE_LEDGER_HMAC_FIELDS`` are matched by hashing our side's values (the registry's
tool objects, the identity plane's nodes), never by un-hashing; an event whose resource
names no tool (or a hashed one no longer registered) is left out.

Findings (for :func:`keyplane.service.posture.posture_report`, :func:`tool_findings`):

* ``agent_with_dangerous_tools`` (NHI5) — a live NHI may call enabled tools classified
  ``dangerous``; high when it called some of them not once in the window, else medium.
* ``unused_tool`` (NHI5) — an enabled tool, approved at least a window ago, with no
  allowed call in the window (identity: the tool's object); medium when dangerous, else
  low.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from keyplane.errors import KeyplaneError, ValidationError
from keyplane.gateway.records import CALL_RELATION, McpTool, split_ref
from keyplane.governance.posture import OWASP_NHI, Finding
from keyplane.governance.tool_usage import AgentToolUse, ToolUsageReport, ToolUse
from keyplane.ledger.redact import HMAC_PREFIX
from keyplane.policy.records import NON_HUMAN_KINDS
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services

__all__ = [
    "CALL_EVENT",
    "DEFAULT_WINDOW_DAYS",
    "TOOL_FINDINGS",
    "analyze",
    "tool_findings",
    "tool_usage",
]

DAY = 86400.0
DEFAULT_WINDOW_DAYS = 90
#: the ledger event of one call through the gateway (docs/ledger.md)
CALL_EVENT = "gateway.tool_call"
#: outcomes of a call the decision let through (``error``: forwarded, then failed)
_FORWARDED = ("allow", "error")

#: finding code -> (OWASP id, title); merged into keyplane.service.posture.FINDINGS
TOOL_FINDINGS: dict[str, tuple[str, str]] = {
    "agent_with_dangerous_tools": ("NHI5", "May call dangerous tools"),
    "unused_tool": ("NHI5", "Enabled tool not used in the window"),
}


# -- inputs ---------------------------------------------------------------------------------


def _time(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(
            f"{name} must be a time in seconds since the epoch",
            details={"field": name, "received": str(value)[:100]},
        )
    return float(value)


def _window(svc: Services, since: Any, until: Any) -> tuple[float, float]:
    start, end = _time("since", since), _time("until", until)
    if end is None:
        end = svc.clock.now()
    if start is None:
        start = end - DEFAULT_WINDOW_DAYS * DAY
    if start > end:
        raise ValidationError(
            "since must not be after until", details={"since": start, "until": end}
        )
    return start, end


# -- the operation --------------------------------------------------------------------------


@audited(None)
def tool_usage(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    since: float | None = None,
    until: float | None = None,
) -> ToolUsageReport:
    """The gateway's tools and their use over ``[since, until]`` (seconds since the epoch;
    ``until`` defaults to now, ``since`` to 90 days before it): per tool its status,
    classification, calls allowed and denied, last use and callers; per acting identity
    its calls, the tools it used and the dangerous tools it may call; the enabled tools
    never used in the window. See the module docstring."""
    authorize(svc, caller, Permission.READ_POSTURE, store_id)
    start, end = _window(svc, since, until)
    svc.graphs.catch_up(store_id)
    return analyze(svc, store_id, start, end)


@dataclass(slots=True)
class _Calls:
    allowed: int = 0
    denied: int = 0
    errors: int = 0
    last_used: float | None = None
    last_denied: float | None = None
    agents: set[str] = field(default_factory=set)
    subjects: set[str] = field(default_factory=set)
    tools: set[str] = field(default_factory=set)

    def add(self, outcome: str, n: int, last: float) -> bool:
        if outcome in _FORWARDED:
            self.allowed += n
            self.errors += n if outcome == "error" else 0
            self.last_used = last if self.last_used is None else max(self.last_used, last)
            return True
        self.denied += n
        self.last_denied = last if self.last_denied is None else max(self.last_denied, last)
        return False


class _Known:
    """A stored ledger value → one of ``known`` (ours hashed when it is an HMAC)."""

    def __init__(self, svc: Services, known: Iterable[str]) -> None:
        self._svc = svc
        self._known = set(known)
        self._hashed: dict[str, str] | None = None

    def __call__(self, value: str | None) -> str | None:
        if value is None or not value.startswith(HMAC_PREFIX):
            return value
        if self._hashed is None:
            h = self._svc.redactor.hash_value
            self._hashed = {str(h(k)): k for k in self._known}
        return self._hashed.get(value, value)


def _dangerous_holders(
    svc: Services, store_id: str, tools: Sequence[McpTool]
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """NHI node → refs of the given tools it may call (``can_call``), and the tools whose
    callers could not be listed (ref → error code)."""
    holders: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    if not tools:
        return holders, errors
    try:
        engine, _ = svc.graphs.engine(store_id)
    except KeyplaneError as exc:  # no model yet: nobody holds anything
        return holders, {t.ref: exc.code for t in tools}
    kinds = [k for k in NON_HUMAN_KINDS if k in engine.model.types]
    for t in tools:
        try:
            users = engine.list_users(t.object, CALL_RELATION, kinds) if kinds else []
        except KeyplaneError as exc:  # a model without mcp_tool, resolution limits
            errors[t.ref] = exc.code
            continue
        for u in users:
            holders.setdefault(u, []).append(t.ref)
    return holders, errors


def analyze(svc: Services, store_id: str, since: float, until: float) -> ToolUsageReport:
    """:func:`tool_usage` without the authorization (the posture report's Tools section)."""
    svc.ledger.flush()  # async ledger mode: count every call recorded so far
    state = svc.storage.read_gateway(store_id)
    # the window includes its end: a call recorded at the very instant counts
    rows = svc.storage.ledger_activity(
        store_id, since=since, until=math.nextafter(until, math.inf), types=(CALL_EVENT,)
    )
    registry = sorted(state.tools.values(), key=lambda t: (t.server, t.name))
    dangerous = [t for t in registry if t.status == "enabled" and t.risk == "dangerous"]
    holders, errors = _dangerous_holders(svc, store_id, dangerous)
    fields = svc.redactor.fields
    policy = svc.graphs.policy(store_id)
    nodes = {i.node for i in policy.identities()} | set(holders)
    subject_of = _Known(svc, nodes) if "subject" in fields else (lambda v: v)
    resource_of = (
        _Known(svc, (t.object for t in registry)) if "resource" in fields else (lambda v: v)
    )
    by_tool: dict[tuple[str, str], _Calls] = {}
    by_agent: dict[str, _Calls] = {}
    allowed = denied = 0
    for r in rows:
        resource = resource_of(r.resource)
        ref = split_ref(resource) if resource and resource.startswith("mcp_tool:") else None
        if ref is None:
            continue
        subject = subject_of(r.subject)
        acting = list(dict.fromkeys(r.actors)) or ([subject] if subject else [])
        calls = by_tool.setdefault(ref, _Calls())
        used = calls.add(r.outcome, r.events, r.last_at)
        allowed, denied = (allowed + r.events, denied) if used else (allowed, denied + r.events)
        for a in acting:
            mine = by_agent.setdefault(a, _Calls())
            mine.add(r.outcome, r.events, r.last_at)
            if used:
                calls.agents.add(a)
                mine.tools.add(f"{ref[0]}/{ref[1]}")
        if used and r.actors and subject:
            calls.subjects.add(subject)
    tools: list[ToolUse] = []
    for t in registry:
        c = by_tool.pop((t.server, t.name), None) or _Calls()
        tools.append(_tool_use(t.server, t.name, c, t))
    for (server, name), c in sorted(by_tool.items()):  # in the ledger, not in the registry
        tools.append(_tool_use(server, name, c, None))
    agents = [
        AgentToolUse(
            identity=node,
            calls=c.allowed,
            denied=c.denied,
            last_used_at=c.last_used,
            tools=tuple(sorted(c.tools)),
            dangerous_tools=tuple(sorted(holders.get(node, ()))),
        )
        for node, c in sorted(
            {**{h: _Calls() for h in holders}, **by_agent}.items(), key=lambda kv: kv[0]
        )
    ]
    return ToolUsageReport(
        store_id=store_id,
        since=since,
        until=until,
        tools=tuple(tools),
        agents=tuple(agents),
        never_used=tuple(t.ref for t in tools if t.status == "enabled" and t.allowed == 0),
        allowed=allowed,
        denied=denied,
        errors=errors,
    )


def _tool_use(server: str, name: str, c: _Calls, t: McpTool | None) -> ToolUse:
    return ToolUse(
        server=server,
        tool=name,
        status="unknown" if t is None else t.status,
        kind=None if t is None else t.kind,
        risk=None if t is None else t.risk,
        allowed=c.allowed,
        denied=c.denied,
        errors=c.errors,
        last_used_at=c.last_used,
        last_denied_at=c.last_denied,
        agents=tuple(sorted(c.agents)),
        on_behalf_of=tuple(sorted(c.subjects)),
        enabled_since=None if t is None else t.approved_at,
        first_seen_at=None if t is None else t.first_seen_at,
    )


# -- findings -------------------------------------------------------------------------------


def _finding(
    code: str, severity: str, identity: str, evidence: dict[str, Any], fix: str
) -> Finding:
    owasp, title = TOOL_FINDINGS[code]
    assert owasp in OWASP_NHI
    return Finding(code, owasp, severity, identity, title, evidence, fix)


def tool_findings(report: ToolUsageReport, *, deprovisioned: Iterable[str] = ()) -> list[Finding]:
    """``agent_with_dangerous_tools`` and ``unused_tool`` from a tool usage report (see the
    module docstring). ``deprovisioned``: NHIs that are offboarded (no finding but
    ``active_credential_of_inactive_identity`` applies to them)."""
    gone = set(deprovisioned)
    window_days = round((report.until - report.since) / DAY)
    out: list[Finding] = []
    for a in report.agents:
        if not a.dangerous_tools or a.identity in gone:
            continue
        unused = a.unused_dangerous_tools
        used = [t for t in a.dangerous_tools if t not in unused]
        out.append(_finding(
            "agent_with_dangerous_tools", "high" if unused else "medium", a.identity,
            {
                "dangerous_tools": list(a.dangerous_tools), "used": used,
                "unused": list(unused), "window_days": window_days,
                "last_used_at": a.last_used_at,
            },
            (f"{a.identity} may call {len(unused)} dangerous tool(s) it did not call in "
             f"{window_days} days ({', '.join(unused)}): remove the grant (its `caller` "
             "tuple, toolset membership or server grant — `keyplane access effective "
             f"{a.identity} --object-type mcp_tool` shows the path). " if unused else "")
            + "Keep dangerous tools behind a guardrail that requires approval "
            '(`resource.attributes.risk == "dangerous"`).',
        ))  # fmt: skip
    for t in report.tools:
        if t.status != "enabled" or t.allowed:
            continue
        since = t.enabled_since if t.enabled_since is not None else t.first_seen_at
        if since is None or since > report.since:
            continue  # enabled for less than the window: too early to call it unused
        out.append(_finding(
            "unused_tool", "medium" if t.risk == "dangerous" else "low", t.object,
            {
                "tool": t.ref, "kind": t.kind, "risk": t.risk, "enabled_since": since,
                "window_days": window_days, "denied_calls": t.denied,
            },
            f"No agent used {t.ref} in {window_days} days: disable it (`keyplane gateway "
            f"tool disable {t.ref}`) and remove it from its toolsets, so no agent can call "
            "a tool nobody needs.",
        ))  # fmt: skip
    return out
