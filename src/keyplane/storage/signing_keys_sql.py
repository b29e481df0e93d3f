"""Token signing keys (migration ``0008_signing_keys.sql``) in SQL both backends understand.

A mixin of :class:`keyplane.storage.sql.SQLStorage` (it uses the backend's ``_q``,
``_write_tx``, ``_read_tx``, ``_bump``, ``_revision`` and ``_append_encoded_tx``),
implementing :class:`keyplane.storage.base.SigningKeyStore`.

A change bumps the store's revision FIRST (in PostgreSQL that locks the store row until
commit, so two processes creating a store's first key at once are serialized: the second
finds the first's key and adds none), then writes its rows stamped with the new revision
and chains its ledger events — one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from keyplane.tokens.keys import SigningKeyRecord

if TYPE_CHECKING:
    from keyplane.ledger.events import LedgerEvent

__all__ = ["SigningKeyChange", "SigningKeysSQLMixin"]

R = TypeVar("R")
Cursor = Any

_COLS = (
    "store_id, kid, algorithm, public_jwk, encrypted_private_key, state, created_at,"
    " retiring_at, publish_until, revision"
)
_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


@dataclass(frozen=True, slots=True)
class SigningKeyChange:
    """What :meth:`add_signing_key` did: the new active key and the keys it moved to
    ``retiring`` (empty for a store's first key)."""

    key: SigningKeyRecord
    retired: tuple[SigningKeyRecord, ...]
    revision: int


class _ActiveExists(Exception):
    pass


def _record(r: Sequence[Any]) -> SigningKeyRecord:
    jwk = json.loads(r[3]) if isinstance(r[3], str | bytes) else dict(r[3])
    return SigningKeyRecord(
        store_id=str(r[0]),
        kid=str(r[1]),
        algorithm=str(r[2]),
        public_jwk=jwk,
        encrypted_private_key=bytes(r[4]),
        state=str(r[5]),
        created_at=float(r[6]),
        retiring_at=None if r[7] is None else float(r[7]),
        publish_until=None if r[8] is None else float(r[8]),
        revision=int(r[9]),
    )


class SigningKeysSQLMixin:
    # provided by SQLStorage
    def _q(self, sql: str) -> str:
        raise NotImplementedError

    def _write_tx(self, fn: Callable[[Cursor], R], *, retry: bool = True) -> R:
        raise NotImplementedError

    def _read_tx(self, fn: Callable[[Cursor], R]) -> R:
        raise NotImplementedError

    def _bump(self, cur: Cursor, store_id: str) -> int:
        raise NotImplementedError

    def _revision(self, cur: Cursor, store_id: str, suffix: str = "") -> int:
        raise NotImplementedError

    def _append_encoded_tx(
        self, cur: Cursor, items: Sequence[tuple[LedgerEvent, str]]
    ) -> list[tuple[int, str, str]]:
        raise NotImplementedError

    def _signing_keys_tx(self, cur: Cursor, store_id: str) -> list[SigningKeyRecord]:
        cur.execute(
            self._q(
                f"SELECT {_COLS} FROM signing_keys WHERE store_id = ?"
                " ORDER BY created_at, CASE WHEN state = 'active' THEN 1 ELSE 0 END, kid"
            ),
            (store_id,),
        )
        return [_record(r) for r in cur.fetchall()]

    def list_signing_keys(self, store_id: str) -> list[SigningKeyRecord]:
        def tx(cur: Cursor) -> list[SigningKeyRecord]:
            self._revision(cur, store_id)  # StoreNotFoundError for an unknown store
            return self._signing_keys_tx(cur, store_id)

        return self._read_tx(tx)

    def add_signing_key(
        self,
        store_id: str,
        *,
        kid: str,
        algorithm: str,
        public_jwk: Mapping[str, Any],
        encrypted_private_key: bytes,
        created_at: float,
        rotate: bool,
        publish_until: float | None = None,
        ledger_events: Callable[[SigningKeyChange], Sequence[tuple[LedgerEvent, str]]]
        | None = None,
    ) -> SigningKeyChange | None:
        q = self._q

        def tx(cur: Cursor) -> SigningKeyChange:
            rev = self._bump(cur, store_id)
            keys = self._signing_keys_tx(cur, store_id)
            active = [k for k in keys if k.state == "active"]
            if active and not rotate:
                raise _ActiveExists
            retired: list[SigningKeyRecord] = []
            for k in active:
                cur.execute(
                    q(
                        "UPDATE signing_keys SET state = 'retiring', retiring_at = ?,"
                        " publish_until = ?, revision = ? WHERE store_id = ? AND kid = ?"
                    ),
                    (created_at, publish_until, rev, store_id, k.kid),
                )
                retired.append(
                    SigningKeyRecord(
                        k.store_id, k.kid, k.algorithm, k.public_jwk, k.encrypted_private_key,
                        "retiring", k.created_at, created_at, publish_until, rev,
                    )
                )  # fmt: skip
            key = SigningKeyRecord(
                store_id, kid, algorithm, dict(public_jwk), bytes(encrypted_private_key),
                "active", float(created_at), None, None, rev,
            )  # fmt: skip
            cur.execute(
                q(f"INSERT INTO signing_keys ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                (
                    store_id, kid, algorithm, _dumps(dict(public_jwk)),
                    bytes(encrypted_private_key), "active", float(created_at), None, None, rev,
                ),
            )  # fmt: skip
            change = SigningKeyChange(key, tuple(retired), rev)
            if ledger_events is not None:
                items = ledger_events(change)
                if items:
                    self._append_encoded_tx(cur, items)
            return change

        try:
            return self._write_tx(tx)
        except _ActiveExists:
            return None

    def _delete_signing_key_rows(self, cur: Cursor, store_id: str) -> None:
        cur.execute(self._q("DELETE FROM signing_keys WHERE store_id = ?"), (store_id,))
