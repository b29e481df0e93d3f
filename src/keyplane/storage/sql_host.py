"""What :class:`keyplane.storage.sql.SQLStorage` provides to its SQL mixins, declared once.

A mixin (``gateway_sql.py``, ``scim_sql.py``, …) derives from :class:`SQLHost` to call the
backend's query rewriting, transactions, revision bump and ledger append. The bodies here
only raise: ``SQLStorage`` defines every one of them itself, so they are never reached; they
exist so that each mixin type-checks on its own. A method another *mixin* provides (e.g.
``PolicySQLMixin._apply_policy_write``) must not be stubbed here — in the method resolution
order this class may come before that mixin and would shadow it; declare such a method under
``if TYPE_CHECKING`` in the mixin that uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from keyplane.ledger.events import LedgerEvent

__all__ = ["SQLHost"]

R = TypeVar("R")
Cursor = Any


class SQLHost:
    """The backend's primitives, as the mixins see them (implemented by SQLStorage)."""

    def _q(self, sql: str) -> str:
        raise NotImplementedError  # SQLStorage._q

    def _write_tx(self, fn: Callable[[Cursor], R], *, retry: bool = True) -> R:
        raise NotImplementedError  # SQLStorage._write_tx (the backend's)

    def _read_tx(self, fn: Callable[[Cursor], R]) -> R:
        raise NotImplementedError  # SQLStorage._read_tx (the backend's)

    def _bump(self, cur: Cursor, store_id: str) -> int:
        raise NotImplementedError  # SQLStorage._bump

    def _revision(self, cur: Cursor, store_id: str, suffix: str = "") -> int:
        raise NotImplementedError  # SQLStorage._revision

    def _append_encoded_tx(
        self, cur: Cursor, items: Sequence[tuple[LedgerEvent, str]]
    ) -> list[tuple[int, str, str]]:
        raise NotImplementedError  # SQLStorage._append_encoded_tx
