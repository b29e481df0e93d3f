"""MCP tools of access governance (issue 7): an agent asks for the access a denied
decision points to (``request_access``), follows its requests, and reads entitlements;
approvers approve or deny and reviewers certify or revoke through tools as well — an
agent never can: an approver or reviewer must be a human identity, and a key bound to an
agent acts only as that agent.

Same rules as :mod:`keyplane.mcp.tools`: one tool, one service function; inputs are the
REST request models (plus the path parameters as fields), outputs the REST response
models. Defining entitlements, revoking grants, and running campaigns are not tools: see
:data:`GOVERNANCE_NOT_EXPOSED`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from keyplane.api import governance_schemas as gs
from keyplane.api.schemas import rfc3339
from keyplane.service import access_requests, entitlements, reviews
from keyplane.service.auth import Caller, Permission
from keyplane.service.context import Services

__all__ = ["GOVERNANCE_NOT_EXPOSED", "GOVERNANCE_SERVICE_OF_TOOL", "GOVERNANCE_SPECS"]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _request_id() -> Any:
    return Field(min_length=1, max_length=64, description="The access request id (a ULID).")


def _page() -> tuple[Any, Any]:
    return (
        Field(default=50, ge=1, le=1000, description="At most this many."),
        Field(default=None, max_length=4096, description="The previous page's token."),
    )


# ------------------------------------------------------------------ arguments


class ListEntitlementsArgs(_Args):
    """The store's requestable entitlements."""

    status: Literal["active", "disabled"] | None = None
    page_size: int = _page()[0]
    continuation_token: str | None = _page()[1]


class GetEntitlementArgs(_Args):
    """One entitlement by id."""

    entitlement_id: str = Field(pattern=gs.ENTITLEMENT_ID, examples=["roadmap-viewer"])


class ListAccessRequestsArgs(_Args):
    """Access requests matching every given filter."""

    state: gs.RequestState | None = None
    entitlement: str | None = Field(default=None, pattern=gs.ENTITLEMENT_ID)
    beneficiary: str | None = Field(default=None, min_length=3, max_length=512)
    requester: str | None = Field(default=None, min_length=3, max_length=512)
    approver: str | None = Field(
        default=None,
        min_length=3,
        max_length=512,
        description="Only those routed to this approver (an entry of `route_approvers`).",
    )
    object: str | None = Field(default=None, min_length=3, max_length=256)
    relation: str | None = Field(default=None, min_length=1, max_length=50)
    page_size: int = _page()[0]
    continuation_token: str | None = _page()[1]


class GetAccessRequestArgs(_Args):
    """One access request by id."""

    request_id: str = _request_id()


class DecideAccessRequestArgs(gs.DecideAccessRequestRequest):
    request_id: str = _request_id()


class CancelAccessRequestArgs(gs.CancelAccessRequestRequest):
    request_id: str = _request_id()


class ListReviewsArgs(_Args):
    """The store's review campaigns."""

    state: Literal["open", "closed"] | None = None
    page_size: int = _page()[0]
    continuation_token: str | None = _page()[1]


class GetReviewArgs(_Args):
    """One review campaign by id."""

    review_id: str = Field(min_length=1, max_length=64)


class ListReviewItemsArgs(GetReviewArgs):
    """A campaign's items."""

    page_size: int = _page()[0]
    continuation_token: str | None = _page()[1]


class DecideReviewItemArgs(gs.DecideReviewItemRequest):
    review_id: str = Field(min_length=1, max_length=64)
    item_id: int = Field(ge=1, le=2**31, description="The item's number in its campaign.")


# ------------------------------------------------------------------ handlers

Result = tuple[BaseModel, str]


def _request_text(r: Any) -> str:
    text = f"{r.id}: {r.state} — {r.relation} on {r.object} for {r.beneficiary}"
    if r.state == "pending":
        text += f"; waiting for {r.required} approval(s) from {', '.join(r.route_approvers)}"
    elif r.state == "active" and r.grant_expires_at is not None:
        text += f"; granted until {rfc3339(r.grant_expires_at)}"
    return text


