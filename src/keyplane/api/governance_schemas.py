"""Request and response bodies of access governance (issue 7): requestable entitlements,
access requests and their approvals, review campaigns (``/v1/stores/{store}/entitlements…``,
``…/access-requests…``, ``…/reviews…``).

The same contract as :mod:`keyplane.api.identity_schemas`: pydantic v2 models that FastAPI
turns into the OpenAPI document and the MCP server reuses as tool schemas. They validate
shape only (the service layer checks meaning, so every surface refuses the same inputs);
booleans and integers are strict (``"true"`` or ``1.5`` is refused, not coerced). Times on
the wire are RFC 3339 in UTC. The ``from_*`` helpers encode service records; handlers do
nothing else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from keyplane.api.ledger_schemas import LedgerEventOut
from keyplane.api.schemas import MAX_OBJECT, MAX_RELATION, MAX_USER, rfc3339
from keyplane.governance.records import (
    AccessRequest,
    ApprovalRule,
    Entitlement,
    ReviewCampaign,
    ReviewItem,
)
from keyplane.service.access_requests import AccessRequestHistory
from keyplane.service.reviews import ReviewReport

__all__ = [
    "ENTITLEMENT_ID",
    "AccessRequestHistoryOut",
    "AccessRequestList",
    "AccessRequestOut",
    "ApprovalOut",
    "ApprovalRuleModel",
    "CancelAccessRequestRequest",
    "CreateAccessRequestRequest",
    "CreateEntitlementRequest",
    "CreateReviewRequest",
    "DecideAccessRequestRequest",
    "DecideReviewItemRequest",
    "EntitlementList",
    "EntitlementOut",
    "RequestState",
    "ReviewFilterModel",
    "ReviewItemList",
    "ReviewItemOut",
    "ReviewList",
    "ReviewOut",
    "ReviewReportOut",
    "RevokeAccessRequestRequest",
    "Risk",
    "UpdateEntitlementRequest",
]

Risk = Literal["low", "medium", "high", "critical"]
RequestState = Literal["pending", "approved", "denied", "cancelled", "expired", "active", "revoked"]
MAX_TEXT = 4096
MAX_EXPRESSION = 4096
ENTITLEMENT_ID = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
MAX_DURATION = 7_776_000


class _Request(BaseModel):
    # unknown fields are refused: a misspelt option must not be silently ignored
    model_config = ConfigDict(extra="forbid")


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


_NEXT = "Pass back as `continuation_token` for the next page; null on the last."


def _node(what: str, example: str, *, required: bool = False) -> Any:
    kw: dict[str, Any] = {} if required else {"default": None}
    return Field(
        **kw,
        min_length=3,
        max_length=MAX_USER,
        description=f"{what}: an identity's graph node `kind:id` (e.g. `{example}`).",
        examples=[example],
    )


_TOKEN = Field(
    default=None,
    min_length=1,
    max_length=8192,
    description=(
        "Instead of naming the identity: a Keyplane access token; the identity is its newest "
        "actor, else its subject."
    ),
)


# ------------------------------------------------------------------------ entitlements


class ApprovalRuleModel(_Request):
    """One rule of an approval policy: the first rule whose `when` is true decides."""

    id: str = Field(min_length=1, max_length=64, description="The rule's name, e.g. `low-risk`.")
    when: str = Field(
        default="true",
        min_length=1,
        max_length=MAX_EXPRESSION,
        description=(
            "A CEL expression over `request`, `requester`, `beneficiary`, `entitlement`, "
            "`facts` and `now` (see docs/access-requests.md)."
        ),
        examples=['entitlement.risk == "low" && request.duration_seconds <= 3600'],
    )
    outcome: Literal["approve", "deny", "route"] = Field(
        description="`approve` at once, `deny` at once, or `route` to approvers."
    )
    approvers: list[str] = Field(
        default_factory=list,
        max_length=64,
        description=(
            "For `route`: `beneficiary_owners`, `entitlement_owners`, `human:<id>` or "
            "`group:<id>#member`."
        ),
        examples=[["beneficiary_owners"]],
    )
    required: StrictInt = Field(
        default=1, ge=1, le=64, description="How many distinct approvals it takes (N of M)."
    )

    @classmethod
    def from_rule(cls, r: ApprovalRule) -> ApprovalRuleModel:
        return cls(
            id=r.id,
            when=r.when,
            outcome=r.outcome,  # type: ignore[arg-type]
            approvers=list(r.approvers),
            required=r.required,
        )


class CreateEntitlementRequest(_Request):
    """A relation on an object (or on every object of a type) people and agents may request."""

    id: str = Field(
        pattern=ENTITLEMENT_ID,
        description="Its id, chosen by you: lower case, digits, `_.-`, up to 64.",
        examples=["roadmap-viewer"],
    )
    object: str = Field(
        min_length=3,
        max_length=MAX_OBJECT,
        description="One object `type:id`, or `type:*` (the request then names the object).",
        examples=["document:roadmap"],
    )
    relation: str = Field(
        min_length=1,
        max_length=MAX_RELATION,
        description="The relation granted.",
        examples=["viewer"],
    )
    description: str = Field(default="", max_length=MAX_TEXT)
    owners: list[str] = Field(
        min_length=1,
        max_length=100,
        description="Who answers for it: `human:bob` or `group:sec#member`.",
        examples=[["human:bob"]],
    )
    risk: Risk = Field(default="medium", description="`low`, `medium`, `high` or `critical`.")
    max_duration_seconds: StrictInt = Field(
        default=3600,
        ge=60,
        le=MAX_DURATION,
        description="The longest grant a request may ask for (60 s to 90 days).",
    )
    agents_may_request: StrictBool = Field(
        default=False, description="Whether agents and other non-human identities may ask."
    )
    approval: list[ApprovalRuleModel] = Field(
        default_factory=list,
        max_length=64,
        description=(
            "The approval policy, in order; none matching routes to the entitlement's "
            "owners (one approval)."
        ),
    )
    status: Literal["active", "disabled"] = "active"


class UpdateEntitlementRequest(_Request):
    """Change what is given; leave out what stays (its object and relation never change)."""

    description: str | None = Field(default=None, max_length=MAX_TEXT)
    owners: list[str] | None = Field(default=None, min_length=1, max_length=100)
    risk: Risk | None = None
    max_duration_seconds: StrictInt | None = Field(default=None, ge=60, le=MAX_DURATION)
    agents_may_request: StrictBool | None = None
    approval: list[ApprovalRuleModel] | None = Field(
        default=None, max_length=64, description="Replaces the approval policy as a whole."
    )
    status: Literal["active", "disabled"] | None = None


class EntitlementOut(_Response):
    """A requestable entitlement."""

    id: str
    object: str
    relation: str
    description: str
    owners: list[str]
    risk: Risk
    max_duration_seconds: int
    agents_may_request: bool
    approval: list[ApprovalRuleModel]
    status: Literal["active", "disabled"]
    created_by: str = Field(description="The caller that created it (`key:<id>` or `system`).")
    created_at: datetime
    updated_at: datetime
    revision: int = Field(description="The store revision of its last change.")

    @classmethod
    def from_entitlement(cls, e: Entitlement) -> EntitlementOut:
        return cls(
            id=e.id,
            object=e.object,
            relation=e.relation,
            description=e.description,
            owners=list(e.owners),
            risk=e.risk,  # type: ignore[arg-type]
            max_duration_seconds=e.max_duration_seconds,
            agents_may_request=e.agents_may_request,
            approval=[ApprovalRuleModel.from_rule(r) for r in e.approval],
            status=e.status,  # type: ignore[arg-type]
            created_by=e.created_by,
            created_at=rfc3339(e.created_at),  # type: ignore[arg-type]
            updated_at=rfc3339(e.updated_at),  # type: ignore[arg-type]
            revision=e.revision,
        )


class EntitlementList(_Response):
    entitlements: list[EntitlementOut]
    continuation_token: str | None = Field(default=None, description=_NEXT)


# ------------------------------------------------------------------------ access requests


class CreateAccessRequestRequest(_Request):
    """Ask for an entitlement, for yourself or for an identity you own."""

    entitlement: str = Field(
        pattern=ENTITLEMENT_ID, description="The entitlement's id.", examples=["roadmap-viewer"]
    )
    object: str | None = Field(
        default=None,
        min_length=3,
        max_length=MAX_OBJECT,
        description="The object `type:id` — required when the entitlement names `type:*`.",
    )
    requester: str | None = _node("Who asks (or give `token`)", "agent:planner")
    token: str | None = _TOKEN
    beneficiary: str | None = _node(
        "Who gets the access; the requester when omitted", "agent:planner"
    )
    duration_seconds: StrictInt | None = Field(
        default=None,
        ge=1,
        le=MAX_DURATION,
        description=(
            "How long the grant lasts, at most the entitlement's `max_duration_seconds`; "
            "one hour (or that maximum, if shorter) when omitted."
        ),
    )
    purpose: str | None = Field(default=None, max_length=2048, description="What it is for.")
    justification: str | None = Field(
        default=None, max_length=2048, description="Why, in words, for the approvers."
    )


class DecideAccessRequestRequest(_Request):
    """An approver's vote: name yourself (`approver`) or give your access `token`."""

    approver: str | None = _node("The approving human", "human:bob")
    token: str | None = _TOKEN
    comment: str | None = Field(default=None, max_length=MAX_TEXT)


