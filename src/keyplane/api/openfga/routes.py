"""The OpenFGA-compatible routes: ``/stores…`` in OpenFGA's HTTP shape.

Each handler authenticates the bearer API key (:data:`~keyplane.api.deps.CallerDep`),
decodes OpenFGA's request, calls exactly one Keyplane service function and encodes the
result as OpenFGA does. There is no authorization logic here (the service functions
authorize the caller), like OpenFGA's own AuthZEN layer over its commands
(openfga/openfga ``docs/authzen/implementation.md``). Errors take OpenFGA's shape
(:mod:`keyplane.api.openfga.errors`).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse, StreamingResponse

from keyplane.api.deps import CallerDep, ServicesDep
from keyplane.api.openfga import encode
from keyplane.api.openfga import schemas as s
from keyplane.api.openfga.errors import FgaRoute, fga_error, unimplemented
from keyplane.errors import ValidationError
from keyplane.service import access, models, stores, tuples
from keyplane.service.access import BatchItem

__all__ = ["DECISION_ID_HEADER", "router"]

#: the decision id(s) of a query's ledger event(s): OpenFGA's bodies stay field for field
#: OpenFGA's, so the id rides in a header (batch-check: every item's, comma-separated, in
#: the order of the request's ``checks``) — see docs/openfga-compat.md
DECISION_ID_HEADER = "X-Keyplane-Decision-Id"

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": s.FgaErrorBody, "description": desc}
    for status, desc in (
        (400, "Invalid input (OpenFGA 2xxx codes: validation_error, type_not_found, …)"),
        (401, "Missing or unknown API key (bearer_token_missing, unauthenticated)"),
        (403, "The API key's roles do not allow this (forbidden)"),
        (404, "Unknown store (store_id_not_found) or endpoint"),
        (409, "Conflicting write (Aborted)"),
        (500, "Internal error"),
    )
}

router = APIRouter(
    route_class=FgaRoute,
    tags=["OpenFGA-compatible API"],
    responses=_ERRORS,
    # stable, readable operation ids (openfga_check, openfga_write, ...) in the OpenAPI doc
    generate_unique_id_function=lambda route: f"openfga_{route.name}",
)

PageSize = Annotated[int, Query(ge=1, le=100, description="Items per page (1..100).")]
Token = Annotated[str | None, Query(description="Where the previous page ended.")]


def _ctx_tuples(ct: s.ContextualTupleKeys | None) -> list[dict[str, Any]]:
    return [t.model_dump(exclude_none=True) for t in (ct.tuple_keys if ct else [])]


# --- stores ---------------------------------------------------------------------------------


@router.post("/stores", status_code=201, response_model=s.Store, summary="Create a store")
def create_store(body: s.CreateStoreRequest, svc: ServicesDep, caller: CallerDep) -> Any:
    return encode.store(stores.create_store(svc, caller, body.name))


@router.get("/stores", response_model=s.ListStoresResponse, summary="List stores")
def list_stores(
    svc: ServicesDep,
    caller: CallerDep,
    page_size: PageSize = 50,
    continuation_token: Token = None,
    name: Annotated[str | None, Query(description="Not supported: must be empty.")] = None,
) -> Any:
    if name:
        raise ValidationError("filtering stores by name is not supported")
    page = stores.list_stores(
        svc, caller, page_size=page_size, continuation_token=continuation_token or None
    )
    return {
        "stores": [encode.store(x) for x in page.items],
        "continuation_token": page.continuation_token or "",
    }


@router.get("/stores/{store_id}", response_model=s.Store, summary="Get a store")
def get_store(store_id: str, svc: ServicesDep, caller: CallerDep) -> Any:
    return encode.store(stores.get_store(svc, caller, store_id))


@router.delete("/stores/{store_id}", status_code=204, summary="Delete a store")
def delete_store(store_id: str, svc: ServicesDep, caller: CallerDep) -> Response:
    stores.delete_store(svc, caller, store_id)
    return Response(status_code=204)


# --- authorization models -------------------------------------------------------------------


@router.post(
    "/stores/{store_id}/authorization-models",
    status_code=201,
    response_model=s.WriteAuthorizationModelResponse,
    summary="Write an authorization model (OpenFGA JSON)",
)
def write_authorization_model(
    store_id: str, body: s.WriteAuthorizationModelRequest, svc: ServicesDep, caller: CallerDep
) -> Any:
    # exactly as written: OpenFGA clients compare the model they read back with theirs, so
    # the base model's identity types are not added here (the native API adds them)
    rec = models.write_model(
        svc, caller, store_id, body.model_dump(exclude_none=True), extend_base=False
    )
    return {"authorization_model_id": rec.id}


@router.get(
    "/stores/{store_id}/authorization-models",
    response_model=s.ReadAuthorizationModelsResponse,
    summary="List authorization models, newest first",
)
def read_authorization_models(
    store_id: str,
    svc: ServicesDep,
    caller: CallerDep,
    page_size: PageSize = 50,
    continuation_token: Token = None,
) -> Any:
    page = models.list_models(
        svc, caller, store_id, page_size=page_size, continuation_token=continuation_token or None
    )
    return {
        "authorization_models": [encode.model(r) for r in page.items],
        "continuation_token": page.continuation_token or "",
    }


@router.get(
    "/stores/{store_id}/authorization-models/{model_id}",
    response_model=s.ReadAuthorizationModelResponse,
    summary="Read one authorization model",
)
def read_authorization_model(
    store_id: str, model_id: str, svc: ServicesDep, caller: CallerDep
) -> Any:
    return {"authorization_model": encode.model(models.read_model(svc, caller, store_id, model_id))}


# --- tuples ---------------------------------------------------------------------------------


@router.post("/stores/{store_id}/write", response_model=dict[str, Any], summary="Write tuples")
def write(store_id: str, body: s.WriteRequest, svc: ServicesDep, caller: CallerDep) -> Any:
    if body.writes is None and body.deletes is None:
        return JSONResponse(
            {
                "code": "invalid_write_input",
                "message": "Invalid input. Make sure you provide at least one write, or at "
                "least one delete",
            },
            status_code=400,
        )
    # Keyplane applies one idempotence flag to the whole (atomic) request
    flags = set()
    if body.writes is not None:
        flags.add(body.writes.on_duplicate == "ignore")
    if body.deletes is not None:
        flags.add(body.deletes.on_missing == "ignore")
    if len(flags) > 1:
        raise ValidationError(
            "on_duplicate and on_missing must agree when a request both writes and deletes"
        )
    tuples.write_tuples(
        svc,
        caller,
        store_id,
        writes=[
            t.model_dump(exclude_none=True) for t in (body.writes.tuple_keys if body.writes else [])
        ],
        deletes=[t.model_dump() for t in (body.deletes.tuple_keys if body.deletes else [])],
        model_id=body.authorization_model_id or None,
        idempotent=flags == {True},
    )
    return {}


@router.post("/stores/{store_id}/read", response_model=s.ReadResponse, summary="Read tuples")
def read(store_id: str, body: s.ReadRequest, svc: ServicesDep, caller: CallerDep) -> Any:
    tk = body.tuple_key or s.ReadRequestTupleKey()
    page = tuples.read_tuples(
        svc,
        caller,
        store_id,
        object=tk.object or None,
        relation=tk.relation or None,
        user=tk.user or None,
        page_size=body.page_size or 50,
        continuation_token=body.continuation_token or None,
    )
    return {
        "tuples": [{"key": encode.tuple_key(t), "timestamp": encode.EPOCH} for t in page.items],
        "continuation_token": page.continuation_token or "",
    }


@router.get(
    "/stores/{store_id}/changes",
    response_model=s.ReadChangesResponse,
    summary="Read the changelog",
)
def read_changes(
    store_id: str,
    svc: ServicesDep,
    caller: CallerDep,
    type: Annotated[str | None, Query(description="Only changes to objects of this type.")] = None,
    page_size: PageSize = 50,
    continuation_token: Token = None,
    start_time: Annotated[str | None, Query(description="Not supported: must be empty.")] = None,
) -> Any:
    if start_time:
        raise ValidationError("start_time is not supported; resume with a continuation_token")
    after = encode.read_changes_token(store_id, type or None, continuation_token)
    page = tuples.read_changes(
        svc, caller, store_id, after_revision=after, page_size=page_size, object_type=type or None
    )
    # like OpenFGA, the token is returned even at the end, so a client can poll with it
    token = (
        encode.changes_token(store_id, type or None, page.last_revision)
        if page.last_revision
        else continuation_token or ""
    )
    return {"changes": [encode.change(c) for c in page.changes], "continuation_token": token}


# --- queries --------------------------------------------------------------------------------


@router.post("/stores/{store_id}/check", response_model=s.CheckResponse, summary="Check")
def check(
    store_id: str, body: s.CheckRequest, svc: ServicesDep, caller: CallerDep, response: Response
) -> Any:
    tk = body.tuple_key
    decision = access.check(
        svc,
        caller,
        store_id,
        tk.user,
        tk.relation,
        tk.object,
        context=body.context,
        contextual_tuples=_ctx_tuples(body.contextual_tuples),
        model_id=body.authorization_model_id or None,
    )
    response.headers[DECISION_ID_HEADER] = decision.decision_id
    return {"allowed": decision.allowed, "resolution": ""}


@router.post(
    "/stores/{store_id}/batch-check", response_model=s.BatchCheckResponse, summary="Batch check"
)
def batch_check(
    store_id: str,
    body: s.BatchCheckRequest,
    svc: ServicesDep,
    caller: CallerDep,
    response: Response,
) -> Any:
    ids = [c.correlation_id for c in body.checks]
    if len(set(ids)) != len(ids):
        raise ValidationError("each check needs a unique correlation_id")
    items = [
        BatchItem(
            c.tuple_key.user,
            c.tuple_key.relation,
            c.tuple_key.object,
            context=c.context,
            contextual_tuples=_ctx_tuples(c.contextual_tuples),
            correlation_id=c.correlation_id,
        )
        for c in body.checks
    ]
    results = access.batch_check(
        svc, caller, store_id, items, model_id=body.authorization_model_id or None
    )
    # one id per check, in the order of the request's ``checks`` (the body's ``result`` is a
    # map, so its order is no guide): ids are ULIDs, so a comma never occurs inside one
    response.headers[DECISION_ID_HEADER] = ",".join(r.decision_id for r in results)
    return {"result": {r.correlation_id: _batch_result(r) for r in results}}


def _batch_result(r: access.BatchItemResult) -> dict[str, Any]:
    if r.error is None:
        return {"allowed": r.allowed}
    status, err = fga_error(r.error)
    kind = "input_error" if status == 400 else "internal_error"
    return {"allowed": False, "error": {kind: err["code"], "message": err["message"]}}


@router.post("/stores/{store_id}/expand", response_model=s.ExpandResponse, summary="Expand")
def expand(
    store_id: str, body: s.ExpandRequest, svc: ServicesDep, caller: CallerDep, response: Response
) -> Any:
    tree = access.expand(
        svc,
        caller,
        store_id,
        body.tuple_key.object,
        body.tuple_key.relation,
        contextual_tuples=_ctx_tuples(body.contextual_tuples),
        model_id=body.authorization_model_id or None,
    )
    response.headers[DECISION_ID_HEADER] = tree.decision_id
    return tree


def _list_objects(
    store_id: str, body: s.ListObjectsRequest, svc: Any, caller: Any
) -> access.ObjectStream:
    return access.list_objects(
        svc,
        caller,
        store_id,
        body.user,
        body.relation,
        body.type,
        context=body.context,
        contextual_tuples=_ctx_tuples(body.contextual_tuples),
        model_id=body.authorization_model_id or None,
    )


@router.post(
    "/stores/{store_id}/list-objects", response_model=s.ListObjectsResponse, summary="List objects"
)
def list_objects(
    store_id: str,
    body: s.ListObjectsRequest,
    svc: ServicesDep,
    caller: CallerDep,
    response: Response,
) -> Any:
    found = _list_objects(store_id, body, svc, caller)
    response.headers[DECISION_ID_HEADER] = found.decision_id
    return {"objects": list(found)}


@router.post(
    "/stores/{store_id}/streamed-list-objects",
    summary="List objects, streamed",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": 'One JSON document per line: {"result": {"object": "type:id"}}',
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
)
def streamed_list_objects(
    store_id: str, body: s.ListObjectsRequest, svc: ServicesDep, caller: CallerDep
) -> StreamingResponse:
    found = _list_objects(store_id, body, svc, caller)  # errors surface before streaming
    lines = (json.dumps({"result": {"object": o}}) + "\n" for o in found)
    return StreamingResponse(
        lines,
        media_type="application/x-ndjson",
        headers={DECISION_ID_HEADER: found.decision_id},
    )


@router.post(
    "/stores/{store_id}/list-users", response_model=s.ListUsersResponse, summary="List users"
)
def list_users(
    store_id: str,
    body: s.ListUsersRequest,
    svc: ServicesDep,
    caller: CallerDep,
    response: Response,
) -> Any:
    filters = [f"{f.type}#{f.relation}" if f.relation else f.type for f in body.user_filters]
    found = access.list_users(
        svc,
        caller,
        store_id,
        f"{body.object.type}:{body.object.id}",
        body.relation,
        filters,
        context=body.context,
        contextual_tuples=[t.model_dump(exclude_none=True) for t in body.contextual_tuples],
        model_id=body.authorization_model_id or None,
    )
    response.headers[DECISION_ID_HEADER] = found.decision_id
    return {"users": [encode.user(u) for u in found]}


# --- not served -----------------------------------------------------------------------------


@router.get("/stores/{store_id}/assertions/{model_id}", summary="Read assertions (not supported)")
def read_assertions(store_id: str, model_id: str, caller: CallerDep) -> JSONResponse:
    return unimplemented("assertions")


@router.put("/stores/{store_id}/assertions/{model_id}", summary="Write assertions (not supported)")
def write_assertions(store_id: str, model_id: str, caller: CallerDep) -> JSONResponse:
    return unimplemented("assertions")
