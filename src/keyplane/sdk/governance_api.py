"""Access governance (issue 7) in the Python interface: entitlements, access requests and
review campaigns.

:class:`GovernanceAPI` (and its coroutine twin :class:`AsyncGovernanceAPI`) is the part of
:class:`keyplane.sdk.KeyplaneAPI` these operations make up; :class:`GovernanceClient` and
:class:`AsyncGovernanceClient` implement them over HTTP for :class:`keyplane.Client` and
:class:`keyplane.AsyncClient` (the embedded twin is
:class:`keyplane.embedded_governance.GovernanceEmbedded`). Every method takes ``store=``;
an identity acting is named (``requester=``, ``approver=``, ``reviewer=``, ``actor=``) or
given by its access ``token=``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from keyplane.governance.records import (
    AccessRequest,
    Entitlement,
    ReviewCampaign,
    ReviewFilter,
    ReviewItem,
)
from keyplane.sdk import governance_wire as gw
from keyplane.sdk.governance_wire import RuleLike
from keyplane.service.access_requests import AccessRequestHistory
from keyplane.service.reviews import ReviewReport
from keyplane.storage.base import Page

if TYPE_CHECKING:
    from keyplane.sdk.wire import Call

__all__ = [
    "AsyncGovernanceAPI",
    "AsyncGovernanceClient",
    "GovernanceAPI",
    "GovernanceClient",
    "RuleLike",
]

R = TypeVar("R")


class GovernanceAPI(Protocol):
    """Entitlements, access requests and reviews; ``store=None`` means the default store."""

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
    ) -> Entitlement: ...

    def list_entitlements(
        self,
        *,
        store: str | None = None,
        status: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[Entitlement]: ...

    def get_entitlement(self, entitlement_id: str, *, store: str | None = None) -> Entitlement: ...

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
    ) -> Entitlement: ...

    def delete_entitlement(self, entitlement_id: str, *, store: str | None = None) -> None: ...

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
    ) -> AccessRequest: ...

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
    ) -> Page[AccessRequest]: ...

    def get_access_request(self, request_id: str, *, store: str | None = None) -> AccessRequest: ...

    def get_access_request_history(
        self, request_id: str, *, store: str | None = None
    ) -> AccessRequestHistory: ...

    def approve_access_request(
        self,
        request_id: str,
        *,
        store: str | None = None,
        approver: str | None = None,
        token: str | None = None,
        comment: str | None = None,
    ) -> AccessRequest: ...

    def deny_access_request(
        self,
        request_id: str,
        *,
        store: str | None = None,
        approver: str | None = None,
        token: str | None = None,
        comment: str | None = None,
    ) -> AccessRequest: ...

    def cancel_access_request(
        self,
        request_id: str,
        *,
        store: str | None = None,
        requester: str | None = None,
        token: str | None = None,
        reason: str | None = None,
    ) -> AccessRequest: ...

    def revoke_access_request(
        self,
        request_id: str,
        *,
        store: str | None = None,
        actor: str | None = None,
        token: str | None = None,
        reason: str | None = None,
    ) -> AccessRequest: ...

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
    ) -> ReviewCampaign: ...

    def list_reviews(
        self,
        *,
        store: str | None = None,
        state: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[ReviewCampaign]: ...

    def get_review(self, review_id: str, *, store: str | None = None) -> ReviewCampaign: ...

    def list_review_items(
        self,
        review_id: str,
        *,
        store: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[ReviewItem]: ...

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
    ) -> ReviewItem: ...

    def close_review(self, review_id: str, *, store: str | None = None) -> ReviewCampaign: ...

    def review_report(self, review_id: str, *, store: str | None = None) -> ReviewReport: ...


class AsyncGovernanceAPI(Protocol):
    """The coroutine twin of :class:`GovernanceAPI`."""

    async def create_entitlement(
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
    ) -> Entitlement: ...

    async def list_entitlements(
        self,
        *,
        store: str | None = None,
        status: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[Entitlement]: ...

    async def get_entitlement(
        self, entitlement_id: str, *, store: str | None = None
    ) -> Entitlement: ...

    async def update_entitlement(
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
    ) -> Entitlement: ...

    async def delete_entitlement(
        self, entitlement_id: str, *, store: str | None = None
    ) -> None: ...

    async def create_access_request(
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
    ) -> AccessRequest: ...

    async def list_access_requests(
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
    ) -> Page[AccessRequest]: ...

    async def get_access_request(
        self, request_id: str, *, store: str | None = None
    ) -> AccessRequest: ...

    async def get_access_request_history(
        self, request_id: str, *, store: str | None = None
    ) -> AccessRequestHistory: ...

    async def approve_access_request(
        self,
        request_id: str,
        *,
        store: str | None = None,
        approver: str | None = None,
        token: str | None = None,
        comment: str | None = None,
    ) -> AccessRequest: ...

    async def deny_access_request(
        self,
        request_id: str,
        *,
        store: str | None = None,
        approver: str | None = None,
        token: str | None = None,
        comment: str | None = None,
    ) -> AccessRequest: ...

    async def cancel_access_request(
        self,
        request_id: str,
        *,
        store: str | None = None,
        requester: str | None = None,
        token: str | None = None,
        reason: str | None = None,
    ) -> AccessRequest: ...

    async def revoke_access_request(
        self,
        request_id: str,
        *,
        store: str | None = None,
        actor: str | None = None,
        token: str | None = None,
        reason: str | None = None,
    ) -> AccessRequest: ...

    async def create_review(
        self,
        name: str,
        *,
        store: str | None = None,
        filter: ReviewFilter | Mapping[str, Any] | None = None,
        reviewer: str = "beneficiary_owners",
        default_decision: str = "certify",
        apply: str = "on_close",
        due_at: float | None = None,
    ) -> ReviewCampaign: ...

    async def list_reviews(
        self,
        *,
        store: str | None = None,
        state: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[ReviewCampaign]: ...

    async def get_review(self, review_id: str, *, store: str | None = None) -> ReviewCampaign: ...

    async def list_review_items(
        self,
        review_id: str,
        *,
        store: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[ReviewItem]: ...

    async def decide_review_item(
        self,
        review_id: str,
        item_id: int,
        decision: str,
        *,
        store: str | None = None,
        reviewer: str | None = None,
        token: str | None = None,
        comment: str | None = None,
    ) -> ReviewItem: ...

    async def close_review(self, review_id: str, *, store: str | None = None) -> ReviewCampaign: ...

    async def review_report(self, review_id: str, *, store: str | None = None) -> ReviewReport: ...


class GovernanceClient:
    """:class:`GovernanceAPI` over HTTP (a base of :class:`keyplane.Client`)."""

    if TYPE_CHECKING:

        def _send(self, call: Call[R]) -> R: ...

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
        return self._send(
            gw.create_entitlement(
                self._store(store),
                entitlement_id,
                object,
                relation,
                description=description,
                owners=owners,
                risk=risk,
                max_duration_seconds=max_duration_seconds,
                agents_may_request=agents_may_request,
                approval=approval,
                status=status,
            )
        )

    def list_entitlements(
        self,
        *,
        store: str | None = None,
        status: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[Entitlement]:
        return self._send(
            gw.list_entitlements(self._store(store), status, page_size, continuation_token)
        )

    def get_entitlement(self, entitlement_id: str, *, store: str | None = None) -> Entitlement:
        return self._send(gw.get_entitlement(self._store(store), entitlement_id))

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
        return self._send(
            gw.update_entitlement(
                self._store(store),
                entitlement_id,
                description=description,
                owners=owners,
                risk=risk,
                max_duration_seconds=max_duration_seconds,
                agents_may_request=agents_may_request,
                approval=approval,
                status=status,
            )
        )

    def delete_entitlement(self, entitlement_id: str, *, store: str | None = None) -> None:
        self._send(gw.delete_entitlement(self._store(store), entitlement_id))

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
        return self._send(
            gw.create_access_request(
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
        return self._send(
            gw.list_access_requests(
                self._store(store),
                state=state,
                entitlement_id=entitlement_id,
                beneficiary=beneficiary,
                requester=requester,
                approver=approver,
                object=object,
                relation=relation,
                page_size=page_size,
                token=continuation_token,
            )
        )

    def get_access_request(self, request_id: str, *, store: str | None = None) -> AccessRequest:
        return self._send(gw.get_access_request(self._store(store), request_id))

    def get_access_request_history(
        self, request_id: str, *, store: str | None = None
    ) -> AccessRequestHistory:
        """The request and its ledger events, oldest first."""
        return self._send(gw.get_access_request_history(self._store(store), request_id))

    def approve_access_request(
        self,
        request_id: str,
        *,
        store: str | None = None,
        approver: str | None = None,
        token: str | None = None,
        comment: str | None = None,
    ) -> AccessRequest:
        return self._send(
            gw.approve_access_request(self._store(store), request_id, approver, token, comment)
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
        return self._send(
            gw.deny_access_request(self._store(store), request_id, approver, token, comment)
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
        return self._send(
            gw.cancel_access_request(self._store(store), request_id, requester, token, reason)
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
        return self._send(
            gw.revoke_access_request(self._store(store), request_id, actor, token, reason)
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
        return self._send(
            gw.create_review(
                self._store(store),
                name,
                filter=filter,
                reviewer=reviewer,
                default_decision=default_decision,
                apply=apply,
                due_at=due_at,
            )
        )

    def list_reviews(
        self,
        *,
        store: str | None = None,
        state: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[ReviewCampaign]:
        return self._send(gw.list_reviews(self._store(store), state, page_size, continuation_token))

    def get_review(self, review_id: str, *, store: str | None = None) -> ReviewCampaign:
        return self._send(gw.get_review(self._store(store), review_id))

    def list_review_items(
        self,
        review_id: str,
        *,
        store: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[ReviewItem]:
        return self._send(
            gw.list_review_items(self._store(store), review_id, page_size, continuation_token)
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
        return self._send(
            gw.decide_review_item(
                self._store(store), review_id, item_id, decision, reviewer, token, comment
            )
        )

    def close_review(self, review_id: str, *, store: str | None = None) -> ReviewCampaign:
        """Close: unanswered items take the default; revocations are applied."""
        return self._send(gw.close_review(self._store(store), review_id))

    def review_report(self, review_id: str, *, store: str | None = None) -> ReviewReport:
        """The campaign and every item with its outcome."""
        return self._send(gw.review_report(self._store(store), review_id))


class AsyncGovernanceClient:
    """:class:`AsyncGovernanceAPI` over HTTP (a base of :class:`keyplane.AsyncClient`)."""

    if TYPE_CHECKING:

        async def _send(self, call: Call[R]) -> R: ...

        def _store(self, store: str | None) -> str: ...

    async def create_entitlement(
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
        return await self._send(
            gw.create_entitlement(
                self._store(store),
                entitlement_id,
                object,
                relation,
                description=description,
                owners=owners,
                risk=risk,
                max_duration_seconds=max_duration_seconds,
                agents_may_request=agents_may_request,
                approval=approval,
                status=status,
            )
        )

    async def list_entitlements(
        self,
        *,
        store: str | None = None,
        status: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[Entitlement]:
        return await self._send(
            gw.list_entitlements(self._store(store), status, page_size, continuation_token)
        )

    async def get_entitlement(
        self, entitlement_id: str, *, store: str | None = None
    ) -> Entitlement:
        return await self._send(gw.get_entitlement(self._store(store), entitlement_id))

    async def update_entitlement(
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
        return await self._send(
            gw.update_entitlement(
                self._store(store),
                entitlement_id,
                description=description,
                owners=owners,
                risk=risk,
                max_duration_seconds=max_duration_seconds,
                agents_may_request=agents_may_request,
                approval=approval,
                status=status,
            )
        )

    async def delete_entitlement(self, entitlement_id: str, *, store: str | None = None) -> None:
        await self._send(gw.delete_entitlement(self._store(store), entitlement_id))

    async def create_access_request(
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
        return await self._send(
            gw.create_access_request(
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
        )

    async def list_access_requests(
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
        return await self._send(
            gw.list_access_requests(
                self._store(store),
                state=state,
                entitlement_id=entitlement_id,
                beneficiary=beneficiary,
                requester=requester,
                approver=approver,
                object=object,
                relation=relation,
                page_size=page_size,
                token=continuation_token,
            )
        )

    async def get_access_request(
        self, request_id: str, *, store: str | None = None
    ) -> AccessRequest:
        return await self._send(gw.get_access_request(self._store(store), request_id))

    async def get_access_request_history(
        self, request_id: str, *, store: str | None = None
    ) -> AccessRequestHistory:
        """The request and its ledger events, oldest first."""
        return await self._send(gw.get_access_request_history(self._store(store), request_id))

    async def approve_access_request(
        self,
        request_id: str,
        *,
        store: str | None = None,
        approver: str | None = None,
        token: str | None = None,
        comment: str | None = None,
    ) -> AccessRequest:
        return await self._send(
            gw.approve_access_request(self._store(store), request_id, approver, token, comment)
        )

    async def deny_access_request(
        self,
        request_id: str,
        *,
        store: str | None = None,
        approver: str | None = None,
        token: str | None = None,
        comment: str | None = None,
    ) -> AccessRequest:
        return await self._send(
            gw.deny_access_request(self._store(store), request_id, approver, token, comment)
        )

    async def cancel_access_request(
        self,
        request_id: str,
        *,
        store: str | None = None,
        requester: str | None = None,
        token: str | None = None,
        reason: str | None = None,
    ) -> AccessRequest:
        return await self._send(
            gw.cancel_access_request(self._store(store), request_id, requester, token, reason)
        )

    async def revoke_access_request(
        self,
        request_id: str,
        *,
        store: str | None = None,
        actor: str | None = None,
        token: str | None = None,
        reason: str | None = None,
    ) -> AccessRequest:
        """End an active grant now (its tuple deleted); ``actor``/``token`` name who ends it."""
        return await self._send(
            gw.revoke_access_request(self._store(store), request_id, actor, token, reason)
        )

    async def create_review(
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
        return await self._send(
            gw.create_review(
                self._store(store),
                name,
                filter=filter,
                reviewer=reviewer,
                default_decision=default_decision,
                apply=apply,
                due_at=due_at,
            )
        )

    async def list_reviews(
        self,
        *,
        store: str | None = None,
        state: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[ReviewCampaign]:
        return await self._send(
            gw.list_reviews(self._store(store), state, page_size, continuation_token)
        )

    async def get_review(self, review_id: str, *, store: str | None = None) -> ReviewCampaign:
        return await self._send(gw.get_review(self._store(store), review_id))

    async def list_review_items(
        self,
        review_id: str,
        *,
        store: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[ReviewItem]:
        return await self._send(
            gw.list_review_items(self._store(store), review_id, page_size, continuation_token)
        )

    async def decide_review_item(
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
        return await self._send(
            gw.decide_review_item(
                self._store(store), review_id, item_id, decision, reviewer, token, comment
            )
        )

    async def close_review(self, review_id: str, *, store: str | None = None) -> ReviewCampaign:
        """Close: unanswered items take the default; revocations are applied."""
        return await self._send(gw.close_review(self._store(store), review_id))

    async def review_report(self, review_id: str, *, store: str | None = None) -> ReviewReport:
        """The campaign and every item with its outcome."""
        return await self._send(gw.review_report(self._store(store), review_id))
