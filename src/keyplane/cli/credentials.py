"""``keyplane credential create|list|get|rotate|revoke`` — client credentials of non-human
identities (issue 6).

Like every command: the local database (``--db``) or a server (``--url`` + ``--api-key``);
a table for people, ``--json`` for scripts. A client secret is printed once, by ``create``
and ``rotate``, and never again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from keyplane.cli.common import (
    ApiKeyOpt,
    DbOpt,
    JsonOpt,
    OutputOpt,
    UrlOpt,
    all_pages,
    connect,
    emit_json,
    err,
    out,
    table,
    timestamp,
    wants_json,
)
from keyplane.cli.identities import show_table
from keyplane.tokens.clients import Credential

__all__ = ["credential_app"]

credential_app = typer.Typer(
    help="Client credentials of agents, workloads and service accounts: secrets and "
    "registered public keys (private_key_jwt).",
    no_args_is_help=True,
)

StoreOpt = Annotated[str, typer.Option("--store", "-s", envvar="KEYPLANE_STORE", help="Store id.")]


def _when(ts: float | None) -> str:
    return "" if ts is None else timestamp(ts)


def _json(c: Credential) -> dict[str, Any]:
    d = c.to_dict()
    d.pop("store_id")
    return d


def _show(c: Credential, secret: str | None, as_json: bool, what: str) -> None:
    if as_json:
        emit_json({"credential": _json(c), "secret": secret})
        return
    out.print(
        f"{what} credential {c.id} for {c.client_id} ({c.type}), expires {_when(c.expires_at)}",
        highlight=False,
        markup=False,
    )
    if c.previous_expires_at is not None and what == "Rotated":
        out.print(
            f"The previous secret works until {_when(c.previous_expires_at)}.", highlight=False
        )
    if secret is not None:
        out.print("The client secret is shown only now — store it safely:", highlight=False)
        out.print(secret, markup=False, highlight=False, soft_wrap=True)


@credential_app.command("create")
def credential_create(
    identity: Annotated[str, typer.Argument(help="The non-human identity, e.g. agent:bot.")],
    public_jwk: Annotated[
        Path | None,
        typer.Option(
            "--public-jwk",
            help="A file holding the PUBLIC JWK: makes a private_key_jwt credential.",
        ),
    ] = None,
    expires_at: Annotated[
        float | None,
        typer.Option("--expires-at", help="Seconds since the epoch (default: the policy cap)."),
    ] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Create a credential: a client secret (printed once), or with --public-jwk a
    registered public key."""
    jwk = None
    if public_jwk is not None:
        try:
            jwk = json.loads(public_jwk.read_text())
        except (OSError, ValueError) as exc:
            err.print(f"error[validation_error]: --public-jwk: {exc}", markup=False)
            raise typer.Exit(2) from None
    with connect(db, url, api_key) as kp:
        cred, secret = kp.create_credential(
            identity,
            store=store,
            type="client_secret" if jwk is None else "private_key_jwt",
            public_jwk=jwk,
            expires_at=expires_at,
        )
    _show(cred, secret, wants_json(as_json, output), "Created")


@credential_app.command("list")
def credential_list(
    identity: Annotated[
        str | None, typer.Option("--identity", help="Only this identity's credentials.")
    ] = None,
    status: Annotated[str | None, typer.Option("--status", help="active or revoked.")] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """The store's credentials, oldest first; never a secret."""
    with connect(db, url, api_key) as kp:
        found: list[Credential] = all_pages(
            lambda token: kp.list_credentials(
                store=store,
                identity=identity,
                status=status,
                page_size=1000,
                continuation_token=token,
            )
        )
    if wants_json(as_json, output):
        emit_json([_json(c) for c in found])
        return
    t = table("id", "client", "type", "status", "expires", "last used")
    for c in found:
        t.add_row(c.id, c.client_id, c.type, c.status, _when(c.expires_at), _when(c.last_used_at))
    show_table(t)


@credential_app.command("get")
def credential_get(
    credential_id: Annotated[str, typer.Argument(help="The credential id.")],
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """One credential (never its secret)."""
    with connect(db, url, api_key) as kp:
        c = kp.get_credential(credential_id, store=store)
    if wants_json(as_json, output):
        emit_json(_json(c))
        return
    for k, v in _json(c).items():
        if v is not None:
            out.print(f"{k}: {v}", highlight=False, markup=False)


@credential_app.command("rotate")
def credential_rotate(
    credential_id: Annotated[str, typer.Argument(help="The credential id.")],
    overlap_seconds: Annotated[
        float, typer.Option("--overlap-seconds", help="How long the old secret keeps working.")
    ] = 3600,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """A new client secret (printed once); the old one works --overlap-seconds more."""
    with connect(db, url, api_key) as kp:
        cred, secret = kp.rotate_credential(
            credential_id, store=store, overlap_seconds=overlap_seconds
        )
    _show(cred, secret, wants_json(as_json, output), "Rotated")


@credential_app.command("revoke")
def credential_revoke(
    credential_id: Annotated[str, typer.Argument(help="The credential id.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why (recorded).")] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Revoke a credential at once."""
    with connect(db, url, api_key) as kp:
        c = kp.revoke_credential(credential_id, store=store, reason=reason)
    if wants_json(as_json, output):
        emit_json(_json(c))
        return
    out.print(f"Revoked credential {c.id} of {c.client_id}", highlight=False, markup=False)
