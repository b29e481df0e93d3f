"""``/v1/stores/{store}/…`` access queries: check, batch check, expand, list objects,
list users, explain. Each is a POST with a JSON body (contexts and contextual tuples do
not fit a query string), answered from the in-memory graph."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from keyplane.api.deps import CallerDep, ServicesDep
from keyplane.api.metrics import observe_decisions
from keyplane.api.schemas import (
    BatchCheckRequest,
    BatchCheckResponse,
    CheckRequest,
    CheckResponse,
    ExpandRequest,
    ExpandResponse,
    ExplainRequest,
    ExplainResponse,
    ListObjectsRequest,
    ListObjectsResponse,
    ListUsersRequest,
    ListUsersResponse,
    StreamedObject,
)
from keyplane.api.v1.common import StoreId, error_responses
from keyplane.service import access
from keyplane.service.access import BatchItem, ObjectStream
from keyplane.service.auth import Caller
from keyplane.service.context import Services

#: the header of a streamed list-objects answer naming its ledger event
DECISION_ID_HEADER = "X-Decision-Id"

router = APIRouter(prefix="/stores/{store}", tags=["queries"])

QUERY_ERRORS = error_responses(422, 504)


@router.post("/check", operation_id="check", responses=QUERY_ERRORS, summary="Check access")
def check(
    store: StoreId, body: CheckRequest, request: Request, svc: ServicesDep, caller: CallerDep
) -> CheckResponse:
    """Does `user` hold `relation` on `object`? The decision names the model and revision."""
    ans, outcomes, op = check_answer(svc, caller, store, body)
    observe_decisions(request, op, **outcomes)
    return CheckResponse(**ans)


def check_answer(
    svc: Services, caller: Caller, store: str, body: CheckRequest
) -> tuple[dict[str, Any], dict[str, int], str]:
    """The check's answer as JSON data (CheckResponse's fields, in order), its outcome for
    metrics and the operation's name — shared by the route and keyplane.api.fastpath."""
    d = access.check(
        svc,
        caller,
        store,
        body.user,
        body.relation,
        body.object,
        context=body.context,
        contextual_tuples=body.contextual(),
        model_id=body.model_id,
        at_least_as_fresh=body.at_least_as_fresh,
    )
    ans = {
        "allowed": d.allowed,
        "model_id": d.model_id,
        "revision": d.revision,
        "decision_id": d.decision_id,
    }
    return ans, {"allowed": int(d.allowed), "denied": int(not d.allowed)}, "check"


@router.post(
    "/batch-check", operation_id="batch_check", responses=QUERY_ERRORS, summary="Check many"
)
def batch_check(
    store: StoreId, body: BatchCheckRequest, request: Request, svc: ServicesDep, caller: CallerDep
) -> BatchCheckResponse:
    """Many checks in one call. An error in one check (an unknown relation, a missing
    condition parameter) is reported on that check's result; the others are decided."""
    ans, outcomes, op = batch_check_answer(svc, caller, store, body)
    observe_decisions(request, op, **outcomes)
    return BatchCheckResponse.model_validate(ans)


def batch_check_answer(
    svc: Services, caller: Caller, store: str, body: BatchCheckRequest
) -> tuple[dict[str, Any], dict[str, int], str]:
    """The batch check's answer as JSON data (BatchCheckResponse's shape), its outcomes
    and the operation's name (see :func:`check_answer`)."""
    items = [
        BatchItem(
            c.user,
            c.relation,
            c.object,
            context=c.context,
            contextual_tuples=[t.to_dict() for t in c.contextual_tuples or ()],
            correlation_id=c.correlation_id,
        )
        for c in body.checks
    ]
    results = access.batch_check(
        svc,
        caller,
        store,
        items,
        model_id=body.model_id,
        at_least_as_fresh=body.at_least_as_fresh,
    )
    out = [
        {
            "correlation_id": r.correlation_id,
            "allowed": r.allowed,
            "error": None
            if r.error is None
            else {"code": r.error.code, "message": r.error.message},
            "decision_id": r.decision_id,
        }
        for r in results
    ]
    outcomes = {
        "allowed": sum(1 for r in results if r.allowed),
        "denied": sum(1 for r in results if not r.allowed and r.error is None),
        "error": sum(1 for r in results if r.error is not None),
    }
    return {"results": out}, outcomes, "batch_check"


