"""The ledger's activity aggregate: events of some types grouped by who, what and how it
ended — what the gateway's tool usage (``service/gateway_usage.py``) reads from the
window's ``gateway.tool_call`` events, allowed, denied and failed alike.

:meth:`LedgerStore.ledger_usage <keyplane.storage.base.LedgerStore.ledger_usage>` counts
only allowed decisions; this sibling keeps the outcome as a group key. A mixin of
:class:`keyplane.storage.sql.SQLStorage` (it uses the backend's ``_q`` and ``_read_tx``);
one SQL statement both backends run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol, TypeVar

__all__ = ["ActivityRow", "LedgerActivitySQL", "LedgerActivityStore"]

from keyplane.storage.sql_host import SQLHost

R = TypeVar("R")
Cursor = Any


class ActivityRow(NamedTuple):
    """One group of events (:meth:`LedgerActivityStore.ledger_activity`): every event of
    ``type`` with these ``subject``, ``actors`` (the actor chain, in order), ``resource``
    and ``outcome`` columns — as stored, so possibly HMAC-redacted — how many there were
    (``events``) and the times of the oldest and the newest."""

    subject: str | None
    actors: tuple[str, ...]
    resource: str | None
    type: str
    outcome: str
    events: int
    first_at: float
    last_at: float


class LedgerActivityStore(Protocol):
    def ledger_activity(
        self, store_id: str, *, since: float, until: float, types: Sequence[str]
    ) -> list[ActivityRow]:
        """The store's events of the given ``types`` with ``since <= time < until``, of
        every outcome, aggregated: one row per distinct ``(subject, actors, resource,
        type, outcome)`` with the count and the oldest and newest times, in no particular
        order. It MUST be one aggregate query over the indexed columns (never reading
        event bodies). Values are returned as stored (redacted fields hashed). An empty
        ``types`` returns nothing. MUST NOT raise for a store that has no events or no
        longer exists."""
        ...


class LedgerActivitySQL(SQLHost):
    """:class:`LedgerActivityStore` in SQL both backends understand."""

    def ledger_activity(
        self, store_id: str, *, since: float, until: float, types: Sequence[str]
    ) -> list[ActivityRow]:
        if not types:
            return []
        sql = self._q(
            "SELECT subject, actors, resource, type, outcome, COUNT(*), MIN(time), MAX(time)"
            " FROM ledger_events WHERE store_id = ? AND time >= ? AND time < ?"
            f" AND type IN ({', '.join('?' for _ in types)})"
            " GROUP BY subject, actors, resource, type, outcome"
        )
        params = [store_id, float(since), float(until), *types]

        def tx(cur: Cursor) -> list[Any]:
            cur.execute(sql, params)
            return list(cur.fetchall())

        chains: dict[str, tuple[str, ...]] = {"[]": ()}
        out: list[ActivityRow] = []
        for subject, actors, resource, type_, outcome, count, first, last in self._read_tx(tx):
            chain = chains.get(actors) if actors else ()
            if chain is None:  # a JSON list of the chain's nodes, as the ledger stores it
                chain = chains[actors] = tuple(json.loads(actors))
            out.append(
                ActivityRow(
                    subject, chain, resource, str(type_), str(outcome), int(count),
                    float(first), float(last),
                )
            )  # fmt: skip
        return out