class CancelAccessRequestRequest(_Request):
    """Withdraw a pending request (the requester, or an identity owning the beneficiary)."""

    requester: str | None = _node("Who cancels", "agent:planner")
    token: str | None = _TOKEN
    reason: str | None = Field(default=None, max_length=1024)


class RevokeAccessRequestRequest(_Request):
    """End an active grant before its expiry; `actor` (or `token`) names who ends it."""

    actor: str | None = _node("Who revokes it", "human:bob")
    token: str | None = _TOKEN
    reason: str | None = Field(default=None, max_length=1024)


class ApprovalOut(_Response):
    approver: str = Field(description="The approver's node.")
    decision: Literal["approve", "deny"]
    comment: str | None
    at: datetime
    caller: str


class AccessRequestOut(_Response):
    """An access request; `state` is as of the answer (expiries are computed on read)."""

    id: str
    entitlement_id: str
    object: str
    relation: str
    beneficiary: str
    requester: str
    caller: str = Field(description="The API key that filed it (`key:<id>`).")
    duration_seconds: int
    purpose: str | None
    justification: str | None
    state: RequestState
    created_at: datetime
    pending_until: datetime
    route_approvers: list[str] = Field(description="Who may decide it (resolved specs).")
    required: int = Field(description="How many approvals it takes.")
    rule_id: str | None = Field(description="The approval rule that decided its path.")
    approvals: list[ApprovalOut]
    decided_at: datetime | None
    grant_starts_at: datetime | None
    grant_expires_at: datetime | None
    ended_at: datetime | None
    ended_by: str | None
    end_reason: str | None
    revision: int

    @classmethod
    def from_request(cls, r: AccessRequest) -> AccessRequestOut:
        return cls(
            id=r.id,
            entitlement_id=r.entitlement_id,
            object=r.object,
            relation=r.relation,
            beneficiary=r.beneficiary,
            requester=r.requester,
            caller=r.caller,
            duration_seconds=r.duration_seconds,
            purpose=r.purpose or None,
            justification=r.justification or None,
            state=r.state,  # type: ignore[arg-type]
            created_at=rfc3339(r.created_at),  # type: ignore[arg-type]
            pending_until=rfc3339(r.pending_until),  # type: ignore[arg-type]
            route_approvers=list(r.route_approvers),
            required=r.required,
            rule_id=r.rule_id,
            approvals=[
                ApprovalOut(
                    approver=a.approver,
                    decision=a.decision,  # type: ignore[arg-type]
                    comment=a.comment or None,
                    at=rfc3339(a.at),  # type: ignore[arg-type]
                    caller=a.caller,
                )
                for a in r.approvals
            ],
            decided_at=rfc3339(r.decided_at),
            grant_starts_at=rfc3339(r.grant_starts_at),
            grant_expires_at=rfc3339(r.grant_expires_at),
            ended_at=rfc3339(r.ended_at),
            ended_by=r.ended_by,
            end_reason=r.end_reason,
            revision=r.revision,
        )


