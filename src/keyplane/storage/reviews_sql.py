"""Access review campaigns (migration ``0011_access_requests.sql``: ``review_campaigns``,
``review_items``) in SQL both backends understand.

A mixin of :class:`keyplane.storage.sql.SQLStorage` (it uses ``_q``, ``_write_tx``,
``_read_tx``, ``_bump``, ``_revision`` and ``_append_encoded_tx``) implementing
:class:`ReviewStore`. Every change bumps the store revision FIRST (in PostgreSQL that locks
the store row until commit, so changes to a store's campaigns are serialized and a
read-modify-write cannot lose a race), then writes its rows stamped with the new revision
and chains its ledger events — one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from keyplane.errors import ReviewNotFoundError
from keyplane.governance.records import ReviewCampaign, ReviewFilter, ReviewItem
from keyplane.storage.base import Page
from keyplane.storage.paging import check_page_size, decode_token, encode_token

if TYPE_CHECKING:
    from keyplane.ledger.events import LedgerEvent

__all__ = ["ReviewChange", "ReviewStore", "ReviewWrite", "ReviewsSQLMixin"]

R = TypeVar("R")
Cursor = Any

_CAMPAIGN_COLS = (
    "store_id, id, name, filter, reviewer, default_decision, apply, state, created_by,"
    " created_at, due_at, closed_at, revision"
)
_ITEM_COLS = (
    "store_id, campaign_id, id, subject, relation, object, request_id, reviewers,"
    " last_used_at, decision, decided_by, decided_at, comment, outcome, applied_at, revision"
)
_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


@dataclass(frozen=True, slots=True)
class ReviewWrite:
    """What a :meth:`ReviewStore.change_review` callback returns: the campaign as it must
    be stored (None: unchanged) and the items to store (their ``revision`` is ignored)."""

    campaign: ReviewCampaign | None = None
    items: Sequence[ReviewItem] = ()


@dataclass(frozen=True, slots=True)
class ReviewChange:
    """What :meth:`ReviewStore.change_review` stored, stamped with ``revision`` (0 when the
    callback changed nothing: rolled back, no revision, no event)."""

    campaign: ReviewCampaign
    items: tuple[ReviewItem, ...]
    revision: int


class ReviewStore(Protocol):
    """Review campaigns and their items. Every method raises StoreNotFoundError for a
    missing store; :meth:`StoreAdmin.delete_store` removes the store's rows (with the
    governance tables: ``GovernanceSQLMixin.GOVERNANCE_TABLES``)."""

    def create_review(
        self,
        store_id: str,
        campaign: ReviewCampaign,
        items: Sequence[ReviewItem],
        *,
        ledger_events: Callable[[ReviewChange], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> ReviewChange:
        """Insert the campaign and its items (one transaction, stamped with the new
        revision); ``ledger_events`` gets what was stored."""
        ...

    def change_review(
        self,
        store_id: str,
        review_id: str,
        plan: Callable[[ReviewCampaign, Sequence[ReviewItem]], ReviewWrite],
        *,
        item_ids: Sequence[int] | None = None,
        ledger_events: Callable[[ReviewChange], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> ReviewChange:
        """Read-modify-write in one transaction: ``plan`` gets the stored campaign and its
        items (those of ``item_ids`` that exist, or every item when None), read after the
        bump, and returns what to store; it may raise to refuse (nothing is written) and
        MAY run more than once. ReviewNotFoundError when the campaign is missing."""
        ...

    def get_review(self, store_id: str, review_id: str) -> ReviewCampaign | None: ...

    def list_reviews(
        self,
        store_id: str,
        *,
        state: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[ReviewCampaign]:
        """Campaigns ordered by id (creation order)."""
        ...

    def get_review_item(self, store_id: str, review_id: str, item_id: int) -> ReviewItem | None: ...

    def list_review_items(
        self,
        store_id: str,
        review_id: str,
        *,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[ReviewItem]:
        """A campaign's items ordered by id."""
        ...


def campaign_from_row(r: Sequence[Any]) -> ReviewCampaign:
    return ReviewCampaign(
        store_id=str(r[0]),
        id=str(r[1]),
        name=str(r[2]),
        filter=ReviewFilter.from_json(json.loads(r[3])),
        reviewer=str(r[4]),
        default_decision=str(r[5]),
        apply=str(r[6]),
        state=str(r[7]),
        created_by=str(r[8]),
        created_at=float(r[9]),
        due_at=None if r[10] is None else float(r[10]),
        closed_at=None if r[11] is None else float(r[11]),
        revision=int(r[12]),
    )


