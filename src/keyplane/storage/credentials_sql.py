"""Client credentials (migration ``0009_client_credentials.sql``) in SQL both backends
understand: the credentials of non-human identities and the jti replay table.

A mixin of :class:`keyplane.storage.sql.SQLStorage` (it uses ``_q``, ``_write_tx``,
``_read_tx``, ``_bump``, ``_revision``, ``_append_encoded_tx`` and ``_select_policy``),
implementing :class:`keyplane.storage.base.CredentialStore`. Every change goes through
:meth:`CredentialSQLMixin.write_credential`: the store revision is bumped FIRST (locking
the store row in PostgreSQL), then the plan reads through a reader bound to the
transaction, then the credential is stored with the new revision and its ledger events
chained — one transaction.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from keyplane.errors import ConflictError, NotFoundError
from keyplane.policy.records import Identity, StorePolicy
from keyplane.storage.base import Page
from keyplane.storage.paging import check_page_size, decode_token, encode_token
from keyplane.storage.policy_sql import IDENTITY_COLS, identity_from_row
from keyplane.tokens.clients import Credential, CredentialRecord

if TYPE_CHECKING:
    from keyplane.ledger.events import LedgerEvent

__all__ = ["CREDENTIAL_COLS", "CredentialSQLMixin", "credential_from_row"]

R = TypeVar("R")
Cursor = Any

CREDENTIAL_COLS = (
    "store_id, id, client_id, type, status, secret_hash, previous_secret_hash,"
    " previous_expires_at, public_jwk, alg, thumbprint, expires_at, last_used_at, rotated_at,"
    " revoked_at, revoked_reason, created_by, created_at, revision"
)
_N = len(CREDENTIAL_COLS.split(","))


def _f(v: Any) -> float | None:
    return None if v is None else float(v)


def credential_from_row(r: Sequence[Any]) -> CredentialRecord:
    cred = Credential(
        store_id=r[0],
        id=r[1],
        client_id=r[2],
        type=r[3],
        status=r[4],
        previous_expires_at=_f(r[7]),
        public_jwk=None if r[8] is None else dict(json.loads(r[8])),
        alg=r[9],
        thumbprint=r[10],
        expires_at=float(r[11]),
        last_used_at=_f(r[12]),
        rotated_at=_f(r[13]),
        revoked_at=_f(r[14]),
        revoked_reason=r[15],
        created_by=r[16],
        created_at=float(r[17]),
        revision=int(r[18]),
    )
    return CredentialRecord(cred, r[5], r[6])


def _params(rec: CredentialRecord, store_id: str, rev: int) -> tuple[Any, ...]:
    c = rec.credential
    jwk = None if c.public_jwk is None else json.dumps(c.public_jwk, sort_keys=True)
    return (
        store_id, c.id, c.client_id, c.type, c.status, rec.secret_hash,
        rec.previous_secret_hash, c.previous_expires_at, jwk, c.alg, c.thumbprint,
        c.expires_at, c.last_used_at, c.rotated_at, c.revoked_at, c.revoked_reason,
        c.created_by, c.created_at, rev,
    )  # fmt: skip


class CredentialTxReader:
    """Reads inside a :meth:`CredentialSQLMixin.write_credential` transaction."""

    def __init__(self, owner: CredentialSQLMixin, cur: Cursor, store_id: str) -> None:
        self._s = owner
        self._cur = cur
        self.store_id = store_id

    def identity(self, kind: str, id: str) -> Identity | None:
        self._cur.execute(
            self._s._q(
                f"SELECT {IDENTITY_COLS} FROM identities WHERE store_id = ? AND kind = ? AND id = ?"
            ),
            (self.store_id, kind, id),
        )
        row = self._cur.fetchone()
        return None if row is None else identity_from_row(row)

    def credential(self, credential_id: str) -> CredentialRecord | None:
        self._cur.execute(
            self._s._q(
                f"SELECT {CREDENTIAL_COLS} FROM client_credentials WHERE store_id = ? AND id = ?"
            ),
            (self.store_id, credential_id),
        )
        row = self._cur.fetchone()
        return None if row is None else credential_from_row(row)

    def store_policy(self) -> StorePolicy:
        return self._s._select_policy(self._cur, self.store_id)


class CredentialSQLMixin:
    """Implementation of :class:`keyplane.storage.base.CredentialStore` for SQLStorage."""

    # provided by SQLStorage / PolicySQLMixin
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

    def _select_policy(self, cur: Cursor, store_id: str) -> StorePolicy:
        raise NotImplementedError

    CREDENTIAL_TABLES = ("client_credentials", "client_assertion_jtis")

    def write_credential(
        self,
        store_id: str,
        plan: Callable[[CredentialTxReader], tuple[CredentialRecord, bool]],
        *,
        ledger_events: Callable[[int, Credential], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> CredentialRecord:
        def tx(cur: Cursor) -> CredentialRecord:
            rev = self._bump(cur, store_id)
            rec, new = plan(CredentialTxReader(self, cur, store_id))
            p = _params(rec, store_id, rev)
            if new:
                marks = ", ".join("?" * _N)
                cur.execute(
                    self._q(
                        f"INSERT INTO client_credentials ({CREDENTIAL_COLS}) VALUES ({marks})"
                        " ON CONFLICT DO NOTHING"
                    ),
                    p,
                )
                if cur.rowcount != 1:
                    raise ConflictError(f"credential {rec.credential.id!r} already exists")
            else:
                sets = ", ".join(f"{c.strip()} = ?" for c in CREDENTIAL_COLS.split(",")[2:])
                cur.execute(
                    self._q(f"UPDATE client_credentials SET {sets} WHERE store_id = ? AND id = ?"),
                    (*p[2:], store_id, rec.credential.id),
                )
                if cur.rowcount != 1:
                    raise NotFoundError(f"credential {rec.credential.id!r} not found")
            out = dataclasses.replace(
                rec, credential=dataclasses.replace(rec.credential, store_id=store_id, revision=rev)
            )
            if ledger_events is not None:
                items = ledger_events(rev, out.credential)
                if items:
                    self._append_encoded_tx(cur, items)
            return out

        return self._write_tx(tx)

    def get_credential(self, store_id: str, credential_id: str) -> CredentialRecord | None:
        def tx(cur: Cursor) -> CredentialRecord | None:
            self._revision(cur, store_id)
            return CredentialTxReader(self, cur, store_id).credential(credential_id)

        return self._read_tx(tx)

    def credentials_of(self, store_id: str, client_id: str) -> list[CredentialRecord]:
        """Every credential of ``client_id`` (active or not), by id."""
        sql = self._q(
            f"SELECT {CREDENTIAL_COLS} FROM client_credentials"
            " WHERE store_id = ? AND client_id = ? ORDER BY id LIMIT 1000"
        )

        def tx(cur: Cursor) -> list[Any]:
            cur.execute(sql, (store_id, client_id))
            return list(cur.fetchall())

        return [credential_from_row(r) for r in self._read_tx(tx)]

    def list_credentials(
        self,
        store_id: str,
        *,
        client_id: str | None = None,
        status: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[CredentialRecord]:
        check_page_size(page_size)
        where = ["store_id = ?"]
        params: list[Any] = [store_id]
        if client_id is not None:
            where.append("client_id = ?")
            params.append(client_id)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        query = ("credentials", store_id, client_id, status)
        if continuation_token:
            (after,) = decode_token(continuation_token, query, 1)
            where.append("id > ?")
            params.append(after)
        sql = self._q(
            f"SELECT {CREDENTIAL_COLS} FROM client_credentials WHERE {' AND '.join(where)}"
            " ORDER BY id LIMIT ?"
        )

        def tx(cur: Cursor) -> list[Any]:
            self._revision(cur, store_id)
            cur.execute(sql, (*params, page_size + 1))
            return list(cur.fetchall())

        rows = self._read_tx(tx)
        more = len(rows) > page_size
        rows = rows[:page_size]
        token = encode_token(query, [rows[-1][1]]) if more else None
        return Page([credential_from_row(r) for r in rows], token)

    def touch_credentials(self, store_id: str, used: Sequence[tuple[str, float]]) -> None:
        """Advance ``last_used_at`` (advisory: no revision, no event)."""
        if not used:
            return
        sql = self._q(
            "UPDATE client_credentials SET last_used_at = ? WHERE store_id = ? AND id = ?"
            " AND (last_used_at IS NULL OR last_used_at < ?)"
        )

        def tx(cur: Cursor) -> None:
            cur.executemany(sql, [(at, store_id, cid, at) for cid, at in used])

        self._write_tx(tx)

    def use_jti(
        self, store_id: str, client_id: str, jti: str, expires_at: float, now: float
    ) -> bool:
        """Record a client assertion's ``jti`` until ``expires_at``; False when it is
        already recorded and not yet expired (a replay). Prunes expired rows."""

        def tx(cur: Cursor) -> bool:
            cur.execute(self._q("DELETE FROM client_assertion_jtis WHERE expires_at < ?"), (now,))
            cur.execute(
                self._q(
                    "INSERT INTO client_assertion_jtis (store_id, client_id, jti, expires_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
                ),
                (store_id, client_id, jti, expires_at),
            )
            return bool(cur.rowcount == 1)

        return self._write_tx(tx)

    def _delete_credential_rows(self, cur: Cursor, store_id: str) -> None:
        """Called by delete_store inside its transaction."""
        for table in self.CREDENTIAL_TABLES:
            cur.execute(self._q(f"DELETE FROM {table} WHERE store_id = ?"), (store_id,))
