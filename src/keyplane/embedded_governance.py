"""Access governance (issue 7) on the embedded :class:`keyplane.Keyplane`: entitlements,
access requests and review campaigns, each method one service call (the REST API, CLI
and MCP server call the same ones)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from keyplane.governance.records import (
    AccessRequest,
    ApprovalRule,
    Entitlement,
    ReviewCampaign,
    ReviewFilter,
    ReviewItem,
)
from keyplane.sdk.governance_wire import RuleLike, rule
from keyplane.service import access_requests, entitlements, reviews
from keyplane.service.access_requests import AccessRequestHistory
from keyplane.service.reviews import ReviewReport
from keyplane.storage.base import Page

if TYPE_CHECKING:
    from keyplane.service.auth import Caller
    from keyplane.service.context import Services

__all__ = ["GovernanceEmbedded"]


def _rules(approval: Sequence[RuleLike]) -> tuple[ApprovalRule, ...]:
    return tuple(r if isinstance(r, ApprovalRule) else rule(r) for r in approval)


def _given(**kw: Any) -> dict[str, Any]:
    """The changes given (None: unchanged; the service tells unset from None)."""
    return {k: v for k, v in kw.items() if v is not None}


class GovernanceEmbedded:
    """The governance methods of :class:`keyplane.Keyplane` (one of its bases)."""

    if TYPE_CHECKING:
        services: Services
        caller: Caller

        def _store(self, store: str | None) -> str: ...

    def create_entitlement(
        self,
        entitlement_id: str,
        object: str,
        relation: str,
        *,
        owners: Sequence[str],
        store: str | None = None,
        description: str = "",
        risk: str = "medium",
        max_duration_seconds: int = 3600,
        agents_may_request: bool = False,
        approval: Sequence[RuleLike] = (),
        status: str = "active",
    ) -> Entitlement:
        """A requestable entitlement: ``relation`` on ``object`` (``type:id`` or ``type:*``)."""
        return entitlements.create_entitlement(
            self.services,
            self.caller,
            self._store(store),
            entitlement_id,
            object=object,
            relation=relation,
            description=description,
            owners=tuple(owners),
            risk=risk,
            max_duration_seconds=max_duration_seconds,
            agents_may_request=agents_may_request,
            approval=_rules(approval),
            status=status,
        )

    def list_entitlements(
        self,
        *,
        store: str | None = None,
        status: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[Entitlement]:
        return entitlements.list_entitlements(
            self.services,
            self.caller,
            self._store(store),
            status=status,
            page_size=page_size,
            continuation_token=continuation_token,
        )

    def get_entitlement(self, entitlement_id: str, *, store: str | None = None) -> Entitlement:
        return entitlements.get_entitlement(
            self.services, self.caller, self._store(store), entitlement_id
        )

    def update_entitlement(
        self,
        entitlement_id: str,
        *,
        store: str | None = None,
        description: str | None = None,
        owners: Sequence[str] | None = None,
        risk: str | None = None,
        max_duration_seconds: int | None = None,
        agents_may_request: bool | None = None,
        approval: Sequence[RuleLike] | None = None,
        status: str | None = None,
    ) -> Entitlement:
        """Change what is given (``approval`` replaces the policy as a whole)."""
        return entitlements.update_entitlement(
            self.services,
            self.caller,
            self._store(store),
            entitlement_id,
            **_given(
                description=description,
                owners=None if owners is None else tuple(owners),
                risk=risk,
                max_duration_seconds=max_duration_seconds,
                agents_may_request=agents_may_request,
                approval=None if approval is None else _rules(approval),
                status=status,
            ),
        )

    def delete_entitlement(self, entitlement_id: str, *, store: str | None = None) -> None:
        entitlements.delete_entitlement(
            self.services, self.caller, self._store(store), entitlement_id
        )

    def create_access_request(
        self,
        entitlement_id: str,
        *,
        duration_seconds: int | None = None,
        store: str | None = None,
        object: str | None = None,
        requester: str | None = None,
        token: str | None = None,
        beneficiary: str | None = None,
        purpose: str | None = None,
        justification: str | None = None,
    ) -> AccessRequest:
        """File a request; the approval policy decides at once (``active``, ``denied`` or ``pending``)."""
        return access_requests.create_access_request(
            self.services,
            self.caller,
            self._store(store),
            entitlement_id,
            object=object,
            requester=requester,
            token=token,
            beneficiary=beneficiary,
            duration_seconds=duration_seconds,
            purpose=purpose,
            justification=justification,
        )

    def list_access_requests(
        self,
        *,
        store: str | None = None,
        state: str | None = None,
        entitlement_id: str | None = None,
        beneficiary: str | None = None,
        requester: str | None = None,
        approver: str | None = None,
        object: str | None = None,
        relation: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[AccessRequest]:
        return access_requests.list_access_requests(
            self.services,
            self.caller,
            self._store(store),
            state=state,
            entitlement_id=entitlement_id,
            beneficiary=beneficiary,
            requester=requester,
            approver=approver,
            object=object,
            relation=relation,
            page_size=page_size,
            continuation_token=continuation_token,
        )

    def get_access_request(self, request_id: str, *, store: str | None = None) -> AccessRequest:
        return access_requests.get_access_request(
            self.services, self.caller, self._store(store), request_id
        )

    def get_access_request_history(
        self, request_id: str, *, store: str | None = None
    ) -> AccessRequestHistory:
        """The request and its ledger events, oldest first."""
        return access_requests.get_access_request_history(
            self.services, self.caller, self._store(store), request_id
        )

    def approve_access_request(
        self,
        request_id: str,
        *,
        store: str | None = None,
        approver: str | None = None,
        token: str | None = None,
        comment: str | None = None,
    ) -> AccessRequest:
        return access_requests.approve_access_request(
            self.services,
            self.caller,
            self._store(store),
            request_id,
            approver=approver,
            token=token,
            comment=comment,
        )

    def deny_access_request(
        self,
        request_id: str,
        *,
        store: str | None = None,
        approver: str | None = None,
        token: str | None = None,
        comment: str | None = None,
    ) -> AccessRequest:
        return access_requests.deny_access_request(
            self.services,
            self.caller,
            self._store(store),
            request_id,
            approver=approver,
            token=token,
            comment=comment,
        )

    def cancel_access_request(
        self,
        request_id: str,
        *,
        store: str | None = None,
        requester: str | None = None,
        token: str | None = None,
        reason: str | None = None,
    ) -> AccessRequest:
        return access_requests.cancel_access_request(
            self.services,
            self.caller,
            self._store(store),
            request_id,
            requester=requester,
            token=token,
            reason=reason,
        )

    def revoke_access_request(
        self,
        request_id: str,
        *,
        store: str | None = None,
        actor: str | None = None,
        token: str | None = None,
        reason: str | None = None,
    ) -> AccessRequest:
        """End an active grant now (its tuple deleted); ``actor``/``token`` name who ends it."""
        return access_requests.revoke_access_request(
            self.services,
            self.caller,
            self._store(store),
            request_id,
            actor=actor,
            token=token,
            reason=reason,
        )

    def create_review(
        self,
        name: str,
        *,
        store: str | None = None,
        filter: ReviewFilter | Mapping[str, Any] | None = None,
        reviewer: str = "beneficiary_owners",
        default_decision: str = "certify",
        apply: str = "on_close",
        due_at: float | None = None,
    ) -> ReviewCampaign:
        """A review campaign over the grants ``filter`` selects (now)."""
        return reviews.create_review(
            self.services,
            self.caller,
            self._store(store),
            name=name,
            filter=filter,
            reviewer=reviewer,
            default_decision=default_decision,
            apply=apply,
            due_at=due_at,
        )

    def list_reviews(
        self,
        *,
        store: str | None = None,
        state: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[ReviewCampaign]:
        return reviews.list_reviews(
            self.services,
            self.caller,
            self._store(store),
            state=state,
            page_size=page_size,
            continuation_token=continuation_token,
        )

    def get_review(self, review_id: str, *, store: str | None = None) -> ReviewCampaign:
        return reviews.get_review(self.services, self.caller, self._store(store), review_id)

    def list_review_items(
        self,
        review_id: str,
        *,
        store: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[ReviewItem]:
        return reviews.list_review_items(
            self.services,
            self.caller,
            self._store(store),
            review_id,
            page_size=page_size,
            continuation_token=continuation_token,
        )

    def decide_review_item(
        self,
        review_id: str,
        item_id: int,
        decision: str,
        *,
        store: str | None = None,
        reviewer: str | None = None,
        token: str | None = None,
        comment: str | None = None,
    ) -> ReviewItem:
        """``certify`` or ``revoke`` one item, as one of its reviewers."""
        return reviews.decide_review_item(
            self.services,
            self.caller,
            self._store(store),
            review_id,
            item_id,
            decision,
            reviewer=reviewer,
            token=token,
            comment=comment,
        )

    def close_review(self, review_id: str, *, store: str | None = None) -> ReviewCampaign:
        """Close: unanswered items take the default; revocations are applied."""
        return reviews.close_review(self.services, self.caller, self._store(store), review_id)

    def review_report(self, review_id: str, *, store: str | None = None) -> ReviewReport:
        """The campaign and every item with its outcome."""
        return reviews.review_report(self.services, self.caller, self._store(store), review_id)
