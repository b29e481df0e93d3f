"""``keyplane import …`` — identity source imports (issue 10) from the command line:
``import aws|kubernetes|github FILE [--dry-run]`` (``-`` reads stdin), ``import source
NAME FILE`` for any other registered importer, and ``import list``.

The file is the source's own export: the JSON of ``aws iam
get-account-authorization-details``, of ``kubectl get … -o json`` (several JSON documents
one after the other are read as a list of them), or the GitHub bundle (see
docs/identity-sources.md). Like every command: the local database (``--db``) or a server
(``--url`` + ``--api-key``); a progress bar on a terminal (each phase in-process; the
upload against a server, which does the import in one request), then a summary — or
``--json`` for scripts (the REST API's JSON).
"""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

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
    table,
    timestamp,
    wants_json,
)
from keyplane.cli.identities import show_table
from keyplane.importers.records import ImportResult

__all__ = ["import_app", "read_export"]

import_app = typer.Typer(
    help="Import identity sources (AWS IAM, Kubernetes RBAC, GitHub) into the graph; "
    "re-running an import applies what changed at the source.",
    no_args_is_help=True,
)

StoreOpt = Annotated[str, typer.Option("--store", "-s", envvar="KEYPLANE_STORE", help="Store id.")]
FileArg = Annotated[str, typer.Argument(help="The export (a JSON file), or - for stdin.")]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show what would change; write nothing.")
]

#: how many names of each list a dry run prints (all of them with --json)
SHOW = 50


def _usage(message: str) -> typer.Exit:
    err.print(f"error[validation_error]: {message}", markup=False, highlight=False)
    return typer.Exit(2)


def read_export(path: str) -> Any:
    """The export in ``path`` (``-``: stdin): one JSON document, or several one after the
    other (``kubectl get`` run more than once) as a list of them."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise _usage(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise _usage(f"{path} is not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as first:
        docs: list[Any] = []
        decoder = json.JSONDecoder()
        i, n = 0, len(text)
        try:
            while True:
                while i < n and text[i].isspace():
                    i += 1
                if i >= n:
                    break
                doc, i = decoder.raw_decode(text, i)
                docs.append(doc)
        except json.JSONDecodeError:
            raise _usage(
                f"{path} is not JSON: {first.msg} (line {first.lineno}, column {first.colno})"
            ) from None
        if len(docs) < 2:
            raise _usage(f"{path} is not JSON: {first.msg}") from None
        return docs


def _counts(r: ImportResult) -> str:
    i, t = r.identities, r.tuples
    return f"identities +{i.added} ~{i.changed} -{i.removed}, tuples +{t.added} -{t.removed}"


def _summary(r: ImportResult, path: str) -> None:
    where = f"{r.source} {escape(r.scope)}"
    if r.dry_run:
        out.print(f"[bold]dry run[/bold] of {where} from {escape(path)} — nothing written")
        out.print(
            f"  would change: {_counts(r)}" + (", extend the model" if r.model_changed else "")
        )
        for label, names in (
            ("identities to create", r.identities_added),
            ("identities to change", r.identities_changed),
            ("identities to deprovision", r.identities_removed),
            ("tuples to write", r.tuples_added),
            ("tuples to delete", r.tuples_removed),
        ):
            if names:
                out.print(f"  {label} ({len(names)}):")
                for name in names[:SHOW]:
                    out.print(f"    {escape(name)}", highlight=False)
                if len(names) > SHOW:
                    out.print(f"    … and {len(names) - SHOW} more (--json lists them all)")
    elif not r.changed:
        out.print(f"imported {where} from {escape(path)}: nothing changed, revision {r.revision}")
    else:
        model = f", model extended ({r.model_id})" if r.model_changed else ""
        out.print(
            f"imported {where} from {escape(path)}: {_counts(r)}{model}, revision {r.revision}"
            f" ({r.batches} write(s))"
        )
    if r.warnings:
        out.print(f"[yellow]{len(r.warnings)} warning(s)[/yellow]:")
        for w in r.warnings:
            out.print(f"  - {escape(w)}", highlight=False)


def _run(
    source: str,
    path: str,
    *,
    store: str,
    dry_run: bool,
    db: str | None,
    url: str | None,
    api_key: str | None,
    as_json: bool,
    output: Any,
) -> None:
    data = read_export(path)
    with ExitStack() as stack:
        bar = stack.enter_context(
            Progress(
                TextColumn("[bold]{task.description:<12}[/bold]"),
                BarColumn(),
                MofNCompleteColumn(),
                console=err,
                disable=not err.is_terminal,
                transient=False,
            )
        )
        tasks: dict[str, TaskID] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=max(total, 1))
            bar.update(tasks[phase], total=max(total, 1), completed=done if total else 1)

        kp = stack.enter_context(connect(db, url, api_key))
        result = kp.import_source(source, data, store=store, dry_run=dry_run, progress=progress)
    if wants_json(as_json, output):
        emit_json(result.to_json())
    else:
        _summary(result, path)


def _source_command(source: str, what: str) -> None:
    def command(
        path: FileArg,
        store: StoreOpt = "default",
        dry_run: DryRunOpt = False,
        db: DbOpt = None,
        url: UrlOpt = None,
        api_key: ApiKeyOpt = None,
        as_json: JsonOpt = False,
        output: OutputOpt = None,
    ) -> None:
        _run(source, path, store=store, dry_run=dry_run, db=db, url=url, api_key=api_key,
             as_json=as_json, output=output)  # fmt: skip

    command.__doc__ = f"Import {what}."
    import_app.command(source)(command)


_source_command("aws", "the JSON of `aws iam get-account-authorization-details` (one account)")
_source_command("kubernetes", "the JSON of `kubectl get serviceaccounts,roles,rolebindings,"
                "clusterroles,clusterrolebindings -A -o json` (one cluster)")  # fmt: skip
_source_command("github", "a GitHub organisation bundle (members, teams, repositories, apps)")


@import_app.command("source")
def import_other(
    source: Annotated[str, typer.Argument(help="The importer's name.")],
    path: FileArg,
    store: StoreOpt = "default",
    dry_run: DryRunOpt = False,
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Import an export with any importer the server has registered (e.g. a plug-in)."""
    _run(source, path, store=store, dry_run=dry_run, db=db, url=url, api_key=api_key,
         as_json=as_json, output=output)  # fmt: skip


@import_app.command("list")
def import_list(
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """The latest import of each source and scope: what it keeps, last changed, when, by whom."""
    with connect(db, url, api_key) as kp:
        found = kp.list_imports(store=store)
    if wants_json(as_json, output):
        emit_json([r.to_json() for r in found])
        return
    t = table("source", "scope", "identities", "tuples", "last change", "warnings", "imported",
              "by")  # fmt: skip
    for r in found:
        i, tu = r.identities, r.tuples
        t.add_row(
            r.source, r.scope, str(r.identity_count), str(r.tuple_count),
            f"id +{i.added} ~{i.changed} -{i.removed}, tuples +{tu.added} -{tu.removed}",
            str(len(r.warnings)), timestamp(r.imported_at), r.imported_by or "",
        )  # fmt: skip
    show_table(t)
