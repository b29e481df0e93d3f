"""MCP tools of governance analytics (issue 8): effective access (an identity's, a
resource's), over-privilege and its recommendation, agents exceeding their owners, the NHI
inventory, the posture report (JSON) and the MCP gateway's tool usage.

Same rules as :mod:`keyplane.mcp.tools`: one tool, one service function; inputs mirror the
REST query parameters (or request body, plus the path parameters as fields), outputs are
the REST response models (:mod:`keyplane.api.posture_schemas`). The drawings (DOT,
Mermaid) and the HTML and text reports are for people: the REST API and the CLI render
them; an agent gets the JSON.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

from keyplane.api import posture_schemas as ps
from keyplane.api.schemas import MAX_OBJECT, MAX_RELATION, MAX_TYPE, MAX_USER
from keyplane.service import effective, gateway_usage, posture, privilege
from keyplane.service.auth import Caller, Permission
from keyplane.service.context import Services

__all__ = ["POSTURE_NOT_EXPOSED", "POSTURE_SERVICE_OF_TOOL", "POSTURE_SPECS"]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _identity() -> Any:
    return Field(
        min_length=3,
        max_length=MAX_USER,
        description="The identity's graph node, e.g. `agent:planner`.",
        examples=["agent:planner"],
    )


def _window() -> Any:
    return Field(default=90, ge=1, le=3650, description="The usage window: the last N days.")


def _page(default: int) -> tuple[Any, Any]:
    return (
        Field(default=default, ge=1, le=1000, description="At most this many per page."),
        Field(default=None, max_length=4096, description="The previous page's token."),
    )


# ------------------------------------------------------------------ arguments


class EffectiveAccessArgs(_Args):
    """Everything an identity can reach."""

    identity: str = _identity()
    object_type: str | None = Field(default=None, max_length=MAX_TYPE)
    relation: str | None = Field(default=None, max_length=MAX_RELATION)
    include_paths: StrictBool = Field(default=True, description="Include the granting paths.")
    include_delegated: StrictBool = Field(
        default=True, description="Include access exercised through active delegations."
    )
    page_size: int = _page(100)[0]
    continuation_token: str | None = _page(100)[1]


class WhoCanAccessArgs(_Args):
    """Everyone who can reach an object."""

    object: str = Field(min_length=3, max_length=MAX_OBJECT, examples=["document:roadmap"])
    relation: str | None = Field(default=None, max_length=MAX_RELATION)
    user_type: str | None = Field(
        default=None, max_length=MAX_TYPE, description="Only users of this type, e.g. `agent`."
    )
    include_paths: StrictBool = True
    include_delegated: StrictBool = True
    page_size: int = _page(100)[0]
    continuation_token: str | None = _page(100)[1]


class OverPrivilegeArgs(_Args):
    """Granted versus used for one identity."""

    identity: str = _identity()
    window_days: StrictInt = _window()
    limit: StrictInt = Field(default=1000, ge=1, le=100_000, description="Unused listed.")


class ApplyPrivilegeArgs(ps.ApplyPrivilegeRequest):
    identity: str = _identity()


class ExceedingArgs(_Args):
    """Agents reaching more than their owners or delegators."""

    agent: str | None = Field(default=None, max_length=MAX_USER, description="Only this agent.")
    limit: StrictInt = Field(default=100, ge=1, le=100_000, description="Excess listed each.")
    page_size: int = _page(50)[0]
    continuation_token: str | None = _page(50)[1]


class InventoryArgs(_Args):
    """The NHI inventory."""

    kind: Literal["agent", "workload", "service_account"] | None = None
    status: Literal["active", "suspended", "deprovisioned"] | None = None
    window_days: StrictInt = _window()
    page_size: int = _page(50)[0]
    continuation_token: str | None = _page(50)[1]


class PostureReportArgs(_Args):
    """The posture report."""

    window_days: StrictInt = _window()
    long_lived_days: StrictInt = Field(
        default=90, ge=1, le=3650, description="A credential living longer is long-lived."
    )
    include_inventory: StrictBool = Field(
        default=False,
        description="Include the full inventory (large; the findings name the identities).",
    )


class ToolUsageArgs(_Args):
    """The MCP gateway's tool usage."""

    since: StrictFloat | StrictInt | None = Field(
        default=None,
        description="Window start, seconds since the epoch (default: 90 days before `until`).",
    )
    until: StrictFloat | StrictInt | None = Field(
        default=None, description="Window end, seconds since the epoch (default: now)."
    )


