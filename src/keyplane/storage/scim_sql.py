"""SCIM 2.0 resources (migration ``0013_scim.sql``) in SQL both backends understand.

A mixin of :class:`keyplane.storage.sql.SQLStorage` (it uses the backend's ``_q``,
``_write_tx``, ``_read_tx``, ``_bump``, ``_revision``, ``_append_encoded_tx`` and the
policy mixin's ``_apply_policy_write``), implementing :class:`keyplane.storage.base.ScimStore`.

Every change goes through :meth:`ScimSQLMixin.write_scim`: the store's revision is bumped
FIRST (in PostgreSQL that locks the store row until commit, so the plan's reads and the
writes that follow are serialized with every other writer of the store; SQLite's single
writer gives the same), then the plan runs against a reader bound to the transaction
(the identity plane's reads and the SCIM rows), then the SCIM rows are stored and the
identity-plane change that projects them on the graph is applied exactly as a policy
write's — identities, delegations, tuples and their changelog — and the ledger events
chained: one transaction, so the graph is never a partial projection of a resource.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from keyplane.errors import ConflictError, ValidationError
from keyplane.storage.base import ScimResource, ScimWrite, ScimWriteResult
from keyplane.storage.policy_sql import _TxReader
from keyplane.storage.sql_host import SQLHost

if TYPE_CHECKING:
    from keyplane.ledger.events import LedgerEvent
    from keyplane.storage.base import PolicyWrite, PolicyWriteResult, ScimTxReader

__all__ = ["SCIM_TABLES", "ScimSQLMixin", "scim_from_row"]

R = TypeVar("R")
Cursor = Any

#: the tables :meth:`~keyplane.storage.base.StoreAdmin.delete_store` empties with the store
SCIM_TABLES = ("scim_resources",)

SCIM_COLS = (
    "store_id, resource_type, id, external_id, unique_key, node, data, version, created_at,"
    " updated_at, revision"
)
_UPSERT = (
    f"INSERT INTO scim_resources ({SCIM_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (store_id, resource_type, id) DO UPDATE SET external_id = excluded.external_id,"
    " unique_key = excluded.unique_key, node = excluded.node, data = excluded.data,"
    " version = excluded.version, created_at = excluded.created_at,"
    " updated_at = excluded.updated_at, revision = excluded.revision"
)
RESOURCE_TYPES = ("User", "Group", "Agent")

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode


def scim_from_row(r: Sequence[Any]) -> ScimResource:
    data = r[6]
    return ScimResource(
        store_id=str(r[0]),
        resource_type=str(r[1]),
        id=str(r[2]),
        external_id=r[3],
        unique_key=r[4],
        node=str(r[5]),
        data=json.loads(data) if isinstance(data, str | bytes) else dict(data),
        version=int(r[7]),
        created_at=float(r[8]),
        updated_at=float(r[9]),
        revision=int(r[10]),
    )


def _params(s: ScimResource, store_id: str, revision: int) -> tuple[Any, ...]:
    return (
        store_id,
        s.resource_type,
        s.id,
        s.external_id,
        s.unique_key,
        s.node,
        _dumps(dict(s.data)),
        int(s.version),
        float(s.created_at),
        float(s.updated_at),
        revision,
    )


def _check_type(resource_type: str) -> None:
    if resource_type not in RESOURCE_TYPES:
        raise ValidationError(
            f"unknown SCIM resource type {resource_type!r}: one of {', '.join(RESOURCE_TYPES)}",
            details={"resource_type": str(resource_type)[:100]},
        )


# ------------------------------------------------------------------------------ reads in a tx


class _ScimTxReader(_TxReader):
    """:class:`~keyplane.storage.base.ScimTxReader` over one open cursor: the policy
    reader's reads and the SCIM rows."""

    def scim(self, resource_type: str, id: str) -> ScimResource | None:
        rows = self._all(
            f"SELECT {SCIM_COLS} FROM scim_resources WHERE store_id = ? AND resource_type = ?"
            " AND id = ?",
            (self.store_id, resource_type, id),
        )
        return scim_from_row(rows[0]) if rows else None

    def scim_by_key(self, resource_type: str, unique_key: str) -> ScimResource | None:
        rows = self._all(
            f"SELECT {SCIM_COLS} FROM scim_resources WHERE store_id = ? AND resource_type = ?"
            " AND unique_key = ?",
            (self.store_id, resource_type, unique_key),
        )
        return scim_from_row(rows[0]) if rows else None

    def scim_all(self, resource_type: str) -> list[ScimResource]:
        rows = self._all(
            f"SELECT {SCIM_COLS} FROM scim_resources WHERE store_id = ? AND resource_type = ?"
            " ORDER BY id",
            (self.store_id, resource_type),
        )
        return [scim_from_row(r) for r in rows]


# ------------------------------------------------------------------------------ the mixin


