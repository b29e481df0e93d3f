"""Governance analytics (issue 8) in the Python interface: effective access, over-privilege
and its recommendation, agents exceeding their owners, the NHI inventory, the posture
report and the MCP gateway's tool usage.

:class:`PostureAPI` (and its coroutine twin :class:`AsyncPostureAPI`) is the part of
:class:`keyplane.sdk.KeyplaneAPI` these operations make up; :class:`PostureClient` and
:class:`AsyncPostureClient` implement them over HTTP for :class:`keyplane.Client` and
:class:`keyplane.AsyncClient` (the embedded twin is
:class:`keyplane.embedded_posture.PostureEmbedded`). ``iter_effective_access`` and
``iter_who_can_access`` walk every page: over HTTP as one streamed (NDJSON) request, in
process page by page — each page is one ledger event either way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from keyplane.governance.posture import (
    AccessEntry,
    ExcessAccess,
    NhiInventoryItem,
    OverPrivilege,
    PostureReport,
)
from keyplane.governance.tool_usage import ToolUsageReport
from keyplane.sdk import posture_wire as pw
from keyplane.storage.base import Page

if TYPE_CHECKING:
    import httpx

    from keyplane.sdk.wire import Call
    from keyplane.service.privilege import PrivilegeApplied

__all__ = ["AsyncPostureAPI", "AsyncPostureClient", "PostureAPI", "PostureClient"]

R = TypeVar("R")


class PostureAPI(Protocol):
    """Governance analytics; ``store=None`` means the default store."""

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
    ) -> Page[AccessEntry]: ...

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
    ) -> Iterator[AccessEntry]: ...

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
    ) -> Page[AccessEntry]: ...

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
    ) -> Iterator[AccessEntry]: ...

    def over_privilege(
        self, identity: str, *, store: str | None = None, window_days: int = 90, limit: int = 1000
    ) -> OverPrivilege: ...

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
    ) -> PrivilegeApplied: ...

    def agents_exceeding_owners(
        self,
        *,
        store: str | None = None,
        agent: str | None = None,
        limit: int = 100,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[ExcessAccess]: ...

    def nhi_inventory(
        self,
        *,
        store: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        window_days: int = 90,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[NhiInventoryItem]: ...

    def posture_report(
        self,
        *,
        store: str | None = None,
        window_days: int = 90,
        long_lived_days: int = 90,
        include_inventory: bool = True,
    ) -> PostureReport: ...

    def tool_usage(
        self, *, store: str | None = None, since: float | None = None, until: float | None = None
    ) -> ToolUsageReport: ...


class AsyncPostureAPI(Protocol):
    """:class:`PostureAPI` as coroutines (the ``iter_*`` methods are async iterators)."""

    async def effective_access(
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
    ) -> Page[AccessEntry]: ...

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
    ) -> AsyncIterator[AccessEntry]: ...

    async def who_can_access(
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
    ) -> Page[AccessEntry]: ...

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
    ) -> AsyncIterator[AccessEntry]: ...

    async def over_privilege(
        self, identity: str, *, store: str | None = None, window_days: int = 90, limit: int = 1000
    ) -> OverPrivilege: ...

    async def apply_privilege_recommendation(
        self,
        identity: str,
        *,
        store: str | None = None,
        mode: str = "review",
        window_days: int = 90,
        expected: Sequence[str] | None = None,
        reviewer: str = "beneficiary_owners",
        due_at: float | None = None,
    ) -> PrivilegeApplied: ...

    async def agents_exceeding_owners(
        self,
        *,
        store: str | None = None,
        agent: str | None = None,
        limit: int = 100,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[ExcessAccess]: ...

    async def nhi_inventory(
        self,
        *,
        store: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        window_days: int = 90,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[NhiInventoryItem]: ...

    async def posture_report(
        self,
        *,
        store: str | None = None,
        window_days: int = 90,
        long_lived_days: int = 90,
        include_inventory: bool = True,
    ) -> PostureReport: ...

    async def tool_usage(
        self, *, store: str | None = None, since: float | None = None, until: float | None = None
    ) -> ToolUsageReport: ...


def _streamed(call: Call[Any]) -> Call[Any]:
    """The same listing asked as NDJSON: every page, one entry a line."""
    from dataclasses import replace

    params = {k: v for k, v in call.params.items() if k != "continuation_token"}
    return replace(call, params=params, headers={"accept": pw.NDJSON})


class PostureClient:
    """:class:`PostureAPI` over HTTP (a base of :class:`keyplane.Client`)."""

    if TYPE_CHECKING:
        url: str
        timeout: float

        def _send(self, call: Call[R]) -> R: ...

        def _store(self, store: str | None) -> str: ...

        def _response(self, call: Call[Any], *, stream: bool = False) -> httpx.Response: ...

    def _entries(self, call: Call[Any]) -> Iterator[AccessEntry]:
        """The NDJSON answer, entry by entry; errors before the first line raise at the
        first ``next()`` (this is a generator), a broken stream as TransportError."""
        import httpx

        from keyplane.errors import TransportError
        from keyplane.sdk.client import transport_error

        resp = self._response(_streamed(call), stream=True)
        try:
            for line in resp.iter_lines():
                entry = pw.access_entry(line)
                if entry is not None:
                    yield entry
        except httpx.HTTPError as exc:
            raise transport_error(self.url, exc, self.timeout) from exc
        except (ValueError, KeyError) as exc:
            raise TransportError(f"unreadable access stream from {self.url}: {exc}") from exc
        finally:
            resp.close()

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
        return self._send(
            pw.effective_access(
                self._store(store), identity, object_type=object_type, relation=relation,
                include_paths=include_paths, include_delegated=include_delegated,
                page_size=page_size, continuation_token=continuation_token,
            )
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
        """Every entry of :meth:`effective_access`, streamed in one request."""
        return self._entries(
            pw.effective_access(
                self._store(store), identity, object_type=object_type, relation=relation,
                include_paths=include_paths, include_delegated=include_delegated,
                page_size=page_size, continuation_token=None,
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
        return self._send(
            pw.who_can_access(
                self._store(store), object, relation=relation, user_type=user_type,
                include_paths=include_paths, include_delegated=include_delegated,
                page_size=page_size, continuation_token=continuation_token,
            )
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
        """Every entry of :meth:`who_can_access`, streamed in one request."""
        return self._entries(
            pw.who_can_access(
                self._store(store), object, relation=relation, user_type=user_type,
                include_paths=include_paths, include_delegated=include_delegated,
                page_size=page_size, continuation_token=None,
            )
        )  # fmt: skip

    def over_privilege(
        self, identity: str, *, store: str | None = None, window_days: int = 90, limit: int = 1000
    ) -> OverPrivilege:
        """Granted versus used over the window, and the least-privilege recommendation."""
        return self._send(pw.over_privilege(self._store(store), identity, window_days, limit))

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
        return self._send(
            pw.apply_privilege_recommendation(
                self._store(store), identity, mode=mode, window_days=window_days,
                expected=expected, reviewer=reviewer, due_at=due_at,
            )
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
        return self._send(
            pw.agents_exceeding_owners(
                self._store(store), agent, limit, page_size, continuation_token
            )
        )

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
        return self._send(
            pw.nhi_inventory(
                self._store(store), kind, status, window_days, page_size, continuation_token
            )
        )

    def posture_report(
        self,
        *,
        store: str | None = None,
        window_days: int = 90,
        long_lived_days: int = 90,
        include_inventory: bool = True,
    ) -> PostureReport:
        """Findings (OWASP NHI Top 10), visibility score, inventory, NHI5 summaries."""
        return self._send(
            pw.posture_report(self._store(store), window_days, long_lived_days, include_inventory)
        )

    def tool_usage(
        self, *, store: str | None = None, since: float | None = None, until: float | None = None
    ) -> ToolUsageReport:
        """The MCP gateway's tools and their use over ``[since, until]``."""
        return self._send(pw.tool_usage(self._store(store), since, until))


