"""Ledger administration tables, in SQL both backends understand: webhook subscriptions
(with their acknowledged ``seq`` and retry state), per-store retention settings, and
pruning (migration ``0006_ledger_webhooks.sql``; a subscription's ``event_types`` filter,
a JSON list, came with ``0011``).

A mixin of :class:`keyplane.storage.sql.SQLStorage`: it uses the backend's ``_q``,
``_write_tx`` and ``_read_tx``. Like the rest of the ledger, none of these methods
requires the store to exist (the ledger outlives its store).

Every mutating method takes ``ledger_events`` like the rest of storage: a callback run
inside the change's own transaction whose (event, canonical text) pairs are chained there,
so the change and its ledger event commit together or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from keyplane.errors import NotFoundError

if TYPE_CHECKING:
    from keyplane.ledger.events import LedgerEvent

__all__ = ["LedgerAdminSQL", "LedgerAdminStore", "Retention", "WebhookRecord"]

R = TypeVar("R")
T = TypeVar("T")
Cursor = Any
#: a change's ledger events, built inside its transaction from what the change made
LedgerEvents = Callable[[T], "Sequence[tuple[LedgerEvent, str]]"]

_HOOK_COLS = (
    "id, store_id, url, encrypted_secret, created_at, acked_seq, failures, last_error,"
    " last_attempt_at, next_attempt_at, event_types"
)


@dataclass(frozen=True, slots=True)
class Retention:
    """How long a store's ledger keeps events: by age (days) and/or by count (newest)."""

    store: str
    max_age_days: float | None
    max_events: int | None
    updated_at: float


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    """A ledger webhook subscription as stored (the secret encrypted under the master key)."""

    id: str
    store: str
    url: str
    encrypted_secret: bytes
    created_at: float
    acked_seq: int
    failures: int
    last_error: str | None
    last_attempt_at: float | None
    next_attempt_at: float
    #: the event types delivered: exact types or prefixes ending in ``*`` (empty: every one)
    event_types: tuple[str, ...] = ()


class LedgerAdminStore(Protocol):
    """Webhook subscriptions, retention settings and pruning of the ledger.

    Like :class:`~keyplane.storage.base.LedgerStore`, these methods MUST NOT require the
    store to exist.
    """

    def create_webhook(
        self,
        webhook_id: str,
        store_id: str,
        url: str,
        encrypted_secret: bytes,
        *,
        created_at: float,
        acked_seq: int = 0,
        event_types: Sequence[str] = (),
        ledger_events: LedgerEvents[WebhookRecord] | None = None,
    ) -> WebhookRecord:
        """Insert a subscription that delivers the events after ``acked_seq`` (only those
        ``event_types`` match, when given — kept as given, in order); ``ledger_events``
        (called with the new record) commits in the same transaction."""
        ...

    def get_webhook(self, webhook_id: str) -> WebhookRecord | None: ...

    def list_webhooks(self, store_id: str | None = None) -> list[WebhookRecord]:
        """The store's subscriptions (every store's when None), oldest first."""
        ...

    def delete_webhook(
        self,
        store_id: str,
        webhook_id: str,
        *,
        ledger_events: LedgerEvents[str] | None = None,
    ) -> None:
        """MUST raise NotFoundError when the store has no such subscription (and then
        record nothing); ``ledger_events`` (called with the id) commits with the delete."""
        ...

    def claim_webhook(self, webhook_id: str, owner: str, *, now: float, until: float) -> bool:
        """Take the delivery lease until ``until``, unless another owner holds an unexpired
        one (then False). Atomic: two processes never both get it."""
        ...

    def webhook_delivered(self, webhook_id: str, owner: str, acked_seq: int, *, now: float) -> None:
        """Record an acknowledged delivery: ``acked_seq`` MUST never move back; reset the
        failures; release the lease."""
        ...

    def webhook_failed(
        self, webhook_id: str, owner: str, error: str, *, now: float, next_attempt_at: float
    ) -> None:
        """Count a failed delivery, keep its error and when to retry; release the lease."""
        ...

    def set_ledger_retention(
        self,
        store_id: str,
        *,
        max_age_days: float | None,
        max_events: int | None,
        now: float,
        ledger_events: LedgerEvents[Retention] | None = None,
    ) -> Retention:
        """``ledger_events`` (called with the new setting) commits in the same transaction."""
        ...

    def ledger_retention(self, store_id: str) -> Retention | None: ...

    def first_seq_at_or_after(self, store_id: str, time: float) -> int | None: ...

    def prune_events(
        self,
        store_id: str,
        before_seq: int,
        *,
        ledger_events: LedgerEvents[int] | None = None,
    ) -> int:
        """Delete events with ``seq < before_seq`` (and checkpoints below ``before_seq - 1``).
        The caller MUST have written a signed checkpoint at ``before_seq - 1`` first.
        ``ledger_events`` (called with the number deleted) is chained in the same
        transaction, after the deletion."""
        ...


