"""What every CLI command shares: where Keyplane is, how to print, how errors look.

A command never asks *which* Keyplane it talks to. :func:`connect` hands it an object
satisfying :class:`keyplane.sdk.KeyplaneAPI`: the HTTP :class:`keyplane.Client` when
``--url`` (or ``KEYPLANE_URL``) names a server — authenticated with ``--api-key`` /
``KEYPLANE_API_KEY`` — else the embedded :class:`keyplane.Keyplane` on ``--db`` (or
``KEYPLANE_DATABASE_URL``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, NoReturn, Protocol, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from keyplane.config import Settings
from keyplane.errors import InvalidModelError, KeyplaneError
from keyplane.graph.explain import Explanation
from keyplane.sdk.protocol import KeyplaneAPI

__all__ = [
    "ApiKeyOpt",
    "DbOpt",
    "JsonOpt",
    "Output",
    "OutputOpt",
    "UrlOpt",
    "all_pages",
    "connect",
    "emit_json",
    "err",
    "explanation_tree",
    "fail",
    "out",
    "table",
    "timestamp",
    "wants_json",
]

out = Console()
err = Console(stderr=True)


class Output(StrEnum):
    table = "table"
    json = "json"


DbOpt = Annotated[
    str | None,
    typer.Option("--db", envvar="KEYPLANE_DATABASE_URL", help="Database URL or SQLite path."),
]
UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="KEYPLANE_URL",
        help="A Keyplane server (http://host:port); without it, the local database (--db).",
    ),
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="KEYPLANE_API_KEY",
        help="The API key (kp_…) for --url.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (same as --output json).")]
OutputOpt = Annotated[
    Output | None,
    typer.Option("--output", "-o", help="table (for people, the default) or json (for scripts)."),
]


def wants_json(as_json: bool, output: Output | None) -> bool:
    return as_json or output is Output.json


@contextmanager
def connect(db: str | None, url: str | None, api_key: str | None) -> Iterator[KeyplaneAPI]:
    """The Keyplane a command talks to; Keyplane errors end the command with one line."""
    kp: KeyplaneAPI
    try:
        if url:
            from keyplane.sdk.client import Client

            kp = Client(url, api_key)
        else:
            from keyplane.embedded import Keyplane

            kp = Keyplane.open(settings=Settings.from_env(database_url=db, poll_interval=0.0))
    except KeyplaneError as exc:
        fail(exc)
    try:
        yield kp
    except KeyplaneError as exc:
        fail(exc)
    finally:
        kp.close()


T = TypeVar("T")


class _Page(Protocol[T]):
    @property
    def items(self) -> list[T]: ...
    @property
    def continuation_token(self) -> str | None: ...


def all_pages(fetch: Callable[[str | None], _Page[T]]) -> list[T]:
    """Every item of a paginated listing: ``fetch(token)`` returns one page."""
    found: list[T] = []
    token: str | None = None
    while True:
        page = fetch(token)
        found.extend(page.items)
        token = page.continuation_token
        if token is None:
            return found


def fail(exc: KeyplaneError) -> NoReturn:
    """``error[<code>]: <message>`` on stderr (model issues with ``line:column``); exit 1."""
    err.print(f"[red]error\\[{exc.code}][/red]: {escape(exc.message)}", highlight=False)
    if isinstance(exc, InvalidModelError):
        for issue in exc.errors:
            where = (
                f"{issue.line[0] + 1}:{issue.column[0] + 1}: "
                if issue.line and issue.column
                else ""
            )
            err.print(f"  {where}{issue.message}", highlight=False, markup=False)
    raise typer.Exit(1)


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def timestamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def table(*columns: str) -> Table:
    t = Table(show_header=True, header_style="bold")
    for c in columns:
        t.add_column(c)
    return t


# ---------------------------------------------------------------------------- explain


def explanation_tree(ex: Explanation) -> Tree:
    """The explanation as a tree: each granting path from the object down to the user's
    tuple (allowed), or each failed branch with what failed inside it (denied)."""
    verdict = "[green]ALLOWED[/green]" if ex.allowed else "[red]DENIED[/red]"
    root = Tree(
        f"{verdict} {escape(ex.user)} [bold]{escape(ex.relation)}[/bold] {escape(ex.object)}"
    )
    if ex.error is not None:
        root.add(f"[red]error[/red]: {escape(str(ex.error.get('message', '')))}")
    if ex.allowed:
        for i, path in enumerate(ex.paths, 1):
            _path(root.add(f"path {i}"), path)
    else:
        for reason in ex.reasons:
            _reason(root, reason)
    return root


def _path(node: Tree, steps: list[dict[str, Any]]) -> None:
    """Each step nests under the one before: the chain from the object to the user."""
    for s in steps:
        k = s.get("kind")
        cond = (
            f" [dim](condition {escape(str(s['condition']))} true)[/dim]"
            if s.get("condition")
            else ""
        )
        if k == "computed":
            node = node.add(f"{escape(s['at'])} [dim]includes[/dim] {escape(s['to'])}")
        elif k == "tuple_to_userset":
            node = node.add(
                f"{escape(s['at'])} [dim]via parent[/dim] {escape(s['tuple'])} → {escape(s['to'])}{cond}"
            )
        elif k == "userset":
            node = node.add(f"{escape(s['at'])} [dim]via userset[/dim] {escape(s['tuple'])}{cond}")
        elif k == "but_not":
            node = node.add(
                f"{escape(s['at'])} [dim]not excluded by[/dim] {escape(s['excluded_by'])}"
            )
        elif k == "intersection":
            node = node.add(f"{escape(s['at'])} [dim]requires all of[/dim]")
            for sub in s.get("all_of", ()):
                _path(node.add("[dim]and[/dim]"), sub)
        elif k == "self":
            node = node.add(f"{escape(s['at'])} [dim]is the userset itself[/dim]")
        else:
            node = node.add(
                f"[green]{escape(str(k))} tuple[/green] {escape(str(s.get('tuple')))}{cond}"
            )


def _reason(node: Tree, r: dict[str, Any]) -> None:
    k = r.get("kind")
    if k == "no_tuple":
        label = f"{escape(str(r.get('at')))}: no tuple grants {escape(str(r.get('user')))}"
    elif k == "condition_false":
        label = (
            f"{escape(r['tuple'])}: condition {escape(str(r['condition']))} is false with "
            f"{escape(json.dumps(r.get('params', {})))}"
        )
    elif k == "condition_error":
        label = f"{escape(r['tuple'])}: condition {escape(str(r['condition']))} failed: {escape(str(r.get('message')))}"
    elif k == "expired":
        label = f"{escape(r['tuple'])}: expired at {escape(str(r['expired_at']))}"
    elif k == "excluded":
        label = f"{escape(r['at'])}: excluded by {escape(str(r['by']))}"
    elif k == "intersection_missing":
        label = f"{escape(r['at'])}: missing {escape(', '.join(r.get('missing', ())))}"
    elif k == "cycle":
        label = f"{escape(r['at'])}: cycle, not followed again"
    else:
        label = f"{escape(str(r.get('at', '')))}: {escape(str(k))}"
    child = node.add(f"[red]✗[/red] {label}")
    for sub in r.get("reasons", ()):
        _reason(child, sub)