class AccessRequestList(_Response):
    access_requests: list[AccessRequestOut]
    continuation_token: str | None = Field(default=None, description=_NEXT)


class AccessRequestHistoryOut(_Response):
    """The request and every ledger event about it, oldest first: who asked, why, who
    approved, when the grant started and ended."""

    access_request: AccessRequestOut
    events: list[LedgerEventOut]

    @classmethod
    def of(cls, h: AccessRequestHistory) -> AccessRequestHistoryOut:
        return cls(
            access_request=AccessRequestOut.from_request(h.request),
            events=[LedgerEventOut.from_event(e) for e in h.events],
        )


# ------------------------------------------------------------------------ reviews


class ReviewFilterModel(_Request):
    """Which grants a campaign reviews; every given field must match."""

    object_type: str | None = Field(
        default=None, min_length=1, max_length=254, examples=["document"]
    )
    relation: str | None = Field(default=None, min_length=1, max_length=MAX_RELATION)
    user_kind: str | None = Field(
        default=None, min_length=1, max_length=254, description="e.g. `agent` or `human`."
    )
    source: Literal["grants", "tuples"] = Field(
        default="grants",
        description="`grants` (access-request grants) or `tuples` (every direct tuple).",
    )
    unused_days: StrictInt | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Only grants with no allowed decision in the ledger for these days.",
    )
    user: str | None = Field(
        default=None,
        min_length=3,
        max_length=MAX_USER,
        description="Only this graph user's grants or tuples (exactly it, e.g. `agent:planner`).",
    )
    tuples: list[str] | None = Field(
        default=None,
        max_length=10_000,
        description=(
            "Exactly these tuple keys `object#relation@user` (each must be selected by the "
            "rest of the filter), the items in this order — what applying a least-privilege "
            "recommendation as a review creates."
        ),
    )


