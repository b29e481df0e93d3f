"""Identity source imports (issue 10) on the embedded :class:`keyplane.Keyplane`: each
method one service call of :mod:`keyplane.service.imports` (the REST API, CLI and MCP
server call the same ones)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keyplane.importers.base import Progress
from keyplane.importers.records import ImportRecord, ImportResult
from keyplane.service import imports

if TYPE_CHECKING:
    from keyplane.service.auth import Caller
    from keyplane.service.context import Services

__all__ = ["ImportsEmbedded"]


class ImportsEmbedded:
    """The import methods of :class:`keyplane.Keyplane` (one of its bases)."""

    if TYPE_CHECKING:
        services: Services
        caller: Caller

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
        ``github``); with ``dry_run`` nothing is written and the result says what would be.
        ``progress(phase, done, total)`` follows each phase."""
        return imports.import_source(
            self.services,
            self.caller,
            self._store(store),
            source,
            data,
            dry_run=dry_run,
            progress=progress,
        )

    def list_imports(self, *, store: str | None = None) -> list[ImportRecord]:
        """The latest import of each (source, scope) of the store."""
        return imports.list_imports(self.services, self.caller, self._store(store))