class AsyncPostureClient:
    """:class:`AsyncPostureAPI` over HTTP (a base of :class:`keyplane.AsyncClient`)."""

    if TYPE_CHECKING:
        url: str
        timeout: float

        async def _send(self, call: Call[R]) -> R: ...

        def _store(self, store: str | None) -> str: ...

        async def _response(self, call: Call[Any], *, stream: bool = False) -> httpx.Response: ...

    async def _entries(self, call: Call[Any]) -> AsyncIterator[AccessEntry]:
        import httpx

        from keyplane.errors import TransportError
        from keyplane.sdk.client import transport_error

        resp = await self._response(_streamed(call), stream=True)
        try:
            async for line in resp.aiter_lines():
                entry = pw.access_entry(line)
                if entry is not None:
                    yield entry
        except httpx.HTTPError as exc:
            raise transport_error(self.url, exc, self.timeout) from exc
        except (ValueError, KeyError) as exc:
            raise TransportError(f"unreadable access stream from {self.url}: {exc}") from exc
        finally:
            await resp.aclose()

    async def effective_access(
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
        return await self._send(
            pw.effective_access(
                self._store(store), identity, object_type=object_type, relation=relation,
                include_paths=include_paths, include_delegated=include_delegated,
                page_size=page_size, continuation_token=continuation_token,
            )
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
    ) -> AsyncIterator[AccessEntry]:
        return self._entries(
            pw.effective_access(
                self._store(store), identity, object_type=object_type, relation=relation,
                include_paths=include_paths, include_delegated=include_delegated,
                page_size=page_size, continuation_token=None,
            )
        )  # fmt: skip

    async def who_can_access(
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
        return await self._send(
            pw.who_can_access(
                self._store(store), object, relation=relation, user_type=user_type,
                include_paths=include_paths, include_delegated=include_delegated,
                page_size=page_size, continuation_token=continuation_token,
            )
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
    ) -> AsyncIterator[AccessEntry]:
        return self._entries(
            pw.who_can_access(
                self._store(store), object, relation=relation, user_type=user_type,
                include_paths=include_paths, include_delegated=include_delegated,
                page_size=page_size, continuation_token=None,
            )
        )  # fmt: skip

    async def over_privilege(
        self, identity: str, *, store: str | None = None, window_days: int = 90, limit: int = 1000
    ) -> OverPrivilege:
        return await self._send(pw.over_privilege(self._store(store), identity, window_days, limit))

    async def apply_privilege_recommendation(
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
        return await self._send(
            pw.apply_privilege_recommendation(
                self._store(store), identity, mode=mode, window_days=window_days,
                expected=expected, reviewer=reviewer, due_at=due_at,
            )
        )  # fmt: skip

    async def agents_exceeding_owners(
        self,
        *,
        store: str | None = None,
        agent: str | None = None,
        limit: int = 100,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[ExcessAccess]:
        return await self._send(
            pw.agents_exceeding_owners(
                self._store(store), agent, limit, page_size, continuation_token
            )
        )

    async def nhi_inventory(
        self,
        *,
        store: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        window_days: int = 90,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[NhiInventoryItem]:
        return await self._send(
            pw.nhi_inventory(
                self._store(store), kind, status, window_days, page_size, continuation_token
            )
        )

    async def posture_report(
        self,
        *,
        store: str | None = None,
        window_days: int = 90,
        long_lived_days: int = 90,
        include_inventory: bool = True,
    ) -> PostureReport:
        return await self._send(
            pw.posture_report(self._store(store), window_days, long_lived_days, include_inventory)
        )

    async def tool_usage(
        self, *, store: str | None = None, since: float | None = None, until: float | None = None
    ) -> ToolUsageReport:
        return await self._send(pw.tool_usage(self._store(store), since, until))
