"""Records of identity source imports and the storage contract that keeps them (migration
``0014_imports.sql``; implemented by :mod:`keyplane.storage.imports_sql`).

:class:`SourceImport` is what the latest import of one (source, scope) of a store put in
the graph — the identities it created and the tuples it wrote — so the next import of the
same scope removes what disappeared (:class:`ImportRecord` its summary, what
``list_imports`` answers). :class:`ImportResult` is what one
:func:`keyplane.service.imports.import_source` call did (or, in a dry run, would do).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from keyplane.ledger.events import LedgerEvent
    from keyplane.storage.base import PolicyTxReader, PolicyWrite, PolicyWriteResult

__all__ = [
    "IMPORT_TABLES",
    "ChangeCounts",
    "ImportRecord",
    "ImportResult",
    "ImportStore",
    "SourceImport",
    "TupleKey",
]

#: the tables :meth:`~keyplane.storage.base.StoreAdmin.delete_store` empties with the store
IMPORT_TABLES = ("source_imports",)

TupleKey = tuple[str, str, str]  # (object, relation, user)


@dataclass(frozen=True, slots=True)
class ChangeCounts:
    added: int = 0
    changed: int = 0
    removed: int = 0

    def to_json(self) -> dict[str, int]:
        return {"added": self.added, "changed": self.changed, "removed": self.removed}

    @classmethod
    def from_json(cls, data: Any) -> ChangeCounts:
        d = data if isinstance(data, Mapping) else {}
        return cls(int(d.get("added", 0)), int(d.get("changed", 0)), int(d.get("removed", 0)))

    @property
    def total(self) -> int:
        return self.added + self.changed + self.removed


@dataclass(frozen=True, slots=True)
class SourceImport:
    """The stored record of the latest import of ``source`` (``aws``, ``kubernetes``,
    ``github``) for ``scope`` (an account id, a cluster, an organisation) in a store.

    ``identities``: node → external id of the identities this import created (source
    ``import:<source>``); ``tuples``: the keys it wrote (owner tuples excluded);
    ``identity_counts`` / ``tuple_counts``: what that import changed; ``digest``: SHA-256
    of the export; ``imported_at``: when the record last changed (an identical re-import
    changes nothing, this included); ``revision``: the store revision of that change."""

    store_id: str
    source: str
    scope: str
    digest: str
    identities: Mapping[str, str] = field(default_factory=dict)
    tuples: tuple[TupleKey, ...] = ()
    warnings: tuple[str, ...] = ()
    identity_counts: ChangeCounts = ChangeCounts()
    tuple_counts: ChangeCounts = ChangeCounts()
    imported_at: float = 0.0
    imported_by: str | None = None
    revision: int = 0

    def record(self) -> ImportRecord:
        """The record without its (possibly long) lists: what list_imports answers."""
        return ImportRecord(
            source=self.source,
            scope=self.scope,
            digest=self.digest,
            identity_count=len(self.identities),
            tuple_count=len(self.tuples),
            identities=self.identity_counts,
            tuples=self.tuple_counts,
            warnings=self.warnings,
            imported_at=self.imported_at,
            imported_by=self.imported_by,
            revision=self.revision,
        )


@dataclass(frozen=True, slots=True)
class ImportRecord:
    """The latest import of one (source, scope) of a store, as :func:`list_imports`
    answers it: how many identities and tuples the import keeps in the graph
    (``identity_count``, ``tuple_count``), what that import changed (``identities``,
    ``tuples``), its warnings, when (``imported_at``: the record's last change), by whom
    and at which store revision."""

    source: str
    scope: str
    digest: str
    identity_count: int
    tuple_count: int
    identities: ChangeCounts
    tuples: ChangeCounts
    warnings: tuple[str, ...] = ()
    imported_at: float = 0.0
    imported_by: str | None = None
    revision: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "scope": self.scope,
            "digest": self.digest,
            "identity_count": self.identity_count,
            "tuple_count": self.tuple_count,
            "identities": self.identities.to_json(),
            "tuples": self.tuples.to_json(),
            "warnings": list(self.warnings),
            "imported_at": self.imported_at,
            "imported_by": self.imported_by,
            "revision": self.revision,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ImportRecord:
        return cls(
            source=str(d["source"]),
            scope=str(d["scope"]),
            digest=str(d.get("digest", "")),
            identity_count=int(d.get("identity_count", 0)),
            tuple_count=int(d.get("tuple_count", 0)),
            identities=ChangeCounts.from_json(d.get("identities")),
            tuples=ChangeCounts.from_json(d.get("tuples")),
            warnings=tuple(str(w) for w in d.get("warnings") or ()),
            imported_at=float(d.get("imported_at") or 0.0),
            imported_by=d.get("imported_by"),
            revision=int(d.get("revision", 0)),
        )


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What one import did — or, with ``dry_run``, would do (nothing written then).

    Counts: identities added (created), changed (display name, attributes or owners),
    removed (deprovisioned); tuples added and removed (``changed`` is always 0 for tuples:
    a tuple is its key). The lists name them (nodes; tuples as ``object#relation@user``).
    ``model_changed``: the model fragment added types or relations (a new model version,
    ``model_id``). ``revision``: the store revision after the import (the current one when
    nothing changed). ``batches``: how many write transactions it took."""

    source: str
    scope: str
    digest: str
    dry_run: bool
    identities: ChangeCounts
    tuples: ChangeCounts
    identities_added: tuple[str, ...] = ()
    identities_changed: tuple[str, ...] = ()
    identities_removed: tuple[str, ...] = ()
    tuples_added: tuple[str, ...] = ()
    tuples_removed: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    model_changed: bool = False
    model_id: str | None = None
    revision: int = 0
    batches: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.identities.total or self.tuples.total or self.model_changed)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "scope": self.scope,
            "digest": self.digest,
            "dry_run": self.dry_run,
            "identities": self.identities.to_json(),
            "tuples": self.tuples.to_json(),
            "identities_added": list(self.identities_added),
            "identities_changed": list(self.identities_changed),
            "identities_removed": list(self.identities_removed),
            "tuples_added": list(self.tuples_added),
            "tuples_removed": list(self.tuples_removed),
            "warnings": list(self.warnings),
            "model_changed": self.model_changed,
            "model_id": self.model_id,
            "revision": self.revision,
            "batches": self.batches,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ImportResult:
        def strs(key: str) -> tuple[str, ...]:
            return tuple(str(x) for x in d.get(key) or ())

        return cls(
            source=str(d["source"]),
            scope=str(d["scope"]),
            digest=str(d.get("digest", "")),
            dry_run=bool(d.get("dry_run", False)),
            identities=ChangeCounts.from_json(d.get("identities")),
            tuples=ChangeCounts.from_json(d.get("tuples")),
            identities_added=strs("identities_added"),
            identities_changed=strs("identities_changed"),
            identities_removed=strs("identities_removed"),
            tuples_added=strs("tuples_added"),
            tuples_removed=strs("tuples_removed"),
            warnings=strs("warnings"),
            model_changed=bool(d.get("model_changed", False)),
            model_id=d.get("model_id"),
            revision=int(d.get("revision", 0)),
            batches=int(d.get("batches", 0)),
        )


class ImportStore(Protocol):
    """The ``source_imports`` records (migration 0014). :meth:`StoreAdmin.delete_store`
    removes a store's rows; every method raises StoreNotFoundError for a missing store."""

    def write_import(
        self,
        store_id: str,
        plan: Callable[[PolicyTxReader], PolicyWrite],
        record: SourceImport | None,
        *,
        ledger_events: Callable[[int], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> PolicyWriteResult:
        """:meth:`~keyplane.storage.base.PolicyStore.write_policy` that also upserts
        ``record`` (keyed by store, source and scope; stamped with the new revision and
        the write's store id), in ONE transaction with the plan's identity-plane change
        and the ledger events. An empty plan with ``record`` None MUST roll back (no
        revision, no events, ``changed`` False); with a record, the record alone is a
        change (``changed`` True)."""
        ...

    def get_import(self, store_id: str, source: str, scope: str) -> SourceImport | None:
        """The record of (source, scope), or None."""
        ...

    def list_imports(self, store_id: str) -> list[SourceImport]:
        """Every record of the store, by (source, scope)."""
        ...
