"""Helpers for the ledger tests (imported as ``ledger_helpers``): events, a keyring with a test master key, raw SQL access.

Tampering goes around Keyplane entirely — a separate sqlite3 / psycopg connection editing
the tables — as an attacker with database access would.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from keyplane.ledger.checkpoints import LedgerKeyring
from keyplane.ledger.events import LedgerEvent, new_event_id
from keyplane.secrets import MasterKey
from keyplane.storage import Storage


def make_event(i: int = 0, *, store: str = "s1", outcome: str = "allow", **kw: Any) -> LedgerEvent:
    values: dict[str, Any] = {
        "id": new_event_id(),
        "time": 1_800_000_000.0 + i,
        "store": store,
        "type": "decision.check",
        "caller": "key:01TEST",
        "subject": f"user:u{i}",
        "action": "viewer",
        "resource": f"document:d{i}",
        "outcome": outcome,
        "reasons": ("granted by viewer",) if outcome == "allow" else (),
        "model_id": "01MODEL",
        "revision": i,
        "request_id": f"req-{i}",
        "details": {"n": i, "ratio": 0.1 * i, "context": {"ip": "10.0.0.1"}},
    }
    values.update(kw)
    if values["type"].startswith("decision.") and "decision_id" not in kw:
        values["decision_id"] = values["id"]
    return LedgerEvent(**values)


@pytest.fixture
def master_key() -> MasterKey:
    return MasterKey(os.urandom(32))


@pytest.fixture
def keyring(storage: Storage, master_key: MasterKey) -> LedgerKeyring:
    return LedgerKeyring(storage, lambda: master_key)


class Raw:
    """A connection to the same database that bypasses Keyplane (``?`` placeholders)."""

    def __init__(self, url: str) -> None:
        self.pg = url.startswith("postgresql://")
        if self.pg:
            self._conn: Any = psycopg.connect(url, autocommit=True)
        else:
            self._conn = sqlite3.connect(url[len("sqlite:///") :], isolation_level=None)

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        if self.pg:
            sql = sql.replace("?", "%s")
        cur = self._conn.execute(sql, params)
        try:
            return list(cur.fetchall())
        except (psycopg.ProgrammingError, sqlite3.ProgrammingError):
            return []

    def close(self) -> None:
        self._conn.close()


@pytest.fixture
def raw(storage_url: str, storage: Storage) -> Iterator[Raw]:
    # depends on `storage` so the schema exists before the raw connection looks at it
    r = Raw(storage_url)
    try:
        yield r
    finally:
        r.close()
