"""``/v1/stores/{store}/tuples`` and ``/changes`` — write, read, tail the changelog, and
remove expired tuples."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from keyplane.api.deps import CallerDep, ServicesDep
from keyplane.api.schemas import (
    Change,
    ChangesResponse,
    GcResponse,
    TupleKey,
    TupleList,
    WriteRequest,
    WriteResponse,
)
from keyplane.api.v1.common import PageSize, StoreId, Token, error_responses
from keyplane.service import tuples
from keyplane.service.inputs import MAX_REVISION

router = APIRouter(prefix="/stores/{store}", tags=["tuples"])


@router.post(
    "/tuples/write",
    operation_id="write_tuples",
    responses=error_responses(409),
    summary="Write and delete tuples atomically",
)
def write_tuples(
    store: StoreId, body: WriteRequest, svc: ServicesDep, caller: CallerDep
) -> WriteResponse:
    """Apply `deletes` then `writes` in one transaction and return the new revision.

    Writing an existing tuple is a 409 `tuple_exists`, deleting a missing one a 409
    `tuple_missing` (unless `idempotent`); tuples that do not fit the model are a 400.
    Nothing is written when anything fails.
    """
    res = tuples.write_tuples(
        svc,
        caller,
        store,
        writes=[t.to_dict() for t in body.writes],
        deletes=[t.to_dict() for t in body.deletes],
        model_id=body.model_id,
        idempotent=body.idempotent,
    )
    return WriteResponse(revision=res.revision, written=res.written, deleted=res.deleted)


@router.get(
    "/tuples", operation_id="read_tuples", responses=error_responses(), summary="Read tuples"
)
def read_tuples(
    store: StoreId,
    svc: ServicesDep,
    caller: CallerDep,
    object: Annotated[
        str | None,
        Query(
            max_length=256,
            description="Only tuples on this object (`type:id`), or on every object of a "
            "type (`type:`).",
        ),
    ] = None,
    relation: Annotated[
        str | None, Query(max_length=50, description="Only tuples with this relation.")
    ] = None,
    user: Annotated[
        str | None,
        Query(
            max_length=512,
            description="Only tuples for this user (`type:id`, `type:*`, `type:id#rel`), or "
            "for every user of a type (`type:`).",
        ),
    ] = None,
    page_size: PageSize = 100,
    continuation_token: Token = None,
) -> TupleList:
    """Stored tuples matching every filter given, in a stable order, one page at a time.

    A continuation token is only valid with the same filters.
    """
    page = tuples.read_tuples(
        svc,
        caller,
        store,
        object=object,
        relation=relation,
        user=user,
        page_size=page_size,
        continuation_token=continuation_token,
    )
    return TupleList(
        tuples=[TupleKey.from_tuple(t) for t in page.items],
        continuation_token=page.continuation_token,
    )


@router.get(
    "/changes",
    operation_id="read_changes",
    responses=error_responses(),
    summary="Read the changelog",
)
def read_changes(
    store: StoreId,
    svc: ServicesDep,
    caller: CallerDep,
    after_revision: Annotated[
        int,
        Query(
            ge=0,
            le=MAX_REVISION,
            description="Return changes after this revision (0: from the start).",
        ),
    ] = 0,
    page_size: PageSize = 100,
    object_type: Annotated[
        str | None, Query(max_length=254, description="Only changes to objects of this type.")
    ] = None,
) -> ChangesResponse:
    """Tuple writes and deletes in commit order — for replicating or auditing a store.

    Loop while `has_more`, passing `last_revision` as the next `after_revision`.
    """
    page = tuples.read_changes(
        svc,
        caller,
        store,
        after_revision=after_revision,
        page_size=page_size,
        object_type=object_type,
    )
    return ChangesResponse(
        changes=[Change.from_change(c) for c in page.changes],
        last_revision=page.last_revision,
        has_more=page.has_more,
    )


@router.post(
    "/tuples/gc",
    operation_id="gc_expired",
    responses=error_responses(),
    summary="Remove expired tuples",
)
def gc_expired(store: StoreId, svc: ServicesDep, caller: CallerDep) -> GcResponse:
    """Delete the tuples whose `expires_at` has passed. They already stopped granting at
    that instant; this only reclaims their storage (writers and admins)."""
    return GcResponse(removed=tuples.gc_expired(svc, caller, store))