@router.post("/expand", operation_id="expand", responses=QUERY_ERRORS, summary="Expand")
def expand(
    store: StoreId, body: ExpandRequest, svc: ServicesDep, caller: CallerDep
) -> ExpandResponse:
    """Who holds `relation` on `object`, as OpenFGA's userset tree, one level deep."""
    tree = access.expand(
        svc,
        caller,
        store,
        body.object,
        body.relation,
        context=body.context,
        contextual_tuples=body.contextual(),
        model_id=body.model_id,
        at_least_as_fresh=body.at_least_as_fresh,
    )
    return ExpandResponse(tree=tree["tree"], decision_id=tree.decision_id)


def _objects(
    svc: ServicesDep, caller: CallerDep, store: str, body: ListObjectsRequest
) -> ObjectStream:
    return access.list_objects(
        svc,
        caller,
        store,
        body.user,
        body.relation,
        body.type,
        context=body.context,
        contextual_tuples=body.contextual(),
        model_id=body.model_id,
        at_least_as_fresh=body.at_least_as_fresh,
    )


@router.post(
    "/list-objects",
    operation_id="list_objects",
    responses=QUERY_ERRORS,
    summary="List objects a user can reach",
)
def list_objects(
    store: StoreId, body: ListObjectsRequest, svc: ServicesDep, caller: CallerDep
) -> ListObjectsResponse:
    """Every object of `type` on which `user` holds `relation` — complete, not paginated."""
    found = _objects(svc, caller, store, body)
    return ListObjectsResponse(objects=list(found), decision_id=found.decision_id)


@router.post(
    "/streamed-list-objects",
    operation_id="streamed_list_objects",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": 'One JSON object per line (NDJSON): `{"object": "type:id"}`. '
            f"The `{DECISION_ID_HEADER}` header names the ledger event recording the query.",
            "content": {"application/x-ndjson": {"schema": StreamedObject.model_json_schema()}},
            "headers": {
                DECISION_ID_HEADER: {
                    "description": "The id of the ledger event recording this query.",
                    "schema": {"type": "string"},
                }
            },
        },
        **QUERY_ERRORS,
    },
    summary="List objects, streamed as NDJSON",
)
def streamed_list_objects(
    store: StoreId, body: ListObjectsRequest, svc: ServicesDep, caller: CallerDep
) -> StreamingResponse:
    """As list objects, but each object is sent as soon as it is found, one JSON line each.

    Errors found before the first line (authentication, an unknown store or type) are the
    usual error envelope with its status."""
    found = _objects(svc, caller, store, body)  # resolved here: errors before the 200
    lines = (json.dumps({"object": o}) + "\n" for o in found)
    return StreamingResponse(
        lines, media_type="application/x-ndjson", headers={DECISION_ID_HEADER: found.decision_id}
    )


@router.post(
    "/list-users",
    operation_id="list_users",
    responses=QUERY_ERRORS,
    summary="List users who hold a relation",
)
def list_users(
    store: StoreId, body: ListUsersRequest, svc: ServicesDep, caller: CallerDep
) -> ListUsersResponse:
    """Every user of the `filters` kinds holding `relation` on `object`."""
    users = access.list_users(
        svc,
        caller,
        store,
        body.object,
        body.relation,
        body.filters,
        context=body.context,
        contextual_tuples=body.contextual(),
        model_id=body.model_id,
        at_least_as_fresh=body.at_least_as_fresh,
    )
    return ListUsersResponse(users=users, decision_id=users.decision_id)


@router.post(
    "/explain",
    operation_id="explain",
    responses=QUERY_ERRORS,
    summary="Explain a decision",
)
def explain(
    store: StoreId, body: ExplainRequest, svc: ServicesDep, caller: CallerDep
) -> ExplainResponse:
    """Why `user` does or does not hold `relation` on `object`: the granting paths when
    allowed, the failed branches (missing tuple, false condition, expiry, exclusion…)
    when denied."""
    e = access.explain(
        svc,
        caller,
        store,
        body.user,
        body.relation,
        body.object,
        context=body.context,
        contextual_tuples=body.contextual(),
        model_id=body.model_id,
        at_least_as_fresh=body.at_least_as_fresh,
    )
    return ExplainResponse.model_validate({**e.to_dict(), "decision_id": e.decision_id})
