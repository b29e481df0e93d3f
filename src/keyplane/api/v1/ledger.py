"""The provenance ledger over HTTP: query events, one decision's provenance, export
(JSON Lines or OCSF, streamed), verify, and the public keys that verify it offline.

A thin surface over :mod:`keyplane.service.ledger` (needs an admin or auditor key, or a
writer key of the store). See ``docs/ledger.md``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import StreamingResponse

from keyplane.api.deps import CallerDep, ServicesDep
from keyplane.api.ledger_schemas import (
    CreateWebhookRequest,
    DecisionProvenance,
    EventPageOut,
    LedgerEventOut,
    LedgerKeyOut,
    LedgerKeysOut,
    LedgerVerifyOut,
    PruneOut,
    RetentionOut,
    RetentionRequest,
    WebhookList,
    WebhookOut,
    WebhookWithSecret,
)
from keyplane.api.v1.common import StoreId, error_responses
from keyplane.service import ledger, ledger_admin
from keyplane.service.inputs import MAX_REVISION
from keyplane.service.ledger_admin import Webhook

__all__ = ["router"]

router = APIRouter(tags=["ledger"])

Since = Annotated[
    float | None,
    Query(description="Only events at or after this time (seconds since the epoch)."),
]
Until = Annotated[
    float | None, Query(description="Only events before this time (seconds since the epoch).")
]
Text = Annotated[str | None, Query(max_length=1024)]


@router.get(
    "/stores/{store}/ledger/events",
    operation_id="query_events",
    responses=error_responses(),
    summary="Query ledger events",
)
def query_events(
    store: StoreId,
    svc: ServicesDep,
    caller: CallerDep,
    since: Since = None,
    until: Until = None,
    type: Annotated[
        list[str] | None,
        Query(description="Event types (repeatable); `decision.*` names a family."),
    ] = None,
    subject: Annotated[str | None, Query(max_length=1024, description="The subject.")] = None,
    actor: Annotated[
        str | None, Query(max_length=1024, description="An actor anywhere in the actor chain.")
    ] = None,
    resource: Annotated[str | None, Query(max_length=1024, description="The object.")] = None,
    action: Annotated[
        str | None, Query(max_length=1024, description="The relation or operation.")
    ] = None,
    outcome: Annotated[
        Literal["allow", "deny", "error", "ok"] | None, Query(description="The outcome.")
    ] = None,
    purpose: Text = None,
    request_id: Text = None,
    decision_id: Text = None,
    cursor: Annotated[
        str | None, Query(max_length=32, description="The previous page's `next_cursor`.")
    ] = None,
    limit: Annotated[
        int, Query(description="Events per page (at most KEYPLANE_MAX_PAGE_SIZE).")
    ] = 100,
) -> EventPageOut:
    """The store's events matching every given filter, oldest first, one page."""
    page = ledger.query_events(
        svc,
        caller,
        store,
        since=since,
        until=until,
        types=type,
        subject=subject,
        actor=actor,
        resource=resource,
        action=action,
        outcome=outcome,
        purpose=purpose,
        request_id=request_id,
        decision_id=decision_id,
        cursor=cursor,
        limit=limit,
    )
    return EventPageOut(
        events=[LedgerEventOut.from_event(e) for e in page.events], next_cursor=page.next_cursor
    )


@router.get(
    "/ledger/decisions/{decision_id}",
    operation_id="get_decision",
    responses=error_responses(),
    summary="Reconstruct a decision's provenance",
)
def get_decision(
    decision_id: Annotated[str, Path(min_length=1, max_length=64)],
    svc: ServicesDep,
    caller: CallerDep,
) -> DecisionProvenance:
    """Who asked, about whom, through which actors, for which purpose, under which model
    and policy versions, at which revision — and the path that granted it (explain
    replayed over the graph as it was at that revision)."""
    return DecisionProvenance.model_validate(
        ledger.get_decision(svc, caller, decision_id).to_dict()
    )


@router.get(
    "/stores/{store}/ledger/export",
    operation_id="export_events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": (
                "JSON Lines: `jsonl` is the verifiable export (events with their hashes, "
                "checkpoints, public keys; `keyplane ledger verify --file`), `ocsf` one "
                "OCSF event per line."
            ),
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        },
        **error_responses(),
    },
    summary="Export the ledger (JSON Lines or OCSF)",
)
def export_events(
    store: StoreId,
    svc: ServicesDep,
    caller: CallerDep,
    format: Annotated[Literal["jsonl", "ocsf"], Query(description="`jsonl` or `ocsf`.")] = "jsonl",
    after_seq: Annotated[
        int, Query(ge=0, le=MAX_REVISION, description="Start after this seq.")
    ] = 0,
    since: Since = None,
) -> StreamingResponse:
    """Streamed; errors found before the first line are the usual error envelope."""
    lines = ledger.export_events(
        svc, caller, store, format=format, after_seq=after_seq, since=since
    )
    return StreamingResponse(lines, media_type="application/x-ndjson")


