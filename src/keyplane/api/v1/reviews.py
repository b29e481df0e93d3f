"""``/v1/stores/{store}/reviews`` — access review campaigns (issue 7 §5).

A thin surface over :mod:`keyplane.service.reviews`: create a campaign (its items are
selected at creation), list, get, ``/items``, ``/items/{item}:decide`` (certify or
revoke), ``:close`` (revocations applied, unanswered items defaulted) and ``/report``.
See ``docs/access-requests.md``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from keyplane.api.deps import CallerDep, ServicesDep
from keyplane.api.governance_schemas import (
    CreateReviewRequest,
    DecideReviewItemRequest,
    ReviewItemList,
    ReviewItemOut,
    ReviewList,
    ReviewOut,
    ReviewReportOut,
)
from keyplane.api.identity_schemas import ts
from keyplane.api.v1.common import PageSize, StoreId, Token, error_responses
from keyplane.service import reviews

__all__ = ["router"]

router = APIRouter(prefix="/stores/{store}/reviews", tags=["reviews"])

ReviewId = Annotated[str, Path(min_length=1, max_length=64, description="The campaign id.")]
ItemId = Annotated[int, Path(ge=1, le=2**31, description="The item's number in its campaign.")]


@router.post(
    "",
    operation_id="create_review",
    status_code=201,
    responses=error_responses(),
    summary="Create a review campaign",
)
def create_review(
    store: StoreId, body: CreateReviewRequest, svc: ServicesDep, caller: CallerDep
) -> ReviewOut:
    """Select the grants matching `filter` (now) and assign each its reviewers by rule."""
    c = reviews.create_review(
        svc, caller, store, name=body.name,
        filter=body.filter.model_dump(exclude_none=True), reviewer=body.reviewer,
        default_decision=body.default_decision, apply=body.apply, due_at=ts(body.due_at),
    )  # fmt: skip
    return ReviewOut.from_review(c)


@router.get("", operation_id="list_reviews", responses=error_responses(), summary="List reviews")
def list_reviews(
    store: StoreId,
    svc: ServicesDep,
    caller: CallerDep,
    state: Annotated[
        Literal["open", "closed"] | None, Query(description="Only this state.")
    ] = None,
    page_size: PageSize = 50,
    continuation_token: Token = None,
) -> ReviewList:
    """The store's review campaigns, one page at a time."""
    page = reviews.list_reviews(
        svc, caller, store, state=state, page_size=page_size,
        continuation_token=continuation_token,
    )  # fmt: skip
    return ReviewList(
        reviews=[ReviewOut.from_review(c) for c in page.items],
        continuation_token=page.continuation_token,
    )


@router.get(
    "/{review_id}", operation_id="get_review", responses=error_responses(), summary="Get a review"
)
def get_review(
    store: StoreId, review_id: ReviewId, svc: ServicesDep, caller: CallerDep
) -> ReviewOut:
    """404 `review_not_found` when the store has no such campaign."""
    return ReviewOut.from_review(reviews.get_review(svc, caller, store, review_id))


@router.get(
    "/{review_id}/items",
    operation_id="list_review_items",
    responses=error_responses(),
    summary="List a review's items",
)
def list_review_items(
    store: StoreId,
    review_id: ReviewId,
    svc: ServicesDep,
    caller: CallerDep,
    page_size: PageSize = 50,
    continuation_token: Token = None,
) -> ReviewItemList:
    """The campaign's items (a user's relation on an object each), one page at a time."""
    page = reviews.list_review_items(
        svc, caller, store, review_id, page_size=page_size,
        continuation_token=continuation_token,
    )  # fmt: skip
    return ReviewItemList(
        items=[ReviewItemOut.from_item(i) for i in page.items],
        continuation_token=page.continuation_token,
    )


@router.post(
    "/{review_id}/items/{item_id}:decide",
    operation_id="decide_review_item",
    responses=error_responses(409),
    summary="Certify or revoke a review item",
)
def decide_review_item(
    store: StoreId,
    review_id: ReviewId,
    item_id: ItemId,
    body: DecideReviewItemRequest,
    svc: ServicesDep,
    caller: CallerDep,
) -> ReviewItemOut:
    """A reviewer's decision (one of the item's reviewers; never an agent, never the
    item's own user). With `apply: immediately` a revoke takes effect now."""
    i = reviews.decide_review_item(
        svc, caller, store, review_id, item_id, body.decision, reviewer=body.reviewer,
        token=body.token, comment=body.comment,
    )  # fmt: skip
    return ReviewItemOut.from_item(i)


@router.post(
    "/{review_id}:close",
    operation_id="close_review",
    responses=error_responses(409),
    summary="Close a review",
)
def close_review(
    store: StoreId, review_id: ReviewId, svc: ServicesDep, caller: CallerDep
) -> ReviewOut:
    """Unanswered items take the default decision; revocations are applied (a grant's
    request becomes `revoked`, a plain tuple is deleted)."""
    return ReviewOut.from_review(reviews.close_review(svc, caller, store, review_id))


@router.get(
    "/{review_id}/report",
    operation_id="review_report",
    responses=error_responses(),
    summary="A review's report",
)
def review_report(
    store: StoreId, review_id: ReviewId, svc: ServicesDep, caller: CallerDep
) -> ReviewReportOut:
    """Every item with its decision, who decided, and its outcome."""
    return ReviewReportOut.of(reviews.review_report(svc, caller, store, review_id))