def _list_entitlements(
    svc: Services, caller: Caller, store: str, a: ListEntitlementsArgs
) -> Result:
    page = entitlements.list_entitlements(
        svc, caller, store, status=a.status, page_size=a.page_size,
        continuation_token=a.continuation_token,
    )  # fmt: skip
    lines = [
        f"{e.id}: {e.relation} on {e.object} ({e.risk} risk, at most "
        f"{e.max_duration_seconds} s{', agents may request' if e.agents_may_request else ''})"
        for e in page.items
    ]
    out = gs.EntitlementList(
        entitlements=[gs.EntitlementOut.from_entitlement(e) for e in page.items],
        continuation_token=page.continuation_token,
    )
    return out, f"{len(lines)} entitlements" + (":\n" + "\n".join(lines) if lines else "")


def _get_entitlement(svc: Services, caller: Caller, store: str, a: GetEntitlementArgs) -> Result:
    e = entitlements.get_entitlement(svc, caller, store, a.entitlement_id)
    text = f"{e.id}: {e.relation} on {e.object}, {e.risk} risk, at most {e.max_duration_seconds} s"
    return gs.EntitlementOut.from_entitlement(e), text


def _request_access(
    svc: Services, caller: Caller, store: str, a: gs.CreateAccessRequestRequest
) -> Result:
    r = access_requests.create_access_request(
        svc, caller, store, a.entitlement, object=a.object, requester=a.requester,
        token=a.token, beneficiary=a.beneficiary, duration_seconds=a.duration_seconds,
        purpose=a.purpose, justification=a.justification,
    )  # fmt: skip
    return gs.AccessRequestOut.from_request(r), _request_text(r)


def _list_access_requests(
    svc: Services, caller: Caller, store: str, a: ListAccessRequestsArgs
) -> Result:
    page = access_requests.list_access_requests(
        svc, caller, store, state=a.state, entitlement_id=a.entitlement,
        beneficiary=a.beneficiary, requester=a.requester, approver=a.approver,
        object=a.object, relation=a.relation,
        page_size=a.page_size, continuation_token=a.continuation_token,
    )  # fmt: skip
    lines = [_request_text(r) for r in page.items]
    out = gs.AccessRequestList(
        access_requests=[gs.AccessRequestOut.from_request(r) for r in page.items],
        continuation_token=page.continuation_token,
    )
    return out, f"{len(lines)} access requests" + (":\n" + "\n".join(lines) if lines else "")


def _get_access_request(
    svc: Services, caller: Caller, store: str, a: GetAccessRequestArgs
) -> Result:
    r = access_requests.get_access_request(svc, caller, store, a.request_id)
    return gs.AccessRequestOut.from_request(r), _request_text(r)


def _history(svc: Services, caller: Caller, store: str, a: GetAccessRequestArgs) -> Result:
    h = access_requests.get_access_request_history(svc, caller, store, a.request_id)
    lines = [f"{e.type} by {e.caller}" for e in h.events]
    text = _request_text(h.request) + ("\n" + "\n".join(lines) if lines else "")
    return gs.AccessRequestHistoryOut.of(h), text


def _approve(svc: Services, caller: Caller, store: str, a: DecideAccessRequestArgs) -> Result:
    r = access_requests.approve_access_request(
        svc, caller, store, a.request_id, approver=a.approver, token=a.token, comment=a.comment
    )
    return gs.AccessRequestOut.from_request(r), _request_text(r)


def _deny(svc: Services, caller: Caller, store: str, a: DecideAccessRequestArgs) -> Result:
    r = access_requests.deny_access_request(
        svc, caller, store, a.request_id, approver=a.approver, token=a.token, comment=a.comment
    )
    return gs.AccessRequestOut.from_request(r), _request_text(r)


def _cancel(svc: Services, caller: Caller, store: str, a: CancelAccessRequestArgs) -> Result:
    r = access_requests.cancel_access_request(
        svc, caller, store, a.request_id, requester=a.requester, token=a.token, reason=a.reason
    )
    return gs.AccessRequestOut.from_request(r), _request_text(r)


def _list_reviews(svc: Services, caller: Caller, store: str, a: ListReviewsArgs) -> Result:
    page = reviews.list_reviews(
        svc, caller, store, state=a.state, page_size=a.page_size,
        continuation_token=a.continuation_token,
    )  # fmt: skip
    lines = [f"{c.id}: {c.name} ({c.state})" for c in page.items]
    out = gs.ReviewList(
        reviews=[gs.ReviewOut.from_review(c) for c in page.items],
        continuation_token=page.continuation_token,
    )
    return out, f"{len(lines)} reviews" + (":\n" + "\n".join(lines) if lines else "")


