"""``/v1/stores/{store}/access-requests`` — asking for access, deciding, ending grants
(issue 7 §2–§4).

A thin surface over :mod:`keyplane.service.access_requests`: file a request (policy
decides at once: approved and granted, denied, or routed to approvers), list, get,
``:approve``, ``:deny``, ``:cancel``, ``:revoke`` (end a grant early) and ``/history``
(the request with its ledger events). See ``docs/access-requests.md``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from keyplane.api.deps import CallerDep, ServicesDep
from keyplane.api.governance_schemas import (
    ENTITLEMENT_ID,
    AccessRequestHistoryOut,
    AccessRequestList,
    AccessRequestOut,
    CancelAccessRequestRequest,
    CreateAccessRequestRequest,
    DecideAccessRequestRequest,
    RequestState,
    RevokeAccessRequestRequest,
)
from keyplane.api.schemas import MAX_OBJECT, MAX_RELATION, MAX_USER
from keyplane.api.v1.common import PageSize, StoreId, Token, error_responses
from keyplane.service import access_requests

__all__ = ["router"]

router = APIRouter(prefix="/stores/{store}/access-requests", tags=["access requests"])

RequestId = Annotated[
    str, Path(min_length=1, max_length=64, description="The access request id (a ULID).")
]
Node = Annotated[str | None, Query(min_length=3, max_length=MAX_USER)]


@router.post(
    "",
    operation_id="create_access_request",
    status_code=201,
    responses=error_responses(409),
    summary="Request access",
)
def create_access_request(
    store: StoreId, body: CreateAccessRequestRequest, svc: ServicesDep, caller: CallerDep
) -> AccessRequestOut:
    """File a request for an entitlement, for the requester or an identity it owns. The
    approval policy decides at once: `active` (approved, the time-bound grant written),
    `denied`, or `pending` with `route_approvers`.

    400 `not_requestable` (with `details.reason`) when it may not be asked for."""
    r = access_requests.create_access_request(
        svc, caller, store, body.entitlement, object=body.object, requester=body.requester,
        token=body.token, beneficiary=body.beneficiary,
        duration_seconds=body.duration_seconds, purpose=body.purpose,
        justification=body.justification,
    )  # fmt: skip
    return AccessRequestOut.from_request(r)


@router.get(
    "",
    operation_id="list_access_requests",
    responses=error_responses(),
    summary="List access requests",
)
def list_access_requests(
    store: StoreId,
    svc: ServicesDep,
    caller: CallerDep,
    state: Annotated[RequestState | None, Query(description="Only this state (as of now).")] = None,
    entitlement: Annotated[
        str | None, Query(pattern=ENTITLEMENT_ID, description="Only for this entitlement.")
    ] = None,
    beneficiary: Annotated[Node, Query(description="Only for this identity.")] = None,
    requester: Annotated[Node, Query(description="Only filed by this identity.")] = None,
    approver: Annotated[
        Node,
        Query(
            description="Only requests routed to this approver: an exact entry of "
            "`route_approvers` (`human:bob`, `group:sec#member`)."
        ),
    ] = None,
    object: Annotated[
        str | None, Query(min_length=3, max_length=MAX_OBJECT, description="Only on this object.")
    ] = None,
    relation: Annotated[
        str | None, Query(min_length=1, max_length=MAX_RELATION, description="Only this relation.")
    ] = None,
    page_size: PageSize = 50,
    continuation_token: Token = None,
) -> AccessRequestList:
    """The store's access requests matching every filter, in filing order, one page at a
    time; `state` is the state now (`pending` leaves out those past `pending_until`)."""
    page = access_requests.list_access_requests(
        svc, caller, store, state=state, entitlement_id=entitlement, beneficiary=beneficiary,
        requester=requester, approver=approver, object=object, relation=relation,
        page_size=page_size,
        continuation_token=continuation_token,
    )  # fmt: skip
    return AccessRequestList(
        access_requests=[AccessRequestOut.from_request(r) for r in page.items],
        continuation_token=page.continuation_token,
    )


@router.get(
    "/{request_id}",
    operation_id="get_access_request",
    responses=error_responses(),
    summary="Get an access request",
)
def get_access_request(
    store: StoreId, request_id: RequestId, svc: ServicesDep, caller: CallerDep
) -> AccessRequestOut:
    """404 `access_request_not_found` when the store has no such request."""
    return AccessRequestOut.from_request(
        access_requests.get_access_request(svc, caller, store, request_id)
    )


@router.get(
    "/{request_id}/history",
    operation_id="get_access_request_history",
    responses=error_responses(),
    summary="An access request's history",
)
def get_access_request_history(
    store: StoreId, request_id: RequestId, svc: ServicesDep, caller: CallerDep
) -> AccessRequestHistoryOut:
    """The request and every ledger event about it (filed, each vote, approved, granted,
    ended), oldest first — in one call."""
    return AccessRequestHistoryOut.of(
        access_requests.get_access_request_history(svc, caller, store, request_id)
    )


@router.post(
    "/{request_id}:approve",
    operation_id="approve_access_request",
    responses=error_responses(409),
    summary="Approve an access request",
)
def approve_access_request(
    store: StoreId,
    request_id: RequestId,
    body: DecideAccessRequestRequest,
    svc: ServicesDep,
    caller: CallerDep,
) -> AccessRequestOut:
    """One approver's approval; with the required number the grant is written at once.

    403 `approval_not_allowed` for an agent, the requester or beneficiary, or someone not
    among `route_approvers`; 409 `access_request_state` when it is not pending."""
    r = access_requests.approve_access_request(
        svc, caller, store, request_id, approver=body.approver, token=body.token,
        comment=body.comment,
    )  # fmt: skip
    return AccessRequestOut.from_request(r)


@router.post(
    "/{request_id}:deny",
    operation_id="deny_access_request",
    responses=error_responses(409),
    summary="Deny an access request",
)
def deny_access_request(
    store: StoreId,
    request_id: RequestId,
    body: DecideAccessRequestRequest,
    svc: ServicesDep,
    caller: CallerDep,
) -> AccessRequestOut:
    """One approver's denial ends the request (same rules as approving)."""
    r = access_requests.deny_access_request(
        svc, caller, store, request_id, approver=body.approver, token=body.token,
        comment=body.comment,
    )  # fmt: skip
    return AccessRequestOut.from_request(r)


