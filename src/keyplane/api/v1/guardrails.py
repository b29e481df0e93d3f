"""``/v1/stores/{store}/guardrails`` — the store's versioned guardrail rules (CEL), and a
dry run of a candidate set over the last recorded decisions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from keyplane.api.deps import CallerDep, ServicesDep
from keyplane.api.identity_schemas import (
    DryRunRequest,
    GuardrailDryRunOut,
    GuardrailSetOut,
    GuardrailVersionList,
    PutGuardrailsRequest,
)
from keyplane.api.v1.common import PageSize, StoreId, Token, error_responses
from keyplane.service import guardrails

__all__ = ["router"]

router = APIRouter(prefix="/stores/{store}", tags=["guardrails"])


@router.put(
    "/guardrails",
    operation_id="put_guardrails",
    responses=error_responses(),
    summary="Write a new guardrail version",
)
def put_guardrails(
    store: StoreId, body: PutGuardrailsRequest, svc: ServicesDep, caller: CallerDep
) -> GuardrailSetOut:
    """The whole rule set, stored as the next version (earlier ones are kept) and in force
    for every decision from now. 400 `invalid_guardrail` for a CEL syntax or type error, an
    unknown variable or a repeated id: nothing is stored then. Admin only."""
    return GuardrailSetOut.from_set(
        guardrails.put_guardrails(svc, caller, store, [r.to_record() for r in body.rules])
    )


@router.get(
    "/guardrails",
    operation_id="get_guardrails",
    responses=error_responses(),
    summary="Get the guardrails",
)
def get_guardrails(
    store: StoreId,
    svc: ServicesDep,
    caller: CallerDep,
    version: Annotated[
        int | None, Query(ge=1, le=2**31, description="This version (default: the latest).")
    ] = None,
) -> GuardrailSetOut:
    """The latest rule set (`version` 0 and no rules when none was ever written), or one
    version."""
    return GuardrailSetOut.from_set(guardrails.get_guardrails(svc, caller, store, version=version))


@router.get(
    "/guardrails/versions",
    operation_id="list_guardrail_versions",
    responses=error_responses(),
    summary="List guardrail versions",
)
def list_guardrail_versions(
    store: StoreId,
    svc: ServicesDep,
    caller: CallerDep,
    page_size: PageSize = 50,
    continuation_token: Token = None,
) -> GuardrailVersionList:
    """Every version, newest first."""
    page = guardrails.list_guardrail_versions(
        svc, caller, store, page_size=page_size, continuation_token=continuation_token
    )
    return GuardrailVersionList(
        versions=[GuardrailSetOut.from_set(g) for g in page.items],
        continuation_token=page.continuation_token,
    )


@router.post(
    "/guardrails:dry-run",
    operation_id="dry_run_guardrails",
    responses=error_responses(),
    summary="Dry-run a candidate guardrail set",
)
def dry_run_guardrails(
    store: StoreId, body: DryRunRequest, svc: ServicesDep, caller: CallerDep
) -> GuardrailDryRunOut:
    """How `rules` would have changed the last `last` recorded decisions: counts, and each
    decision that would flip (its event id, old and new outcome, the rules that fired).
    Stores nothing."""
    return GuardrailDryRunOut.from_dry_run(
        guardrails.dry_run_guardrails(
            svc, caller, store, [r.to_record() for r in body.rules], last=body.last
        )
    )
