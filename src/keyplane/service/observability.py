"""What operators watch: readiness, and the size and freshness of the graphs served.

Surfaces expose these as ``/readyz`` and ``/metrics``; no decision depends on them.
"""

from __future__ import annotations

from dataclasses import dataclass

from keyplane.errors import KeyplaneError, StoreNotFoundError
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services

__all__ = ["GraphStats", "graph_stats", "readiness"]


@dataclass(frozen=True, slots=True)
class GraphStats:
    """One loaded store graph: its tuple count, the revision applied and the database's."""

    store_id: str
    tuples: int
    applied_revision: int
    database_revision: int | None  # None when the database could not be asked

    @property
    def lag(self) -> int | None:
        """Revisions committed but not yet applied in this process."""
        if self.database_revision is None:
            return None
        return max(0, self.database_revision - self.applied_revision)


def readiness(svc: Services) -> dict[str, str]:
    """Whether this process can serve: the database answers and graphs load.

    Returns each check's outcome, ``"ok"`` or a short reason (error codes only — the
    result is served without authentication, so it names no data).
    """
    checks: dict[str, str] = {}
    try:
        svc.storage.list_stores(page_size=1)
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready, whatever raised it
        checks["database"] = _reason(exc)
        checks["graphs"] = "skipped: database unavailable"
        return checks
    try:
        # the default store's graph is the one most callers use: load it now (warm-up),
        # so the first decision does not pay for the snapshot
        store = svc.settings.default_store
        try:
            svc.storage.get_store(store)
        except StoreNotFoundError:
            store = ""
        if store:
            svc.graphs.graph(store)
        checks["graphs"] = "ok"
    except Exception as exc:
        checks["graphs"] = _reason(exc)
    return checks


def _reason(exc: Exception) -> str:
    return exc.code if isinstance(exc, KeyplaneError) else "unavailable"


@audited(None)
def graph_stats(svc: Services, caller: Caller) -> list[GraphStats]:
    """Size and revision lag of every store graph loaded in this process.

    Store ids are visible in the result, so the caller needs the right to list stores
    (admin, auditor, or an all-store writer or reader).
    """
    authorize(svc, caller, Permission.LIST_STORES)
    out: list[GraphStats] = []
    for g in svc.graphs.loaded():
        try:
            db_rev: int | None = svc.storage.current_revision(g.store_id)
        except KeyplaneError:
            db_rev = None
        out.append(GraphStats(g.store_id, len(g.index), g.revision, db_rev))
    return out
