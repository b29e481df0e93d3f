"""``keyplane`` — the command line: stores, models, tuples and access queries.

Every command talks to a server when ``--url`` (or ``KEYPLANE_URL``) is given —
authenticated with ``--api-key`` / ``KEYPLANE_API_KEY`` — else to the database named by
``--db`` (or ``KEYPLANE_DATABASE_URL``, default ``sqlite:///keyplane.db``), in-process. Either
way it gets an object satisfying :class:`keyplane.sdk.KeyplaneAPI` (see
:mod:`keyplane.cli.common`) and calls one method of it; it never branches on the mode. It
prints a table for people or, with ``--output json`` (alias ``--json``), JSON for scripts.
Errors print one line — ``error[<code>]: <message>`` — and exit with status 1 (2 for usage
errors).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from keyplane.cli import bulk
from keyplane.cli.common import (
    ApiKeyOpt,
    DbOpt,
    JsonOpt,
    OutputOpt,
    UrlOpt,
    connect,
    emit_json,
    err,
    explanation_tree,
    fail,
    out,
    table,
    timestamp,
    wants_json,
)
from keyplane.config import Settings
from keyplane.errors import KeyplaneError
from keyplane.policy.base_model import validate_extended
from keyplane.sdk.protocol import KeyplaneAPI
from keyplane.service.models import render_model

app = typer.Typer(
    name="keyplane",
    help="Keyplane — a headless identity control plane for humans, workloads and AI agents.",
    no_args_is_help=True,
    add_completion=False,
)
store_app = typer.Typer(help="Stores (tenants).", no_args_is_help=True)
model_app = typer.Typer(help="Authorization models (OpenFGA DSL or JSON).", no_args_is_help=True)
tuple_app = typer.Typer(help="Relationship tuples: object#relation@user.", no_args_is_help=True)
app.add_typer(store_app, name="store")
app.add_typer(model_app, name="model")
app.add_typer(tuple_app, name="tuple")

StoreOpt = Annotated[str, typer.Option("--store", "-s", envvar="KEYPLANE_STORE", help="Store id.")]
ContextOpt = Annotated[
    str | None, typer.Option("--context", "-c", help="Request context as a JSON object.")
]
CtxTuplesOpt = Annotated[
    list[str] | None,
    typer.Option("--with", "-w", help="A contextual tuple (repeatable): object#relation@user."),
]
FreshOpt = Annotated[
    int | None, typer.Option("--at-least-as-fresh", help="Wait until this revision is applied.")
]
ModelIdOpt = Annotated[
    str | None, typer.Option("--model-id", help="Model version (default latest).")
]

T = TypeVar("T")


@contextmanager
def _open(
    db: str | None, url: str | None = None, api_key: str | None = None
) -> Iterator[KeyplaneAPI]:
    with connect(db, url, api_key) as kp:
        yield kp


_fail = fail
_json = emit_json
_time = timestamp
_table = table


def _context(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        err.print(f"error[validation_error]: --context is not valid JSON: {exc}")
        raise typer.Exit(2) from None
    if not isinstance(value, dict):
        err.print("error[validation_error]: --context must be a JSON object")
        raise typer.Exit(2)
    return value


# ---------------------------------------------------------------------------- stores


@store_app.command("create")
def store_create(
    name: str,
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    store_id: Annotated[str | None, typer.Option("--id")] = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Create a store."""
    with _open(db, url, api_key) as kp:
        info = kp.create_store(name, store_id=store_id)
    if wants_json(as_json, output):
        _json({"id": info.id, "name": info.name, "created_at": _time(info.created_at)})
    else:
        out.print(f"created store [bold]{info.id}[/bold] ({info.name})")