def _hook(r: Any) -> WebhookRecord:
    return WebhookRecord(
        id=r[0],
        store=r[1],
        url=r[2],
        encrypted_secret=bytes(r[3]),
        created_at=float(r[4]),
        acked_seq=int(r[5]),
        failures=int(r[6]),
        last_error=r[7],
        last_attempt_at=None if r[8] is None else float(r[8]),
        next_attempt_at=float(r[9]),
        event_types=tuple(json.loads(r[10] or "[]")),
    )


class LedgerAdminSQL:
    """Webhook subscriptions, retention and pruning (see the module docstring)."""

    # provided by SQLStorage
    def _q(self, sql: str) -> str:
        raise NotImplementedError

    def _write_tx(self, fn: Callable[[Cursor], R], *, retry: bool = True) -> R:
        raise NotImplementedError

    def _read_tx(self, fn: Callable[[Cursor], R]) -> R:
        raise NotImplementedError

    def _ledger_in_tx(
        self,
        cur: Cursor,
        ledger_events: Callable[[T], Sequence[tuple[LedgerEvent, str]]] | None,
        made: T,
    ) -> None:
        raise NotImplementedError

    # -- webhooks --------------------------------------------------------------------

    def create_webhook(
        self,
        webhook_id: str,
        store_id: str,
        url: str,
        encrypted_secret: bytes,
        *,
        created_at: float,
        acked_seq: int = 0,
        event_types: Sequence[str] = (),
        ledger_events: LedgerEvents[WebhookRecord] | None = None,
    ) -> WebhookRecord:
        """Insert a subscription delivering events after ``acked_seq`` (those
        ``event_types`` match, when given)."""
        types = tuple(event_types)
        made = WebhookRecord(
            webhook_id, store_id, url, bytes(encrypted_secret), created_at, acked_seq, 0,
            None, None, 0.0, types,
        )  # fmt: skip

        def tx(cur: Cursor) -> None:
            cur.execute(
                self._q(
                    "INSERT INTO ledger_webhooks (id, store_id, url, encrypted_secret,"
                    " created_at, acked_seq, failures, next_attempt_at, event_types)"
                    " VALUES (?, ?, ?, ?, ?, ?, 0, 0, ?)"
                ),
                (
                    webhook_id,
                    store_id,
                    url,
                    bytes(encrypted_secret),
                    created_at,
                    acked_seq,
                    json.dumps(list(types), separators=(",", ":")),
                ),
            )
            self._ledger_in_tx(cur, ledger_events, made)

        self._write_tx(tx)
        hook = self.get_webhook(webhook_id)
        assert hook is not None
        return hook

    def get_webhook(self, webhook_id: str) -> WebhookRecord | None:
        def tx(cur: Cursor) -> Any:
            cur.execute(
                self._q(f"SELECT {_HOOK_COLS} FROM ledger_webhooks WHERE id = ?"), (webhook_id,)
            )
            return cur.fetchone()

        row = self._read_tx(tx)
        return None if row is None else _hook(row)

    def list_webhooks(self, store_id: str | None = None) -> list[WebhookRecord]:
        """The store's subscriptions (every store's when None), by id (creation order)."""

        def tx(cur: Cursor) -> list[Any]:
            if store_id is None:
                cur.execute(self._q(f"SELECT {_HOOK_COLS} FROM ledger_webhooks ORDER BY id"))
            else:
                cur.execute(
                    self._q(
                        f"SELECT {_HOOK_COLS} FROM ledger_webhooks WHERE store_id = ? ORDER BY id"
                    ),
                    (store_id,),
                )
            return list(cur.fetchall())

        return [_hook(r) for r in self._read_tx(tx)]

    def delete_webhook(
        self,
        store_id: str,
        webhook_id: str,
        *,
        ledger_events: LedgerEvents[str] | None = None,
    ) -> None:
        """Delete the subscription; NotFoundError if the store has no such subscription."""

        def tx(cur: Cursor) -> None:
            cur.execute(
                self._q("DELETE FROM ledger_webhooks WHERE id = ? AND store_id = ?"),
                (webhook_id, store_id),
            )
            if not cur.rowcount:  # nothing deleted: nothing recorded either
                raise NotFoundError(
                    f"no webhook {webhook_id!r} on store {store_id!r}",
                    details={"webhook_id": webhook_id, "store": store_id},
                )
            self._ledger_in_tx(cur, ledger_events, webhook_id)

        self._write_tx(tx)

    def claim_webhook(self, webhook_id: str, owner: str, *, now: float, until: float) -> bool:
        """Take the delivery lease unless another owner holds an unexpired one."""

        def tx(cur: Cursor) -> int:
            cur.execute(
                self._q(
                    "UPDATE ledger_webhooks SET lease_owner = ?, lease_until = ? WHERE id = ?"
                    " AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ?)"
                ),
                (owner, until, webhook_id, owner, now),
            )
            return int(cur.rowcount)

        return bool(self._write_tx(tx))

    def webhook_delivered(self, webhook_id: str, owner: str, acked_seq: int, *, now: float) -> None:
        """Record an acknowledged delivery (``acked_seq`` never moves back) and release the
        lease."""

        def tx(cur: Cursor) -> None:
            cur.execute(
                self._q(
                    "UPDATE ledger_webhooks SET acked_seq = CASE WHEN acked_seq > ? THEN"
                    " acked_seq ELSE ? END, failures = 0, last_error = NULL,"
                    " last_attempt_at = ?, next_attempt_at = ?, lease_owner = NULL,"
                    " lease_until = NULL WHERE id = ? AND (lease_owner IS NULL OR lease_owner = ?)"
                ),
                (acked_seq, acked_seq, now, now, webhook_id, owner),
            )

        self._write_tx(tx)

    def webhook_failed(
        self, webhook_id: str, owner: str, error: str, *, now: float, next_attempt_at: float
    ) -> None:
        """Record a failed delivery and when to try again; release the lease."""

        def tx(cur: Cursor) -> None:
            cur.execute(
                self._q(
                    "UPDATE ledger_webhooks SET failures = failures + 1, last_error = ?,"
                    " last_attempt_at = ?, next_attempt_at = ?, lease_owner = NULL,"
                    " lease_until = NULL WHERE id = ? AND (lease_owner IS NULL OR lease_owner = ?)"
                ),
                (error, now, next_attempt_at, webhook_id, owner),
            )

        self._write_tx(tx)

    # -- retention and pruning ---------------------------------------------------------

    def set_ledger_retention(
        self,
        store_id: str,
        *,
        max_age_days: float | None,
        max_events: int | None,
        now: float,
        ledger_events: LedgerEvents[Retention] | None = None,
    ) -> Retention:
        made = Retention(store_id, max_age_days, max_events, now)

        def tx(cur: Cursor) -> None:
            cur.execute(self._q("DELETE FROM ledger_retention WHERE store_id = ?"), (store_id,))
            if max_age_days is not None or max_events is not None:
                cur.execute(
                    self._q(
                        "INSERT INTO ledger_retention (store_id, max_age_days, max_events,"
                        " updated_at) VALUES (?, ?, ?, ?)"
                    ),
                    (store_id, max_age_days, max_events, now),
                )
            self._ledger_in_tx(cur, ledger_events, made)

        self._write_tx(tx)
        return made

    def ledger_retention(self, store_id: str) -> Retention | None:
        def tx(cur: Cursor) -> Any:
            cur.execute(
                self._q(
                    "SELECT max_age_days, max_events, updated_at FROM ledger_retention"
                    " WHERE store_id = ?"
                ),
                (store_id,),
            )
            return cur.fetchone()

        row = self._read_tx(tx)
        if row is None:
            return None
        days = None if row[0] is None else float(row[0])
        count = None if row[1] is None else int(row[1])
        return Retention(store_id, days, count, float(row[2]))

    def first_seq_at_or_after(self, store_id: str, time: float) -> int | None:
        """The lowest seq whose event time is at or after ``time`` (None: no such event)."""

        def tx(cur: Cursor) -> Any:
            cur.execute(
                self._q("SELECT MIN(seq) FROM ledger_events WHERE store_id = ? AND time >= ?"),
                (store_id, time),
            )
            return cur.fetchone()

        row = self._read_tx(tx)
        return None if row is None or row[0] is None else int(row[0])

    def prune_events(
        self,
        store_id: str,
        before_seq: int,
        *,
        ledger_events: LedgerEvents[int] | None = None,
    ) -> int:
        """Delete the store's events with ``seq < before_seq`` and the checkpoints below
        ``before_seq - 1``; return how many events were deleted.

        The caller MUST first write a signed checkpoint at ``before_seq - 1`` (the anchor the
        remaining chain is verified from); this method keeps it.
        """

        def tx(cur: Cursor) -> int:
            cur.execute(
                self._q("DELETE FROM ledger_events WHERE store_id = ? AND seq < ?"),
                (store_id, before_seq),
            )
            deleted = int(cur.rowcount)
            cur.execute(
                self._q("DELETE FROM ledger_checkpoints WHERE store_id = ? AND seq < ?"),
                (store_id, before_seq - 1),
            )
            self._ledger_in_tx(cur, ledger_events, deleted)
            return deleted

        return self._write_tx(tx)
