"""``/v1/stores/{store}/identities`` — humans, agents, workloads and service accounts.

A thin surface over :mod:`keyplane.service.identities`: create, read, list, update, owners,
and the lifecycle (``:suspend`` — the kill switch —, ``:reactivate``, ``:deprovision``).
An identity is addressed by its graph node split in two path segments,
``/identities/{kind}/{id}`` (``agent:planner`` → ``/identities/agent/planner``). See
``docs/identities.md``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from keyplane.api.deps import CallerDep, ServicesDep
from keyplane.api.identity_schemas import (
    CreateIdentityRequest,
    IdentityKind,
    IdentityList,
    IdentityOut,
    OwnersRequest,
    ReasonRequest,
    UpdateIdentityRequest,
)
from keyplane.api.schemas import MAX_ID
from keyplane.api.v1.common import PageSize, StoreId, Token, error_responses
from keyplane.policy.records import Identity
from keyplane.service import identities

__all__ = ["router"]

router = APIRouter(prefix="/stores/{store}/identities", tags=["identities"])

Kind = Annotated[
    IdentityKind, Path(description="`human`, `agent`, `workload` or `service_account`.")
]
Id = Annotated[str, Path(min_length=1, max_length=MAX_ID, description="The identity's bare id.")]


def _out(i: Identity) -> IdentityOut:
    return IdentityOut.from_identity(i)


@router.post(
    "",
    operation_id="create_identity",
    status_code=201,
    responses=error_responses(409),
    summary="Create an identity",
)
def create_identity(
    store: StoreId, body: CreateIdentityRequest, svc: ServicesDep, caller: CallerDep
) -> IdentityOut:
    """Register a human, agent, workload or service account as a node of the graph.

    A non-human identity without an owner is a 400 `owner_required`; an existing one a 409
    `identity_exists`. Owners become `owner` tuples (`agent:x#owner@human:alice`)."""
    return _out(
        identities.create_identity(
            svc,
            caller,
            store,
            body.kind,
            body.id,
            display_name=body.display_name,
            attributes=body.attributes,
            owners=body.owners,
            source=body.source,
        )
    )


@router.get(
    "", operation_id="list_identities", responses=error_responses(), summary="List identities"
)
def list_identities(
    store: StoreId,
    svc: ServicesDep,
    caller: CallerDep,
    kind: Annotated[IdentityKind | None, Query(description="Only this kind.")] = None,
    status: Annotated[
        Literal["active", "suspended", "deprovisioned"] | None,
        Query(description="Only this status."),
    ] = None,
    owner: Annotated[
        str | None, Query(max_length=512, description="Only identities this owner answers for.")
    ] = None,
    orphaned: Annotated[
        bool | None, Query(description="Only orphaned (true) or owned (false) identities.")
    ] = None,
    page_size: PageSize = 50,
    continuation_token: Token = None,
) -> IdentityList:
    """The store's identities matching every filter given, one page at a time."""
    page = identities.list_identities(
        svc,
        caller,
        store,
        kind=kind,
        status=status,
        owner=owner,
        orphaned=orphaned,
        page_size=page_size,
        continuation_token=continuation_token,
    )
    return IdentityList(
        identities=[_out(i) for i in page.items], continuation_token=page.continuation_token
    )


@router.get(
    "/{kind}/{id}",
    operation_id="get_identity",
    responses=error_responses(),
    summary="Get an identity",
)
def get_identity(
    store: StoreId, kind: Kind, id: Id, svc: ServicesDep, caller: CallerDep
) -> IdentityOut:
    """404 `identity_not_found` when the store has no identity `kind:id`."""
    return _out(identities.get_identity(svc, caller, store, f"{kind}:{id}"))


@router.patch(
    "/{kind}/{id}",
    operation_id="update_identity",
    responses=error_responses(409),
    summary="Update an identity",
)
def update_identity(
    store: StoreId,
    kind: Kind,
    id: Id,
    body: UpdateIdentityRequest,
    svc: ServicesDep,
    caller: CallerDep,
) -> IdentityOut:
    """Change its display name and/or replace its attributes."""
    return _out(
        identities.update_identity(
            svc,
            caller,
            store,
            f"{kind}:{id}",
            display_name=body.display_name,
            attributes=body.attributes,
        )
    )


@router.post(
    "/{kind}/{id}/owners",
    operation_id="set_identity_owners",
    responses=error_responses(409),
    summary="Add and remove owners",
)
def set_identity_owners(
    store: StoreId,
    kind: Kind,
    id: Id,
    body: OwnersRequest,
    svc: ServicesDep,
    caller: CallerDep,
) -> IdentityOut:
    """Add and remove owners in one change; a non-human identity keeps at least one
    (400 `owner_required`)."""
    return _out(
        identities.set_identity_owners(
            svc, caller, store, f"{kind}:{id}", add=body.add, remove=body.remove
        )
    )


@router.post(
    "/{kind}/{id}:suspend",
    operation_id="suspend_identity",
    responses=error_responses(409),
    summary="Suspend an identity (kill switch)",
)
def suspend_identity(
    store: StoreId,
    kind: Kind,
    id: Id,
    svc: ServicesDep,
    caller: CallerDep,
    body: ReasonRequest | None = None,
) -> IdentityOut:
    """Every decision in which it appears — as subject or anywhere in the actor chain —
    denies from now on (`identity_suspended`), and every delegation it gave or holds is
    revoked, with everything derived from them."""
    reason = None if body is None else body.reason
    return _out(identities.suspend_identity(svc, caller, store, f"{kind}:{id}", reason=reason))


@router.post(
    "/{kind}/{id}:reactivate",
    operation_id="reactivate_identity",
    responses=error_responses(409),
    summary="Reactivate a suspended identity",
)
def reactivate_identity(
    store: StoreId, kind: Kind, id: Id, svc: ServicesDep, caller: CallerDep
) -> IdentityOut:
    """A deprovisioned identity cannot come back (409 `identity_state`). Revoked delegations
    stay revoked."""
    return _out(identities.reactivate_identity(svc, caller, store, f"{kind}:{id}"))


@router.post(
    "/{kind}/{id}:deprovision",
    operation_id="deprovision_identity",
    responses=error_responses(409),
    summary="Deprovision an identity",
)
def deprovision_identity(
    store: StoreId,
    kind: Kind,
    id: Id,
    svc: ServicesDep,
    caller: CallerDep,
    body: ReasonRequest | None = None,
) -> IdentityOut:
    """For good. The non-human identities it owned alone are flagged `orphaned` (and
    suspended when the store policy says `suspend_orphans`)."""
    reason = None if body is None else body.reason
    return _out(identities.deprovision_identity(svc, caller, store, f"{kind}:{id}", reason=reason))