@router.post(
    "/{request_id}:cancel",
    operation_id="cancel_access_request",
    responses=error_responses(409),
    summary="Cancel an access request",
)
def cancel_access_request(
    store: StoreId,
    request_id: RequestId,
    svc: ServicesDep,
    caller: CallerDep,
    body: CancelAccessRequestRequest | None = None,
) -> AccessRequestOut:
    """Withdraw a pending request."""
    body = body or CancelAccessRequestRequest()
    r = access_requests.cancel_access_request(
        svc, caller, store, request_id, requester=body.requester, token=body.token,
        reason=body.reason,
    )  # fmt: skip
    return AccessRequestOut.from_request(r)


@router.post(
    "/{request_id}:revoke",
    operation_id="revoke_access_request",
    responses=error_responses(409),
    summary="Revoke a grant early",
)
def revoke_access_request(
    store: StoreId,
    request_id: RequestId,
    svc: ServicesDep,
    caller: CallerDep,
    body: RevokeAccessRequestRequest | None = None,
) -> AccessRequestOut:
    """End an active grant now: its tuple is deleted and the request becomes `revoked`."""
    body = body or RevokeAccessRequestRequest()
    r = access_requests.revoke_access_request(
        svc, caller, store, request_id, actor=body.actor, token=body.token, reason=body.reason
    )
    return AccessRequestOut.from_request(r)
