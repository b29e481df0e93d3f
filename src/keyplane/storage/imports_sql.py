"""The ``source_imports`` table (migration ``0014_imports.sql``) in SQL both backends
understand: the latest import of each (source, scope) of a store.

A mixin of :class:`keyplane.storage.sql.SQLStorage` (it uses the backend's ``_q``,
``_write_tx``, ``_read_tx``, ``_bump``, ``_revision``, ``_append_encoded_tx`` and the
policy mixin's ``_apply_policy_write``), implementing
:class:`keyplane.importers.records.ImportStore`.

:meth:`ImportsSQLMixin.write_import` is ``write_policy`` plus the import record: the store
revision is bumped FIRST (in PostgreSQL that locks the store row until commit, so the
plan's reads are serialized with every other writer of the store), the plan runs against
the policy reader bound to the transaction, its identity-plane change is applied like a
policy write's, the record upserted, the ledger events chained — one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from keyplane.importers.records import IMPORT_TABLES, ChangeCounts, SourceImport
from keyplane.storage.base import PolicyWrite, PolicyWriteResult
from keyplane.storage.policy_sql import _TxReader
from keyplane.storage.sql_host import SQLHost

if TYPE_CHECKING:
    from keyplane.ledger.events import LedgerEvent
    from keyplane.storage.base import PolicyTxReader

__all__ = ["IMPORT_TABLES", "ImportsSQLMixin"]

R = TypeVar("R")
Cursor = Any

IMPORT_COLS = (
    "store_id, source, scope, digest, identities, tuples, warnings, counts, imported_at,"
    " imported_by, revision"
)
_UPSERT = (
    f"INSERT INTO source_imports ({IMPORT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (store_id, source, scope) DO UPDATE SET digest = excluded.digest,"
    " identities = excluded.identities, tuples = excluded.tuples,"
    " warnings = excluded.warnings, counts = excluded.counts,"
    " imported_at = excluded.imported_at, imported_by = excluded.imported_by,"
    " revision = excluded.revision"
)

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode


def _json(v: Any) -> Any:
    return json.loads(v) if isinstance(v, str | bytes) else v


def record_from_row(r: Sequence[Any]) -> SourceImport:
    counts = _json(r[7]) or {}
    return SourceImport(
        store_id=str(r[0]),
        source=str(r[1]),
        scope=str(r[2]),
        digest=str(r[3]),
        identities={str(k): str(v) for k, v in dict(_json(r[4])).items()},
        tuples=tuple((str(o), str(rel), str(u)) for o, rel, u in _json(r[5])),
        warnings=tuple(str(w) for w in _json(r[6])),
        identity_counts=ChangeCounts.from_json(counts.get("identities")),
        tuple_counts=ChangeCounts.from_json(counts.get("tuples")),
        imported_at=float(r[8]),
        imported_by=r[9],
        revision=int(r[10]),
    )


def _params(rec: SourceImport, store_id: str, revision: int) -> tuple[Any, ...]:
    return (
        store_id,
        rec.source,
        rec.scope,
        rec.digest,
        _dumps(dict(rec.identities)),
        _dumps([list(k) for k in sorted(rec.tuples)]),
        _dumps(list(rec.warnings)),
        _dumps({"identities": rec.identity_counts.to_json(), "tuples": rec.tuple_counts.to_json()}),
        float(rec.imported_at),
        rec.imported_by,
        revision,
    )


class _Unchanged(Exception):
    """Raised inside write_import's transaction to roll back a plan that changed nothing."""

    def __init__(self, revision: int) -> None:
        super().__init__(revision)
        self.revision = revision


class ImportsSQLMixin(SQLHost):
    """Implementation of :class:`keyplane.importers.records.ImportStore` for SQLStorage."""

    if TYPE_CHECKING:  # provided by PolicySQLMixin (a stub here would shadow it)

        def _apply_policy_write(
            self, cur: Cursor, store_id: str, rev: int, w: PolicyWrite
        ) -> PolicyWriteResult: ...

    # -- writes -----------------------------------------------------------------------

    def write_import(
        self,
        store_id: str,
        plan: Callable[[PolicyTxReader], PolicyWrite],
        record: SourceImport | None,
        *,
        ledger_events: Callable[[int], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> PolicyWriteResult:
        def tx(cur: Cursor) -> PolicyWriteResult:
            rev = self._bump(cur, store_id)
            change = plan(_TxReader(self, cur, store_id))  # type: ignore[arg-type]
            if change.empty and record is None:
                raise _Unchanged(rev - 1)
            result = (
                PolicyWriteResult(rev, True)
                if change.empty
                else self._apply_policy_write(cur, store_id, rev, change)
            )
            if record is not None:
                cur.execute(self._q(_UPSERT), _params(record, store_id, rev))
            if ledger_events is not None:
                items = ledger_events(rev)
                if items:
                    self._append_encoded_tx(cur, items)
            return result

        try:
            return self._write_tx(tx)
        except _Unchanged as nothing:
            return PolicyWriteResult(nothing.revision, False)

    def _delete_import_rows(self, cur: Cursor, store_id: str) -> None:
        """Called by delete_store inside its transaction."""
        for table in IMPORT_TABLES:
            cur.execute(self._q(f"DELETE FROM {table} WHERE store_id = ?"), (store_id,))

    # -- reads ------------------------------------------------------------------------

    def get_import(self, store_id: str, source: str, scope: str) -> SourceImport | None:
        def tx(cur: Cursor) -> SourceImport | None:
            self._revision(cur, store_id)  # StoreNotFoundError for an unknown store
            cur.execute(
                self._q(
                    f"SELECT {IMPORT_COLS} FROM source_imports"
                    " WHERE store_id = ? AND source = ? AND scope = ?"
                ),
                (store_id, source, scope),
            )
            r = cur.fetchone()
            return None if r is None else record_from_row(r)

        return self._read_tx(tx)

    def list_imports(self, store_id: str) -> list[SourceImport]:
        def tx(cur: Cursor) -> list[SourceImport]:
            self._revision(cur, store_id)
            cur.execute(
                self._q(
                    f"SELECT {IMPORT_COLS} FROM source_imports WHERE store_id = ?"
                    " ORDER BY source, scope"
                ),
                (store_id,),
            )
            return [record_from_row(r) for r in cur.fetchall()]

        return self._read_tx(tx)
