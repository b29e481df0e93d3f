"""Revoked access tokens (migration ``0010_tokens.sql``) in SQL both backends understand.

A mixin of :class:`keyplane.storage.sql.SQLStorage` (it uses ``_q``, ``_write_tx``,
``_read_tx``, ``_bump``, ``_revision`` and ``_append_encoded_tx``), implementing
:class:`keyplane.storage.base.TokenStore`, plus what
:meth:`~keyplane.storage.policy_sql.PolicySQLMixin.read_policy_changes` adds to a
:class:`~keyplane.storage.base.PolicyChanges`: the tokens revoked and the client
credentials revoked after a revision. A revocation bumps the store revision FIRST (in
PostgreSQL that locks the store row until commit), then inserts its rows stamped with the
new revision and chains its ledger events — one transaction — so every process's
:class:`~keyplane.policy.state.PolicyState` sees it at the next catch-up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from keyplane.storage.base import REVOKED_TOKEN_GRACE

if TYPE_CHECKING:
    from keyplane.ledger.events import LedgerEvent

__all__ = ["TokensSQLMixin"]

R = TypeVar("R")
Cursor = Any


class TokensSQLMixin:
    """Implementation of :class:`keyplane.storage.base.TokenStore` for SQLStorage."""

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

    TOKEN_TABLES = ("revoked_tokens",)

    def revoke_tokens(
        self,
        store_id: str,
        items: Sequence[tuple[str, float]],
        *,
        revoked_by: str,
        reason: str | None,
        revoked_at: float,
        ledger_events: Callable[[int], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> int:
        rows = [(str(jti), float(exp)) for jti, exp in items]
        if not rows:
            return self._read_tx(lambda cur: self._revision(cur, store_id))
        q = self._q
        insert = q(
            "INSERT INTO revoked_tokens"
            " (store_id, jti, expires_at, revoked_at, revoked_by, reason, revision)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
        )
        prune = q("DELETE FROM revoked_tokens WHERE store_id = ? AND expires_at < ?")
        # the caller's clock (the service's, which may be injected), not the storage's
        cutoff = float(revoked_at) - REVOKED_TOKEN_GRACE

        def tx(cur: Cursor) -> int:
            rev = self._bump(cur, store_id)
            # only this store's rows: its row lock (taken by the bump) serializes them
            cur.execute(prune, (store_id, cutoff))
            cur.executemany(
                insert,
                [(store_id, j, e, float(revoked_at), revoked_by, reason, rev) for j, e in rows],
            )
            if ledger_events is not None:
                events = ledger_events(rev)
                if events:
                    self._append_encoded_tx(cur, events)
            return rev

        return self._write_tx(tx)

    def is_token_revoked(self, store_id: str, jti: str) -> bool:
        sql = self._q("SELECT 1 FROM revoked_tokens WHERE store_id = ? AND jti = ?")

        def tx(cur: Cursor) -> bool:
            self._revision(cur, store_id)
            cur.execute(sql, (store_id, jti))
            return cur.fetchone() is not None

        return self._read_tx(tx)

    def prune_revoked_tokens(self, before: float) -> int:
        sql = self._q("DELETE FROM revoked_tokens WHERE expires_at < ?")

        def tx(cur: Cursor) -> int:
            cur.execute(sql, (float(before),))
            return max(int(cur.rowcount), 0)

        return self._write_tx(tx)

    def _token_changes(
        self, cur: Cursor, store_id: str, after_revision: int
    ) -> tuple[tuple[tuple[str, float], ...], tuple[str, ...]]:
        """Inside read_policy_changes' snapshot: the tokens revoked after the revision and
        still worth remembering, and the credentials revoked after it (by id). Every row is
        returned: which ones have expired is for the reader's clock to say
        (:meth:`PolicyState.advanced` drops them), never the storage's — with an injected clock
        the two differ, and filtering here would silently forget a revocation."""
        cur.execute(
            self._q(
                "SELECT jti, expires_at FROM revoked_tokens WHERE store_id = ? AND revision > ?"
                " ORDER BY revision, jti"
            ),
            (store_id, after_revision),
        )
        tokens = tuple((str(r[0]), float(r[1])) for r in cur.fetchall())
        cur.execute(
            self._q(
                "SELECT id FROM client_credentials WHERE store_id = ? AND status = 'revoked'"
                " AND revision > ? ORDER BY id"
            ),
            (store_id, after_revision),
        )
        credentials = tuple(str(r[0]) for r in cur.fetchall())
        return tokens, credentials

    def _delete_token_rows(self, cur: Cursor, store_id: str) -> None:
        """Called by delete_store inside its transaction."""
        for table in self.TOKEN_TABLES:
            cur.execute(self._q(f"DELETE FROM {table} WHERE store_id = ?"), (store_id,))
