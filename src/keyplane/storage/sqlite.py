"""The embedded SQLite backend (the default: one file, ``keyplane.db``, nothing to install).

Done the way datasette and openfga's sqlite store do it:

* WAL journal, so readers never block the writer nor the writer the readers;
  ``synchronous=NORMAL`` (durable at checkpoints, never corrupt — the WAL default advice);
* one writer connection behind a lock; every write transaction starts with
  ``BEGIN IMMEDIATE`` so it takes the write lock up front instead of failing to upgrade a
  read lock half-way (the classic SQLITE_BUSY deadlock);
* ``busy_timeout`` for waiting on other processes, plus a bounded retry with backoff when
  ``BEGIN IMMEDIATE`` still reports BUSY; the retry only repeats the ``BEGIN``, so a
  transaction body never runs twice;
* a small pool of reader connections; each read runs in its own transaction, so it sees one
  snapshot (``current_revision`` and the rows agree). Snapshots keep their reader until the
  iterator is exhausted or closed;
* WAL checkpoints are ours, not SQLite's: the automatic checkpoint runs INSIDE whichever
  commit crosses ``wal_autocheckpoint`` pages (a copy and a disk sync in one unlucky
  caller's latency — the ledger's sync-mode p99). It is off; a checkpointer thread copies
  the WAL back on its own connection while writers go on (``PASSIVE``), and when the WAL
  has grown past ``wal_limit_pages`` it finishes the last few frames holding the write lock
  for a moment, so that the next commit starts the WAL over (a checkpoint that only runs
  beside continuous writes never catches up and the WAL grows without bound).

Only file databases are supported: separate reader connections cannot share ``:memory:``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from keyplane.clock import Clock
from keyplane.errors import StorageError, TupleExistsError
from keyplane.storage.migrate import SCHEMA_MIGRATIONS_DDL, load_migrations, split_sqlite_script
from keyplane.storage.reviews_sql import ReviewsSQLMixin
from keyplane.storage.sql import Cursor, SQLStorage

__all__ = ["SQLiteStorage"]

R = TypeVar("R")

_FETCH = 10_000
#: start the WAL over once it holds this many frames (64 MB of 4 KB pages; SQLite's own
#: automatic checkpoint uses 1000): each start-over holds the writers for one short
#: checkpoint (a disk sync), so it should be rare — a ledger commit rewrites a few index
#: pages per event. The WAL file is truncated to this size when it starts over.
WAL_LIMIT_PAGES = 16384
#: checkpoint beside the writers until no more than this many frames are left for the last
#: pass, which holds the write lock
_TAIL_FRAMES = 256


def _is_busy(exc: sqlite3.Error) -> bool:
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg


class SQLiteStorage(SQLStorage, ReviewsSQLMixin):
    """Storage in one SQLite file; safe to share between threads."""

    # without statistics the planner prefers the time index and reads the whole window
    _BY_SUBJECT = " INDEXED BY ledger_events_subject"

    def __init__(
        self,
        path: str | Path = "keyplane.db",
        *,
        clock: Clock | None = None,
        busy_timeout: float = 5.0,
        max_retries: int = 5,
        wal_limit_pages: int = WAL_LIMIT_PAGES,
        checkpoint_interval: float = 0.05,
    ) -> None:
        super().__init__(clock=clock)
        self.path = str(path)
        if self.path == ":memory:" or self.path.startswith("file:"):
            raise ValueError("the SQLite backend needs a file path (readers use own connections)")
        self._busy_timeout = busy_timeout
        self._max_retries = max_retries
        self._closed = False
        self._pool_lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._write_lock = threading.Lock()
        self._writer = self._connect()
        # a bigger page cache for the writer: index maintenance on bulk loads
        self._writer.execute("PRAGMA cache_size = -65536")
        self._wrote = threading.Event()  # set after commits: the checkpointer has work
        self._stopping = False
        self._checkpoint_interval = max(0.0, checkpoint_interval)
        self.checkpoints = 0  # WAL resets made possible by a full checkpoint (for tests/metrics)
        self._wal_limit = max(1, wal_limit_pages)
        self._writer.execute(f"PRAGMA journal_size_limit = {self._wal_limit * 4096}")
        try:
            self._migrate()
        except BaseException:
            self._writer.close()
            raise
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="keyplane-sqlite-checkpoint", daemon=True
        )
        self._checkpointer.start()

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # connections are handed between threads, one at a time
                cached_statements=256,
            )
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StorageError(f"could not switch {self.path} to WAL (got {mode!r})")
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA wal_autocheckpoint = 0")  # see _checkpoint_loop
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open SQLite database {self.path}: {exc}") from exc
        return conn

    def _migrate(self) -> None:
        wanted = {mig.version for mig in load_migrations("sqlite")}
        try:
            rows = self._writer.execute("SELECT version FROM schema_migrations").fetchall()
            if wanted <= {row[0] for row in rows}:
                return  # up to date: opening takes no write lock
        except sqlite3.OperationalError:
            pass  # no schema_migrations yet

        def tx(cur: Cursor) -> None:
            cur.execute(SCHEMA_MIGRATIONS_DDL)
            done = {row[0] for row in cur.execute("SELECT version FROM schema_migrations")}
            for mig in load_migrations("sqlite"):
                if mig.version in done:
                    continue
                for stmt in split_sqlite_script(mig.sql):
                    cur.execute(stmt)
                cur.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (mig.version, mig.name, time.time()),
                )

        self._write_tx(tx)

    # -- transactions -----------------------------------------------------------------

    def _begin_immediate(self, cur: sqlite3.Cursor) -> None:
        delay = 0.01
        for attempt in range(self._max_retries + 1):
            try:
                cur.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or attempt == self._max_retries:
                    raise StorageError(f"cannot start a write transaction: {exc}") from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def _write_tx(self, fn: Callable[[Cursor], R], *, retry: bool = True) -> R:
        # only BEGIN IMMEDIATE is ever retried, so `fn` runs once whatever `retry` says
        with self._write_lock:
            if self._closed:
                raise StorageError("storage is closed")
            cur = self._writer.cursor()
            try:
                self._begin_immediate(cur)
                try:
                    result = fn(cur)
                    cur.execute("COMMIT")
                    if not self._wrote.is_set():
                        self._wrote.set()
                except BaseException:
                    if self._writer.in_transaction:
                        self._writer.execute("ROLLBACK")
                    raise
                return result
            except sqlite3.Error as exc:
                raise StorageError(f"SQLite write failed: {exc}") from exc
            finally:
                cur.close()

    # -- WAL checkpoints --------------------------------------------------------------

    def _checkpoint_loop(self) -> None:
        """Keep the WAL bounded without a checkpoint inside any commit (module docstring)."""
        conn: sqlite3.Connection | None = None
        try:
            while True:
                self._wrote.wait()
                if self._stopping:
                    return
                if self._checkpoint_interval:
                    time.sleep(self._checkpoint_interval)  # let a few commits gather
                self._wrote.clear()
                if self._stopping:
                    return
                try:
                    if conn is None:
                        conn = self._connect()
                        conn.execute("PRAGMA busy_timeout = 0")  # never wait: try next time
                    self._checkpoint_pass(conn)
                except (sqlite3.Error, StorageError):
                    # a checkpoint is housekeeping: a busy or failed one is retried later
                    self._wrote.set()
                    time.sleep(max(self._checkpoint_interval, 0.01))
        finally:
            if conn is not None:
                conn.close()

    def _checkpoint_pass(self, conn: sqlite3.Connection) -> None:
        # the copy and its disk syncs beside the writers, again while they appended more
        # than a few frames during the previous pass (a PASSIVE checkpoint copies what was
        # in the WAL when it started)
        behind = 0
        for _ in range(8):
            busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if busy or frames < self._wal_limit:
                return  # small still (or another checkpoint runs): writers keep appending
            if frames - behind <= _TAIL_FRAMES:
                break
            behind = frames
        # past the limit: the last frames with writers held off for that moment, so the
        # whole WAL is copied back and the next commit starts it over from the beginning
        with self._write_lock:
            if self._closed or self._stopping:
                return
            busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if not busy and done >= frames:
            self.checkpoints += 1

    def _take_reader(self) -> sqlite3.Connection:
        with self._pool_lock:
            if self._closed:
                raise StorageError("storage is closed")
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _give_back(self, conn: sqlite3.Connection) -> None:
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        with self._pool_lock:
            if self._closed:
                conn.close()
            else:
                self._idle.append(conn)

    def _read_tx(self, fn: Callable[[Cursor], R]) -> R:
        conn = self._take_reader()
        try:
            cur = conn.cursor()
            cur.execute("BEGIN")  # deferred: the snapshot starts at the first SELECT
            return fn(cur)
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite read failed: {exc}") from exc
        finally:
            self._give_back(conn)

    def _stream(self, store_id: str, sql: str) -> tuple[int, Iterator[list[Any]]]:
        conn = self._take_reader()
        try:
            cur = conn.cursor()
            cur.execute("BEGIN")
            rev = self._revision(cur, store_id)  # pins the snapshot; rows below agree with it
            cur.execute(sql, (store_id,))
        except BaseException as exc:
            self._give_back(conn)
            if isinstance(exc, sqlite3.Error):
                raise StorageError(f"SQLite read failed: {exc}") from exc
            raise

        def batches() -> Iterator[list[Any]]:
            try:
                yield []  # primed below, so closing or dropping the iterator always cleans up
                while rows := cur.fetchmany(_FETCH):
                    yield rows
            except sqlite3.Error as exc:
                raise StorageError(f"SQLite read failed: {exc}") from exc
            finally:
                cur.close()
                self._give_back(conn)

        it = batches()
        next(it)
        return rev, it

    def _bulk_insert(self, cur: Cursor, rows: Iterator[tuple[Any, ...]]) -> None:
        try:
            cur.executemany(
                "INSERT INTO tuples (store_id, object_type, object_id, relation, user_type,"
                " user_id, user_relation, condition_name, condition_context, expires_at, revision)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        except sqlite3.IntegrityError as exc:
            raise TupleExistsError(
                "bulk load: a tuple already exists or appears twice in the input"
            ) from exc

    def close(self) -> None:
        self._stopping = True  # the checkpointer stops at its next look
        self._wrote.set()
        if threading.current_thread() is not self._checkpointer:
            self._checkpointer.join(10.0)
        with self._write_lock, self._pool_lock:
            if self._closed:
                return
            self._closed = True
            for conn in self._idle:
                conn.close()
            self._idle.clear()
            self._writer.close()

    def __repr__(self) -> str:
        return f"SQLiteStorage({self.path!r})"
