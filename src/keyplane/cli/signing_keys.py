"""``keyplane signing-key list|rotate`` — a store's token signing keys (issue 6).

Like every command: the local database (``--db``) or a server (``--url`` + ``--api-key``);
a table for people, ``--json`` for scripts. Only public parts are ever shown.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from keyplane.cli.common import (
    ApiKeyOpt,
    DbOpt,
    JsonOpt,
    OutputOpt,
    UrlOpt,
    connect,
    emit_json,
    out,
    table,
    timestamp,
    wants_json,
)
from keyplane.cli.identities import show_table
from keyplane.service.signing_keys import SigningKeyInfo

__all__ = ["signing_key_app", "signing_key_json"]

signing_key_app = typer.Typer(
    help="Token signing keys: list them, rotate (the old key stays published for the overlap).",
    no_args_is_help=True,
)

StoreOpt = Annotated[str, typer.Option("--store", "-s", envvar="KEYPLANE_STORE", help="Store id.")]


def signing_key_json(k: SigningKeyInfo) -> dict[str, Any]:
    return {
        "kid": k.kid,
        "algorithm": k.algorithm,
        "state": k.state,
        "public_jwk": dict(k.public_jwk),
        "created_at": k.created_at,
        "retiring_at": k.retiring_at,
        "publish_until": k.publish_until,
        "revision": k.revision,
    }


def _when(ts: float | None) -> str:
    return "" if ts is None else timestamp(ts)


@signing_key_app.command("list")
def signing_key_list(
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """The store's signing keys, oldest first, with their state."""
    with connect(db, url, api_key) as kp:
        keys = kp.list_signing_keys(store=store)
    if wants_json(as_json, output):
        emit_json([signing_key_json(k) for k in keys])
        return
    t = table("kid", "algorithm", "state", "created", "published until")
    for k in keys:
        t.add_row(k.kid, k.algorithm, k.state, _when(k.created_at), _when(k.publish_until))
    show_table(t)


@signing_key_app.command("rotate")
def signing_key_rotate(
    algorithm: Annotated[
        str, typer.Option("--algorithm", help="EdDSA (Ed25519, the default) or ES256.")
    ] = "EdDSA",
    overlap_seconds: Annotated[
        int | None,
        typer.Option(
            "--overlap-seconds",
            help="How long the retiring key stays published (default: KEYPLANE_TOKEN_MAX_TTL).",
        ),
    ] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Make a new key active; the previous one retires (still published for the overlap)."""
    with connect(db, url, api_key) as kp:
        k = kp.rotate_signing_key(store=store, algorithm=algorithm, overlap_seconds=overlap_seconds)
    if wants_json(as_json, output):
        emit_json(signing_key_json(k))
        return
    out.print(f"active signing key {k.kid} ({k.algorithm})", highlight=False, markup=False)
