"""Wire form of access governance (issue 7): entitlements, access requests and review
campaigns (``/v1/stores/{store}/entitlements|access-requests|reviews``) — each call one
request and the decoder that rebuilds the record the embedded :class:`keyplane.Keyplane`
returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keyplane.governance.records import (
    AccessRequest,
    Approval,
    ApprovalRule,
    Entitlement,
    ReviewCampaign,
    ReviewFilter,
    ReviewItem,
)
from keyplane.ledger.events import LedgerEvent
from keyplane.sdk.wire import Call, _body, _none, _params, seconds, seg
from keyplane.service.access_requests import AccessRequestHistory
from keyplane.service.reviews import ReviewReport
from keyplane.storage.base import Page

__all__ = [
    "approve_access_request",
    "cancel_access_request",
    "close_review",
    "create_access_request",
    "create_entitlement",
    "create_review",
    "decide_review_item",
    "delete_entitlement",
    "deny_access_request",
    "get_access_request",
    "get_access_request_history",
    "get_entitlement",
    "get_review",
    "list_access_requests",
    "list_entitlements",
    "list_review_items",
    "list_reviews",
    "review_report",
    "revoke_access_request",
    "rule_json",
    "update_entitlement",
]

RuleLike = ApprovalRule | Mapping[str, Any]


def _path(store: str, rest: str) -> str:
    return f"/v1/stores/{seg(store)}{rest}"


def _opt(value: Any) -> float | None:
    return None if value is None else seconds(value)


def rule_json(r: RuleLike) -> dict[str, Any]:
    """An approval rule (record or mapping) as the API takes it."""
    if isinstance(r, ApprovalRule):
        return {
            "id": r.id,
            "when": r.when,
            "outcome": r.outcome,
            "approvers": list(r.approvers),
            "required": r.required,
        }
    return dict(r)


# ---------------------------------------------------------------------------- decoders


def rule(d: Mapping[str, Any]) -> ApprovalRule:
    return ApprovalRule(
        id=d["id"],
        when=d.get("when") or "true",
        outcome=d["outcome"],
        approvers=tuple(d.get("approvers") or ()),
        required=int(d.get("required") or 1),
    )


def entitlement(store: str) -> Any:
    def decode(d: Mapping[str, Any]) -> Entitlement:
        return Entitlement(
            store_id=store,
            id=d["id"],
            object=d["object"],
            relation=d["relation"],
            description=d.get("description") or "",
            owners=tuple(d.get("owners") or ()),
            risk=d["risk"],
            max_duration_seconds=int(d["max_duration_seconds"]),
            agents_may_request=bool(d.get("agents_may_request")),
            approval=tuple(rule(r) for r in d.get("approval") or ()),
            status=d["status"],
            created_by=d.get("created_by") or "",
            created_at=seconds(d["created_at"]),
            updated_at=seconds(d["updated_at"]),
            revision=int(d.get("revision") or 0),
        )

    return decode


def access_request(store: str) -> Any:
    def decode(d: Mapping[str, Any]) -> AccessRequest:
        return AccessRequest(
            id=d["id"],
            store_id=store,
            entitlement_id=d["entitlement_id"],
            object=d["object"],
            relation=d["relation"],
            beneficiary=d["beneficiary"],
            requester=d["requester"],
            caller=d.get("caller") or "",
            duration_seconds=int(d["duration_seconds"]),
            purpose=d.get("purpose") or "",
            justification=d.get("justification") or "",
            state=d["state"],
            created_at=seconds(d["created_at"]),
            pending_until=seconds(d["pending_until"]),
            route_approvers=tuple(d.get("route_approvers") or ()),
            required=int(d.get("required") or 1),
            rule_id=d.get("rule_id"),
            approvals=tuple(
                Approval(
                    approver=a["approver"],
                    decision=a["decision"],
                    comment=a.get("comment") or "",
                    at=seconds(a["at"]),
                    caller=a.get("caller") or "",
                )
                for a in d.get("approvals") or ()
            ),
            decided_at=_opt(d.get("decided_at")),
            grant_starts_at=_opt(d.get("grant_starts_at")),
            grant_expires_at=_opt(d.get("grant_expires_at")),
            ended_at=_opt(d.get("ended_at")),
            ended_by=d.get("ended_by"),
            end_reason=d.get("end_reason"),
            revision=int(d.get("revision") or 0),
        )

    return decode


def review(store: str) -> Any:
    def decode(d: Mapping[str, Any]) -> ReviewCampaign:
        return ReviewCampaign(
            id=d["id"],
            store_id=store,
            name=d["name"],
            filter=ReviewFilter.from_json(dict(d.get("filter") or {})),
            reviewer=d["reviewer"],
            default_decision=d["default_decision"],
            apply=d["apply"],
            state=d["state"],
            created_by=d.get("created_by") or "",
            created_at=seconds(d["created_at"]),
            due_at=_opt(d.get("due_at")),
            closed_at=_opt(d.get("closed_at")),
            revision=int(d.get("revision") or 0),
        )

    return decode


def review_item(store: str) -> Any:
    def decode(d: Mapping[str, Any]) -> ReviewItem:
        return _item(store, d)

    return decode


def _item(store: str, d: Mapping[str, Any]) -> ReviewItem:
    return ReviewItem(
        store_id=store,
        campaign_id=d["review_id"],
        id=int(d["id"]),
        user=d["user"],
        relation=d["relation"],
        object=d["object"],
        request_id=d.get("request_id"),
        reviewers=tuple(d.get("reviewers") or ()),
        last_used_at=_opt(d.get("last_used_at")),
        decision=d.get("decision"),
        decided_by=d.get("decided_by"),
        decided_at=_opt(d.get("decided_at")),
        comment=d.get("comment"),
        outcome=d.get("outcome"),
        applied_at=_opt(d.get("applied_at")),
        revision=int(d.get("revision") or 0),
    )


def _page(key: str, item: Any) -> Any:
    def decode(d: Mapping[str, Any]) -> Page[Any]:
        return Page([item(x) for x in d.get(key) or []], d.get("continuation_token") or None)

    return decode


# ---------------------------------------------------------------------------- entitlements


def create_entitlement(
    store: str,
    entitlement_id: str,
    object: str,
    relation: str,
    *,
    description: str,
    owners: Sequence[str],
    risk: str,
    max_duration_seconds: int,
    agents_may_request: bool,
    approval: Sequence[RuleLike],
    status: str,
) -> Call[Entitlement]:
    body = {
        "id": entitlement_id,
        "object": object,
        "relation": relation,
        "description": description,
        "owners": list(owners),
        "risk": risk,
        "max_duration_seconds": max_duration_seconds,
        "agents_may_request": agents_may_request,
        "approval": [rule_json(r) for r in approval],
        "status": status,
    }
    return Call("POST", _path(store, "/entitlements"), entitlement(store), body=body)


def list_entitlements(
    store: str, status: str | None, page_size: int, token: str | None
) -> Call[Page[Entitlement]]:
    params = _params(status=status, page_size=page_size, continuation_token=token)
    return Call(
        "GET",
        _path(store, "/entitlements"),
        _page("entitlements", entitlement(store)),
        params=params,
        idempotent=True,
    )


def get_entitlement(store: str, entitlement_id: str) -> Call[Entitlement]:
    return Call(
        "GET",
        _path(store, f"/entitlements/{seg(entitlement_id)}"),
        entitlement(store),
        idempotent=True,
    )


def update_entitlement(
    store: str,
    entitlement_id: str,
    *,
    description: str | None,
    owners: Sequence[str] | None,
    risk: str | None,
    max_duration_seconds: int | None,
    agents_may_request: bool | None,
    approval: Sequence[RuleLike] | None,
    status: str | None,
) -> Call[Entitlement]:
    body = _body(
        description=description,
        owners=None if owners is None else list(owners),
        risk=risk,
        max_duration_seconds=max_duration_seconds,
        agents_may_request=agents_may_request,
        approval=None if approval is None else [rule_json(r) for r in approval],
        status=status,
    )
    return Call(
        "PATCH", _path(store, f"/entitlements/{seg(entitlement_id)}"), entitlement(store), body=body
    )


def delete_entitlement(store: str, entitlement_id: str) -> Call[None]:
    return Call("DELETE", _path(store, f"/entitlements/{seg(entitlement_id)}"), _none)


# ---------------------------------------------------------------------------- requests


def _req(store: str, request_id: str, rest: str = "") -> str:
    return _path(store, f"/access-requests/{seg(request_id)}{rest}")


def create_access_request(
    store: str,
    entitlement_id: str,
    *,
    object: str | None,
    requester: str | None,
    token: str | None,
    beneficiary: str | None,
    duration_seconds: int | None,
    purpose: str | None,
    justification: str | None,
) -> Call[AccessRequest]:
    body = _body(
        entitlement=entitlement_id,
        object=object,
        requester=requester,
        token=token,
        beneficiary=beneficiary,
        duration_seconds=duration_seconds,
        purpose=purpose,
        justification=justification,
    )
    return Call("POST", _path(store, "/access-requests"), access_request(store), body=body)


def list_access_requests(
    store: str,
    *,
    state: str | None,
    entitlement_id: str | None,
    beneficiary: str | None,
    requester: str | None,
    approver: str | None,
    object: str | None,
    relation: str | None,
    page_size: int,
    token: str | None,
) -> Call[Page[AccessRequest]]:
    params = _params(
        state=state,
        entitlement=entitlement_id,
        beneficiary=beneficiary,
        requester=requester,
        approver=approver,
        object=object,
        relation=relation,
        page_size=page_size,
        continuation_token=token,
    )
    return Call(
        "GET",
        _path(store, "/access-requests"),
        _page("access_requests", access_request(store)),
        params=params,
        idempotent=True,
    )


def get_access_request(store: str, request_id: str) -> Call[AccessRequest]:
    return Call("GET", _req(store, request_id), access_request(store), idempotent=True)


def get_access_request_history(store: str, request_id: str) -> Call[AccessRequestHistory]:
    def decode(d: Mapping[str, Any]) -> AccessRequestHistory:
        events = [LedgerEvent.from_dict(e) for e in d.get("events") or []]
        return AccessRequestHistory(access_request(store)(d["access_request"]), events)

    return Call("GET", _req(store, request_id, "/history"), decode, idempotent=True)


def _decide(
    store: str, request_id: str, verb: str, approver: str | None, token: str | None,
    comment: str | None,
) -> Call[AccessRequest]:  # fmt: skip
    body = _body(approver=approver, token=token, comment=comment)
    return Call("POST", _req(store, request_id, f":{verb}"), access_request(store), body=body)


def approve_access_request(
    store: str, request_id: str, approver: str | None, token: str | None, comment: str | None
) -> Call[AccessRequest]:
    return _decide(store, request_id, "approve", approver, token, comment)


def deny_access_request(
    store: str, request_id: str, approver: str | None, token: str | None, comment: str | None
) -> Call[AccessRequest]:
    return _decide(store, request_id, "deny", approver, token, comment)


def cancel_access_request(
    store: str, request_id: str, requester: str | None, token: str | None, reason: str | None
) -> Call[AccessRequest]:
    body = _body(requester=requester, token=token, reason=reason)
    return Call("POST", _req(store, request_id, ":cancel"), access_request(store), body=body)


def revoke_access_request(
    store: str, request_id: str, actor: str | None, token: str | None, reason: str | None
) -> Call[AccessRequest]:
    body = _body(actor=actor, token=token, reason=reason)
    return Call("POST", _req(store, request_id, ":revoke"), access_request(store), body=body)


# ---------------------------------------------------------------------------- reviews


def _rev(store: str, review_id: str, rest: str = "") -> str:
    return _path(store, f"/reviews/{seg(review_id)}{rest}")


def _filter(f: ReviewFilter | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if f is None:
        return None
    d = f.to_json() if isinstance(f, ReviewFilter) else dict(f)
    return {k: v for k, v in d.items() if v is not None}


def create_review(
    store: str,
    name: str,
    *,
    filter: ReviewFilter | Mapping[str, Any] | None,
    reviewer: str,
    default_decision: str,
    apply: str,
    due_at: float | None,
) -> Call[ReviewCampaign]:
    body = _body(
        name=name,
        filter=_filter(filter),
        reviewer=reviewer,
        default_decision=default_decision,
        apply=apply,
        due_at=due_at,
    )
    return Call("POST", _path(store, "/reviews"), review(store), body=body)


def list_reviews(
    store: str, state: str | None, page_size: int, token: str | None
) -> Call[Page[ReviewCampaign]]:
    params = _params(state=state, page_size=page_size, continuation_token=token)
    return Call(
        "GET", _path(store, "/reviews"), _page("reviews", review(store)), params=params,
        idempotent=True,
    )  # fmt: skip


def get_review(store: str, review_id: str) -> Call[ReviewCampaign]:
    return Call("GET", _rev(store, review_id), review(store), idempotent=True)


def list_review_items(
    store: str, review_id: str, page_size: int, token: str | None
) -> Call[Page[ReviewItem]]:
    params = _params(page_size=page_size, continuation_token=token)
    return Call(
        "GET", _rev(store, review_id, "/items"), _page("items", review_item(store)), params=params,
        idempotent=True,
    )  # fmt: skip


def decide_review_item(
    store: str,
    review_id: str,
    item_id: int,
    decision: str,
    reviewer: str | None,
    token: str | None,
    comment: str | None,
) -> Call[ReviewItem]:
    body = _body(decision=decision, reviewer=reviewer, token=token, comment=comment)
    return Call(
        "POST",
        _rev(store, review_id, f"/items/{int(item_id)}:decide"),
        review_item(store),
        body=body,
    )


def close_review(store: str, review_id: str) -> Call[ReviewCampaign]:
    return Call("POST", _rev(store, review_id, ":close"), review(store))


def review_report(store: str, review_id: str) -> Call[ReviewReport]:
    def decode(d: Mapping[str, Any]) -> ReviewReport:
        return ReviewReport(
            review(store)(d["review"]), [_item(store, i) for i in d.get("items") or []]
        )

    return Call("GET", _rev(store, review_id, "/report"), decode, idempotent=True)
