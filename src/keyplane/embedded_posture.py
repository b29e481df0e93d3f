"""Governance analytics (issue 8) on the embedded :class:`keyplane.Keyplane`: effective
access, over-privilege, agents exceeding their owners, the NHI inventory, the posture
report and the MCP gateway's tool usage, each method one service call (the REST API, CLI
and MCP server call the same ones). The ``iter_*`` generators call the listing page by page (one ledger event a page)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from keyplane.governance.posture import (
    AccessEntry,
    ExcessAccess,
    NhiInventoryItem,
    OverPrivilege,
    PostureReport,
)
from keyplane.governance.tool_usage import ToolUsageReport
from keyplane.service import effective, gateway_usage, posture, privilege
from keyplane.service.privilege import PrivilegeApplied
from keyplane.storage.base import Page

if TYPE_CHECKING:
    from keyplane.service.auth import Caller
    from keyplane.service.context import Services

__all__ = ["PostureEmbedded", "walk"]


def walk(fetch: Callable[[str | None], Page[AccessEntry]]) -> Iterator[AccessEntry]:
    """Every entry of a paginated listing, fetching the next page only when needed."""
    token: str | None = None
    while True:
        page = fetch(token)
        yield from page.items
        token = page.continuation_token
        if token is None:
            return


class PostureEmbedded:
    """The governance-analytics methods of :class:`keyplane.Keyplane` (one of its bases)."""

    if TYPE_CHECKING:
        services: Services
        caller: Caller

        def _store(self, store: str | None) -> str: ...

    def effective_access(
        self,
        identity: str,
        *,
        store: str | None = None,
        object_type: str | None = None,
        relation: str | None = None,
        include_paths: bool = True,
        include_delegated: bool = True,
        page_size: int = 100,
        continuation_token: str | None = None,
    ) -> Page[AccessEntry]:
        """One page of what ``identity`` can reach, with paths (one ledger event a page)."""
        return effective.effective_access(
            self.services, self.caller, self._store(store), identity, object_type=object_type,
            relation=relation, include_paths=include_paths, include_delegated=include_delegated,
            page_size=page_size, continuation_token=continuation_token,
        )  # fmt: skip

    def iter_effective_access(
        self,
        identity: str,
        *,
        store: str | None = None,
        object_type: str | None = None,
        relation: str | None = None,
        include_paths: bool = True,
        include_delegated: bool = True,
        page_size: int = 100,
    ) -> Iterator[AccessEntry]:
        """Every entry of :meth:`effective_access`, page after page."""
        return walk(
            lambda t: self.effective_access(
                identity, store=store, object_type=object_type, relation=relation,
                include_paths=include_paths, include_delegated=include_delegated,
                page_size=page_size, continuation_token=t,
            )
        )  # fmt: skip

    def who_can_access(
        self,
        object: str,
        *,
        store: str | None = None,
        relation: str | None = None,
        user_type: str | None = None,
        include_paths: bool = True,
        include_delegated: bool = True,
        page_size: int = 100,
        continuation_token: str | None = None,
    ) -> Page[AccessEntry]:
        """One page of who can reach ``object``, with paths."""
        return effective.who_can_access(
            self.services, self.caller, self._store(store), object, relation=relation,
            user_type=user_type, include_paths=include_paths,
            include_delegated=include_delegated, page_size=page_size,
            continuation_token=continuation_token,
        )  # fmt: skip

    def iter_who_can_access(
        self,
        object: str,
        *,
        store: str | None = None,
        relation: str | None = None,
        user_type: str | None = None,
        include_paths: bool = True,
        include_delegated: bool = True,
        page_size: int = 100,
    ) -> Iterator[AccessEntry]:
        """Every entry of :meth:`who_can_access`, page after page."""
        return walk(
            lambda t: self.who_can_access(
                object, store=store, relation=relation, user_type=user_type,
                include_paths=include_paths, include_delegated=include_delegated,
                page_size=page_size, continuation_token=t,
            )
        )  # fmt: skip

    def over_privilege(
        self, identity: str, *, store: str | None = None, window_days: int = 90, limit: int = 1000
    ) -> OverPrivilege:
        """Granted versus used over the window, and the least-privilege recommendation."""
        return privilege.over_privilege(
            self.services, self.caller, self._store(store), identity, window_days=window_days,
            limit=limit,
        )  # fmt: skip

    def apply_privilege_recommendation(
        self,
        identity: str,
        *,
        store: str | None = None,
        mode: str = "review",
        window_days: int = 90,
        expected: Sequence[str] | None = None,
        reviewer: str = "beneficiary_owners",
        due_at: float | None = None,
    ) -> PrivilegeApplied:
        """Revoke the recommendation's grants (``revoke``) or put them to a review."""
        return privilege.apply_privilege_recommendation(
            self.services, self.caller, self._store(store), identity, mode=mode,
            window_days=window_days, expected=expected, reviewer=reviewer, due_at=due_at,
        )  # fmt: skip

    def agents_exceeding_owners(
        self,
        *,
        store: str | None = None,
        agent: str | None = None,
        limit: int = 100,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[ExcessAccess]:
        """Agents reaching what an owner or delegator of theirs does not."""
        return privilege.agents_exceeding_owners(
            self.services, self.caller, self._store(store), agent=agent, limit=limit,
            page_size=page_size, continuation_token=continuation_token,
        )  # fmt: skip

    def nhi_inventory(
        self,
        *,
        store: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        window_days: int = 90,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[NhiInventoryItem]:
        """The non-human identities with owners, credentials, last seen, delegations."""
        return posture.nhi_inventory(
            self.services, self.caller, self._store(store), kind=kind, status=status,
            window_days=window_days, page_size=page_size, continuation_token=continuation_token,
        )  # fmt: skip

    def posture_report(
        self,
        *,
        store: str | None = None,
        window_days: int = 90,
        long_lived_days: int = 90,
        include_inventory: bool = True,
    ) -> PostureReport:
        """Findings (OWASP NHI Top 10), visibility score, inventory, NHI5 summaries."""
        return posture.posture_report(
            self.services, self.caller, self._store(store), window_days=window_days,
            long_lived_days=long_lived_days, include_inventory=include_inventory,
        )  # fmt: skip

    def tool_usage(
        self, *, store: str | None = None, since: float | None = None, until: float | None = None
    ) -> ToolUsageReport:
        """The MCP gateway's tools and their use over ``[since, until]``."""
        return gateway_usage.tool_usage(
            self.services, self.caller, self._store(store), since=since, until=until
        )