class CreateReviewRequest(_Request):
    """A review campaign: its items are selected now."""

    name: str = Field(min_length=1, max_length=256, examples=["Q3 agent access"])
    filter: ReviewFilterModel = Field(default_factory=ReviewFilterModel)
    reviewer: str = Field(
        default="beneficiary_owners",
        min_length=3,
        max_length=MAX_USER,
        description=(
            "Who reviews each item: `beneficiary_owners`, `entitlement_owners`, "
            "`human:<id>` or `group:<id>#member`."
        ),
    )
    default_decision: Literal["certify", "revoke"] = Field(
        default="certify", description="What an unanswered item becomes at close."
    )
    apply: Literal["on_close", "immediately"] = Field(
        default="on_close", description="When a `revoke` takes effect."
    )
    due_at: datetime | None = Field(default=None, description="When the campaign is due.")


class ReviewOut(_Response):
    id: str
    name: str
    filter: ReviewFilterModel
    reviewer: str
    default_decision: Literal["certify", "revoke"]
    apply: Literal["on_close", "immediately"]
    state: Literal["open", "closed"]
    created_by: str
    created_at: datetime
    due_at: datetime | None
    closed_at: datetime | None
    revision: int

    @classmethod
    def from_review(cls, c: ReviewCampaign) -> ReviewOut:
        return cls(
            id=c.id,
            name=c.name,
            filter=ReviewFilterModel(**c.filter.to_json()),
            reviewer=c.reviewer,
            default_decision=c.default_decision,  # type: ignore[arg-type]
            apply=c.apply,  # type: ignore[arg-type]
            state=c.state,  # type: ignore[arg-type]
            created_by=c.created_by,
            created_at=rfc3339(c.created_at),  # type: ignore[arg-type]
            due_at=rfc3339(c.due_at),
            closed_at=rfc3339(c.closed_at),
            revision=c.revision,
        )


class ReviewList(_Response):
    reviews: list[ReviewOut]
    continuation_token: str | None = Field(default=None, description=_NEXT)


class DecideReviewItemRequest(_Request):
    """A reviewer's decision on one item: name yourself (`reviewer`) or give your `token`."""

    decision: Literal["certify", "revoke"]
    reviewer: str | None = _node("The reviewing human", "human:bob")
    token: str | None = _TOKEN
    comment: str | None = Field(default=None, max_length=MAX_TEXT)


class ReviewItemOut(_Response):
    review_id: str
    id: int = Field(description="The item's number within its campaign (1, 2, …).")
    user: str
    relation: str
    object: str
    request_id: str | None = Field(description="The access request whose grant this is.")
    reviewers: list[str]
    last_used_at: datetime | None = Field(description="Its last allowed decision (ledger).")
    decision: Literal["certify", "revoke"] | None
    decided_by: str | None
    decided_at: datetime | None
    comment: str | None
    outcome: Literal["certified", "revoked", "defaulted_certify", "defaulted_revoke"] | None
    applied_at: datetime | None
    revision: int

    @classmethod
    def from_item(cls, i: ReviewItem) -> ReviewItemOut:
        return cls(
            review_id=i.campaign_id,
            id=i.id,
            user=i.user,
            relation=i.relation,
            object=i.object,
            request_id=i.request_id,
            reviewers=list(i.reviewers),
            last_used_at=rfc3339(i.last_used_at),
            decision=i.decision,  # type: ignore[arg-type]
            decided_by=i.decided_by,
            decided_at=rfc3339(i.decided_at),
            comment=i.comment,
            outcome=i.outcome,  # type: ignore[arg-type]
            applied_at=rfc3339(i.applied_at),
            revision=i.revision,
        )


class ReviewItemList(_Response):
    items: list[ReviewItemOut]
    continuation_token: str | None = Field(default=None, description=_NEXT)


class ReviewReportOut(_Response):
    """Every item of a campaign with its decision and outcome."""

    review: ReviewOut
    items: list[ReviewItemOut]
    counts: dict[str, int] = Field(description="How many items have each outcome.")

    @classmethod
    def of(cls, r: ReviewReport) -> ReviewReportOut:
        return cls(
            review=ReviewOut.from_review(r.campaign),
            items=[ReviewItemOut.from_item(i) for i in r.items],
            counts=dict(r.counts),
        )
