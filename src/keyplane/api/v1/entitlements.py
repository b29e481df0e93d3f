"""``/v1/stores/{store}/entitlements`` — what people and agents may request (issue 7 §1).

A thin surface over :mod:`keyplane.service.entitlements`: create, list, get, update
(``PATCH``) and delete. Managing entitlements is an administrator's act; reading them
needs ``can_read_identities``. See ``docs/access-requests.md``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response

from keyplane.api.deps import CallerDep, ServicesDep
from keyplane.api.governance_schemas import (
    ENTITLEMENT_ID,
    ApprovalRuleModel,
    CreateEntitlementRequest,
    EntitlementList,
    EntitlementOut,
    UpdateEntitlementRequest,
)
from keyplane.api.v1.common import PageSize, StoreId, Token, error_responses
from keyplane.governance.records import ApprovalRule
from keyplane.service import entitlements

__all__ = ["router", "rules"]

router = APIRouter(prefix="/stores/{store}/entitlements", tags=["entitlements"])

EntitlementId = Annotated[
    str, Path(pattern=ENTITLEMENT_ID, description="The entitlement id, e.g. `roadmap-viewer`.")
]


def rules(models: list[ApprovalRuleModel]) -> tuple[ApprovalRule, ...]:
    return tuple(
        ApprovalRule(
            id=m.id,
            when=m.when,
            outcome=m.outcome,
            approvers=tuple(m.approvers),
            required=m.required,
        )
        for m in models
    )


@router.post(
    "",
    operation_id="create_entitlement",
    status_code=201,
    responses=error_responses(409),
    summary="Create an entitlement",
)
def create_entitlement(
    store: StoreId, body: CreateEntitlementRequest, svc: ServicesDep, caller: CallerDep
) -> EntitlementOut:
    """A relation on an object (or every object of a type) that may be requested, with its
    owners, risk, maximum duration and approval policy (CEL rules, compiled now).

    400 `invalid_entitlement` for a bad target, owners or rule; 409 `entitlement_exists`."""
    e = entitlements.create_entitlement(
        svc, caller, store, body.id, object=body.object, relation=body.relation,
        description=body.description, owners=tuple(body.owners), risk=body.risk,
        max_duration_seconds=body.max_duration_seconds,
        agents_may_request=body.agents_may_request, approval=rules(body.approval),
        status=body.status,
    )  # fmt: skip
    return EntitlementOut.from_entitlement(e)


@router.get(
    "", operation_id="list_entitlements", responses=error_responses(), summary="List entitlements"
)
def list_entitlements(
    store: StoreId,
    svc: ServicesDep,
    caller: CallerDep,
    status: Annotated[
        Literal["active", "disabled"] | None, Query(description="Only this status.")
    ] = None,
    page_size: PageSize = 50,
    continuation_token: Token = None,
) -> EntitlementList:
    """The store's entitlements, one page at a time."""
    page = entitlements.list_entitlements(
        svc, caller, store, status=status, page_size=page_size,
        continuation_token=continuation_token,
    )  # fmt: skip
    return EntitlementList(
        entitlements=[EntitlementOut.from_entitlement(e) for e in page.items],
        continuation_token=page.continuation_token,
    )


@router.get(
    "/{entitlement_id}",
    operation_id="get_entitlement",
    responses=error_responses(),
    summary="Get an entitlement",
)
def get_entitlement(
    store: StoreId, entitlement_id: EntitlementId, svc: ServicesDep, caller: CallerDep
) -> EntitlementOut:
    """404 `entitlement_not_found` when the store has no such entitlement."""
    return EntitlementOut.from_entitlement(
        entitlements.get_entitlement(svc, caller, store, entitlement_id)
    )


@router.patch(
    "/{entitlement_id}",
    operation_id="update_entitlement",
    responses=error_responses(),
    summary="Update an entitlement",
)
def update_entitlement(
    store: StoreId,
    entitlement_id: EntitlementId,
    body: UpdateEntitlementRequest,
    svc: ServicesDep,
    caller: CallerDep,
) -> EntitlementOut:
    """Change what the body gives. Requests already filed keep the route they were given."""
    # a field sent as null is left unchanged, like one left out
    changes: dict[str, Any] = body.model_dump(exclude_none=True, exclude={"approval"})
    if "owners" in changes:
        changes["owners"] = tuple(changes["owners"])
    if body.approval is not None:
        changes["approval"] = rules(body.approval)
    e = entitlements.update_entitlement(svc, caller, store, entitlement_id, **changes)
    return EntitlementOut.from_entitlement(e)


@router.delete(
    "/{entitlement_id}",
    operation_id="delete_entitlement",
    status_code=204,
    response_class=Response,
    responses=error_responses(),
    summary="Delete an entitlement",
)
def delete_entitlement(
    store: StoreId, entitlement_id: EntitlementId, svc: ServicesDep, caller: CallerDep
) -> Response:
    """It can no longer be requested; grants already given run until they end."""
    entitlements.delete_entitlement(svc, caller, store, entitlement_id)
    return Response(status_code=204)
