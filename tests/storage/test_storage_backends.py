"""Backend specifics: SQLite pragmas and BUSY handling, PostgreSQL schema upgrades."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from keyplane.errors import StorageError
from keyplane.graph.tuples import Tuple
from keyplane.ledger.chain import canonical_text
from keyplane.ledger.events import LedgerEvent, new_event_id
from keyplane.storage import open_storage
from keyplane.storage.migrate import load_migrations
from keyplane.storage.sqlite import SQLiteStorage

POSTGRES_URL = os.environ.get(
    "KEYPLANE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _ledger_items(n: int, start: int = 0) -> list[tuple[LedgerEvent, str]]:
    out = []
    for i in range(start, start + n):
        ev = LedgerEvent(
            id=new_event_id(), time=float(i), store="s", type="decision.check",
            caller="key:x", subject=f"user:u{i % 997}", resource=f"doc:d{(i * 7) % 991}",
            details={"pad": "x" * 400},
        )  # fmt: skip
        out.append((ev, canonical_text(ev)))
    return out


def test_sqlite_wal_stays_bounded_under_continuous_writes(tmp_path: Path) -> None:
    """SQLite's automatic checkpoint (a disk sync inside some commit) is off; the storage's
    own checkpointer keeps the WAL bounded even though a writer never pauses: without it
    these commits leave ~100 MB of WAL, with a checkpoint that only runs beside the writers
    the WAL never starts over."""
    path = tmp_path / "w.db"
    st = SQLiteStorage(path, wal_limit_pages=256, checkpoint_interval=0.002)
    try:
        assert st._writer.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        wal = Path(f"{path}-wal")
        biggest = 0
        for g in range(400):
            st.append_encoded(_ledger_items(30, g * 30))
            biggest = max(biggest, wal.stat().st_size)
        assert st.checkpoints >= 2  # the WAL started over (more than once)
        assert biggest < 32 * 2**20, biggest
        events = st.read_events("s", limit=20_000)
        assert len(events) == 12_000 and events[-1].seq == 12_000
    finally:
        st.close()
    assert not st._checkpointer.is_alive()
    again = SQLiteStorage(path)  # everything checkpointed or in the WAL: all there
    try:
        assert again.ledger_head("s")[0] == 12_000
    finally:
        again.close()


def test_sqlite_uses_wal_and_busy_timeout(tmp_path: Path) -> None:
    st = SQLiteStorage(tmp_path / "k.db", busy_timeout=2.5)
    try:
        w = st._writer
        assert w.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert w.execute("PRAGMA busy_timeout").fetchone()[0] == 2500
    finally:
        st.close()


def test_sqlite_busy_is_retried_then_fails_loudly(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    st = SQLiteStorage(path, busy_timeout=0.05, max_retries=2)
    # another process, in effect
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        sid = st.create_store("s").id
        other.execute("BEGIN IMMEDIATE")
        start = time.monotonic()
        with pytest.raises(StorageError, match=r"locked|busy"):
            st.write(sid, writes=[Tuple("doc:1", "viewer", "user:a")])
        assert time.monotonic() - start < 5  # bounded
        # released while we retry: the write goes through
        # opening an up-to-date database needs no write lock
        st2 = SQLiteStorage(path, busy_timeout=0.05, max_retries=8)
        releaser = threading.Timer(0.1, lambda: other.execute("ROLLBACK"))
        try:
            releaser.start()
            assert st2.write(sid, writes=[Tuple("doc:1", "viewer", "user:a")]) == 1
        finally:
            releaser.join()
            st2.close()
    finally:
        other.close()
        st.close()


def test_sqlite_rejects_memory_databases() -> None:
    with pytest.raises(ValueError):
        SQLiteStorage(":memory:")


@pytest.fixture
def fresh_pg_schema() -> Iterator[str]:
    schema = f"kp_upgrade_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield schema
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.mark.postgres
def test_postgres_upgrades_an_old_schema_in_place(fresh_pg_schema: str) -> None:
    url = f"{POSTGRES_URL}?options={quote(f'-csearch_path={fresh_pg_schema}')}"
    first = load_migrations("postgres")[0]
    # a database left at version 1 by an older Keyplane, with data in it
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(first.sql.encode())
        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at DOUBLE PRECISION NOT NULL)"
        )
        conn.execute("INSERT INTO schema_migrations VALUES (1, 'init', 0)")
        conn.execute("INSERT INTO stores VALUES ('old', 'old', 0, 0, 0)")
    st = open_storage(url)
    try:
        assert st.get_store("old").name == "old"
        assert st.write("old", writes=[Tuple("doc:1", "viewer", "user:a")]) == 1
    finally:
        st.close()
    with psycopg.connect(url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
        collation = conn.execute(
            "SELECT collation_name FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = 'tuples' AND column_name = 'object_id'",
            (fresh_pg_schema,),
        ).fetchone()
    assert versions == [m.version for m in load_migrations("postgres")]
    assert collation == ("C",)
