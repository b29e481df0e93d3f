"""Identity source imports (issue 10) in the Python interface: import an export of AWS
IAM, Kubernetes RBAC or GitHub, and list the imports of a store.

:class:`ImportsAPI` (and its coroutine twin :class:`AsyncImportsAPI`) is the part of
:class:`keyplane.sdk.KeyplaneAPI` these operations make up; :class:`ImportsClient` and
:class:`AsyncImportsClient` implement them over HTTP (``POST
/v1/stores/{store}/imports/{source}``, ``GET /v1/stores/{store}/imports``) for
:class:`keyplane.Client` and :class:`keyplane.AsyncClient`; the embedded twin is
:class:`keyplane.embedded_imports.ImportsEmbedded`.

``progress(phase, done, total)``: in-process the import reports each phase as it goes
(``plan``, ``model``, ``identities``, ``tuples``, ``deprovision``); over HTTP the server
does the whole import in one request, so the client reports ``upload`` 0/1 before it and
``upload`` 1/1 once answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from keyplane.importers.base import Progress
from keyplane.importers.records import ImportRecord, ImportResult
from keyplane.sdk.wire import Call, seg

__all__ = [
    "AsyncImportsAPI",
    "AsyncImportsClient",
    "ImportsAPI",
    "ImportsClient",
    "import_call",
    "list_imports_call",
]

R = TypeVar("R")

#: an import of a large export takes longer than a query
IMPORT_TIMEOUT = 300.0


def _path(store: str, rest: str = "") -> str:
    return f"/v1/stores/{seg(store)}/imports{rest}"


def _records(d: Mapping[str, Any]) -> list[ImportRecord]:
    return [ImportRecord.from_json(r) for r in d.get("imports") or ()]


def import_call(store: str, source: str, data: Any, *, dry_run: bool) -> Call[ImportResult]:
    # the body is the export as the source produced it: a JSON object or array
    return Call(
        "POST",
        _path(store, f"/{seg(source)}"),
        ImportResult.from_json,
        params={"dry_run": "true"} if dry_run else {},
        body=cast(dict[str, Any], data),
        min_timeout=IMPORT_TIMEOUT,
    )


def list_imports_call(store: str) -> Call[list[ImportRecord]]:
    return Call("GET", _path(store), _records, idempotent=True)


class ImportsAPI(Protocol):
    """Identity source imports; ``store=None`` means the default store."""

    def import_source(
        self,
        source: str,
        data: Any,
        *,
        store: str | None = None,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> ImportResult: ...

    def list_imports(self, *, store: str | None = None) -> list[ImportRecord]: ...


class AsyncImportsAPI(Protocol):
    """:class:`ImportsAPI` with every method a coroutine."""

    async def import_source(
        self,
        source: str,
        data: Any,
        *,
        store: str | None = None,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> ImportResult: ...

    async def list_imports(self, *, store: str | None = None) -> list[ImportRecord]: ...


class ImportsClient:
    """:class:`ImportsAPI` over HTTP (a base of :class:`keyplane.Client`)."""

    if TYPE_CHECKING:

        def _send(self, call: Call[R]) -> R: ...

        def _store(self, store: str | None) -> str: ...

    def import_source(
        self,
        source: str,
        data: Any,
        *,
        store: str | None = None,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> ImportResult:
        """Import ``data`` (the parsed JSON export of ``source``: ``aws``, ``kubernetes``,
        ``github``); with ``dry_run`` nothing is written and the result says what would be."""
        if progress is not None:
            progress("upload", 0, 1)
        result = self._send(import_call(self._store(store), source, data, dry_run=dry_run))
        if progress is not None:
            progress("upload", 1, 1)
        return result

    def list_imports(self, *, store: str | None = None) -> list[ImportRecord]:
        """The latest import of each (source, scope) of the store."""
        return self._send(list_imports_call(self._store(store)))


class AsyncImportsClient:
    """:class:`AsyncImportsAPI` over HTTP (a base of :class:`keyplane.AsyncClient`)."""

    if TYPE_CHECKING:

        async def _send(self, call: Call[R]) -> R: ...

        def _store(self, store: str | None) -> str: ...

    async def import_source(
        self,
        source: str,
        data: Any,
        *,
        store: str | None = None,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> ImportResult:
        """Import ``data`` (the parsed JSON export of ``source``: ``aws``, ``kubernetes``,
        ``github``); with ``dry_run`` nothing is written and the result says what would be."""
        if progress is not None:
            progress("upload", 0, 1)
        result = await self._send(import_call(self._store(store), source, data, dry_run=dry_run))
        if progress is not None:
            progress("upload", 1, 1)
        return result

    async def list_imports(self, *, store: str | None = None) -> list[ImportRecord]:
        """The latest import of each (source, scope) of the store."""
        return await self._send(list_imports_call(self._store(store)))