# ------------------------------------------------------------------ handlers

Result = tuple[BaseModel, str]


def _access_list(page: Any) -> ps.AccessList:
    return ps.AccessList(
        entries=[ps.AccessEntryOut.of(e) for e in page.items],
        continuation_token=page.continuation_token,
    )


def _access_text(head: str, out: ps.AccessList) -> str:
    lines = [head]
    for e in out.entries:
        via = "" if e.on_behalf_of is None else f" (for {e.on_behalf_of})"
        lines.append(f"{e.user} {e.relation} {e.object}{via}")
    if out.continuation_token:
        lines.append("more: call again with continuation_token")
    return "\n".join(lines)


def _effective(svc: Services, caller: Caller, store: str, a: EffectiveAccessArgs) -> Result:
    page = effective.effective_access(
        svc, caller, store, a.identity, object_type=a.object_type, relation=a.relation,
        include_paths=a.include_paths, include_delegated=a.include_delegated,
        page_size=a.page_size, continuation_token=a.continuation_token,
    )  # fmt: skip
    out = _access_list(page)
    return out, _access_text(f"{a.identity} reaches {len(out.entries)} (this page):", out)


def _holders(svc: Services, caller: Caller, store: str, a: WhoCanAccessArgs) -> Result:
    page = effective.who_can_access(
        svc, caller, store, a.object, relation=a.relation, user_type=a.user_type,
        include_paths=a.include_paths, include_delegated=a.include_delegated,
        page_size=a.page_size, continuation_token=a.continuation_token,
    )  # fmt: skip
    out = _access_list(page)
    return out, _access_text(f"{len(out.entries)} can reach {a.object} (this page):", out)


def _over_privilege(svc: Services, caller: Caller, store: str, a: OverPrivilegeArgs) -> Result:
    o = privilege.over_privilege(
        svc, caller, store, a.identity, window_days=a.window_days, limit=a.limit
    )
    text = (
        f"{o.identity}: {len(o.grants)} grants, {len(o.unused_grants)} unused; "
        f"{len(o.used)} permissions used of {o.effective_total}. Recommendation: keep "
        f"{len(o.keep)}, revoke {len(o.revoke)}" + (": " + ", ".join(o.revoke) if o.revoke else "")
    )
    return ps.OverPrivilegeOut.of(o), text


def _apply(svc: Services, caller: Caller, store: str, a: ApplyPrivilegeArgs) -> Result:
    r = privilege.apply_privilege_recommendation(
        svc, caller, store, a.identity, mode=a.mode, window_days=a.window_days,
        expected=a.expected, reviewer=a.reviewer, due_at=a.due_at,
    )  # fmt: skip
    out = ps.PrivilegeAppliedOut.model_validate(r.to_dict())
    text = (
        f"revoked {len(out.tuples)} grant(s) of {out.identity} (revision {out.revision})"
        if out.mode == "revoke"
        else f"review {out.review_id} opened for {len(out.tuples)} grant(s) of {out.identity}"
    )
    return out, text


def _exceeding(svc: Services, caller: Caller, store: str, a: ExceedingArgs) -> Result:
    page = privilege.agents_exceeding_owners(
        svc, caller, store, agent=a.agent, limit=a.limit, page_size=a.page_size,
        continuation_token=a.continuation_token,
    )  # fmt: skip
    out = ps.ExcessAccessList(
        agents=[ps.ExcessAccessOut.of(e) for e in page.items],
        continuation_token=page.continuation_token,
    )
    lines = [f"{len(out.agents)} agent/principal pair(s) with excess access (this page):"]
    lines += [
        f"{e.agent} reaches {e.excess_total} that its {e.relationship} {e.principal} does not"
        for e in out.agents
    ]
    return out, "\n".join(lines)


