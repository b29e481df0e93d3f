"""``keyplane init`` and ``keyplane key create|list|get|rotate|revoke``.

``keyplane init`` works on the local database (``--db`` / ``KEYPLANE_DATABASE_URL``) as the
trusted in-process caller: holding the database is what entitles you to mint the first
key. ``keyplane key …`` works there too, or — with ``--url`` / ``KEYPLANE_URL`` — against a
server through ``/v1/keys``, as an admin key (``--api-key`` / ``KEYPLANE_API_KEY``). Secrets are printed once, when a key is
created or rotated, and never again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from keyplane.cli.common import (
    ApiKeyOpt,
    DbOpt,
    JsonOpt,
    OutputOpt,
    UrlOpt,
    connect,
    emit_json,
    fail,
    out,
    table,
    timestamp,
)
from keyplane.cli.common import wants_json as _wants_json
from keyplane.config import Settings
from keyplane.errors import KeyplaneError
from keyplane.service import keys
from keyplane.service.context import Services
from keyplane.service.keys import ApiKey

__all__ = ["init", "key_app"]

key_app = typer.Typer(
    help="API keys (local database, or a server with --url): create, list, get, rotate, revoke.",
    no_args_is_help=True,
)


@contextmanager
def _local(db: str | None) -> Iterator[Services]:
    """The local database, opened (and migrated) as the trusted system caller."""
    from keyplane.embedded import Keyplane

    try:
        kp = Keyplane.open(settings=Settings.from_env(database_url=db, poll_interval=0.0))
    except KeyplaneError as exc:
        fail(exc)
    try:
        yield kp.services
    except KeyplaneError as exc:
        fail(exc)
    finally:
        kp.close()


def _show_secret(rec: ApiKey, secret: str, as_json: bool, what: str) -> None:
    if as_json:
        emit_json({"key": rec.to_dict(), "secret": secret})
        return
    out.print(f"{what} API key [bold]{rec.id}[/bold] (owner {rec.owner!r}, roles {_roles(rec)})")
    out.print("The secret is shown only now — store it safely:", highlight=False)
    out.print(secret, markup=False, highlight=False, soft_wrap=True)


def _roles(rec: ApiKey) -> str:
    return ", ".join(rec.roles) or "(none)"


def _when(ts: float | None) -> str:
    return "" if ts is None else timestamp(ts)


# ---------------------------------------------------------------------------- init


def init(
    db: DbOpt = None,
    owner: Annotated[str, typer.Option("--owner", help="Owner of the admin key.")] = "admin",
    force_new_admin_key: Annotated[
        bool,
        typer.Option(
            "--force-new-admin-key",
            help="Mint another admin key even though the database already has one.",
        ),
    ] = False,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create the database schema and the first admin API key, printed once.

    With --output json prints {"api_key": "kp_…"}. On a database that already has a usable
    admin key it refuses (exit status 1) unless --force-new-admin-key.
    """
    with _local(db) as svc:
        rec, secret = keys.bootstrap_admin(svc, owner=owner, force=force_new_admin_key)
        database = svc.settings.database_url
    if _wants_json(as_json, output):
        emit_json({"api_key": secret})
        return
    out.print(f"Initialised {database}.", markup=False, highlight=False)
    _show_secret(rec, secret, False, "Created admin")


# ---------------------------------------------------------------------------- keys


@key_app.command("create")
def key_create(
    owner: Annotated[str, typer.Option("--owner", help="Who the key is for.")],
    role: Annotated[
        list[str] | None,
        typer.Option(
            "--role",
            "-r",
            help="A role (repeatable): admin, auditor, writer, reader, writer:<store>, "
            "reader:<store>.",
        ),
    ] = None,
    expires_in: Annotated[
        float | None, typer.Option("--expires-in", help="Seconds until the key expires.")
    ] = None,
    description: Annotated[str, typer.Option("--description", "-d")] = "",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key; prints its secret once."""
    with connect(db, url, api_key) as kp:
        rec, secret = kp.create_key(
            owner=owner,
            roles=role or [],
            expires_in=expires_in,
            description=description,
        )
    _show_secret(rec, secret, _wants_json(as_json, output), "Created")


@key_app.command("list")
def key_list(
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every API key (revoked and expired ones too), oldest first; never secrets."""
    found: list[ApiKey] = []
    with connect(db, url, api_key) as kp:
        token: str | None = None
        while True:
            page = kp.list_keys(page_size=1000, continuation_token=token)
            found.extend(page.items)
            token = page.continuation_token
            if token is None:
                break
    now = time.time()
    if _wants_json(as_json, output):
        emit_json({"keys": [k.to_dict() for k in found]})
        return
    t = table("id", "owner", "roles", "status", "created", "expires", "last used")
    for k in found:
        t.add_row(
            k.id,
            k.owner,
            _roles(k),
            k.status(now),
            _when(k.created_at),
            _when(k.expires_at),
            _when(k.last_used_at),
        )
    out.print(t)


@key_app.command("get")
def key_get(
    key_id: str,
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one API key (never its secret)."""
    with connect(db, url, api_key) as kp:
        rec = kp.get_key(key_id)
    now = time.time()
    if _wants_json(as_json, output):
        emit_json(rec.to_dict())
        return
    for name, value in [
        ("id", rec.id),
        ("owner", rec.owner),
        ("roles", _roles(rec)),
        ("status", rec.status(now)),
        ("description", rec.description),
        ("created", _when(rec.created_at)),
        ("expires", _when(rec.expires_at) or "never"),
        ("last used", _when(rec.last_used_at) or "never"),
        ("revoked", _when(rec.revoked_at)),
    ]:
        out.print(f"{name:>12}: {value}", markup=False, highlight=False)


@key_app.command("rotate")
def key_rotate(
    key_id: str,
    overlap: Annotated[
        float,
        typer.Option("--overlap", help="Seconds the old secret keeps working."),
    ] = 3600.0,
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Give a key a new secret (printed once); the old one works for --overlap seconds."""
    with connect(db, url, api_key) as kp:
        rec, secret = kp.rotate_key(key_id, overlap_seconds=overlap)
    _show_secret(rec, secret, _wants_json(as_json, output), "Rotated")


@key_app.command("revoke")
def key_revoke(
    key_id: str, db: DbOpt = None, url: UrlOpt = None, api_key: ApiKeyOpt = None
) -> None:
    """Revoke a key for good (its role grants are deleted)."""
    with connect(db, url, api_key) as kp:
        kp.revoke_key(key_id)
    out.print(f"Revoked API key {key_id}.", markup=False, highlight=False)