def _get_review(svc: Services, caller: Caller, store: str, a: GetReviewArgs) -> Result:
    c = reviews.get_review(svc, caller, store, a.review_id)
    return gs.ReviewOut.from_review(c), f"{c.id}: {c.name} ({c.state})"


def _item_text(i: Any) -> str:
    decided = f", {i.decision} by {i.decided_by}" if i.decision else ", undecided"
    return f"item {i.id}: {i.user} {i.relation} {i.object}{decided}"


def _list_review_items(svc: Services, caller: Caller, store: str, a: ListReviewItemsArgs) -> Result:
    page = reviews.list_review_items(
        svc, caller, store, a.review_id, page_size=a.page_size,
        continuation_token=a.continuation_token,
    )  # fmt: skip
    lines = [_item_text(i) for i in page.items]
    out = gs.ReviewItemList(
        items=[gs.ReviewItemOut.from_item(i) for i in page.items],
        continuation_token=page.continuation_token,
    )
    return out, f"{len(lines)} items" + (":\n" + "\n".join(lines) if lines else "")


def _decide_review_item(
    svc: Services, caller: Caller, store: str, a: DecideReviewItemArgs
) -> Result:
    i = reviews.decide_review_item(
        svc, caller, store, a.review_id, a.item_id, a.decision, reviewer=a.reviewer,
        token=a.token, comment=a.comment,
    )  # fmt: skip
    return gs.ReviewItemOut.from_item(i), _item_text(i)


_AR = Permission.REQUEST_ACCESS
_AP = Permission.APPROVE_REQUESTS
_RV = Permission.MANAGE_REVIEWS

GOVERNANCE_SPECS: list[
    tuple[str, str, str, type[BaseModel], type[BaseModel], Any, bool, str | None, bool]
] = [
    (
        "list_entitlements",
        "List requestable entitlements",
        "What may be requested in this store: each entitlement's id, the relation on the "
        "object (or `type:*`), risk, maximum duration and whether agents may request it. "
        'Example: {"status": "active"}.',
        ListEntitlementsArgs,
        gs.EntitlementList,
        _list_entitlements,
        False,
        None,
        False,
    ),
    (
        "get_entitlement",
        "Get an entitlement",
        "One entitlement with its owners and approval policy (CEL rules). "
        'Example: {"entitlement_id": "roadmap-viewer"}.',
        GetEntitlementArgs,
        gs.EntitlementOut,
        _get_entitlement,
        False,
        None,
        False,
    ),
    (
        "request_access",
        "Request access",
        "Ask for an entitlement for yourself (or an identity you own) for `duration_seconds`, "
        "with a purpose and justification. A denied `decide` that is requestable names what "
        "to send in `reason.request` (entitlement, object, beneficiary, max_duration_seconds). "
        "Policy answers at once: `active` (granted until `grant_expires_at` — retry your "
        "decision), `denied`, or `pending` (waiting for `route_approvers`; check back with "
        "get_access_request). Example: "
        '{"entitlement": "roadmap-viewer", "object": "document:roadmap", "requester": '
        '"agent:planner", "duration_seconds": 900, "purpose": "planning", '
        '"justification": "summarize the roadmap for the weekly plan"}.',
        gs.CreateAccessRequestRequest,
        gs.AccessRequestOut,
        _request_access,
        True,
        _AR,
        False,
    ),
    (
        "list_access_requests",
        "List access requests",
        "Access requests matching every given filter (state, entitlement, beneficiary, "
        'requester, object), newest first. Example: {"requester": "agent:planner", '
        '"state": "pending"}.',
        ListAccessRequestsArgs,
        gs.AccessRequestList,
        _list_access_requests,
        False,
        None,
        False,
    ),
    (
        "get_access_request",
        "Get an access request",
        "One access request: its state (pending, active, denied, expired, …), approvals so "
        'far, and the grant\'s expiry. Example: {"request_id": "01J..."}.',
        GetAccessRequestArgs,
        gs.AccessRequestOut,
        _get_access_request,
        False,
        None,
        False,
    ),
    (
        "get_access_request_history",
        "An access request's history",
        "The request and every ledger event about it, oldest first: filed, each vote, "
        'approved, granted, ended. Example: {"request_id": "01J..."}.',
        GetAccessRequestArgs,
        gs.AccessRequestHistoryOut,
        _history,
        False,
        None,
        False,
    ),
    (
        "cancel_access_request",
        "Cancel an access request",
        "Withdraw a pending request you filed (or filed for an identity you own). "
        'Example: {"request_id": "01J...", "requester": "agent:planner", "reason": "done"}.',
        CancelAccessRequestArgs,
        gs.AccessRequestOut,
        _cancel,
        True,
        _AR,
        False,
    ),
    (
        "approve_access_request",
        "Approve an access request",
        "Approve a pending request as one of its `route_approvers` — a human identity, never "
        "the requester or the beneficiary; an agent cannot approve. With enough approvals "
        'the time-bound grant is written at once. Example: {"request_id": "01J...", '
        '"approver": "human:bob", "comment": "ok for the sprint"}.',
        DecideAccessRequestArgs,
        gs.AccessRequestOut,
        _approve,
        True,
        _AP,
        False,
    ),
    (
        "deny_access_request",
        "Deny an access request",
        "Deny a pending request as one of its approvers (same rules as approving); one "
        'denial ends it. Example: {"request_id": "01J...", "approver": "human:bob", '
        '"comment": "use the summary instead"}.',
        DecideAccessRequestArgs,
        gs.AccessRequestOut,
        _deny,
        True,
        _AP,
        False,
    ),
    (
        "list_reviews",
        "List access reviews",
        'The store\'s review campaigns. Example: {"state": "open"}.',
        ListReviewsArgs,
        gs.ReviewList,
        _list_reviews,
        False,
        None,
        False,
    ),
    (
        "get_review",
        "Get an access review",
        'One review campaign. Example: {"review_id": "01J..."}.',
        GetReviewArgs,
        gs.ReviewOut,
        _get_review,
        False,
        None,
        False,
    ),
    (
        "list_review_items",
        "List a review's items",
        "A campaign's items: a user's relation on an object each, its reviewers, last use "
        'and decision. Example: {"review_id": "01J..."}.',
        ListReviewItemsArgs,
        gs.ReviewItemList,
        _list_review_items,
        False,
        None,
        False,
    ),
    (
        "decide_review_item",
        "Certify or revoke a review item",
        "As one of the item's reviewers (a human identity; never an agent, never the item's "
        "own user): `certify` keeps the access, `revoke` removes it (at close, or at once "
        'when the campaign says so). Example: {"review_id": "01J...", "item_id": 1, '
        '"decision": "revoke", "reviewer": "human:bob"}.',
        DecideReviewItemArgs,
        gs.ReviewItemOut,
        _decide_review_item,
        True,
        _RV,
        True,
    ),
]