@router.get(
    "/stores/{store}/ledger/verify",
    operation_id="verify_ledger",
    responses=error_responses(),
    summary="Verify the store's ledger",
)
def verify_ledger(store: StoreId, svc: ServicesDep, caller: CallerDep) -> LedgerVerifyOut:
    """Recompute every hash and check the signed checkpoints: the first event modified,
    deleted, inserted or reordered, if any, and how many events are not yet signed.
    (Auditors who do not trust the server verify an export offline instead.)"""
    return LedgerVerifyOut.from_report(ledger.verify_ledger(svc, caller, store))


@router.get(
    "/stores/{store}/ledger/keys",
    operation_id="ledger_public_keys",
    responses=error_responses(),
    summary="The ledger's public keys",
)
def ledger_public_keys(store: StoreId, svc: ServicesDep, caller: CallerDep) -> LedgerKeysOut:
    """The Ed25519 public keys the store's checkpoints are signed with (never a secret)."""
    return LedgerKeysOut(
        keys=[
            LedgerKeyOut(
                key_id=k.key_id,
                algorithm=k.algorithm,
                public_key=k.public_key,
                created_at=k.created_at,
            )
            for k in ledger.ledger_public_keys(svc, caller, store)
        ]
    )


# ------------------------------------------------------------------------ administration


def _hook(h: Webhook) -> WebhookOut:
    return WebhookOut.model_validate(h.to_dict())


@router.put(
    "/stores/{store}/ledger/retention",
    operation_id="set_ledger_retention",
    responses=error_responses(),
    summary="Set the ledger's retention",
)
def set_ledger_retention(
    store: StoreId, body: RetentionRequest, svc: ServicesDep, caller: CallerDep
) -> RetentionOut:
    """Keep events younger than `max_age_days` and/or the newest `max_events` (both
    omitted: keep everything). Applied by prune. Admin only."""
    r = ledger_admin.set_ledger_retention(
        svc, caller, store, max_age_days=body.max_age_days, max_events=body.max_events
    )
    return RetentionOut(
        store=r.store, max_age_days=r.max_age_days, max_events=r.max_events, updated_at=r.updated_at
    )


@router.post(
    "/stores/{store}/ledger/prune",
    operation_id="prune_ledger",
    responses=error_responses(),
    summary="Prune the ledger",
)
def prune_ledger(store: StoreId, svc: ServicesDep, caller: CallerDep) -> PruneOut:
    """Delete the events the retention no longer keeps, behind a signed anchor checkpoint
    from which the rest still verifies. Admin only."""
    return PruneOut.model_validate(ledger_admin.prune_ledger(svc, caller, store).to_dict())


@router.post(
    "/stores/{store}/ledger/webhooks",
    operation_id="create_webhook",
    status_code=201,
    responses=error_responses(),
    summary="Stream the ledger to a webhook",
)
def create_webhook(
    store: StoreId, body: CreateWebhookRequest, svc: ServicesDep, caller: CallerDep
) -> WebhookWithSecret:
    """Subscribe a URL: events are POSTed in order, signed (`X-Keyplane-Signature`), at
    least once; only the `event_types` given, if any. The secret is in this response only.
    Admin only."""
    hook, secret = ledger_admin.create_webhook(
        svc,
        caller,
        store,
        body.url,
        secret=body.secret,
        from_start=body.from_start,
        event_types=body.event_types,
    )
    return WebhookWithSecret(webhook=_hook(hook), secret=secret)


@router.get(
    "/stores/{store}/ledger/webhooks",
    operation_id="list_webhooks",
    responses=error_responses(),
    summary="List the ledger's webhooks",
)
def list_webhooks(store: StoreId, svc: ServicesDep, caller: CallerDep) -> WebhookList:
    """Each subscription with its delivery state (never its secret). Admin only."""
    return WebhookList(webhooks=[_hook(h) for h in ledger_admin.list_webhooks(svc, caller, store)])


@router.delete(
    "/stores/{store}/ledger/webhooks/{webhook_id}",
    operation_id="delete_webhook",
    status_code=204,
    response_class=Response,
    responses=error_responses(),
    summary="Delete a ledger webhook",
)
def delete_webhook(
    store: StoreId,
    webhook_id: Annotated[str, Path(min_length=1, max_length=64)],
    svc: ServicesDep,
    caller: CallerDep,
) -> Response:
    ledger_admin.delete_webhook(svc, caller, store, webhook_id)
    return Response(status_code=204)
