"""Records of access governance (issue 7): entitlements, access requests and approvals,
review campaigns and their items.

Plain frozen dataclasses shared by storage (``storage/governance_sql.py``,
``storage/reviews_sql.py``), the in-memory :class:`~keyplane.policy.state.PolicyState`
(entitlements), the service operations and the surfaces. Every record carries the store
revision of its last change (``revision``), the same counter tuples use. Times are
seconds since the Unix epoch (UTC) as ``float``.

Time-based states are computed on read: :meth:`AccessRequest.state_at` turns a stored
``pending`` past ``pending_until`` and an ``active`` past ``grant_expires_at`` into
``expired`` without any job having run (the sweep persists them later).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# -- entitlements ------------------------------------------------------------------------

#: an entitlement id, chosen by the admin
ENTITLEMENT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
ENTITLEMENT_RISKS = ("low", "medium", "high", "critical")
#: "deleted" is storage's tombstone (kept so every process's PolicyState drops the
#: entitlement at its next catch-up); reads never return a deleted entitlement
ENTITLEMENT_STATUSES = ("active", "disabled")
ENTITLEMENT_DELETED = "deleted"
MIN_GRANT_SECONDS = 60
MAX_GRANT_SECONDS = 7_776_000  # 90 days

APPROVAL_OUTCOMES = ("approve", "deny", "route")
#: approver specs besides "human:<id>" and "group:<id>#member"
APPROVER_KEYWORDS = ("beneficiary_owners", "entitlement_owners")


@dataclass(frozen=True, slots=True)
class ApprovalRule:
    """One rule of an entitlement's approval policy. The first rule whose ``when`` (CEL)
    is true decides: ``approve`` (at once), ``deny``, or ``route`` to ``approvers``
    (``required`` distinct approvals of them, N of M)."""

    id: str
    when: str = "true"
    outcome: str = "route"  # APPROVAL_OUTCOMES
    approvers: tuple[str, ...] = ()  # "beneficiary_owners" | "entitlement_owners" | node | group
    required: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "when": self.when,
            "outcome": self.outcome,
            "approvers": list(self.approvers),
            "required": self.required,
        }

    @classmethod
    def from_json(cls, d: Any) -> ApprovalRule:
        """The inverse of :meth:`to_json` (structure only; the service validates)."""
        if not isinstance(d, dict) or not isinstance(d.get("id"), str):
            raise ValueError("an approval rule is an object with an 'id' string")
        return cls(
            id=d["id"],
            when=str(d.get("when", "true")),
            outcome=str(d.get("outcome", "route")),
            approvers=tuple(d.get("approvers") or ()),
            required=int(d.get("required", 1)),
        )


#: an entitlement's approval policy: its rules in order (empty: route to the
#: entitlement's owners, one approval)
ApprovalPolicy = tuple[ApprovalRule, ...]

#: what applies when no rule matches
DEFAULT_RULE = ApprovalRule("default", "true", "route", ("entitlement_owners",), 1)


@dataclass(frozen=True, slots=True)
class Entitlement:
    store_id: str
    id: str  # ENTITLEMENT_ID_RE
    object: str  # "document:roadmap" (one object) or "document:*" (any object of the type)
    relation: str
    description: str
    owners: tuple[str, ...]  # graph users: "human:bob" / "group:sec#member"; at least one
    risk: str  # ENTITLEMENT_RISKS
    max_duration_seconds: int  # MIN_GRANT_SECONDS..MAX_GRANT_SECONDS
    agents_may_request: bool
    approval: ApprovalPolicy
    status: str  # ENTITLEMENT_STATUSES (storage's tombstone: ENTITLEMENT_DELETED)
    created_by: str  # caller principal
    created_at: float
    updated_at: float
    revision: int

    @property
    def object_type(self) -> str:
        return self.object.partition(":")[0]

    @property
    def wildcard(self) -> bool:
        """Whether the entitlement covers every object of its type ("document:*")."""
        return self.object.endswith(":*")

    def covers(self, obj: str) -> bool:
        """Whether a request for ``obj`` (a concrete object) falls under this entitlement."""
        if self.wildcard:
            t, _, oid = obj.partition(":")
            return t == self.object_type and bool(oid) and oid != "*"
        return obj == self.object

    def approval_json(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.approval]


# -- access requests ----------------------------------------------------------------------

PENDING = "pending"
APPROVED = "approved"
DENIED = "denied"
CANCELLED = "cancelled"
EXPIRED = "expired"
ACTIVE = "active"
REVOKED = "revoked"
REQUEST_STATES = (PENDING, APPROVED, DENIED, CANCELLED, EXPIRED, ACTIVE, REVOKED)
#: states nothing leaves
FINAL_STATES = (DENIED, CANCELLED, EXPIRED, REVOKED)
#: the transitions a stored request may make (what the service checks)
TRANSITIONS: dict[str, tuple[str, ...]] = {
    PENDING: (APPROVED, DENIED, CANCELLED, EXPIRED, ACTIVE),
    APPROVED: (ACTIVE,),
    ACTIVE: (EXPIRED, REVOKED),
    DENIED: (),
    CANCELLED: (),
    EXPIRED: (),
    REVOKED: (),
}
APPROVAL_DECISIONS = ("approve", "deny")
#: how long a request may stay pending by default (7 days)
DEFAULT_PENDING_SECONDS = 7 * 86400


@dataclass(frozen=True, slots=True)
class Approval:
    """One approver's vote on a request."""

    approver: str  # identity node ("human:bob")
    decision: str  # APPROVAL_DECISIONS
    comment: str
    at: float
    caller: str  # principal of the API key that cast it

    def to_json(self) -> dict[str, Any]:
        return {
            "approver": self.approver,
            "decision": self.decision,
            "comment": self.comment,
            "at": self.at,
            "caller": self.caller,
        }

    @classmethod
    def from_json(cls, d: Any) -> Approval:
        return cls(
            approver=str(d["approver"]),
            decision=str(d["decision"]),
            comment=str(d.get("comment") or ""),
            at=float(d["at"]),
            caller=str(d.get("caller") or ""),
        )