def item_from_row(r: Sequence[Any]) -> ReviewItem:
    return ReviewItem(
        store_id=str(r[0]),
        campaign_id=str(r[1]),
        id=int(r[2]),
        user=str(r[3]),
        relation=str(r[4]),
        object=str(r[5]),
        request_id=None if r[6] is None else str(r[6]),
        reviewers=tuple(json.loads(r[7])),
        last_used_at=None if r[8] is None else float(r[8]),
        decision=r[9],
        decided_by=r[10],
        decided_at=None if r[11] is None else float(r[11]),
        comment=r[12],
        outcome=r[13],
        applied_at=None if r[14] is None else float(r[14]),
        revision=int(r[15]),
    )


def _campaign_row(c: ReviewCampaign, rev: int) -> tuple[Any, ...]:
    return (
        c.store_id, c.id, c.name, _dumps(c.filter.to_json()), c.reviewer, c.default_decision,
        c.apply, c.state, c.created_by, c.created_at, c.due_at, c.closed_at, rev,
    )  # fmt: skip


def _item_row(i: ReviewItem, rev: int) -> tuple[Any, ...]:
    return (
        i.store_id, i.campaign_id, i.id, i.user, i.relation, i.object, i.request_id,
        _dumps(list(i.reviewers)), i.last_used_at, i.decision, i.decided_by, i.decided_at,
        i.comment, i.outcome, i.applied_at, rev,
    )  # fmt: skip


class _NothingChanged(Exception):
    """Rolls a change_review transaction back when its plan changed nothing."""

    def __init__(self, campaign: ReviewCampaign, items: tuple[ReviewItem, ...]) -> None:
        super().__init__("nothing changed")
        self.campaign = campaign
        self.items = items