GOVERNANCE_SERVICE_OF_TOOL: dict[str, Any] = {
    "list_entitlements": entitlements.list_entitlements,
    "get_entitlement": entitlements.get_entitlement,
    "request_access": access_requests.create_access_request,
    "list_access_requests": access_requests.list_access_requests,
    "get_access_request": access_requests.get_access_request,
    "get_access_request_history": access_requests.get_access_request_history,
    "cancel_access_request": access_requests.cancel_access_request,
    "approve_access_request": access_requests.approve_access_request,
    "deny_access_request": access_requests.deny_access_request,
    "list_reviews": reviews.list_reviews,
    "get_review": reviews.get_review,
    "list_review_items": reviews.list_review_items,
    "decide_review_item": reviews.decide_review_item,
}

_ENTITLEMENTS_WHY = (
    "entitlements say what may be requested and who approves it: defined by administrators "
    "(REST, CLI, SDK), never by an agent that would request them"
)
_CAMPAIGN_WHY = (
    "review campaigns are run by administrators and auditors (REST, CLI, SDK); reviewers "
    "decide items with decide_review_item"
)
GOVERNANCE_NOT_EXPOSED: dict[str, str] = {
    "entitlements.create_entitlement": _ENTITLEMENTS_WHY,
    "entitlements.update_entitlement": _ENTITLEMENTS_WHY,
    "entitlements.delete_entitlement": _ENTITLEMENTS_WHY,
    "access_requests.revoke_access_request": (
        "ending a grant early is an approver's or administrator's act (REST, CLI, SDK); an "
        "agent's grant ends by itself at its expiry"
    ),
    "reviews.create_review": _CAMPAIGN_WHY,
    "reviews.close_review": _CAMPAIGN_WHY + "; closing applies every revocation at once",
    "reviews.review_report": (
        "a whole campaign's report is for auditors' tools (REST, CLI, SDK); "
        "list_review_items reads the same items page by page"
    ),
}
