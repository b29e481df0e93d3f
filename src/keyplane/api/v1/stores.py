"""``/v1/stores`` — create, list, get and delete stores."""

from __future__ import annotations

from fastapi import APIRouter, Response

from keyplane.api.deps import CallerDep, ServicesDep
from keyplane.api.schemas import CreateStoreRequest, Store, StoreList
from keyplane.api.v1.common import PageSize, StoreId, Token, error_responses
from keyplane.service import stores

router = APIRouter(prefix="/stores", tags=["stores"])


@router.post(
    "",
    operation_id="create_store",
    status_code=201,
    responses=error_responses(409),
    summary="Create a store",
)
def create_store(body: CreateStoreRequest, svc: ServicesDep, caller: CallerDep) -> Store:
    """Create a store (a tenant with its own models, tuples and changelog)."""
    return Store.from_info(stores.create_store(svc, caller, body.name, store_id=body.id))


@router.get("", operation_id="list_stores", responses=error_responses(), summary="List stores")
def list_stores(
    svc: ServicesDep, caller: CallerDep, page_size: PageSize = 100, continuation_token: Token = None
) -> StoreList:
    """The stores, ordered by id, one page at a time."""
    page = stores.list_stores(
        svc, caller, page_size=page_size, continuation_token=continuation_token
    )
    return StoreList(
        stores=[Store.from_info(s) for s in page.items],
        continuation_token=page.continuation_token,
    )


@router.get(
    "/{store}", operation_id="get_store", responses=error_responses(), summary="Get a store"
)
def get_store(store: StoreId, svc: ServicesDep, caller: CallerDep) -> Store:
    return Store.from_info(stores.get_store(svc, caller, store))


@router.delete(
    "/{store}",
    operation_id="delete_store",
    status_code=204,
    response_class=Response,
    responses=error_responses(),
    summary="Delete a store and all its data",
)
def delete_store(store: StoreId, svc: ServicesDep, caller: CallerDep) -> Response:
    """Delete the store with its models, tuples and changelog. Irreversible."""
    stores.delete_store(svc, caller, store)
    return Response(status_code=204)
