"""The PostgreSQL backend (scale-out: several Keyplane processes on one database).

* connections come from a ``psycopg_pool.ConnectionPool`` (thread-safe, checked on
  checkout); they run in autocommit mode and every operation opens its own explicit
  transaction;
* writers of one store serialize on the store row: the first statement of every tuple
  write is ``UPDATE stores SET revision = revision + 1 ... RETURNING revision``, which holds
  the row lock until commit. So revisions are handed out in commit order and a tailer
  reading ``revision > N`` can never miss a change that commits "late" with a smaller
  revision. Writes to different stores do not wait for each other;
* reads that must agree with themselves (a changelog page and the current revision, a
  snapshot and its revision) run in ``REPEATABLE READ READ ONLY`` transactions;
* snapshots stream through a server-side cursor (``DECLARE``/``FETCH``), bulk loads use
  ``COPY``;
* serialization failures and deadlocks are retried a bounded number of times.

The schema lives in the first schema of the connection's ``search_path``; pass
``options=-csearch_path=myschema`` in the URL to use another one.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from keyplane.clock import Clock
from keyplane.errors import StorageError, TupleExistsError
from keyplane.storage.migrate import SCHEMA_MIGRATIONS_DDL, load_migrations
from keyplane.storage.reviews_sql import ReviewsSQLMixin
from keyplane.storage.sql import LEDGER_COLUMNS, Cursor, SQLStorage

__all__ = ["PostgresStorage"]

R = TypeVar("R")

_FETCH = 10_000
# pg_advisory_xact_lock key taken while migrating ("keyplane" in ASCII, truncated)
_MIGRATION_LOCK = 0x6B6579706C616E


@functools.lru_cache(maxsize=256)
def _to_pyformat(sql: str) -> str:
    return sql.replace("?", "%s")


class PostgresStorage(SQLStorage, ReviewsSQLMixin):
    """Storage in PostgreSQL via psycopg 3; safe to share between threads."""

    _FOR_SHARE = " FOR SHARE"
    _FOR_UPDATE = " FOR UPDATE"

    def __init__(
        self,
        url: str,
        *,
        clock: Clock | None = None,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 10.0,
        max_retries: int = 5,
    ) -> None:
        super().__init__(clock=clock)
        self._max_retries = max_retries
        self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True},
            check=ConnectionPool.check_connection,
            name="keyplane-storage",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
            self._migrate()
        except PoolTimeout as exc:
            self._pool.close()
            raise StorageError(f"cannot connect to PostgreSQL within {connect_timeout}s") from exc
        except BaseException:
            self._pool.close()
            raise

    def _q(self, sql: str) -> str:
        return _to_pyformat(sql)

    def _dump_model(self, model: Mapping[str, Any]) -> Any:
        return Jsonb(dict(model))

    def _migrate(self) -> None:
        wanted = {mig.version for mig in load_migrations("postgres")}
        with self._pool.connection() as conn:
            exists = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
            if exists and exists[0] is not None:
                rows = conn.execute("SELECT version FROM schema_migrations").fetchall()
                if wanted <= {row[0] for row in rows}:
                    return  # up to date: no lock, no DDL

        def tx(cur: Cursor) -> None:
            # one migrator at a time, even across processes
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            cur.execute(SCHEMA_MIGRATIONS_DDL)
            cur.execute("SELECT version FROM schema_migrations")
            done = {row[0] for row in cur.fetchall()}
            for mig in load_migrations("postgres"):
                if mig.version in done:
                    continue
                cur.execute(mig.sql.encode())  # no parameters: several statements allowed
                cur.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                    (mig.version, mig.name, time.time()),
                )

        self._write_tx(tx)

    # -- transactions -----------------------------------------------------------------

    def _write_tx(self, fn: Callable[[Cursor], R], *, retry: bool = True) -> R:
        delay = 0.01
        attempts = self._max_retries + 1 if retry else 1
        for attempt in range(attempts):
            try:
                with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                    return fn(cur)
            except (pg_errors.SerializationFailure, pg_errors.DeadlockDetected) as exc:
                if attempt == attempts - 1:
                    raise StorageError(f"PostgreSQL write conflicted: {exc}") from exc
            except psycopg.Error as exc:
                raise StorageError(f"PostgreSQL write failed: {exc}") from exc
            except PoolTimeout as exc:
                raise StorageError("no PostgreSQL connection available") from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        raise AssertionError("unreachable")

    def _read_tx(self, fn: Callable[[Cursor], R]) -> R:
        try:
            with self._pool.connection() as conn, conn.cursor() as cur:
                cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                try:
                    return fn(cur)
                finally:
                    if not conn.closed:
                        conn.rollback()
        except psycopg.Error as exc:
            raise StorageError(f"PostgreSQL read failed: {exc}") from exc
        except PoolTimeout as exc:
            raise StorageError("no PostgreSQL connection available") from exc

    def _stream(self, store_id: str, sql: str) -> tuple[int, Iterator[list[Any]]]:
        try:
            conn = self._pool.getconn()
        except PoolTimeout as exc:
            raise StorageError("no PostgreSQL connection available") from exc

        def release() -> None:
            try:
                if not conn.closed:
                    conn.rollback()
            except psycopg.Error:
                pass
            self._pool.putconn(conn)

        try:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            with conn.cursor() as cur:
                rev = self._revision(cur, store_id)  # pins the snapshot; rows below agree
            stream = conn.cursor(name="keyplane_snapshot", binary=True)
            stream.execute(sql, (store_id,))
        except BaseException as exc:
            release()
            if isinstance(exc, psycopg.Error):
                raise StorageError(f"PostgreSQL read failed: {exc}") from exc
            raise

        def batches() -> Iterator[list[Any]]:
            try:
                yield []  # primed below, so closing or dropping the iterator always cleans up
                while rows := stream.fetchmany(_FETCH):
                    yield rows
            except psycopg.Error as exc:
                raise StorageError(f"PostgreSQL read failed: {exc}") from exc
            finally:
                with contextlib.suppress(psycopg.Error):
                    stream.close()
                release()

        it = batches()
        next(it)
        return rev, it

    def _bulk_insert(self, cur: Cursor, rows: Iterator[tuple[Any, ...]]) -> None:
        try:
            with cur.copy(
                "COPY tuples (store_id, object_type, object_id, relation, user_type, user_id,"
                " user_relation, condition_name, condition_context, expires_at, revision)"
                " FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
        except pg_errors.UniqueViolation as exc:
            raise TupleExistsError(
                "bulk load: a tuple already exists or appears twice in the input"
            ) from exc

    def _insert_ledger_rows(self, cur: Cursor, rows: list[tuple[Any, ...]], sql: str) -> None:
        if len(rows) < 8:
            cur.executemany(sql, rows)
            return
        # COPY: several times faster than row-by-row INSERTs for a group commit's batch
        with cur.copy(f"COPY ledger_events ({LEDGER_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def close(self) -> None:
        self._pool.close()

    def __repr__(self) -> str:
        return "PostgresStorage()"
