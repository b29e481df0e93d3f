"""Bulk tuples: ``keyplane tuple import FILE`` and ``keyplane tuple export``.

Formats (chosen by the file's extension, or ``--format``):

* **CSV** with a header row naming the columns ``object,relation,user`` and optionally
  ``condition_name,condition_context,expires_at`` (context as a JSON object, expiry as
  RFC 3339); empty cells are absent values.
* **JSON Lines**: one OpenFGA TupleKey per line,
  ``{"object", "relation", "user", "condition": {"name", "context"}, "expires_at"}``.

Import streams: the file is read row by row and written in atomic chunks of at most
``--chunk-size`` tuples (never more than the server's ``KEYPLANE_MAX_WRITE_TUPLES``: a
``limit_exceeded`` answer shrinks the chunk to the limit it names). A bad row stops the
import *before* its chunk is written, naming the row's line; chunks before it are
committed, so a re-run with ``--idempotent`` picks up where it stopped. Export streams
page by page to stdout.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from keyplane.cli.common import (
    ApiKeyOpt,
    DbOpt,
    JsonOpt,
    OutputOpt,
    UrlOpt,
    connect,
    emit_json,
    err,
    out,
    wants_json,
)
from keyplane.errors import InvalidTupleError, KeyplaneError, LimitExceededError
from keyplane.graph.tuples import Tuple
from keyplane.sdk.protocol import KeyplaneAPI

__all__ = [
    "COLUMNS",
    "Format",
    "ImportStats",
    "bad_row",
    "chunks",
    "export_rows",
    "import_rows",
    "read_rows",
    "tuple_export",
    "tuple_import",
]

COLUMNS = ("object", "relation", "user", "condition_name", "condition_context", "expires_at")
REQUIRED = COLUMNS[:3]
DEFAULT_CHUNK = 1000


class Format(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


def bad_row(line: int, message: str) -> InvalidTupleError:
    """A row of an import file that is not a tuple: ``invalid_tuple`` naming its line.

    A plain :class:`InvalidTupleError` (not a subclass: every error class is a code of its
    own, and the surfaces' tables are built from the subclasses)."""
    return InvalidTupleError(f"line {line}: {message}", details={"line": line})


def format_of(path: str, given: Format | None) -> Format:
    if given is not None:
        return given
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return Format.csv
    if suffix in (".jsonl", ".ndjson", ".json"):
        return Format.jsonl
    raise typer.BadParameter(
        f"cannot tell the format of {path!r} from its extension: pass --format csv|jsonl"
    )


# ---------------------------------------------------------------------------- reading


def _text_lines(raw: Iterable[bytes], counter: list[int]) -> Iterator[str]:
    """Decode a byte stream line by line, counting the bytes consumed (for progress)."""
    first = True
    for chunk in raw:
        counter[0] += len(chunk)
        text = chunk.decode("utf-8-sig" if first else "utf-8")
        first = False
        yield text


def read_rows(lines: Iterable[str], fmt: Format) -> Iterator[tuple[int, Tuple]]:
    """``(line number, tuple)`` for each row, lazily; a bad row raises :func:`bad_row`'s error."""
    if fmt is Format.jsonl:
        yield from _jsonl_rows(lines)
    else:
        yield from _csv_rows(lines)


def _jsonl_rows(lines: Iterable[str]) -> Iterator[tuple[int, Tuple]]:
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise bad_row(n, f"not JSON: {exc.msg}") from None
        if not isinstance(data, dict):
            raise bad_row(n, "expected a JSON object (a TupleKey)")
        try:
            yield n, Tuple.from_dict(data)
        except KeyplaneError as exc:
            raise bad_row(n, exc.message) from None


def _csv_rows(lines: Iterable[str]) -> Iterator[tuple[int, Tuple]]:
    reader = csv.reader(lines)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        raise bad_row(reader.line_num, f"malformed CSV: {exc}") from None
    unknown = [h for h in header if h not in COLUMNS]
    missing = [c for c in REQUIRED if c not in header]
    if unknown or missing:
        raise bad_row(
            1,
            f"the header must name {', '.join(REQUIRED)} and optionally "
            f"{', '.join(COLUMNS[3:])}"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            + (f"; missing: {', '.join(missing)}" if missing else ""),
        )
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise bad_row(reader.line_num, f"malformed CSV: {exc}") from None
        n = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise bad_row(n, f"expected {len(header)} cells, found {len(cells)}")
        row = {h: c.strip() for h, c in zip(header, cells, strict=True) if c.strip()}
        yield n, _csv_tuple(n, row)


def _csv_tuple(n: int, row: dict[str, str]) -> Tuple:
    data: dict[str, Any] = {k: row[k] for k in REQUIRED if k in row}
    if "condition_name" in row:
        ctx: Any = {}
        if "condition_context" in row:
            try:
                ctx = json.loads(row["condition_context"])
            except json.JSONDecodeError as exc:
                raise bad_row(n, f"condition_context is not JSON: {exc.msg}") from None
            if not isinstance(ctx, dict):
                raise bad_row(n, "condition_context must be a JSON object")
        data["condition"] = {"name": row["condition_name"], "context": ctx}
    elif "condition_context" in row:
        raise bad_row(n, "condition_context without condition_name")
    if "expires_at" in row:
        data["expires_at"] = row["expires_at"]
    try:
        return Tuple.from_dict(data)
    except KeyplaneError as exc:
        raise bad_row(n, exc.message) from None


def chunks(rows: Iterable[tuple[int, Tuple]], size: int) -> Iterator[list[tuple[int, Tuple]]]:
    """Rows grouped by ``size``, reading only as far as the chunk being built."""
    chunk: list[tuple[int, Tuple]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# ---------------------------------------------------------------------------- writing


@dataclass
class ImportStats:
    tuples: int = 0
    chunks: int = 0
    revision: int | None = None
    first_line: int | None = None
    last_line: int | None = None
    chunk_size: int = DEFAULT_CHUNK
    seconds: float = 0.0
    failed_lines: tuple[int, int] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tuples": self.tuples,
            "chunks": self.chunks,
            "revision": self.revision,
            "lines": [self.first_line, self.last_line] if self.first_line else None,
            "chunk_size": self.chunk_size,
            "seconds": round(self.seconds, 3),
        }


def _write_chunk(
    kp: KeyplaneAPI,
    chunk: list[tuple[int, Tuple]],
    stats: ImportStats,
    *,
    store: str,
    idempotent: bool,
) -> None:
    """Write one chunk atomically; a server limit lower than the chunk splits it."""
    try:
        res = kp.write_tuples([t for _, t in chunk], store=store, idempotent=idempotent)
    except LimitExceededError as exc:
        limit = exc.details.get("limit")
        if exc.details.get("field") == "writes+deletes" and isinstance(limit, int):
            smaller = limit
        else:  # e.g. the request body size: halve
            smaller = len(chunk) // 2
        if smaller < 1 or smaller >= len(chunk):
            raise
        stats.chunk_size = smaller
        for i in range(0, len(chunk), smaller):
            _write_chunk(kp, chunk[i : i + smaller], stats, store=store, idempotent=idempotent)
        return
    except KeyplaneError as exc:
        stats.failed_lines = (chunk[0][0], chunk[-1][0])
        _locate(exc, chunk)
        raise
    stats.tuples += len(chunk)
    stats.chunks += 1
    stats.revision = res.revision
    stats.first_line = stats.first_line or chunk[0][0]
    stats.last_line = chunk[-1][0]


def _locate(exc: KeyplaneError, chunk: list[tuple[int, Tuple]]) -> None:
    """Name the line of the tuple a server error is about, when the error says which."""
    raw = exc.details.get("tuple")
    if not isinstance(raw, dict):
        return
    key = (raw.get("object"), raw.get("relation"), raw.get("user"))
    for line, t in chunk:
        if t.key == key:
            exc.details["line"] = line
            exc.message = f"line {line}: {exc.message}"
            return


def import_rows(
    kp: KeyplaneAPI,
    rows: Iterable[tuple[int, Tuple]],
    *,
    store: str,
    chunk_size: int = DEFAULT_CHUNK,
    idempotent: bool = False,
    stats: ImportStats | None = None,
    on_chunk: Any = None,
) -> ImportStats:
    """Write ``rows`` in atomic chunks; stats say what was committed if an error stops it."""
    stats = stats or ImportStats(chunk_size=chunk_size)
    started = time.perf_counter()
    try:
        for chunk in chunks(rows, stats.chunk_size):
            _write_chunk(kp, chunk, stats, store=store, idempotent=idempotent)
            if on_chunk is not None:
                on_chunk(stats)
    finally:
        stats.seconds = time.perf_counter() - started
    return stats


def export_rows(
    kp: KeyplaneAPI,
    *,
    store: str,
    object: str | None = None,
    relation: str | None = None,
    user: str | None = None,
    page_size: int = 1000,
) -> Iterator[Tuple]:
    """Every matching tuple, one page at a time (pages shrink to a server's lower limit)."""
    token: str | None = None
    while True:
        try:
            page = kp.read_tuples(
                object=object,
                relation=relation,
                user=user,
                store=store,
                page_size=page_size,
                continuation_token=token,
            )
        except LimitExceededError as exc:
            limit = exc.details.get("limit")
            if exc.details.get("field") != "page_size" or not isinstance(limit, int):
                raise
            if not 0 < limit < page_size:
                raise
            page_size = limit
            continue
        yield from page.items
        token = page.continuation_token
        if not token:
            return


def csv_cells(t: Tuple) -> list[str]:
    d = t.to_dict()
    cond = d.get("condition")
    return [
        t.object,
        t.relation,
        t.user,
        cond["name"] if cond else "",
        json.dumps(cond.get("context") or {}, separators=(",", ":")) if cond else "",
        d.get("expires_at", ""),
    ]


# ---------------------------------------------------------------------------- commands

StoreOpt = Annotated[str, typer.Option("--store", "-s", envvar="KEYPLANE_STORE", help="Store id.")]
FormatOpt = Annotated[
    Format | None,
    typer.Option("--format", "-f", help="csv or jsonl (default: from the file's extension)."),
]


def tuple_import(
    path: Annotated[str, typer.Argument(help="A .csv or .jsonl file; '-' for stdin.")],
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    store: StoreOpt = "default",
    fmt: FormatOpt = None,
    idempotent: Annotated[
        bool, typer.Option(help="Skip tuples that already exist (for re-runs).")
    ] = False,
    chunk_size: Annotated[
        int,
        typer.Option(
            "--chunk-size", min=1, help="Tuples per atomic write (at most the server's limit)."
        ),
    ] = DEFAULT_CHUNK,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Import tuples from CSV or JSON Lines, streaming, in atomic chunks."""
    kind = Format.jsonl if path == "-" and fmt is None else format_of(path, fmt)
    consumed = [0]
    stats = ImportStats(chunk_size=chunk_size)
    with ExitStack() as stack:
        raw: IO[bytes] = sys.stdin.buffer if path == "-" else stack.enter_context(open(path, "rb"))
        total = None if path == "-" else Path(path).stat().st_size
        progress = stack.enter_context(
            Progress(
                TextColumn("[bold]import[/bold]"),
                BarColumn(),
                DownloadColumn(),
                TextColumn("{task.fields[tuples]} tuples"),
                TimeElapsedColumn(),
                console=err,
                disable=not err.is_terminal,
            )
        )
        task = progress.add_task("import", total=total, tuples=0)

        def tick(s: ImportStats) -> None:
            progress.update(task, completed=consumed[0], tuples=s.tuples)

        kp = stack.enter_context(connect(db, url, api_key))
        rows = read_rows(_text_lines(raw, consumed), kind)
        try:
            import_rows(kp, rows, store=store, idempotent=idempotent, stats=stats, on_chunk=tick)
        except KeyplaneError as exc:
            _report_failure(exc, stats)
    summary = stats.to_dict()
    if wants_json(as_json, output):
        emit_json(summary)
    else:
        out.print(
            f"imported {stats.tuples} tuple(s) from {escape(path)} in {stats.chunks} "
            f"chunk(s) of up to {stats.chunk_size}"
            + (f", revision {stats.revision}" if stats.revision is not None else "")
            + f" ({stats.seconds:.1f}s)"
        )


def _report_failure(exc: KeyplaneError, stats: ImportStats) -> None:
    err.print(
        f"[red]error\\[{exc.code}][/red]: {escape(exc.message)}", highlight=False, soft_wrap=True
    )
    if stats.failed_lines and "line" not in exc.details:
        a, b = stats.failed_lines
        err.print(f"  in the chunk of lines {a}–{b}", highlight=False, soft_wrap=True)
    if stats.chunks:
        err.print(
            f"  {stats.tuples} tuple(s) in {stats.chunks} chunk(s) (lines "
            f"{stats.first_line}–{stats.last_line}) were written, up to revision "
            f"{stats.revision}; nothing of the failing chunk was. Fix the row and re-run "
            "with --idempotent to continue.",
            highlight=False,
            soft_wrap=True,
        )
    else:
        err.print("  nothing was written.", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def tuple_export(
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    store: StoreOpt = "default",
    fmt: Annotated[Format, typer.Option("--format", "-f", help="csv or jsonl.")] = Format.jsonl,
    object: Annotated[
        str | None, typer.Option("--object", help="type:id, or type: for all of a type")
    ] = None,
    relation: Annotated[str | None, typer.Option("--relation")] = None,
    user: Annotated[str | None, typer.Option("--user")] = None,
    page_size: Annotated[int, typer.Option("--page-size", min=1)] = 1000,
) -> None:
    """Export tuples as CSV or JSON Lines to stdout, streaming page by page."""
    stream = sys.stdout
    writer = csv.writer(stream, lineterminator="\n") if fmt is Format.csv else None
    if writer is not None:
        writer.writerow(COLUMNS)
    n = 0
    with connect(db, url, api_key) as kp:
        buf = io.StringIO()
        for t in export_rows(
            kp, store=store, object=object, relation=relation, user=user, page_size=page_size
        ):
            if writer is not None:
                writer.writerow(csv_cells(t))
            else:
                buf.write(json.dumps(t.to_dict(), separators=(",", ":")) + "\n")
                if buf.tell() > 65536:
                    stream.write(buf.getvalue())
                    buf = io.StringIO()
            n += 1
        stream.write(buf.getvalue())
    stream.flush()
    err.print(f"exported {n} tuple(s)", highlight=False, soft_wrap=True)