@store_app.command("list")
def store_list(
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """List stores."""
    with _open(db, url, api_key) as kp:
        items, token = [], None
        while True:
            page = kp.list_stores(page_size=100, continuation_token=token)
            items.extend(page.items)
            token = page.continuation_token
            if not token:
                break
    if wants_json(as_json, output):
        _json([{"id": s.id, "name": s.name, "created_at": _time(s.created_at)} for s in items])
        return
    t = _table("id", "name", "created")
    for s in items:
        t.add_row(s.id, s.name, _time(s.created_at))
    out.print(t)


@store_app.command("get")
def store_get(
    store_id: str,
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Show one store."""
    with _open(db, url, api_key) as kp:
        info = kp.get_store(store_id)
    row = {
        "id": info.id,
        "name": info.name,
        "created_at": _time(info.created_at),
        "updated_at": _time(info.updated_at),
    }
    if wants_json(as_json, output):
        _json(row)
        return
    t = _table(*row)
    t.add_row(*row.values())
    out.print(t)


@store_app.command("delete")
def store_delete(
    store_id: str,
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Delete a store and everything in it."""
    with _open(db, url, api_key) as kp:
        kp.delete_store(store_id)
    if wants_json(as_json, output):
        _json({"deleted": store_id})
    else:
        out.print(f"deleted store {store_id}")


# ---------------------------------------------------------------------------- models


@model_app.command("write")
def model_write(
    path: Annotated[Path, typer.Argument(help="A .fga (DSL) or .json model file; '-' for stdin.")],
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    store: StoreOpt = "default",
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Write a new model version; it becomes the store's latest."""
    text = sys.stdin.read() if str(path) == "-" else path.read_text()
    with _open(db, url, api_key) as kp:
        rec = kp.write_model(text, store=store)
    if wants_json(as_json, output):
        _json({"authorization_model_id": rec.id})
    else:
        out.print(f"wrote model [bold]{rec.id}[/bold] to store {store}")


@model_app.command("get")
def model_get(
    model_id: Annotated[str | None, typer.Argument()] = None,
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    store: StoreOpt = "default",
    fmt: Annotated[str, typer.Option("--format", "-f", help="dsl or json")] = "dsl",
) -> None:
    """Print a model (the latest by default) as DSL or JSON."""
    with _open(db, url, api_key) as kp:
        rec = kp.read_model(model_id, store=store)
        sys.stdout.write(render_model(rec, fmt).rstrip("\n") + "\n")


@model_app.command("list")
def model_list(
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    store: StoreOpt = "default",
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """List model versions, newest first."""
    with _open(db, url, api_key) as kp:
        page = kp.list_models(store=store, page_size=100)
    if wants_json(as_json, output):
        _json([{"id": m.id, "created_at": _time(m.created_at)} for m in page.items])
        return
    t = _table("id", "created")
    for m in page.items:
        t.add_row(m.id, _time(m.created_at))
    out.print(t)


@model_app.command("validate")
def model_validate(path: Path, as_json: JsonOpt = False, output: OutputOpt = None) -> None:
    """Validate a DSL model file offline, as `model write` stores it (with the built-in
    base model's identity types, docs/identities.md); prints every issue with its line and
    column."""
    issues = validate_extended(path.read_text())
    if wants_json(as_json, output):
        _json([i.to_dict() for i in issues])
    as_json = wants_json(as_json, output)
    for i in issues if not as_json else ():
        where = f"{path}:{i.line[0] + 1}:{i.column[0] + 1}" if i.line and i.column else str(path)
        err.print(f"{where}: {i.message}", highlight=False, markup=False)
    if issues:
        raise typer.Exit(1)
    if not as_json:
        out.print(f"{path}: valid")


# ---------------------------------------------------------------------------- tuples


@tuple_app.command("write")
def tuple_write(
    tuples: Annotated[list[str], typer.Argument(help="object#relation@user ...")],
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    store: StoreOpt = "default",
    condition: Annotated[str | None, typer.Option(help="Condition name for every tuple.")] = None,
    condition_context: Annotated[str | None, typer.Option(help="Condition context JSON.")] = None,
    expires_at: Annotated[str | None, typer.Option(help="RFC 3339 expiry for every tuple.")] = None,
    idempotent: Annotated[bool, typer.Option(help="Skip tuples that already exist.")] = False,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Write tuples atomically; prints the new revision."""
    items: list[Any] = []
    for text in tuples:
        obj_rel, _, user = text.partition("@")
        obj, _, rel = obj_rel.partition("#")
        item: dict[str, Any] = {"object": obj, "relation": rel, "user": user}
        if condition:
            item["condition"] = {"name": condition, "context": _context(condition_context) or {}}
        if expires_at:
            item["expires_at"] = expires_at
        items.append(item if (condition or expires_at) else text)
    with _open(db, url, api_key) as kp:
        res = kp.write_tuples(items, store=store, idempotent=idempotent)
    if wants_json(as_json, output):
        _json({"revision": res.revision, "written": res.written, "deleted": res.deleted})
    else:
        out.print(f"wrote {res.written} tuple(s) at revision {res.revision}")


@tuple_app.command("delete")
def tuple_delete(
    tuples: Annotated[list[str], typer.Argument(help="object#relation@user ...")],
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    store: StoreOpt = "default",
    idempotent: Annotated[bool, typer.Option(help="Skip tuples that do not exist.")] = False,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Delete tuples atomically; prints the new revision."""
    with _open(db, url, api_key) as kp:
        res = kp.delete_tuples(tuples, store=store, idempotent=idempotent)
    if wants_json(as_json, output):
        _json({"revision": res.revision, "written": res.written, "deleted": res.deleted})
    else:
        out.print(f"deleted {res.deleted} tuple(s) at revision {res.revision}")


@tuple_app.command("read")
def tuple_read(
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    store: StoreOpt = "default",
    object: Annotated[
        str | None, typer.Option("--object", help="type:id, or type: for all")
    ] = None,
    relation: Annotated[str | None, typer.Option("--relation")] = None,
    user: Annotated[str | None, typer.Option("--user")] = None,
    limit: Annotated[int, typer.Option(help="Stop after this many tuples.")] = 1000,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Read stored tuples matching the filters."""
    found: list[Any] = []
    with _open(db, url, api_key) as kp:
        token = None
        while len(found) < limit:
            page = kp.read_tuples(
                object=object,
                relation=relation,
                user=user,
                store=store,
                page_size=min(100, limit - len(found)),
                continuation_token=token,
            )
            found.extend(page.items)
            token = page.continuation_token
            if not token:
                break
    if wants_json(as_json, output):
        _json([t.to_dict() for t in found])
        return
    t = _table("object", "relation", "user", "condition", "expires")
    for tp in found:
        t.add_row(
            tp.object,
            tp.relation,
            tp.user,
            tp.condition or "",
            _time(tp.expires_at) if tp.expires_at is not None else "",
        )
    out.print(t)


@tuple_app.command("changes")
def tuple_changes(
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    store: StoreOpt = "default",
    after: Annotated[int, typer.Option("--after", help="Changes after this revision.")] = 0,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """The changelog: every tuple write and delete after a revision."""
    with _open(db, url, api_key) as kp:
        page = kp.read_changes(after_revision=after, store=store, page_size=1000)
    if wants_json(as_json, output):
        _json(
            {
                "changes": [
                    {
                        "revision": c.revision,
                        "operation": c.operation,
                        "tuple": c.tuple.to_dict(),
                        "timestamp": _time(c.timestamp),
                    }
                    for c in page.changes
                ],
                "last_revision": page.last_revision,
            }
        )
        return
    t = _table("revision", "op", "tuple", "time")
    for c in page.changes:
        t.add_row(str(c.revision), c.operation, str(c.tuple), _time(c.timestamp))
    out.print(t)


@tuple_app.command("gc")
def tuple_gc(
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    store: StoreOpt = "default",
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Delete expired tuples (they already stopped granting at their expiry)."""
    with _open(db, url, api_key) as kp:
        n = kp.gc_expired(store=store)
    if wants_json(as_json, output):
        _json({"removed": n})
    else:
        out.print(f"removed {n} expired tuple(s)")


tuple_app.command("import")(bulk.tuple_import)
tuple_app.command("export")(bulk.tuple_export)


# ---------------------------------------------------------------------------- queries


def _ask(db: str | None, url: str | None, api_key: str | None, fn: Callable[[KeyplaneAPI], T]) -> T:
    with _open(db, url, api_key) as kp:
        return fn(kp)


@app.command()
def check(
    user: str,
    relation: str,
    object: str,
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    store: StoreOpt = "default",
    context: ContextOpt = None,
    with_: CtxTuplesOpt = None,
    fresh: FreshOpt = None,
    model_id: ModelIdOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """May USER have RELATION on OBJECT? Exit status 0 if allowed, 3 if denied."""
    d = _ask(
        db,
        url,
        api_key,
        lambda kp: kp.check(
            user,
            relation,
            object,
            context=_context(context),
            contextual_tuples=with_ or (),
            store=store,
            model_id=model_id,
            at_least_as_fresh=fresh,
        ),
    )
    if wants_json(as_json, output):
        _json(
            {
                "allowed": d.allowed,
                "model_id": d.model_id,
                "revision": d.revision,
                "decision_id": d.decision_id,
            }
        )
    else:
        out.print("[green]allowed[/green]" if d.allowed else "[red]denied[/red]")
    raise typer.Exit(0 if d.allowed else 3)


@app.command("list-objects")
def list_objects(
    user: str,
    relation: str,
    object_type: str,
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    store: StoreOpt = "default",
    context: ContextOpt = None,
    with_: CtxTuplesOpt = None,
    fresh: FreshOpt = None,
    model_id: ModelIdOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Every OBJECT_TYPE object on which USER has RELATION (streamed)."""
    with _open(db, url, api_key) as kp:
        it = kp.list_objects(
            user,
            relation,
            object_type,
            context=_context(context),
            contextual_tuples=with_ or (),
            store=store,
            model_id=model_id,
            at_least_as_fresh=fresh,
        )
        if wants_json(as_json, output):
            _json({"objects": list(it), "decision_id": it.decision_id})
        else:
            for obj in it:
                sys.stdout.write(obj + "\n")


@app.command("list-users")
def list_users(
    object: str,
    relation: str,
    filter_: Annotated[list[str], typer.Option("--filter", "-f", help="type or type#relation")],
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    store: StoreOpt = "default",
    context: ContextOpt = None,
    with_: CtxTuplesOpt = None,
    fresh: FreshOpt = None,
    model_id: ModelIdOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Every user (of the filter types) with RELATION on OBJECT."""
    users = _ask(
        db,
        url,
        api_key,
        lambda kp: kp.list_users(
            object,
            relation,
            filter_,
            context=_context(context),
            contextual_tuples=with_ or (),
            store=store,
            model_id=model_id,
            at_least_as_fresh=fresh,
        ),
    )
    if wants_json(as_json, output):
        _json({"users": users, "decision_id": users.decision_id})
    else:
        for u in users:
            sys.stdout.write(u + "\n")


@app.command()
def expand(
    object: str,
    relation: str,
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    store: StoreOpt = "default",
    context: ContextOpt = None,
    with_: CtxTuplesOpt = None,
    fresh: FreshOpt = None,
    model_id: ModelIdOpt = None,
) -> None:
    """The userset tree of RELATION on OBJECT (JSON)."""
    tree = _ask(
        db,
        url,
        api_key,
        lambda kp: kp.expand(
            object,
            relation,
            context=_context(context),
            contextual_tuples=with_ or (),
            store=store,
            model_id=model_id,
            at_least_as_fresh=fresh,
        ),
    )
    _json({**tree, "decision_id": tree.decision_id})


@app.command()
def explain(
    user: str,
    relation: str,
    object: str,
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    store: StoreOpt = "default",
    context: ContextOpt = None,
    with_: CtxTuplesOpt = None,
    fresh: FreshOpt = None,
    model_id: ModelIdOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="text (the tree, default), json, dot (Graphviz) or mermaid (flowchart).",
        ),
    ] = "text",
) -> None:
    """Why USER does (or does not) have RELATION on OBJECT: the granting paths or the reasons.

    ``--format dot`` / ``mermaid`` print the paths as a graph to render (``| dot -Tsvg``,
    or paste into a Mermaid viewer); a denial draws its reasons."""
    if fmt not in ("text", "json", "dot", "mermaid"):
        raise typer.BadParameter(
            f"{fmt!r} is not one of text, json, dot, mermaid", param_hint="'--format'"
        )
    ex = _ask(
        db,
        url,
        api_key,
        lambda kp: kp.explain(
            user,
            relation,
            object,
            context=_context(context),
            contextual_tuples=with_ or (),
            store=store,
            model_id=model_id,
            at_least_as_fresh=fresh,
        ),
    )
    if fmt in ("dot", "mermaid"):
        from keyplane.graph import draw

        sys.stdout.write(draw.explanation_dot(ex) if fmt == "dot" else draw.explanation_mermaid(ex))
    elif fmt == "json" or wants_json(as_json, output):
        _json({**ex.to_dict(), "decision_id": ex.decision_id})
    else:
        # a terminal wraps the tree to its width; a pipe or a file gets whole lines
        (out if out.is_terminal else Console(width=10_000)).print(explanation_tree(ex))


# ---------------------------------------------------------------------------- MCP


@app.command("mcp")
def mcp_stdio(
    db: DbOpt = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store", "-s", envvar="KEYPLANE_STORE", help="Default store for tool calls."
        ),
    ] = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Hide and refuse the write tools.")
    ] = False,
) -> None:
    """Serve MCP over stdio for an agent host; the API key comes from KEYPLANE_API_KEY."""
    import os

    from keyplane.mcp.stdio import API_KEY_ENV, serve_stdio
    from keyplane.service.context import Services

    settings = Settings.from_env(database_url=db)
    try:
        svc = Services.open(settings)
    except KeyplaneError as exc:
        fail(exc)
    try:
        serve_stdio(
            svc,
            os.environ.get(API_KEY_ENV),
            read_only=read_only or settings.mcp_read_only,
            default_store=store,
        )
    except KeyplaneError as exc:
        fail(exc)
    finally:
        svc.close()


from keyplane.cli.serve import serve  # noqa: E402  (the server command lives in its own module)

app.command("serve")(serve)

from keyplane.cli.keys import init, key_app  # noqa: E402  (keyplane init, keyplane key …)

app.command("init")(init)
app.add_typer(key_app, name="key")

from keyplane.cli.ledger import ledger_app  # noqa: E402  (keyplane ledger …)

app.add_typer(ledger_app, name="ledger")

from keyplane.cli.identities import identity_app  # noqa: E402  (keyplane identity …)

app.add_typer(identity_app, name="identity")

from keyplane.cli.identities import delegation_app  # noqa: E402  (keyplane delegation …)

app.add_typer(delegation_app, name="delegation")

from keyplane.cli.identities import policy_app  # noqa: E402  (keyplane policy …)

app.add_typer(policy_app, name="policy")

from keyplane.cli.decide import decide  # noqa: E402  (keyplane decide)

app.command("decide")(decide)

from keyplane.cli.guardrails import guardrails_app  # noqa: E402  (keyplane guardrails …)

app.add_typer(guardrails_app, name="guardrails")

from keyplane.cli.signing_keys import signing_key_app  # noqa: E402  (keyplane signing-key …)

app.add_typer(signing_key_app, name="signing-key")

from keyplane.cli.credentials import credential_app  # noqa: E402  (keyplane credential …)

app.add_typer(credential_app, name="credential")

from keyplane.cli.tokens import token_app  # noqa: E402  (keyplane token …)

app.add_typer(token_app, name="token")

from keyplane.cli.governance import (  # noqa: E402  (keyplane entitlement|request|review …)
    entitlement_app,
    request_app,
    review_app,
)

app.add_typer(entitlement_app, name="entitlement")
app.add_typer(request_app, name="request")
app.add_typer(review_app, name="review")

from keyplane.cli.posture import access_app, posture_app  # noqa: E402  (keyplane access|posture …)

app.add_typer(access_app, name="access")
app.add_typer(posture_app, name="posture")


def main() -> None:  # pragma: no cover - console entry point
    app()


from keyplane.cli.gateway import gateway_app  # noqa: E402  (keyplane gateway …)

app.add_typer(gateway_app, name="gateway")

from keyplane.cli.imports import import_app  # noqa: E402  (keyplane import …)

app.add_typer(import_app, name="import")
