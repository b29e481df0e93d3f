"""``/v1/stores/{store}/decide`` and ``/decide:batch`` — the decision point, natively.

The richer input AuthZEN's ``/access/v1/evaluation`` carries in ``context``, as fields: the
actor chain, purpose, tool, the delegation to pin, resource and subject properties — or a
bearer ``token`` (RFC 9068) that gives the subject, chain, purpose and delegation. A thin
surface over :mod:`keyplane.service.decisions`; every answer is a ``decision.evaluate``
ledger event. A deny is a 200 with ``allowed: false`` and the reason.
"""

from __future__ import annotations

from fastapi import APIRouter

from keyplane.api.deps import CallerDep, ServicesDep
from keyplane.api.identity_schemas import (
    DecideBatchRequest,
    DecideBatchResponse,
    DecideRequest,
    DecisionOut,
)
from keyplane.api.v1.common import StoreId, error_responses
from keyplane.service import decisions
from keyplane.service.decisions import DecideItem

__all__ = ["router"]

router = APIRouter(prefix="/stores/{store}", tags=["decisions"])


@router.post(
    "/decide",
    operation_id="decide",
    responses=error_responses(422, 504),
    summary="Decide a request through its whole actor chain",
)
def decide(store: StoreId, body: DecideRequest, svc: ServicesDep, caller: CallerDep) -> DecisionOut:
    """Allowed only if every identity of the chain is active, every delegation link is
    active and covers the action, resource, tool and purpose, the subject and every actor
    hold the relation in the graph, and no guardrail forbids it — else the first failed
    condition, in words (`reason_user`) and as a `code`."""
    d = decisions.decide(
        svc,
        caller,
        store,
        body.subject,
        body.action,
        body.resource,
        actors=body.actors,
        purpose=body.purpose,
        context=body.context,
        delegation_id=body.delegation_id,
        tool=body.tool,
        model_id=body.model_id,
        at_least_as_fresh=body.at_least_as_fresh,
        resource_properties=body.resource_properties,
        subject_properties=body.subject_properties,
        token=body.token,
        token_audience=body.token_audience,
    )
    return DecisionOut.from_decision(d)


@router.post(
    "/decide:batch",
    operation_id="decide_batch",
    responses=error_responses(422, 504),
    summary="Decide many requests",
)
def decide_batch(
    store: StoreId, body: DecideBatchRequest, svc: ServicesDep, caller: CallerDep
) -> DecideBatchResponse:
    """All items at one revision; an item's error is that item's answer (`error` set)."""
    results = decisions.decide_batch(
        svc,
        caller,
        store,
        [
            DecideItem(
                subject=i.subject,
                action=i.action,
                resource=i.resource,
                actors=tuple(i.actors),
                purpose=i.purpose,
                context=i.context,
                delegation_id=i.delegation_id,
                tool=i.tool,
                resource_properties=i.resource_properties,
                subject_properties=i.subject_properties,
                correlation_id=i.correlation_id,
                token=i.token,
                token_audience=i.token_audience,
            )
            for i in body.items
        ],
        semantic=body.semantic,
        model_id=body.model_id,
        at_least_as_fresh=body.at_least_as_fresh,
    )
    return DecideBatchResponse(results=[DecisionOut.from_decision(d) for d in results])
