"""``/v1/stores/{store}/policy`` — the store policy (delegation cap, orphans, action map)."""

from __future__ import annotations

from fastapi import APIRouter

from keyplane.api.deps import CallerDep, ServicesDep
from keyplane.api.identity_schemas import StorePolicyOut, UpdateStorePolicyRequest
from keyplane.api.v1.common import StoreId, error_responses
from keyplane.service import policies

__all__ = ["router"]

router = APIRouter(prefix="/stores/{store}", tags=["policy"])


@router.get(
    "/policy",
    operation_id="get_store_policy",
    responses=error_responses(),
    summary="Get the store policy",
)
def get_store_policy(store: StoreId, svc: ServicesDep, caller: CallerDep) -> StorePolicyOut:
    """The longest a delegation may last, whether orphaned non-human identities are
    suspended, and the action → relation map decisions (and AuthZEN) use. Defaults until
    set (`revision` 0)."""
    return StorePolicyOut.from_policy(policies.get_store_policy(svc, caller, store))


@router.patch(
    "/policy",
    operation_id="update_store_policy",
    responses=error_responses(),
    summary="Update the store policy",
)
def update_store_policy(
    store: StoreId, body: UpdateStorePolicyRequest, svc: ServicesDep, caller: CallerDep
) -> StorePolicyOut:
    """Change the fields given (`actions` is replaced as a whole). Admin only."""
    return StorePolicyOut.from_policy(
        policies.update_store_policy(
            svc,
            caller,
            store,
            max_delegation_seconds=body.max_delegation_seconds,
            suspend_orphans=body.suspend_orphans,
            actions=body.actions,
            max_credential_seconds=body.max_credential_seconds,
            access_token_seconds=body.access_token_seconds,
            allow_impersonation=body.allow_impersonation,
            token_audiences=body.token_audiences,
            trusted_issuers=None
            if body.trusted_issuers is None
            else [t.to_dict() for t in body.trusted_issuers],
        )
    )
