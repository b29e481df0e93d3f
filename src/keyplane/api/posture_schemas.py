"""Request and response bodies of governance analytics (issue 8): effective access,
over-privilege, agents that exceed their owners, the NHI inventory and the posture report
(``/v1/stores/{store}/effective-access``, ``…/resource-access``, ``…/identities/{kind}/{id}/
over-privilege``, ``…/posture/…``).

Each response model mirrors the ``to_dict`` of its record in
:mod:`keyplane.governance.posture` field for field, so the REST API, the CLI's ``--json``
and the MCP tools return one JSON shape and the HTTP SDK rebuilds the record with
``from_dict``. Unlike the older areas, times here are seconds since the Unix epoch (UTC,
a JSON number): analytics answers are large and compared numerically (ages, windows), and
the records are shared with the report renderers. The MCP server reuses these models as
tool schemas.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from keyplane.governance.posture import (
    AccessEntry,
    ExcessAccess,
    NhiInventoryItem,
    OverPrivilege,
    PostureReport,
)
from keyplane.governance.tool_usage import ToolUsageReport

__all__ = [
    "AccessEntryOut",
    "AccessList",
    "AgentToolUseOut",
    "ApplyPrivilegeRequest",
    "ExcessAccessList",
    "ExcessAccessOut",
    "FindingOut",
    "GrantUseOut",
    "NhiCredentialOut",
    "NhiInventoryItemOut",
    "NhiInventoryList",
    "OverPrivilegeOut",
    "PermissionUseOut",
    "PostureReportOut",
    "PrivilegeAppliedOut",
    "RecommendationOut",
    "ToolUsageOut",
    "ToolUseOut",
    "VisibilityOut",
]

Seconds = float


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore")


# ---------------------------------------------------------------------------- effective access


class AccessEntryOut(_Out):
    user: str = Field(description="The identity (or user) that reaches `object`.")
    relation: str
    object: str
    via: Literal["graph", "delegation"] = Field(
        description="`graph`: the user holds the relation itself; `delegation`: an agent "
        "exercising it for `on_behalf_of` under `delegation_id` (the delegator holds it, "
        "the agent holds it, the delegation's scope covers it)."
    )
    paths: list[Any] = Field(
        description="The granting paths (explain's steps, from the object down to the "
        "user); empty when `paths=false`. For a delegated entry, the delegator's paths."
    )
    on_behalf_of: str | None = None
    delegation_id: str | None = None

    @classmethod
    def of(cls, e: AccessEntry) -> AccessEntryOut:
        return cls.model_validate(e.to_dict())


class AccessList(_Out):
    entries: list[AccessEntryOut] = Field(
        description="One page, ordered by (object type, relation, object), an identity's "
        "own entry before the delegated ones for the same object and relation."
    )
    continuation_token: str | None = Field(
        default=None, description="Pass it back for the next page; null on the last."
    )
    decision_id: str | None = Field(
        default=None,
        description="The ledger event recording this page (`decision.effective_access`); "
        "`GET /v1/ledger/decisions/{decision_id}` shows it.",
    )


# ---------------------------------------------------------------------------- over-privilege


class PermissionUseOut(_Out):
    object: str
    relation: str
    uses: int = Field(description="Allowed decisions in the window (0: never used).")
    last_used_at: Seconds | None = None


class GrantUseOut(_Out):
    tuple: str = Field(description="The grant, as `object#relation@user`.")
    covers: int = Field(description="Used permissions this grant alone reaches (0: unused).")
    reaches: int = Field(description="Permissions this grant reaches (capped count).")
    expires_at: Seconds | None = None


class RecommendationOut(_Out):
    keep: list[str] = Field(description="The smallest set of grants found covering all use.")
    revoke: list[str] = Field(description="The grants the recommendation leaves out.")


class OverPrivilegeOut(_Out):
    identity: str
    since: Seconds
    until: Seconds
    grants: list[GrantUseOut]
    unused_grants: list[str] = Field(description="Grants covering no use in the window.")
    used: list[PermissionUseOut]
    unused: list[PermissionUseOut] = Field(description="Effective permissions never used.")
    unused_total: int
    effective_total: int
    recommendation: RecommendationOut
    uncovered: list[PermissionUseOut] = Field(
        description="Used permissions no grant covers any more (access since removed)."
    )

    @classmethod
    def of(cls, o: OverPrivilege) -> OverPrivilegeOut:
        return cls.model_validate(o.to_dict())


class ApplyPrivilegeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["review", "revoke"] = Field(
        default="review",
        description="`review`: open a review campaign of exactly the grants to revoke "
        "(needs can_manage_reviews); `revoke`: delete them now (needs can_write_tuples).",
    )
    window_days: StrictInt = Field(default=90, ge=1, le=3650)
    expected: list[str] | None = Field(
        default=None,
        description="The revoke list you saw (`recommendation.revoke`); when the recomputed "
        "one differs the call is refused with `recommendation_changed` and nothing is "
        "written.",
    )
    reviewer: str = Field(
        default="beneficiary_owners",
        min_length=1,
        max_length=512,
        description="For `review`: who reviews (as in review campaigns).",
    )
    due_at: StrictFloat | None = Field(
        default=None, description="For `review`: the due date, seconds since the epoch."
    )


class PrivilegeAppliedOut(_Out):
    identity: str
    mode: Literal["review", "revoke"]
    tuples: list[str] = Field(description="The grants revoked or put to review.")
    revision: int | None = Field(default=None, description="For `revoke`: the new revision.")
    review_id: str | None = Field(default=None, description="For `review`: the campaign.")
    since: Seconds
    until: Seconds


class ExcessAccessOut(_Out):
    agent: str
    principal: str = Field(description="The owner or delegator compared with.")
    relationship: str = Field(description="`owner` or `delegator`.")
    excess: list[PermissionUseOut] = Field(
        description="What the agent reaches and the principal does not (capped by `limit`)."
    )
    excess_total: int
    delegation_id: str | None = None

    @classmethod
    def of(cls, e: ExcessAccess) -> ExcessAccessOut:
        return cls.model_validate(e.to_dict())


class ExcessAccessList(_Out):
    agents: list[ExcessAccessOut]
    continuation_token: str | None = None


# ---------------------------------------------------------------------------- NHI posture


class NhiCredentialOut(_Out):
    id: str
    type: str = Field(description="`client_secret`, `private_key_jwt` or `api_key`.")
    status: str
    created_at: Seconds
    expires_at: Seconds | None = Field(description="null: never expires.")
    last_used_at: Seconds | None


class NhiInventoryItemOut(_Out):
    identity: str
    kind: str
    display_name: str
    status: str
    owners: list[str]
    orphaned: bool
    source: str
    created_at: Seconds
    credentials: list[NhiCredentialOut] = Field(description="Its active credentials.")
    credential_count: int
    oldest_credential_age: Seconds | None = Field(description="In seconds; null: none.")
    next_credential_expiry: Seconds | None
    never_used: int
    unused_30: int
    unused_90: int
    last_seen: Seconds | None
    delegations_held: int
    environment: str | None = None

    @classmethod
    def of(cls, i: NhiInventoryItem) -> NhiInventoryItemOut:
        return cls.model_validate(i.to_dict())


class NhiInventoryList(_Out):
    identities: list[NhiInventoryItemOut]
    continuation_token: str | None = None


class FindingOut(_Out):
    code: str = Field(description="Stable, e.g. `orphaned_identity`, `long_lived_secret`.")
    owasp: str = Field(description="The OWASP Non-Human Identities Top 10 id, e.g. `NHI7`.")
    owasp_title: str
    severity: Literal["low", "medium", "high", "critical"]
    identity: str
    title: str
    evidence: dict[str, Any]
    fix: str


class VisibilityOut(_Out):
    score: float = Field(description="Share of NHIs with an owner, expiries and usage data.")
    total: int
    owned: int
    expiring: int
    observed: int
    complete: int
    owned_share: float
    expiring_share: float
    observed_share: float


# ---------------------------------------------------------------------------- gateway tools


class ToolUseOut(_Out):
    server: str
    tool: str
    ref: str = Field(description="`<server>/<tool>`, as decisions and toolsets name it.")
    object: str = Field(description="Its graph object, `mcp_tool:<server>/<tool>`.")
    status: str = Field(
        description="`pending`, `enabled`, `disabled`, `removed`, or `unknown` (named by "
        "the ledger, no longer registered)."
    )
    kind: str | None = Field(default=None, description="`read`, `write` or `delete`.")
    risk: str | None = Field(default=None, description="`normal`, `sensitive` or `dangerous`.")
    allowed: int = Field(description="Calls the gateway forwarded in the window.")
    denied: int = Field(description="Calls refused (the decision or a kill switch).")
    errors: int = Field(description="Forwarded calls that failed downstream (in `allowed`).")
    last_used_at: Seconds | None = None
    last_denied_at: Seconds | None = None
    agents: list[str] = Field(description="The acting identities of its allowed calls.")
    on_behalf_of: list[str] = Field(description="Whom those agents acted for.")
    enabled_since: Seconds | None = Field(default=None, description="When it was approved.")
    first_seen_at: Seconds | None = None


class AgentToolUseOut(_Out):
    identity: str
    calls: int = Field(description="Its allowed calls in the window.")
    denied: int
    last_used_at: Seconds | None = None
    tools: list[str] = Field(description="The tools it used (refs).")
    dangerous_tools: list[str] = Field(
        description="Enabled tools classified `dangerous` it may call now (`can_call`)."
    )
    unused_dangerous_tools: list[str] = Field(
        description="Of those, the ones it did not call in the window."
    )


class ToolUsageOut(_Out):
    store_id: str
    since: Seconds
    until: Seconds
    allowed: int = Field(description="Calls forwarded in the window, every tool.")
    denied: int = Field(description="Calls refused in the window, every tool.")
    tools: list[ToolUseOut] = Field(description="By server and tool; unknown ones last.")
    agents: list[AgentToolUseOut] = Field(
        description="Every acting identity, and every NHI that may call a dangerous tool."
    )
    never_used: list[str] = Field(description="Enabled tools with no allowed call (refs).")
    errors: dict[str, str] = Field(
        description="Dangerous tools whose callers could not be computed: ref → error code."
    )

    @classmethod
    def of(cls, r: ToolUsageReport) -> ToolUsageOut:
        return cls.model_validate(r.to_dict())


class PostureReportOut(_Out):
    store_id: str
    generated_at: Seconds
    since: Seconds
    until: Seconds
    visibility: VisibilityOut
    counts: dict[str, dict[str, int]] = Field(
        description="NHIs by kind, status and source; findings by OWASP id and severity."
    )
    findings: list[FindingOut] = Field(description="Most severe first, then by identity.")
    inventory: list[NhiInventoryItemOut]
    over_privileged: list[OverPrivilegeOut]
    exceeding: list[ExcessAccessOut]
    tools: ToolUsageOut | None = Field(
        default=None, description="The MCP gateway's tools and their use in the window."
    )
    elapsed_seconds: float

    @classmethod
    def of(cls, r: PostureReport) -> PostureReportOut:
        return cls.model_validate(r.to_dict())