def _inventory(svc: Services, caller: Caller, store: str, a: InventoryArgs) -> Result:
    page = posture.nhi_inventory(
        svc, caller, store, kind=a.kind, status=a.status, window_days=a.window_days,
        page_size=a.page_size, continuation_token=a.continuation_token,
    )  # fmt: skip
    out = ps.NhiInventoryList(
        identities=[ps.NhiInventoryItemOut.of(i) for i in page.items],
        continuation_token=page.continuation_token,
    )
    lines = [f"{len(out.identities)} non-human identities (this page):"]
    lines += [
        f"{i.identity} {i.status}, owners {', '.join(i.owners) or 'none'}, "
        f"{i.credential_count} credential(s)"
        for i in out.identities
    ]
    return out, "\n".join(lines)


def _report(svc: Services, caller: Caller, store: str, a: PostureReportArgs) -> Result:
    r = posture.posture_report(
        svc, caller, store, window_days=a.window_days, long_lived_days=a.long_lived_days,
        include_inventory=a.include_inventory,
    )  # fmt: skip
    lines = [
        f"visibility {r.visibility.score:.0%} of {r.visibility.total} NHIs; "
        f"{len(r.findings)} finding(s)"
    ]
    lines += [f"[{f.severity}] {f.owasp} {f.code}: {f.identity} — {f.title}" for f in r.findings]
    return ps.PostureReportOut.of(r), "\n".join(lines)


def _tool_usage(svc: Services, caller: Caller, store: str, a: ToolUsageArgs) -> Result:
    r = gateway_usage.tool_usage(
        svc, caller, store,
        since=None if a.since is None else float(a.since),
        until=None if a.until is None else float(a.until),
    )  # fmt: skip
    lines = [f"{len(r.tools)} tool(s); {r.allowed} call(s) allowed, {r.denied} denied"]
    lines += [
        f"{t.ref} [{t.status}, {t.kind or '?'}/{t.risk or '?'}]: {t.allowed} allowed, "
        f"{t.denied} denied" + (f", by {', '.join(t.agents)}" if t.agents else "")
        for t in r.tools
    ]
    lines += [
        f"{g.identity} may call dangerous tools: {', '.join(g.dangerous_tools)}"
        for g in r.agents
        if g.dangerous_tools
    ]
    lines.append("never used: " + (", ".join(r.never_used) or "none"))
    return ps.ToolUsageOut.of(r), "\n".join(lines)


# ------------------------------------------------------------------ the tools

_PATHS_NOTE = (
    "Each entry names `via` (`graph`, or `delegation` with `on_behalf_of` and "
    "`delegation_id`) and its granting `paths` (set include_paths false for a smaller "
    "answer). Paginated: call again with `continuation_token` while it is not null."
)