class ReviewsSQLMixin:
    """Implementation of :class:`ReviewStore` for SQLStorage."""

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

    def _events_in_tx(
        self,
        cur: Cursor,
        ledger_events: Callable[[ReviewChange], Sequence[tuple[LedgerEvent, str]]] | None,
        made: ReviewChange,
    ) -> None:
        if ledger_events is not None:
            events = ledger_events(made)
            if events:
                self._append_encoded_tx(cur, events)

    def create_review(
        self,
        store_id: str,
        campaign: ReviewCampaign,
        items: Sequence[ReviewItem],
        *,
        ledger_events: Callable[[ReviewChange], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> ReviewChange:
        q = self._q
        ins_c = q(f"INSERT INTO review_campaigns ({_CAMPAIGN_COLS}) VALUES ({_marks(13)})")
        ins_i = q(f"INSERT INTO review_items ({_ITEM_COLS}) VALUES ({_marks(16)})")
        rows = list(items)

        def tx(cur: Cursor) -> ReviewChange:
            rev = self._bump(cur, store_id)
            cur.execute(ins_c, _campaign_row(campaign, rev))
            if rows:
                cur.executemany(ins_i, [_item_row(i, rev) for i in rows])
            made = ReviewChange(
                replace(campaign, revision=rev),
                tuple(replace(i, revision=rev) for i in rows),
                rev,
            )
            self._events_in_tx(cur, ledger_events, made)
            return made

        return self._write_tx(tx)

    def _campaign_tx(self, cur: Cursor, store_id: str, review_id: str) -> ReviewCampaign | None:
        cur.execute(
            self._q(f"SELECT {_CAMPAIGN_COLS} FROM review_campaigns WHERE store_id = ? AND id = ?"),
            (store_id, review_id),
        )
        row = cur.fetchone()
        return None if row is None else campaign_from_row(row)

    def _items_tx(
        self, cur: Cursor, store_id: str, review_id: str, item_ids: Sequence[int] | None
    ) -> list[ReviewItem]:
        sql = f"SELECT {_ITEM_COLS} FROM review_items WHERE store_id = ? AND campaign_id = ?"
        params: list[Any] = [store_id, review_id]
        if item_ids is not None:
            if not item_ids:
                return []
            sql += f" AND id IN ({_marks(len(item_ids))})"
            params.extend(int(i) for i in item_ids)
        cur.execute(self._q(sql + " ORDER BY id"), params)
        return [item_from_row(r) for r in cur.fetchall()]

    def change_review(
        self,
        store_id: str,
        review_id: str,
        plan: Callable[[ReviewCampaign, Sequence[ReviewItem]], ReviewWrite],
        *,
        item_ids: Sequence[int] | None = None,
        ledger_events: Callable[[ReviewChange], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> ReviewChange:
        q = self._q
        upd_c = q(
            "UPDATE review_campaigns SET name = ?, filter = ?, reviewer = ?,"
            " default_decision = ?, apply = ?, state = ?, created_by = ?, created_at = ?,"
            " due_at = ?, closed_at = ?, revision = ? WHERE store_id = ? AND id = ?"
        )
        upd_i = q(
            "UPDATE review_items SET subject = ?, relation = ?, object = ?, request_id = ?,"
            " reviewers = ?, last_used_at = ?, decision = ?, decided_by = ?, decided_at = ?,"
            " comment = ?, outcome = ?, applied_at = ?, revision = ?"
            " WHERE store_id = ? AND campaign_id = ? AND id = ?"
        )

        def tx(cur: Cursor) -> ReviewChange:
            rev = self._bump(cur, store_id)
            stored = self._campaign_tx(cur, store_id, review_id)
            if stored is None:
                raise ReviewNotFoundError(
                    f"review {review_id!r} not found", details={"review_id": review_id}
                )
            items = self._items_tx(cur, store_id, review_id, item_ids)
            w = plan(stored, items)
            if w.campaign is None and not w.items:
                raise _NothingChanged(stored, tuple(items))
            campaign = stored
            if w.campaign is not None:
                if w.campaign.id != review_id or w.campaign.store_id != store_id:
                    raise ValueError("a review change cannot move the campaign")
                row = _campaign_row(w.campaign, rev)
                cur.execute(upd_c, (*row[2:], store_id, review_id))
                campaign = replace(w.campaign, revision=rev)
            written: list[ReviewItem] = []
            for i in w.items:
                if i.campaign_id != review_id or i.store_id != store_id:
                    raise ValueError("a review change cannot move an item")
                row = _item_row(i, rev)
                cur.execute(upd_i, (*row[3:], store_id, review_id, i.id))
                if cur.rowcount != 1:
                    raise ValueError(f"review item {i.id} does not exist")
                written.append(replace(i, revision=rev))
            made = ReviewChange(campaign, tuple(written), rev)
            self._events_in_tx(cur, ledger_events, made)
            return made

        try:
            return self._write_tx(tx)
        except _NothingChanged as nc:
            return ReviewChange(nc.campaign, nc.items, 0)

    def get_review(self, store_id: str, review_id: str) -> ReviewCampaign | None:
        def tx(cur: Cursor) -> ReviewCampaign | None:
            self._revision(cur, store_id)
            return self._campaign_tx(cur, store_id, review_id)

        return self._read_tx(tx)

    def list_reviews(
        self,
        store_id: str,
        *,
        state: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[ReviewCampaign]:
        check_page_size(page_size)
        where = ["store_id = ?"]
        params: list[Any] = [store_id]
        if state is not None:
            where.append("state = ?")
            params.append(state)
        query = ("reviews", store_id, state)
        if continuation_token:
            where.append("id > ?")
            params.append(decode_token(continuation_token, query, 1)[0])
        sql = self._q(
            f"SELECT {_CAMPAIGN_COLS} FROM review_campaigns WHERE {' AND '.join(where)}"
            " ORDER BY id LIMIT ?"
        )

        def tx(cur: Cursor) -> list[Any]:
            self._revision(cur, store_id)
            cur.execute(sql, (*params, page_size + 1))
            return list(cur.fetchall())

        rows = self._read_tx(tx)
        found = [campaign_from_row(r) for r in rows[:page_size]]
        token = encode_token(query, [found[-1].id]) if len(rows) > page_size else None
        return Page(found, token)

    def get_review_item(self, store_id: str, review_id: str, item_id: int) -> ReviewItem | None:
        def tx(cur: Cursor) -> ReviewItem | None:
            self._revision(cur, store_id)
            found = self._items_tx(cur, store_id, review_id, [int(item_id)])
            return found[0] if found else None

        return self._read_tx(tx)

    def list_review_items(
        self,
        store_id: str,
        review_id: str,
        *,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[ReviewItem]:
        check_page_size(page_size)
        where = ["store_id = ?", "campaign_id = ?"]
        params: list[Any] = [store_id, review_id]
        query = ("review_items", store_id, review_id)
        if continuation_token:
            after = decode_token(continuation_token, query, 1)[0]
            if not isinstance(after, int):
                after = -1
            where.append("id > ?")
            params.append(after)
        sql = self._q(
            f"SELECT {_ITEM_COLS} FROM review_items WHERE {' AND '.join(where)} ORDER BY id LIMIT ?"
        )

        def tx(cur: Cursor) -> list[Any]:
            self._revision(cur, store_id)
            cur.execute(sql, (*params, page_size + 1))
            return list(cur.fetchall())

        rows = self._read_tx(tx)
        found = [item_from_row(r) for r in rows[:page_size]]
        token = encode_token(query, [found[-1].id]) if len(rows) > page_size else None
        return Page(found, token)


def _marks(n: int) -> str:
    return ", ".join("?" for _ in range(n))