class _Unchanged(Exception):
    """Raised inside write_scim's transaction to roll back a plan that changed nothing."""

    def __init__(self, revision: int) -> None:
        super().__init__(revision)
        self.revision = revision


class ScimSQLMixin(SQLHost):
    """Implementation of :class:`keyplane.storage.base.ScimStore` for SQLStorage."""

    if TYPE_CHECKING:  # provided by PolicySQLMixin (a stub here would shadow it)

        def _apply_policy_write(
            self, cur: Cursor, store_id: str, rev: int, w: PolicyWrite
        ) -> PolicyWriteResult: ...

    # -- writes -----------------------------------------------------------------------

    def write_scim(
        self,
        store_id: str,
        plan: Callable[[ScimTxReader], ScimWrite],
        *,
        ledger_events: Callable[[int], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> ScimWriteResult:
        def tx(cur: Cursor) -> ScimWriteResult:
            rev = self._bump(cur, store_id)
            reader: Any = _ScimTxReader(self, cur, store_id)  # type: ignore[arg-type]
            change = plan(reader)
            if change.empty:
                raise _Unchanged(rev - 1)
            stored = self._apply_scim_write(cur, store_id, rev, change)
            policy = None
            if not change.policy.empty:
                policy = self._apply_policy_write(cur, store_id, rev, change.policy)
            if ledger_events is not None:
                items = ledger_events(rev)
                if items:
                    self._append_encoded_tx(cur, items)
            return ScimWriteResult(rev, True, stored, policy)

        try:
            return self._write_tx(tx)
        except _Unchanged as nothing:
            return ScimWriteResult(nothing.revision, False)

    def _apply_scim_write(
        self, cur: Cursor, store_id: str, rev: int, w: ScimWrite
    ) -> tuple[ScimResource, ...]:
        q = self._q
        for rtype, id_ in dict.fromkeys(w.deleted):
            cur.execute(
                q("DELETE FROM scim_resources WHERE store_id = ? AND resource_type = ? AND id = ?"),
                (store_id, rtype, id_),
            )
        seen: set[tuple[str, str]] = set()
        out: list[ScimResource] = []
        for s in w.resources:
            _check_type(s.resource_type)
            key = (s.resource_type, s.id)
            if key in seen:
                raise ValidationError(f"SCIM resource {key!r} twice in one write")
            seen.add(key)
            if s.unique_key is not None:
                # checked here, not left to the UNIQUE constraint: a driver exception is
                # no domain error (the service checks first and answers 409 uniqueness)
                cur.execute(
                    q(
                        "SELECT id FROM scim_resources WHERE store_id = ? AND resource_type = ?"
                        " AND unique_key = ? AND id <> ?"
                    ),
                    (store_id, s.resource_type, s.unique_key, s.id),
                )
                clash = cur.fetchone()
                if clash is not None:
                    raise ConflictError(
                        f"SCIM {s.resource_type} {s.unique_key!r} is taken by {clash[0]!r}",
                        details={"resource_type": s.resource_type, "id": str(clash[0])},
                    )
            cur.execute(q(_UPSERT), _params(s, store_id, rev))
            out.append(
                ScimResource(
                    store_id, s.resource_type, s.id, s.external_id, s.unique_key, s.node,
                    dict(s.data), s.version, s.created_at, s.updated_at, rev,
                )
            )  # fmt: skip
        return tuple(out)

    def _delete_scim_rows(self, cur: Cursor, store_id: str) -> None:
        """Called by delete_store inside its transaction."""
        for table in SCIM_TABLES:
            cur.execute(self._q(f"DELETE FROM {table} WHERE store_id = ?"), (store_id,))

    # -- reads ------------------------------------------------------------------------

    def get_scim(self, store_id: str, resource_type: str, id: str) -> ScimResource | None:
        _check_type(resource_type)

        def tx(cur: Cursor) -> ScimResource | None:
            self._revision(cur, store_id)  # StoreNotFoundError for an unknown store
            cur.execute(
                self._q(
                    f"SELECT {SCIM_COLS} FROM scim_resources WHERE store_id = ?"
                    " AND resource_type = ? AND id = ?"
                ),
                (store_id, resource_type, id),
            )
            r = cur.fetchone()
            return None if r is None else scim_from_row(r)

        return self._read_tx(tx)

    def list_scim(self, store_id: str, resource_type: str) -> list[ScimResource]:
        _check_type(resource_type)

        def tx(cur: Cursor) -> list[ScimResource]:
            self._revision(cur, store_id)
            cur.execute(
                self._q(
                    f"SELECT {SCIM_COLS} FROM scim_resources WHERE store_id = ?"
                    " AND resource_type = ? ORDER BY id"
                ),
                (store_id, resource_type),
            )
            return [scim_from_row(r) for r in cur.fetchall()]

        return self._read_tx(tx)
