"""``/v1/stores/{store}/delegations`` — who may act for whom, within which scope, until when.

A thin surface over :mod:`keyplane.service.delegations`: create (a sub-delegation names its
``parent_id`` and must be contained in it), read, list, and ``:revoke`` (the delegation
and every delegation below it, at once). See ``docs/identities.md``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from keyplane.api.deps import CallerDep, ServicesDep
from keyplane.api.identity_schemas import (
    CreateDelegationRequest,
    DelegationList,
    DelegationOut,
    ReasonRequest,
    RevokeDelegationResponse,
    ts,
)
from keyplane.api.v1.common import PageSize, StoreId, Token, error_responses
from keyplane.policy.records import ScopeGrant
from keyplane.service import delegations

__all__ = ["router"]

router = APIRouter(prefix="/stores/{store}/delegations", tags=["delegations"])

DelegationId = Annotated[str, Path(min_length=1, max_length=64, description="The delegation id.")]
Node = Annotated[str | None, Query(max_length=512)]


@router.post(
    "",
    operation_id="create_delegation",
    status_code=201,
    responses=error_responses(409),
    summary="Create a delegation",
)
def create_delegation(
    store: StoreId, body: CreateDelegationRequest, svc: ServicesDep, caller: CallerDep
) -> DelegationOut:
    """Let `delegate` act for `delegator` on the grants of `scope`, for `purposes`, from
    `not_before` until `expires_at`.

    400 `invalid_delegation` for a bad scope, an expiry missing, past or beyond the store
    policy's cap, or parties that are not active identities of allowed kinds; 400
    `delegation_widening` (with `details.widening`: `scope`, `purposes`, `expires_at`,
    `depth`, `tools` or `not_before`) when a sub-delegation is wider than its parent."""
    d = delegations.create_delegation(
        svc,
        caller,
        store,
        delegator=body.delegator,
        delegate=body.delegate,
        scope=[ScopeGrant(tuple(g.actions), g.resource, tuple(g.tools)) for g in body.scope],
        expires_at=ts(body.expires_at),  # type: ignore[arg-type]
        purposes=tuple(body.purposes),
        not_before=ts(body.not_before),
        max_depth=body.max_depth,
        condition=body.condition,
        parent_id=body.parent_id,
    )
    return DelegationOut.from_delegation(d)


@router.get(
    "", operation_id="list_delegations", responses=error_responses(), summary="List delegations"
)
def list_delegations(
    store: StoreId,
    svc: ServicesDep,
    caller: CallerDep,
    delegator: Annotated[
        Node, Query(description="Only delegations given by this identity.")
    ] = None,
    delegate: Annotated[Node, Query(description="Only delegations held by this identity.")] = None,
    status: Annotated[
        Literal["active", "revoked"] | None, Query(description="Only this status.")
    ] = None,
    parent_id: Annotated[
        str | None, Query(max_length=64, description="Only those derived from this delegation.")
    ] = None,
    page_size: PageSize = 50,
    continuation_token: Token = None,
) -> DelegationList:
    """The store's delegations matching every filter given, one page at a time."""
    page = delegations.list_delegations(
        svc,
        caller,
        store,
        delegator=delegator,
        delegate=delegate,
        status=status,
        parent_id=parent_id,
        page_size=page_size,
        continuation_token=continuation_token,
    )
    return DelegationList(
        delegations=[DelegationOut.from_delegation(d) for d in page.items],
        continuation_token=page.continuation_token,
    )


@router.get(
    "/{delegation_id}",
    operation_id="get_delegation",
    responses=error_responses(),
    summary="Get a delegation",
)
def get_delegation(
    store: StoreId, delegation_id: DelegationId, svc: ServicesDep, caller: CallerDep
) -> DelegationOut:
    """404 `delegation_not_found` when the store has no such delegation."""
    return DelegationOut.from_delegation(
        delegations.get_delegation(svc, caller, store, delegation_id)
    )


@router.post(
    "/{delegation_id}:revoke",
    operation_id="revoke_delegation",
    responses=error_responses(),
    summary="Revoke a delegation and everything below it",
)
def revoke_delegation(
    store: StoreId,
    delegation_id: DelegationId,
    svc: ServicesDep,
    caller: CallerDep,
    body: ReasonRequest | None = None,
) -> RevokeDelegationResponse:
    """The delegation and every delegation derived from it stop covering anything at once;
    the answer lists them all."""
    revoked = delegations.revoke_delegation(
        svc, caller, store, delegation_id, reason=None if body is None else body.reason
    )
    return RevokeDelegationResponse(revoked=[DelegationOut.from_delegation(d) for d in revoked])