@dataclass(frozen=True, slots=True)
class AccessRequest:
    store_id: str
    id: str  # ULID
    entitlement_id: str
    object: str  # concrete object ("document:roadmap")
    relation: str
    beneficiary: str  # identity node that gets the grant
    requester: str  # identity node that asked
    caller: str  # principal of the API key
    duration_seconds: int
    purpose: str
    justification: str
    state: str  # REQUEST_STATES as stored (see state_at)
    created_at: float
    pending_until: float
    route_approvers: tuple[str, ...] = ()  # resolved approver specs
    required: int = 1
    rule_id: str | None = None  # the approval rule that decided
    approvals: tuple[Approval, ...] = ()
    decided_at: float | None = None
    grant_starts_at: float | None = None
    grant_expires_at: float | None = None
    ended_at: float | None = None
    ended_by: str | None = None
    end_reason: str | None = None
    revision: int = 0

    def state_at(self, now: float) -> str:
        """The state at ``now``: a pending request past ``pending_until`` and an active
        grant past ``grant_expires_at`` are ``expired`` (whether or not the sweep has
        persisted it yet); every other state is the stored one."""
        if self.state == PENDING and now >= self.pending_until:
            return EXPIRED
        if self.state in (ACTIVE, APPROVED) and (
            self.grant_expires_at is not None and now >= self.grant_expires_at
        ):
            return EXPIRED
        return self.state

    def expires_at_state(self) -> float | None:
        """When the current stored state turns ``expired`` by itself (None: never)."""
        if self.state == PENDING:
            return self.pending_until
        if self.state in (ACTIVE, APPROVED):
            return self.grant_expires_at
        return None

    @property
    def grant_user(self) -> str:
        return self.beneficiary

    def approvals_by(self, decision: str) -> tuple[Approval, ...]:
        return tuple(a for a in self.approvals if a.decision == decision)

    @property
    def resource(self) -> str:
        """The ledger resource of this request's events."""
        return f"access_request:{self.id}"


# -- reviews ------------------------------------------------------------------------------

REVIEW_SOURCES = ("grants", "tuples")
REVIEW_DECISIONS = ("certify", "revoke")
REVIEW_APPLY = ("on_close", "immediately")
REVIEW_STATES = ("open", "closed")
REVIEW_OUTCOMES = ("certified", "revoked", "defaulted_certify", "defaulted_revoke")


@dataclass(frozen=True, slots=True)
class ReviewFilter:
    """Which grants (or direct tuples) a campaign selects; every given field must match.

    ``user`` keeps only items whose user is exactly that graph user; ``tuples`` names the
    items one by one (tuple keys ``object#relation@user``; each must be a current tuple,
    or an active grant's with ``source="grants"``) — how a least-privilege recommendation
    is put to review. Both are left out of :meth:`to_json` when unset, so campaigns stored
    before they existed read and render as before."""

    object_type: str | None = None
    relation: str | None = None
    user_kind: str | None = None  # "agent", "human", ...
    source: str = "grants"  # REVIEW_SOURCES
    unused_days: int | None = None  # only items not used (allowed decision) in N days
    user: str | None = None  # exactly this graph user ("agent:bot")
    tuples: tuple[str, ...] = ()  # exactly these tuple keys

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "object_type": self.object_type,
            "relation": self.relation,
            "user_kind": self.user_kind,
            "source": self.source,
            "unused_days": self.unused_days,
        }
        if self.user is not None:
            out["user"] = self.user
        if self.tuples:
            out["tuples"] = list(self.tuples)
        return out

    @classmethod
    def from_json(cls, d: Any) -> ReviewFilter:
        if not isinstance(d, dict):
            raise ValueError("a review filter is an object")
        unused = d.get("unused_days")
        return cls(
            object_type=d.get("object_type"),
            relation=d.get("relation"),
            user_kind=d.get("user_kind"),
            source=str(d.get("source") or "grants"),
            unused_days=None if unused is None else int(unused),
            user=d.get("user"),
            tuples=tuple(str(t) for t in d.get("tuples") or ()),
        )


@dataclass(frozen=True, slots=True)
class ReviewCampaign:
    store_id: str
    id: str  # ULID
    name: str
    filter: ReviewFilter
    reviewer: str  # "beneficiary_owners" | "entitlement_owners" | node | group
    default_decision: str  # REVIEW_DECISIONS: what an unanswered item becomes at close
    apply: str  # REVIEW_APPLY
    state: str  # REVIEW_STATES
    created_by: str
    created_at: float
    due_at: float | None
    closed_at: float | None = None
    revision: int = 0

    @property
    def resource(self) -> str:
        return f"review:{self.id}"


@dataclass(frozen=True, slots=True)
class ReviewItem:
    store_id: str
    campaign_id: str
    id: int  # 1, 2, ... within the campaign
    user: str  # the graph user holding the access ("agent:bot")
    relation: str
    object: str
    request_id: str | None  # the access request whose grant this is (source "grants")
    reviewers: tuple[str, ...]  # resolved: identity nodes or group specs
    last_used_at: float | None  # from the ledger at selection
    decision: str | None = None  # REVIEW_DECISIONS
    decided_by: str | None = None
    decided_at: float | None = None
    comment: str | None = None
    outcome: str | None = None  # REVIEW_OUTCOMES, after close (or when applied at once)
    applied_at: float | None = None
    revision: int = 0
