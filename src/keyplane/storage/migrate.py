"""Numbered, versioned SQL migrations, applied automatically when a backend opens.

Files live in ``migrations/<dialect>/NNNN_name.sql`` (plain SQL a reader can review and a
DBA can apply by hand). Each backend records what it applied in ``schema_migrations``
(``version``, ``name``, ``applied_at``) and applies the missing ones in order, each in its
own transaction together with its ``schema_migrations`` row, under a lock so two processes
opening the same database at once do not race. Applied migrations are never edited: a
change to the schema is a new file.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources

__all__ = ["SCHEMA_MIGRATIONS_DDL", "Migration", "load_migrations", "split_sqlite_script"]

_NAME_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

SCHEMA_MIGRATIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(dialect: str) -> list[Migration]:
    """The migrations shipped for ``dialect`` (``sqlite`` or ``postgres``), in order."""
    folder = resources.files("keyplane.storage").joinpath("migrations", dialect)
    found: list[Migration] = []
    for entry in folder.iterdir():
        m = _NAME_RE.match(entry.name)
        if m:
            found.append(Migration(int(m[1]), m[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{dialect} migrations must be numbered 0001.. without gaps: {versions}")
    return found


def split_sqlite_script(script: str) -> list[str]:
    """Split a script into statements, so they run inside our own transaction.

    (``sqlite3.executescript`` would commit any open transaction first.)
    """
    statements: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            stmt = buf.strip()
            if stmt and not all(
                ln.strip().startswith("--") or not ln.strip() for ln in stmt.splitlines()
            ):
                statements.append(stmt)
            buf = ""
    if buf.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buf.splitlines()
    ):
        raise RuntimeError(f"incomplete SQL statement at the end of a migration: {buf!r}")
    return statements
