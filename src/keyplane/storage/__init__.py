"""Keyplane's storage layer: one contract, two backends, readable migrations.

* :mod:`keyplane.storage.base` — the contract (:class:`Storage` and its role protocols),
  with every duty written as MUST / MUST NOT;
* :mod:`keyplane.storage.sql` — the contract implemented once in SQL common to both;
* :mod:`keyplane.storage.sqlite` — the embedded default (a ``keyplane.db`` file, WAL);
* :mod:`keyplane.storage.postgres` — PostgreSQL for scale-out (psycopg 3 + psycopg_pool);
* :mod:`keyplane.storage.migrate` and ``migrations/<dialect>/NNNN_*.sql`` — the schema.

Why plain DB-API and SQL files rather than SQLAlchemy Core + Alembic: the layer is a
dozen queries that the two databases accept almost verbatim (only ``?`` vs ``%s``
differs), and its hottest paths — streaming a million-row snapshot into the in-memory
graph and bulk loading — want the drivers' own fast paths (``fetchmany`` on a sqlite3
cursor, a PostgreSQL server-side cursor and ``COPY``), which an abstraction layer would
wrap in per-row Python work. Numbered SQL files are migrations an operator can read and
apply by hand, with no migration framework in the runtime. The cost — no dialect
compiler — is paid by writing portable SQL and running one conformance suite
(``tests/storage/``) against both backends.

:func:`open_storage` picks the backend from a URL; reading ``KEYPLANE_DATABASE_URL`` is
the caller's (configuration's) job.
"""

from __future__ import annotations

from typing import Any

from keyplane.clock import Clock
from keyplane.storage.base import (
    ChangeReader,
    ChangesPage,
    KeyRecord,
    KeyStore,
    ModelRecord,
    ModelStore,
    Page,
    SnapshotReader,
    SnapshotRow,
    Storage,
    StoreAdmin,
    StoreInfo,
    TupleReader,
    TupleWriter,
)

__all__ = [
    "ChangeReader",
    "ChangesPage",
    "KeyRecord",
    "KeyStore",
    "ModelRecord",
    "ModelStore",
    "Page",
    "SnapshotReader",
    "SnapshotRow",
    "Storage",
    "StoreAdmin",
    "StoreInfo",
    "TupleReader",
    "TupleWriter",
    "open_storage",
]

DEFAULT_SQLITE_PATH = "keyplane.db"


def open_storage(url: str | None = None, *, clock: Clock | None = None, **options: Any) -> Storage:
    """Open (creating and migrating if needed) the storage ``url`` names.

    * ``None``, ``""`` or ``"sqlite://"`` → SQLite file ``keyplane.db`` in the working directory;
    * ``"sqlite:///relative/path.db"`` or ``"sqlite:////absolute/path.db"`` (as SQLAlchemy
      spells them) or a bare path → SQLite at that path;
    * ``"postgresql://…"`` / ``"postgres://…"`` (libpq URL, ``options=-csearch_path=…``
      works) → PostgreSQL.

    ``options`` go to the backend's constructor (e.g. ``busy_timeout``, ``max_size``).
    """
    if url and url.startswith(("postgresql://", "postgres://")):
        from keyplane.storage.postgres import PostgresStorage

        return PostgresStorage(url, clock=clock, **options)
    from keyplane.storage.sqlite import SQLiteStorage

    path = url or DEFAULT_SQLITE_PATH
    if path.startswith("sqlite:"):
        rest = path[len("sqlite:") :]
        if rest.startswith("///"):
            path = rest[3:]
        elif rest in ("", "//"):
            path = DEFAULT_SQLITE_PATH
        else:
            raise ValueError(f"unsupported SQLite URL {url!r}: use sqlite:///path/to/keyplane.db")
    elif "://" in path:
        raise ValueError(f"unsupported storage URL {url!r}")
    return SQLiteStorage(path or DEFAULT_SQLITE_PATH, clock=clock, **options)