POSTURE_SPECS: list[
    tuple[str, str, str, type[BaseModel], type[BaseModel], Any, bool, str | None, bool]
] = [
    (
        "effective_access",
        "Everything an identity can reach",
        "List every (object, relation) an identity holds over the store's model — through "
        "its grants, its groups and the model's rewrites — and, for an agent, what it "
        "exercises for a delegator under an active delegation. " + _PATHS_NOTE + " Needs "
        'can_query. Example: {"identity": "agent:planner", "object_type": "document"}.',
        EffectiveAccessArgs,
        ps.AccessList,
        _effective,
        False,
        None,
        False,
    ),
    (
        "who_can_access",
        "Everyone who can reach a resource",
        "List every user (of every type the model allows) holding a relation on an object, "
        "and the agents acting for a holder under a covering delegation. "
        + _PATHS_NOTE
        + ' Example: {"object": "document:roadmap", "relation": "viewer"}.',
        WhoCanAccessArgs,
        ps.AccessList,
        _holders,
        False,
        None,
        False,
    ),
    (
        "over_privilege",
        "Granted versus used",
        "For one identity: its grants with what of the observed use (allowed decisions in "
        "the window) each covers, unused grants and permissions, and the least-privilege "
        "recommendation (`keep`: the smallest set of grants found that covers every use; "
        "`revoke`: the rest). Needs can_read_posture. Example: "
        '{"identity": "agent:planner", "window_days": 30}.',
        OverPrivilegeArgs,
        ps.OverPrivilegeOut,
        _over_privilege,
        False,
        None,
        False,
    ),
    (
        "apply_privilege_recommendation",
        "Apply a least-privilege recommendation",
        "Act on over_privilege's recommendation: `mode: review` (default) opens a review "
        "campaign of exactly the grants to revoke, so humans decide; `mode: revoke` deletes "
        "them now. Pass `expected` (the revoke list you were shown) so a changed "
        "recommendation is refused (`recommendation_changed`) instead of applied. Only "
        "listed for keys that may manage reviews. Example: "
        '{"identity": "agent:planner", "mode": "review", "expected": '
        '["document:old#editor@agent:planner"]}.',
        ApplyPrivilegeArgs,
        ps.PrivilegeAppliedOut,
        _apply,
        True,
        Permission.MANAGE_REVIEWS,
        True,
    ),
    (
        "agents_exceeding_owners",
        "Agents exceeding their owners",
        "Agents that reach what one of their owners, or a delegator of an active delegation "
        "to them, does not: the excess (object, relation) pairs. Needs can_read_posture. "
        'Example: {"agent": "agent:planner"} or {}.',
        ExceedingArgs,
        ps.ExcessAccessList,
        _exceeding,
        False,
        None,
        False,
    ),
    (
        "nhi_inventory",
        "Non-human identity inventory",
        "Every agent, workload and service account with kind, owners, status, credentials "
        "(count, oldest, next expiry, never used, unused 30/90 days), last seen and "
        "delegations held. Needs can_read_posture. Example: "
        '{"kind": "agent", "status": "active"}.',
        InventoryArgs,
        ps.NhiInventoryList,
        _inventory,
        False,
        None,
        False,
    ),
    (
        "posture_report",
        "Non-human identity posture report",
        "The store's NHI posture as JSON: findings mapped to the OWASP Non-Human Identities "
        "Top 10 (each with identity, evidence and fix, most severe first), the visibility "
        "score, counts, and the over-privilege summaries behind NHI5 (the inventory only "
        "with include_inventory). Needs can_read_posture. Example: "
        '{"window_days": 30}.',
        PostureReportArgs,
        ps.PostureReportOut,
        _report,
        False,
        None,
        False,
    ),
    (
        "tool_usage",
        "MCP gateway tool usage",
        "The MCP gateway's tools over a window (the last 90 days by default): per tool its "
        "status, classification (kind, risk), calls allowed and denied, last use and the "
        "agents that called it; per agent its calls, the tools it used and the enabled "
        "dangerous tools it may call; the enabled tools never used. Needs can_read_posture. "
        'Example: {} or {"since": 1767225600}.',
        ToolUsageArgs,
        ps.ToolUsageOut,
        _tool_usage,
        False,
        None,
        False,
    ),
]


POSTURE_SERVICE_OF_TOOL: dict[str, Any] = {
    "effective_access": effective.effective_access,
    "who_can_access": effective.who_can_access,
    "over_privilege": privilege.over_privilege,
    "apply_privilege_recommendation": privilege.apply_privilege_recommendation,
    "agents_exceeding_owners": privilege.agents_exceeding_owners,
    "nhi_inventory": posture.nhi_inventory,
    "posture_report": posture.posture_report,
    "tool_usage": gateway_usage.tool_usage,
}

POSTURE_NOT_EXPOSED: dict[str, str] = {}
